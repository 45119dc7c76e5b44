"""The C CUBA training loop: equal to the torch loop and the shared step; built, cached and
refused cleanly."""
from __future__ import annotations

import shutil

import pytest
import torch

from spikecodec.lava_procs.cuba import CubaState, cuba_step
from spikecodec.train import native_lif
from spikecodec.train.blocks import CubaConfig, CubaDense, _lif_forward_int32, state_fits_int32

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler on this machine")


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch, tmp_path):
    """Each test builds into its own cache and forgets what earlier tests loaded."""
    monkeypatch.setenv("SPIKECODEC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SPIKECODEC_NATIVE", raising=False)
    monkeypatch.delenv("CC", raising=False)
    native_lif.reset()
    yield
    native_lif.reset()


def drive(cfg: CubaConfig, steps: int = 12, shape=(5, 40), seed: int = 7) -> torch.Tensor:
    """int64 inputs in state units: both signs, on and next to the threshold, and as large as
    the int32 bound allows."""
    p = cfg.fixed_point()
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(-3 * p.vth, 3 * p.vth, (steps, *shape), generator=g)
    a[:, 0] = p.vth + torch.randint(-2, 3, (steps, shape[1]), generator=g)
    big = torch.randint(-2**28, 2**28, (steps, shape[1]), generator=g)
    while not state_fits_int32(float(big.abs().max()), p, steps):
        big >>= 1
    a[:, 1] = big
    assert state_fits_int32(float(a.abs().max()), p, steps)
    return a


@needs_cc
@pytest.mark.parametrize("current_decay, voltage_decay", [(1.0, 0.1), (1.0, 0.0), (1.0, 1.0),
                                                          (0.25, 0.05), (0.0, 0.3), (0.6, 1.0)])
def test_c_loop_equals_the_torch_loop_and_the_shared_step(current_decay, voltage_decay):
    cfg = CubaConfig(current_decay=current_decay, voltage_decay=voltage_decay, scale=64)
    p = cfg.fixed_point()
    a = drive(cfg)
    s_c, v_c = native_lif.lif_forward_int32(a.to(torch.int32), p, 1.0 / cfg.state_scale)
    s_t, v_t = _lif_forward_int32(a.to(torch.int32), p, torch.float32)
    assert torch.equal(s_c, s_t) and torch.equal(v_c, v_t / cfg.state_scale)
    state = CubaState(torch.zeros_like(a[0]), torch.zeros_like(a[0]))
    for t in range(a.shape[0]):
        state, v_ref, s_ref = cuba_step(state, a[t], p)
        assert torch.equal(s_c[t], s_ref.float()), t
        assert torch.equal(v_c[t].double() * cfg.state_scale, v_ref.float().double()), t
    assert 0 < s_c.sum() < s_c.numel()


@needs_cc
def test_training_uses_it_and_gets_what_the_torch_loop_gets(monkeypatch):
    """A CubaDense forward and backward with the C loop and with it switched off: the same
    spikes, voltages and gradients."""
    x = (torch.rand(10, 6, 30, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    results = []
    for switch in ("1", "0"):
        monkeypatch.setenv("SPIKECODEC_NATIVE", switch)
        block = CubaDense(30, 20, CubaConfig(voltage_decay=0.1, scale=256), weight_scale=3.0,
                          generator=torch.Generator().manual_seed(0))
        s, v = block.forward_tm(x)
        (v.square().sum() + s.sum()).backward()
        results.append((s, v, block.weight.grad))
        assert (native_lif.load() is not None) == (switch == "1")
    for first, second in zip(*results, strict=True):
        assert torch.equal(first, second)
    assert results[0][0].sum() > 0


@needs_cc
def test_built_once_into_the_cache_and_reused(tmp_path):
    assert native_lif.load() is not None and native_lif.why_not() is None
    built = list((tmp_path / "cache").iterdir())
    assert len(built) == 1 and built[0].suffix == ".so"  # no temporary left beside it
    stamp = built[0].stat().st_mtime_ns
    native_lif.reset()
    assert native_lif.load() is not None
    assert [p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()] == [stamp]


@pytest.mark.parametrize("cc, reason", [("/nonexistent/cc", "no C compiler"),
                                        ("false", "failed")])
def test_no_compiler_or_a_failed_build_falls_back_to_torch(monkeypatch, tmp_path, cc, reason):
    if cc == "false" and shutil.which("false") is None:
        pytest.skip("no `false` program")
    monkeypatch.setenv("CC", cc)
    assert native_lif.load() is None
    assert reason in native_lif.why_not()
    cache = tmp_path / "cache"
    assert not cache.exists() or list(cache.iterdir()) == []  # nothing half-built
    cfg = CubaConfig(voltage_decay=0.1, scale=64)
    a = drive(cfg).to(torch.int32)
    assert native_lif.lif_forward_int32(a, cfg.fixed_point(), 1.0) is None
    block = CubaDense(4, 3, cfg)  # training still runs, on the torch loop
    s, _ = block.forward_tm(torch.ones(5, 2, 4))
    assert s.shape == (5, 2, 3)


def test_switched_off(monkeypatch):
    monkeypatch.setenv("SPIKECODEC_NATIVE", "0")
    assert native_lif.load() is None


def test_refuses_what_it_cannot_read():
    p = CubaConfig().fixed_point()
    for bad in (torch.zeros(3, 4, dtype=torch.int64), torch.zeros(4, 3, dtype=torch.int32).t(),
                torch.zeros((), dtype=torch.int32)):
        with pytest.raises(ValueError, match="contiguous int32"):
            native_lif.lif_forward_int32(bad, p, 1.0)


def test_a_cache_that_cannot_be_had_falls_back(monkeypatch, tmp_path):
    """No writable cache (here: a file where the cache folder should be): the torch loop."""
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    monkeypatch.setenv("SPIKECODEC_CACHE", str(blocker / "cache"))
    if shutil.which("cc") is None:
        pytest.skip("no C compiler on this machine")
    assert native_lif.load() is None
    assert "failed" in native_lif.why_not()
    assert blocker.read_text() == ""

"""The lava-sim backend: many samples streamed through one Lava run, spike for spike.

Streamed runs must equal one Lava run per sample and a hand-written numpy loop of
``cuba_step`` from zero state per sample (no delay: output step ``t`` answers input step ``t``).
Also: the file-backed spike I/O under both tags, probes, gap/chunk invariance, argument errors,
the loihi2 target without lava-loihi, and no Lava child process left behind, even on failure.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import spikecodec.deploy.backends.lava_sim as lava_sim
from spikecodec.deploy.backends.lava_sim import run_lava
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import CubaNeuron, DenseLayer
from spikecodec.errors import BackendUnavailableError, ConfigError
from spikecodec.lava_procs.cuba import STATE_EXP, CubaParams, CubaState, cuba_step_hits

pytestmark = pytest.mark.lava

T = 10


def random_net(sizes, *, i_decay, v_decay, v_th, bias_layers=(), w_max=60, seed=0):
    """Dense CUBA layers with random even weights in [-2 w_max, 2 w_max]; the first half of the
    neurons of ``bias_layers`` get random biases, the rest none."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        weight = 2 * rng.integers(-w_max, w_max + 1, size=(n_out, n_in))
        bias = None
        if i in bias_layers:
            bias = np.zeros(n_out, dtype=np.int64)
            bias[: n_out // 2] = rng.integers(-20, 60, size=n_out // 2)
        layers.append(DenseLayer(f"dense{i}", weight, CubaNeuron(i_decay, v_decay, v_th), bias))
    return FixedPointNetwork(layers, InputSpec("spikes", T, (sizes[0],)))


NETS = {
    # persistent current (iDecay 1024 keeps 3/4 per step) and biases on half of each layer
    "cuba-bias": lambda: random_net([20, 12, 6], i_decay=1024, v_decay=256, v_th=80,
                                    bias_layers=(0, 1), seed=1),
    # Roy et al.'s LIF: the current forgets every step, 10 % voltage leak, no bias
    "roy": lambda: random_net([16, 8, 16], i_decay=4096, v_decay=410, v_th=100, seed=2),
}


def reference(net: FixedPointNetwork, x: np.ndarray) -> list[np.ndarray]:
    """Every layer's spikes ``(batch, n, T)``: zero state per sample, layers without delay."""
    spikes = x.astype(np.int64)
    out = []
    for layer in net.layers:
        n = layer.neuron
        bias = 0 if layer.bias is None else layer.bias << STATE_EXP
        p = CubaParams(du=n.i_decay, dv=n.v_decay, vth=n.v_th_mant << STATE_EXP, bias=bias)
        zeros = np.zeros((len(x), layer.out_features), dtype=np.int64)
        state, steps = CubaState(zeros, zeros), []
        for t in range(x.shape[2]):
            a_in = (spikes[:, :, t] @ layer.weight.T) << STATE_EXP  # synaptic input
            state, _, s, hits = cuba_step_hits(state, a_in, p)  # bounded like Lava
            assert not (hits.u_wrapped.any() or hits.v_clipped.any()), "leave the wrap-free regime"
            steps.append(s)
        spikes = np.stack(steps, axis=2).astype(np.int64)
        out.append(spikes.astype(np.uint8))
    return out


def inputs(net: FixedPointNetwork, batch: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((batch, net.in_features, T)) < 0.3).astype(np.uint8)


@pytest.mark.parametrize("name", sorted(NETS))
def test_stream_equals_reference_and_isolated_runs(name, no_leftover_children):
    net = NETS[name]()
    x = inputs(net, batch=5)
    expected = reference(net, x)
    assert all(0 < e.sum() < e.size for e in expected), "degenerate test network"
    result = run_lava(net, x, probe=True)
    assert result.spikes.dtype == np.uint8 and result.spikes.shape == (5, net.out_features, T)
    assert [p.shape for p in result.layers] == [(5, layer.out_features, T)
                                                for layer in net.layers]
    assert np.array_equal(result.layers[-1], result.spikes)
    for got, want in zip(result.layers, expected, strict=True):
        assert np.array_equal(got, want)
    assert result.stats["runs"] == 1 and result.stats["gap"] == 0
    assert result.stats["steps"] == 5 * T + net.latency
    isolated = [run_lava(net, x[k:k + 1]).spikes for k in range(3)]  # one Lava run each
    assert np.array_equal(np.concatenate(isolated), expected[-1][:3])


def test_gap_chunk_and_progress_give_the_same_spikes(no_leftover_children):
    net = NETS["cuba-bias"]()
    x = inputs(net, batch=5, seed=11)
    result = run_lava(net, x, gap=3, chunk=2, show_progress=True)
    assert np.array_equal(result.spikes, reference(net, x)[-1])
    assert result.stats["runs"] == 3 and result.stats["gap"] == 3
    assert result.stats["steps"] == (1 * 13 + T + 2) * 2 + (T + 2)
    assert result.layers is None and result.stats["seconds"] > 0


@pytest.mark.parametrize("tag", ["fixed_pt", "floating_pt"])
def test_spike_io_round_trip(tmp_path, tag, no_leftover_children):
    """SpikeSource -> SpikeSink directly: the sink keeps steps offset + k*period + t, t < window."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from spikecodec.lava_procs.spike_io.process import SpikeSink, SpikeSource

    data = (np.random.default_rng(0).random((23, 5)) < 0.5).astype(np.uint8)
    np.save(tmp_path / "in.npy", data)
    np.lib.format.open_memmap(tmp_path / "out.npy", "w+", np.uint8, (3, 4, 5))
    source = SpikeSource(path=tmp_path / "in.npy")
    sink = SpikeSink(path=tmp_path / "out.npy", offset=2, period=7)
    source.s_out.connect(sink.a_in)
    try:
        source.run(condition=RunSteps(num_steps=26), run_cfg=Loihi2SimCfg(select_tag=tag))
    finally:
        source.stop()
    want = np.stack([data[2 + 7 * k: 6 + 7 * k] for k in range(3)])
    assert np.array_equal(np.load(tmp_path / "out.npy"), want)


@pytest.mark.parametrize("kwargs", [{"gap": -1}, {"gap": 1.5}, {"chunk": 0}, {"target": "gpu"}])
def test_bad_arguments_raise_config_error(kwargs):
    net = NETS["roy"]()
    with pytest.raises(ConfigError):
        run_lava(net, inputs(net, batch=1), **kwargs)


def test_loihi2_without_lava_loihi_says_what_to_install():
    try:
        import lava.proc.embedded_io.spike  # noqa: F401
        pytest.skip("lava-loihi is installed here")
    except ImportError:
        pass
    net = NETS["roy"]()
    with pytest.raises(BackendUnavailableError, match="lava-loihi") as err:
        run_lava(net, inputs(net, batch=1), target="loihi2")
    assert "lava-sim" in str(err.value)


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_runtime_stopped_and_files_removed_on_failure(monkeypatch, error, no_leftover_children):
    """Fail after the runtime has started and run a few steps: nothing may survive the call."""
    real_advance = lava_sim._advance
    seen = {}

    def advance_then_fail(network, total, cfg, show_progress):
        real_advance(network, 3, cfg, show_progress)
        seen["children"] = len(multiprocessing.active_children())
        seen["workdir"] = Path(network.filename).parent
        raise error

    monkeypatch.setattr(lava_sim, "_advance", advance_then_fail)
    net = NETS["roy"]()
    with pytest.raises(type(error)):
        run_lava(net, inputs(net, batch=2))
    assert seen["children"] > 0  # the runtime was really up
    assert not seen["workdir"].exists()


CTRL_C_SCRIPT = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
import numpy as np
import spikecodec.deploy.backends.lava_sim as lava_sim
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import CubaNeuron, DenseLayer
real_advance = lava_sim._advance
def advance(*args):
    print("running", flush=True)
    real_advance(*args)
lava_sim._advance = advance
layer = DenseLayer("d", np.full((8, 8), 2), CubaNeuron(4096, 410, 100))
net = FixedPointNetwork([layer], InputSpec("spikes", 10, (8,)))
try:
    lava_sim.run_lava(net, np.ones((100000, 8, 10), np.uint8))
except KeyboardInterrupt:
    import multiprocessing
    print("interrupted, children:", len(multiprocessing.active_children()), flush=True)
"""


def live_group_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that still run (zombies wait for init; they hold nothing)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def test_ctrl_c_stops_the_run_and_leaves_no_process():
    """A real Ctrl-C signals the whole process group, Lava's children included."""
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        for line in proc.stdout:  # lava-dl prints warnings on import
            if line.strip() == "running":
                break
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "interrupted, children: 0" in out
    deadline = time.monotonic() + 10
    while live_group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert live_group_members(proc.pid) == []

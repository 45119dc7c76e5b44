"""The VDIB readout's fixed-point dynamics: PRNG, sigmoid table, step (numpy == torch)."""
import math

import numpy as np
import pytest
import torch

from spikecodec.errors import ConfigError
from spikecodec.lava_procs.stochastic_readout import dynamics as d


def _draws(seed, batch, neurons, steps, xp=np):
    samples = xp.arange(batch)[:, None] if xp is np else torch.arange(batch)[:, None]
    ids = np.arange(neurons) if xp is np else torch.arange(neurons)
    key = d.sample_key(seed, samples)
    return [d.draw(key, d.neuron_step_key(ids, t)) for t in range(steps)]


def test_draws_agree_across_numpy_torch_and_python_ints():
    a = np.stack(_draws(11, 6, 9, 5), -1)
    b = torch.stack(_draws(11, 6, 9, 5, xp=torch), -1).numpy()
    assert np.array_equal(a, b)
    assert a[4, 7, 3] == d.draw(d.sample_key(11, 4), d.neuron_step_key(7, 3))


def test_draws_are_uniform_16_bit_and_decorrelated():
    r = np.stack(_draws(3, 256, 128, 20), -1)
    assert r.min() >= 0 and r.max() < d.PROB_ONE
    counts = np.bincount((r >> 12).ravel(), minlength=16)
    chi2 = ((counts - counts.mean()) ** 2 / counts.mean()).sum()
    assert chi2 < 40  # 15 dof: p ~ 5e-4
    for a, b in ((r[:, :-1], r[:, 1:]), (r[:-1], r[1:]), (r[..., :-1], r[..., 1:])):
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.01  # neuron, sample, step


def test_every_key_part_changes_the_draw():
    base = d.draw(d.sample_key(5, 2), d.neuron_step_key(3, 4))
    assert base != d.draw(d.sample_key(6, 2), d.neuron_step_key(3, 4))
    assert base != d.draw(d.sample_key(5, 1), d.neuron_step_key(3, 4))
    assert base != d.draw(d.sample_key(5, 2), d.neuron_step_key(2, 4))
    assert base != d.draw(d.sample_key(5, 2), d.neuron_step_key(3, 5))


def test_mix32_is_a_bijection_on_a_block():
    x = np.arange(2**16, dtype=np.int64) * 65521
    assert len(np.unique(d.mix32(x))) == len(x)


def test_sigmoid_lut_matches_the_sigmoid_at_bin_centres():
    lut, shift, offset = d.sigmoid_lut(state_scale=4096)
    assert shift == 7 and offset == 256 and len(lut) == 512
    assert all(a <= b for a, b in zip(lut[:-1], lut[1:], strict=True))
    for i in (0, 100, 256, 400, 511):
        x = (i - offset + 0.5) / 32
        assert abs(lut[i] / d.PROB_ONE - 1 / (1 + math.exp(-x))) < 1e-4


@pytest.mark.parametrize("kwargs", [{"state_scale": 3000}, {"state_scale": 16, "bins_per_unit": 32},
                                    {"state_scale": 4096, "value_range": 0.0}])
def test_sigmoid_lut_rejects_bad_arguments(kwargs):
    with pytest.raises(ConfigError):
        d.sigmoid_lut(**kwargs)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "3", True])
def test_seeds_must_be_32_bit_integers(seed):
    with pytest.raises(ConfigError, match="seed"):
        d.check_seed(seed)


def _params(xp, n=4, w_fb=0, bias=0, seed=1):
    lut, shift, offset = d.sigmoid_lut(state_scale=4096)
    arr = np.asarray if xp is np else (lambda a: torch.as_tensor(np.asarray(a)))
    return d.ReadoutParams(du=(2048, 4096), dv=(1024, 512), dg=2048,
                           w_fb=arr(np.full(n, w_fb, dtype=np.int64)),
                           bias=arr(np.full(n, bias, dtype=np.int64)),
                           lut=arr(np.array(lut, dtype=np.int64)), lut_shift=shift,
                           lut_offset=offset, seed=seed)


def _run(xp, a, params, samples):
    """Loop the step over ``a (T, B, K*N)`` as an engine would."""
    n = a.shape[2] // params.num_basis
    zeros = np.zeros((a.shape[1], n), np.int64) if xp is np else torch.zeros(a.shape[1], n,
                                                                            dtype=torch.int64)
    state = d.zero_state(zeros, params.num_basis)
    ids = np.arange(n) if xp is np else torch.arange(n)
    key = d.sample_key(params.seed, samples)
    out, ms = [], []
    for t in range(a.shape[0]):
        state, m, s = d.readout_step(state, a[t], params, keys=(key, d.neuron_step_key(ids, t)))
        out.append(s)
        ms.append(m)
    return out, ms


def test_step_is_identical_on_numpy_and_torch():
    rng = np.random.default_rng(0)
    a = rng.integers(-3000, 3000, (12, 5, 8)).astype(np.int64) << 6
    s_np, m_np = _run(np, a, _params(np, w_fb=-64 * 40, bias=64 * 10), np.arange(5)[:, None])
    s_t, m_t = _run(torch, torch.from_numpy(a), _params(torch, w_fb=-64 * 40, bias=64 * 10),
                    torch.arange(5)[:, None])
    assert all(np.array_equal(x, y.numpy()) for x, y in zip(s_np, s_t, strict=True))
    assert all(np.array_equal(x, y.numpy()) for x, y in zip(m_np, m_t, strict=True))


def test_spike_rate_follows_the_bias_and_feedback_lowers_it():
    steps, batch = 200, 64
    a = np.zeros((steps, batch, 8), np.int64)
    bias = 4096 * 1  # m = 1.0 real unit: P = sigmoid(1) = 0.731 (bin centre 1.0156)
    s, m = _run(np, a, _params(np, bias=bias), np.arange(batch)[:, None])
    rate = np.mean(s)
    assert m[0][0, 0] == bias
    expected = 1 / (1 + math.exp(-(32 + 0.5) / 32))
    se = math.sqrt(expected * (1 - expected) / np.size(s))
    assert abs(rate - expected) < 5 * se
    s_fb, _ = _run(np, a, _params(np, bias=bias, w_fb=-4096 * 2), np.arange(batch)[:, None])
    assert np.mean(s_fb) < rate - 0.1


def test_readout_params_validate_decays():
    with pytest.raises(ConfigError, match="one decay per basis"):
        d.ReadoutParams(du=(1,), dv=(1, 2), dg=0, w_fb=0, bias=0, lut=None, lut_shift=0,
                        lut_offset=0, seed=0)
    with pytest.raises(ConfigError, match=r"\[0, 4096\]"):
        d.ReadoutParams(du=(5000,), dv=(1,), dg=0, w_fb=0, bias=0, lut=None, lut_shift=0,
                        lut_offset=0, seed=0)


@pytest.mark.parametrize("xp", ["numpy", "torch"])
def test_tap_sum_drops_the_previous_sample_and_adds_the_taps(xp):
    """Two taps of a 3-row readout: rows whose delay exceeds the step are the previous sample's
    spikes still in flight (zeroed); the taps of a basis row add up."""
    a = np.array([[1, 2, 3, 10, 20, 30]], dtype=np.int64)
    delay = np.array([0, 0, 0, 2, 2, 1], dtype=np.int64)
    if xp == "torch":
        a, delay = torch.as_tensor(a), torch.as_tensor(delay)
    expected = {0: [1, 2, 3], 1: [1, 2, 33], 2: [11, 22, 33], 9: [11, 22, 33]}
    for step, want in expected.items():
        got = d.tap_sum(a, delay, step, 2)
        assert np.array_equal(np.asarray(got), [want]), (step, got)
    # one tap, all delays 0: the input itself
    zeros = delay[:3] * 0
    assert np.array_equal(np.asarray(d.tap_sum(a[:, :3], zeros, 0, 1)), [[1, 2, 3]])

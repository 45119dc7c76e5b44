"""spike_times: forward against a brute-force simulation and the per-sample C++-style reference,
exact gradients against finite differences, clip, penalty, overflow, typed errors, CUDA == CPU.

Tolerances: grid simulation step h = 1e-4, the grid's first crossing must lie in [t, t + h];
vectorised vs reference (float64): the same spike/no-spike decisions and |dt| <= 1e-9 (1 + |t|);
gradients vs central differences (eps 1e-6, float64): 1e-6 relative + 1e-8 absolute; float32 with
K t up to 100 vs the float64 reference: |dt| <= 2e-4 (1 + |t|) (measured: 3e-6); CUDA vs CPU:
1e-10 (float64), 1e-4 (float32).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikecodec.errors import ConfigError, InputError, InputTypeError
from spikecodec.train.families.comsa.spiketime import spike_times, spike_times_reference


def _case(seed, batch, n_in, n_out, *, silent=0.2, ties=False, dtype=torch.float64, span=3.0):
    """Random times (some silent, optional ties), mixed-sign weights, K and theta."""
    g = torch.Generator().manual_seed(seed)
    t_in = torch.rand(batch, n_in, generator=g, dtype=torch.float64) * span
    if ties:
        t_in = (t_in * 4).round() / 4
    t_in[torch.rand(batch, n_in, generator=g) < silent] = math.inf
    weight = torch.randn(n_out, n_in, generator=g, dtype=torch.float64) * 1.5 + 0.4
    decay = 0.3 + 1.7 * float(torch.rand(1, generator=g))
    threshold = 0.2 + 1.2 * float(torch.rand(1, generator=g))
    return t_in.to(dtype), weight.to(dtype), decay, threshold


def _potential(t_in, weight, decay, grid):
    """V on a time grid, (B, n_out, G), float64 numpy."""
    t_in, weight = t_in.double().numpy(), weight.double().numpy()
    v = np.zeros((t_in.shape[0], weight.shape[0], len(grid)))
    for i in range(t_in.shape[1]):
        lag = grid[None, :] - t_in[:, i:i + 1]  # (B, G); -inf for silent inputs
        kernel = np.where(lag >= 0, np.maximum(lag, 0) * np.exp(-decay * np.maximum(lag, 0)), 0.0)
        v += weight[None, :, i:i + 1] * kernel[:, None, :]
    return v


# --------------------------------------------------------------------------- forward


def test_forward_matches_a_fine_grid_simulation():
    h = 1e-4
    t_in, weight, decay, threshold = _case(3, 6, 12, 10)
    t_out = spike_times(t_in, weight, decay=decay, threshold=threshold).numpy()
    horizon = 3.0 + 25 / decay
    grid = np.arange(0.0, horizon, h)
    v = _potential(t_in, weight, decay, grid)
    crossed = v >= threshold
    t_grid = np.where(crossed.any(2), grid[crossed.argmax(2)], np.inf)
    grazing = np.abs(v.max(2) - threshold) < 1e-3 * threshold  # touches theta: excluded
    keep = ~grazing & ~(np.isfinite(t_out) & (t_out > horizon - 1))
    assert keep.mean() > 0.9
    assert 0.2 < np.isfinite(t_out[keep]).mean() < 0.9  # many spiking, some silent neurons
    np.testing.assert_array_equal(np.isfinite(t_out[keep]), np.isfinite(t_grid[keep]))
    spiking = keep & np.isfinite(t_out)
    lag = t_grid[spiking] - t_out[spiking]  # the grid's first point at or after the crossing
    assert lag.min() >= -1e-12 and lag.max() <= h + 1e-12


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("silent", [0.0, 0.3, 0.8])
def test_vectorised_equals_reference(silent, ties):
    spikes = later = 0
    for seed in range(40):
        t_in, weight, decay, threshold = _case(seed, 4, 1 + seed % 13, 7, silent=silent, ties=ties)
        fast = spike_times(t_in, weight, decay=decay, threshold=threshold)
        ref = spike_times_reference(t_in, weight, decay=decay, threshold=threshold)
        assert ref.dtype == torch.float64 and fast.shape == ref.shape == (4, 7)
        np.testing.assert_array_equal(torch.isfinite(fast), torch.isfinite(ref), f"seed {seed}")
        both = torch.isfinite(ref)
        err = (fast[both] - ref[both]).abs() / (1 + ref[both].abs())
        assert err.max().item() <= 1e-9 if both.any() else True, f"seed {seed}"
        spikes += int(both.sum())
        later += int((t_in[:, None, :] > torch.where(both, ref, -1)[:, :, None]).logical_and(
            torch.isfinite(t_in)[:, None, :]).logical_and(both[:, :, None]).sum())
    assert spikes > 100 or silent == 0.8 and spikes > 20
    assert later > 0 or silent == 0.8  # some inputs arrive after the output spike


def test_input_order_does_not_matter():
    t_in, weight, decay, threshold = _case(5, 5, 20, 6, silent=0.3)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    a = spike_times(t_in, weight, decay=decay, threshold=threshold)
    b = spike_times(t_in[:, perm], weight[:, perm], decay=decay, threshold=threshold)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_no_input_spikes_means_no_output_spikes():
    weight = torch.randn(3, 4, dtype=torch.float64)
    silent = torch.full((2, 4), math.inf, dtype=torch.float64)
    assert torch.isinf(spike_times(silent, weight, decay=1.0, threshold=1.0)).all()
    assert spike_times(silent[:0], weight, decay=1.0, threshold=1.0).shape == (0, 3)
    empty = spike_times(torch.empty(2, 0), torch.empty(3, 0), decay=1.0, threshold=1.0)
    assert empty.shape == (2, 3) and torch.isinf(empty).all()


@pytest.mark.parametrize("decay", [1.0, 2.5])
def test_float32_late_times_do_not_overflow(decay):
    # K t up to 100: e^{K t} alone would overflow float32 (max ~ e^88.7)
    t_in, weight, _, threshold = _case(11, 8, 30, 12, silent=0.2, span=100.0 / decay)
    t32 = spike_times(t_in.float(), weight.float(), decay=decay, threshold=threshold)
    ref = spike_times_reference(t_in, weight, decay=decay, threshold=threshold)
    assert not torch.isnan(t32).any()
    np.testing.assert_array_equal(torch.isfinite(t32), torch.isfinite(ref))
    both = torch.isfinite(ref)
    assert ref[both].max() * decay > 60  # late spikes were tested
    err = (t32.double()[both] - ref[both]).abs() / (1 + ref[both].abs())
    assert err.max() <= 2e-4


# --------------------------------------------------------------------------- gradients


def _loss_and_grads(t_in, weight, decay, threshold, coef, **kw):
    t_in = t_in.clone().requires_grad_()
    weight = weight.clone().requires_grad_()
    t_out = spike_times(t_in, weight, decay=decay, threshold=threshold, **kw)
    loss = torch.where(torch.isfinite(t_out), t_out * coef, 0.0).sum()
    loss.backward()
    return t_out.detach(), t_in.grad, weight.grad


def _causal_counts(t_in, t_out):
    return (t_in[:, None, :] <= t_out[:, :, None]).sum(2)


def _finite_difference(f, x, t_in_of, eps=1e-6):
    """Central differences of f at x, and where the causal set is stable under +-eps."""
    grads, stable = torch.zeros_like(x), torch.zeros_like(x, dtype=torch.bool)
    t0 = f(x)[1]
    for j in range(x.numel()):
        step = torch.zeros_like(x).view(-1)
        step[j] = eps
        step = step.view_as(x)
        (lp, tp), (lm, tm) = f(x + step), f(x - step)
        same = [torch.equal(torch.isfinite(t), torch.isfinite(t0)) and torch.equal(
            _causal_counts(t_in_of(x + s), t), _causal_counts(t_in_of(x), t0))
            for t, s in ((tp, step), (tm, -step))]
        stable.view(-1)[j] = all(same) and math.isfinite(lp) and math.isfinite(lm)
        grads.view(-1)[j] = (lp - lm) / (2 * eps)
    return grads, stable


def test_gradients_match_finite_differences_including_pulses():
    t_in, weight, decay, threshold = _case(7, 3, 8, 5, silent=0.25)
    pulses = torch.tensor([0.5, 1.5], dtype=torch.float64)
    weight = torch.cat([weight, torch.full((5, 2), 1.0, dtype=torch.float64)], 1)
    coef = torch.randn(3, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def layer(times, pulse_times, w):
        full = torch.cat([times, pulse_times.expand(len(times), -1)], 1)
        t_out = spike_times(full, w, decay=decay, threshold=threshold)
        return float(torch.where(torch.isfinite(t_out), t_out * coef, 0.0).sum()), t_out

    full_in = lambda p: torch.cat([t_in, p.expand(3, -1)], 1)  # noqa: E731
    p = pulses.clone().requires_grad_()
    x = t_in.clone().requires_grad_()
    w = weight.clone().requires_grad_()
    t_out = spike_times(torch.cat([x, p.expand(3, -1)], 1), w, decay=decay, threshold=threshold)
    assert 0.3 < torch.isfinite(t_out).float().mean() < 1.0
    torch.where(torch.isfinite(t_out), t_out * coef, 0.0).sum().backward()

    checks = [
        (w.grad, *_finite_difference(lambda v: layer(t_in, pulses, v), weight,
                                     lambda v: full_in(pulses))),
        (p.grad, *_finite_difference(lambda v: layer(t_in, v, weight), pulses, full_in)),
    ]
    finite = torch.isfinite(t_in)
    restore = lambda v: torch.where(finite, v, math.inf)  # noqa: E731
    fd_t, stable_t = _finite_difference(lambda v: layer(restore(v), pulses, weight),
                                        torch.where(finite, t_in, 0.0),
                                        lambda v: torch.cat([restore(v), pulses.expand(3, -1)], 1))
    checks.append((x.grad[finite], fd_t[finite], stable_t[finite]))
    for auto, fd, stable in checks:
        assert stable.float().mean() > 0.8
        torch.testing.assert_close(auto[stable], fd[stable], rtol=1e-6, atol=1e-8)
    assert torch.count_nonzero(w.grad) > 10 and torch.count_nonzero(p.grad) == 2
    assert (x.grad[~finite] == 0).all()


def test_inputs_after_the_spike_and_silent_inputs_get_exactly_zero():
    later = 0
    for seed in range(30):
        t_in, weight, decay, threshold = _case(seed, 1, 15, 1, silent=0.3)
        t_out, g_t, g_w = _loss_and_grads(t_in, weight, decay, threshold, 1.0)
        after = (t_in > t_out) | torch.isinf(t_in)  # t_out = inf: every input counts as after
        assert (g_t[after] == 0).all() and (g_w[after] == 0).all()
        assert torch.isfinite(g_t).all() and torch.isfinite(g_w).all()
        if torch.isfinite(t_out).all():
            later += int((torch.isfinite(t_in) & (t_in > t_out)).sum())
            assert (g_w[~after] != 0).any()
    assert later > 10


def test_silent_outputs_give_zero_gradient_and_no_nan():
    t_in, weight, decay, threshold = _case(2, 6, 10, 8, silent=0.5)
    weight[:4] = -weight[:4].abs()  # these never fire
    t_in[0] = math.inf  # a sample without input
    t_out, g_t, g_w = _loss_and_grads(t_in, weight, decay, threshold, 1.0)
    assert torch.isinf(t_out[:, :4]).all() and torch.isinf(t_out[0]).all()
    assert torch.isfinite(t_out).any()
    assert (g_w[:4] == 0).all() and (g_t[0] == 0).all()
    assert torch.isfinite(g_t).all() and torch.isfinite(g_w).all()


@pytest.mark.parametrize("clip", [0.05, 0.3, 1.0])
def test_clip_bounds_each_derivative_before_the_incoming_gradient(clip):
    clipped = 0
    for seed in range(20):
        t_in, weight, decay, threshold = _case(seed, 1, 10, 1, silent=0.2)
        _, free_t, free_w = _loss_and_grads(t_in, weight, decay, threshold, 1.0)
        _, g_t, g_w = _loss_and_grads(t_in, weight, decay, threshold, 3.0, clip=clip)
        torch.testing.assert_close(g_w, 3.0 * free_w.clamp(-clip, clip), rtol=1e-14, atol=0)
        torch.testing.assert_close(g_t, 3.0 * free_t.clamp(-clip, clip), rtol=1e-14, atol=0)
        assert g_w.abs().max() <= 3.0 * clip and g_t.abs().max() <= 3.0 * clip
        clipped += int((free_w.abs() > clip).sum() + (free_t.abs() > clip).sum())
    assert clipped > 0


def test_penalty_adds_minus_penalty_times_fraction_silent_to_whole_rows():
    t_in, weight, decay, threshold = _case(2, 10, 12, 6, silent=0.3)
    weight = weight.abs()
    weight[:3] *= 0.15  # weak neurons: silent in some samples only
    t_out, _, base = _loss_and_grads(t_in, weight, decay, threshold, 1.0)
    _, _, with_penalty = _loss_and_grads(t_in, weight, decay, threshold, 1.0, penalty=2.5)
    fraction = torch.isinf(t_out).double().mean(0)
    assert ((fraction > 0) & (fraction < 1)).any() and (fraction == 0).any()
    expected = base - 2.5 * fraction[:, None]
    torch.testing.assert_close(with_penalty, expected, rtol=0, atol=1e-12)
    # independent of the incoming gradient and of the batch size
    _, _, zero_grad = _loss_and_grads(t_in, weight, decay, threshold, 0.0, penalty=2.5)
    torch.testing.assert_close(zero_grad, -2.5 * fraction[:, None].expand_as(weight))
    _, _, doubled = _loss_and_grads(torch.cat([t_in, t_in]), weight, decay, threshold, 0.0,
                                    penalty=2.5)
    torch.testing.assert_close(doubled, zero_grad)


# --------------------------------------------------------------------------- errors, device


def test_typed_errors_name_the_field():
    t_in, weight, _, _ = _case(0, 2, 3, 4)
    ok = dict(decay=1.0, threshold=1.0)
    for field, bad in [("decay", 0.0), ("decay", -1.0), ("decay", math.nan), ("decay", math.inf),
                       ("threshold", 0.0), ("threshold", -2.0), ("clip", 0.0), ("clip", -1.0),
                       ("clip", math.inf), ("penalty", -0.1), ("penalty", math.nan)]:
        with pytest.raises(ConfigError, match=field):
            spike_times(t_in, weight, **{**ok, field: bad})
    with pytest.raises(InputTypeError, match="decay"):
        spike_times(t_in, weight, decay="1", threshold=1.0)
    with pytest.raises(InputTypeError, match="t_in"):
        spike_times(t_in.tolist(), weight, **ok)
    with pytest.raises(InputTypeError, match="weight"):
        spike_times(t_in, weight.numpy(), **ok)
    with pytest.raises(InputError, match="t_in"):
        spike_times(t_in[0], weight, **ok)
    with pytest.raises(InputError, match="float32 or float64"):
        spike_times(t_in.long(), weight, **ok)
    with pytest.raises(InputError, match="weight"):
        spike_times(t_in, weight[:, :2], **ok)
    with pytest.raises(InputError, match="weight"):
        spike_times(t_in, weight.float(), **ok)
    for bad in (math.nan, -math.inf):
        broken = t_in.clone()
        broken[1, 1] = bad
        with pytest.raises(InputError, match="t_in"):
            spike_times(broken, weight, **ok)
        with pytest.raises(InputError, match="t_in"):
            spike_times_reference(broken, weight, **ok)
    with pytest.raises(ConfigError, match="threshold"):
        spike_times_reference(t_in, weight, decay=1.0, threshold=0.0)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cuda_equals_cpu(dtype):
    t_in, weight, decay, threshold = _case(9, 32, 60, 40, silent=0.4, dtype=dtype)
    coef = torch.randn(32, 40, dtype=dtype)
    results = []
    for device in ("cpu", "cuda"):
        x = t_in.to(device).requires_grad_()
        w = weight.to(device).requires_grad_()
        t_out = spike_times(x, w, decay=decay, threshold=threshold, clip=50.0, penalty=0.5)
        torch.where(torch.isfinite(t_out), t_out * coef.to(device), 0.0).sum().backward()
        results.append([v.detach().cpu() for v in (t_out, x.grad, w.grad)])
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    for cpu, cuda in zip(*results, strict=True):
        torch.testing.assert_close(cuda, cpu, rtol=tol, atol=tol)

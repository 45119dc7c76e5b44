"""Spike times of a layer of alpha neurons that fire once (Comsa et al. 2021), with exact gradients.

Neuron ``j`` receives input spikes at times ``t_i`` (``+inf``: silent) through weights ``w_i``; its
potential, until it fires, is

    V(t) = sum_{i: t_i <= t} w_i (t - t_i) exp(-K (t - t_i))                      (decay K > 0)

and it fires once, at the first t with V(t) = theta > 0. Sort the inputs by time, t_(1) <= t_(2)
<= ..., and let prefix k hold the first k of them. On [t_(k), t_(k+1)] the potential is

    V_k(t) = exp(-K t) (A_k t - B_k),
    A_k = sum_{i<=k} w_i e^{K t_i},  B_k = sum_{i<=k} w_i e^{K t_i} t_i,

which, for A_k > 0, rises until its peak at t_m = u + 1/K (u = B_k / A_k) and falls after it.
Its rising root of V_k = theta is the paper's eq. 1,

    t* = u - W0(z) / K,   z = -K theta / A_k * exp(K u)   (a root exists iff -1/e <= z < 0).

The reference C++ code walks the prefixes in order and returns the first t* with
t_(k) <= t* <= t_(k+1) (no upper bound for the last finite input); it skips A_k <= 0.

**Vectorised search (exact).** All prefixes at once: sort + cumsum, then a test per prefix that
needs no Lambert W, and W0 once per (sample, neuron), at the winning prefix. The first prefix
the C++ accepts is the first k with A_k > 0 whose interval holds a crossing, i.e. with

    V_k(t_(k+1)) >= theta   or   (t_(k) <= t_m <= t_(k+1)  and  V_k(t_m) >= theta).

Proof: V < theta on every earlier interval (else an earlier prefix holds a crossing), so by
continuity V_k(t_(k)) <= theta. V_k is unimodal, so its maximum on the interval is at an end or at
t_m; it reaches theta there iff the test holds, and then the first crossing is the rising root t*,
with t_(k) <= t* (V_k is rising up to t*, and V_k(t_(k)) <= theta) and t* <= t_(k+1) -- exactly
the C++ acceptance. An interval without a crossing has no root in it, so the C++ rejects it too.
With A_k <= 0, V_k falls and then stays below 0, so such an interval holds no first crossing.
In code: ``V_k(s) >= theta  <=>  A_k s - B_k >= theta e^{K s}`` and ``V_k(t_m) >= theta  <=>
A_k >= K theta e^{1 + K u}``. The returned time is clamped to [t_(k), t_(k+1)], which only moves
it by rounding.

**Re-centring.** Every exponential is taken relative to a reference time r per sample,
e^{K (t_i - r)}, so A_k, B_k become A_k e^{-K r}, B_k e^{-K r}; u, t* and the derivatives are
unchanged (z = -K theta / A'_k * exp(K (u - r))). With t_lo, t_hi a sample's first and last
finite input, r = max((t_lo + t_hi) / 2, t_hi - c / K), c = 40 (float32) or 300 (float64): no
exponent exceeds c, so nothing overflows; float32 loses early inputs to underflow only beyond
K (t_hi - t_lo) ~ 125 (float64: ~1000).

**Exact derivatives** (eqs. 4-5, from t* = u - W/K with dW/dz = W / (z (1 + W))): for inputs i of
the winning prefix (the causal set, t_i <= t_out), with D = A_k (1 + W),

    d t_out / d w_i = e^{K t_i} (t_i - u + W/K) / D          (eq. 5)
                    = e^{K t_i} (t_i - t_out) / D
    d t_out / d t_i = w_i e^{K t_i} (K (t_i - u) + W + 1) / D  (eq. 4)
                    = w_i e^{K t_i} (1 + K (t_i - t_out)) / D

(equivalently -dV/dw_i / V'(t_out) and -dV/dt_i / V'(t_out), as V'(t_out) = e^{-K t_out} D). Later
inputs and silent neurons get 0. ``clip`` bounds each of these to [-clip, clip] before it is
multiplied by the incoming gradient; ``penalty`` adds -penalty / batch to every incoming weight of
a neuron for every sample in which it is silent (the C++ adds -penalty_no_spike per example and
averages over the batch), whatever the incoming gradient.
"""
from __future__ import annotations

import math

import torch

from spikecodec.errors import ConfigError, InputError, InputTypeError
from spikecodec.train.families.comsa.lambertw import _lambertw0_nonpositive

_RECENTRE_CAP = {torch.float32: 40.0, torch.float64: 300.0}  # largest exponent K (t - r) used


def _positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as a float, finite and > 0 (>= 0 with ``allow_zero``), else a typed error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputTypeError(f"{name} must be a real number; got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be finite and {bound}; got {value}")
    return value


def _check(t_in: object, weight: object) -> None:
    """Types, shapes and dtypes of ``t_in (B, n_in)`` and ``weight (n_out, n_in)``."""
    for name, x in (("t_in", t_in), ("weight", weight)):
        if not isinstance(x, torch.Tensor):
            raise InputTypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
        if x.dim() != 2:
            raise InputError(f"{name} must be 2-D; got shape {tuple(x.shape)}")
        if x.dtype not in (torch.float32, torch.float64):
            raise InputError(f"{name} must be float32 or float64; got {x.dtype}")
    if weight.shape[1] != t_in.shape[1] or weight.dtype != t_in.dtype:
        raise InputError(f"weight {tuple(weight.shape)} {weight.dtype} does not match t_in "
                         f"{tuple(t_in.shape)} {t_in.dtype}: need (n_out, n_in), same dtype")
    if weight.device != t_in.device:
        raise InputError(f"weight is on {weight.device} but t_in on {t_in.device}")


def _prefix_search(t_in: torch.Tensor, weight: torch.Tensor, k: float, theta: float):
    """Forward: the spike times ``(B, n_out)`` and what the backward needs (see module doc).

    Prefix tensors are ``(B, P, n_out)``, P = the batch's largest count of finite inputs. The
    interval test runs on float margins (>= 0 means true; AND = min, OR = max), several times
    faster on CPU than boolean masks. Past the margin ``A' - tiny`` (A' > 0 is required), A' is
    replaced by |A'| clamped to >= tiny, so it never divides by 0 or makes 0 * inf, nor (unlike
    clamping negatives to tiny) subnormal products, which are slow on x86. Silent slots carry
    t = +inf, so their margins are -inf (or NaN from inf - inf, which counts as false too).
    """
    dtype, device = t_in.dtype, t_in.device
    tiny = torch.finfo(dtype).tiny
    finite = torch.isfinite(t_in)
    count = finite.sum(1)  # (B,) finite inputs per sample
    bad_t, bad_w, longest = torch.stack([  # one device sync for the checks and P
        (torch.isnan(t_in) | (t_in == -math.inf)).any().long(),
        (~torch.isfinite(weight)).any().long(),
        count.max() if count.numel() else count.new_zeros(())]).tolist()
    if bad_t:
        raise InputError("t_in holds NaN or -inf; a silent input is +inf")
    if bad_w:
        raise InputError("weight holds NaN or inf")
    n_batch, n_out = len(t_in), weight.shape[0]
    if longest == 0:  # no input spike at all: nobody fires
        return torch.full((n_batch, n_out), math.inf, dtype=dtype, device=device), None
    ts, idx = torch.sort(t_in, dim=1)  # silent (+inf) last
    ts, idx = ts[:, :longest], idx[:, :longest].contiguous()  # (B, P)
    fin = torch.isfinite(ts)
    # reference time r per sample (module doc, re-centring)
    lo, hi = ts[:, :1], ts.gather(1, (count - 1).clamp(min=0)[:, None])
    r = torch.maximum((lo + hi) / 2, hi - _RECENTRE_CAP[dtype] / k)
    r = torch.where(count[:, None] > 0, r, 0.0)  # (B, 1)
    ts_f = torch.where(fin, ts, r)  # finite placeholder in silent slots
    e = torch.where(fin, torch.exp(k * (ts_f - r)), 0.0)  # e^{K (t - r)}, 0 when silent
    # next input: time (+inf: none) and -theta e^{K (t - r)} (-inf: none)
    t_next = torch.cat([ts[:, 1:], ts[:, :1].new_full((n_batch, 1), math.inf)], 1)
    t_next_f = torch.cat([ts_f[:, 1:], r], 1)
    neg_thr = torch.where(torch.isfinite(t_next), -theta * torch.cat([e[:, 1:], r], 1), -math.inf)
    # prefix sums A', B' (B, P, n_out); b becomes u = B'/A' in place
    ws = weight.t().contiguous().index_select(0, idx.view(-1)).view(n_batch, longest, n_out)
    a = torch.mul(ws, e[:, :, None]).cumsum_(1)
    u = torch.mul(ws, (e * ts_f)[:, :, None]).cumsum_(1)
    a_ok = a - tiny  # margin: A' > 0 (A' >= tiny)
    a.abs_().clamp_(min=tiny)  # |A'|, never 0: no NaN below, and no subnormal products
    u.div_(a)
    # hit: A'(t_next - u) - theta e_next >= 0, i.e. V_k(t_next) >= theta
    hit = torch.addcmul(neg_thr[:, :, None], torch.sub(t_next_f[:, :, None], u), a)
    # peak inside the interval: u - (t_k - 1/K) >= 0 and (t_next - 1/K) - u >= 0 ...
    peak = torch.sub(u, (ts - 1 / k)[:, :, None])
    peak = torch.minimum(peak, torch.sub((t_next - 1 / k)[:, :, None], u), out=peak)
    # ... and reaching theta: A' - K theta e^{1 + K (u - r)} >= 0
    top = torch.add((1 + math.log(k * theta) - k * r)[:, :, None], u, alpha=k).exp_()
    peak = torch.minimum(peak, torch.sub(a, top, out=top), out=peak)
    score = torch.minimum(torch.maximum(hit, peak, out=hit), a_ok, out=hit)
    rank = torch.arange(longest, 0, -1, dtype=dtype, device=device)[None, :, None]
    best = score.ge_(0).mul_(rank).amax(1)  # (B, n_out): P - first valid prefix, 0 if none
    spiked = best > 0
    win = (longest - best.long()).clamp_(max=longest - 1)  # winning prefix (any, if silent)
    # W0 once per (sample, neuron), at the winning prefix
    a_w = a.gather(1, win[:, None, :])[:, 0]
    u_w = u.gather(1, win[:, None, :])[:, 0]
    log_mz = math.log(k * theta) - torch.log(a_w) + k * (u_w - r)  # ln(-z), <= -1 to rounding
    w0 = _lambertw0_nonpositive(-torch.exp(torch.clamp(log_mz, max=-1.0)))
    t_out = torch.minimum(torch.maximum(u_w - w0 / k, ts_f.gather(1, win)), t_next.gather(1, win))
    t_out = torch.where(spiked, t_out, math.inf)
    denom = torch.clamp(a_w * (1 + w0), min=tiny)  # D = A'(1 + W) > 0
    last = torch.where(spiked, win, -1).to(dtype)  # causal slots: p <= last
    return t_out, (ts_f, e, idx, ws, last, denom)


class _SpikeTimes(torch.autograd.Function):
    """Forward by :func:`_prefix_search`, backward by eqs. 4-5 (module docstring)."""

    @staticmethod
    def forward(ctx, t_in, weight, k, theta, clip, penalty):
        t_out, saved = _prefix_search(t_in, weight, k, theta)
        ctx.empty = saved is None
        ctx.save_for_backward(t_out, *(() if saved is None else saved))
        ctx.k, ctx.clip, ctx.penalty, ctx.n_in = k, clip, penalty, t_in.shape[1]
        return t_out

    @staticmethod
    def backward(ctx, grad):
        t_out, *saved = ctx.saved_tensors
        n_batch, n_out = t_out.shape
        dtype, device = t_out.dtype, t_out.device
        need_t, need_w = ctx.needs_input_grad[:2]
        grad_t = torch.zeros(n_batch, ctx.n_in, dtype=dtype, device=device) if need_t else None
        grad_w = torch.zeros(ctx.n_in, n_out, dtype=dtype, device=device) if need_w else None
        if not ctx.empty and (need_t or need_w):
            ts, e, idx, ws, last, denom = saved
            spiked = last >= 0
            bound = torch.finfo(dtype).max if ctx.clip is None else ctx.clip
            pos = torch.arange(ts.shape[1], dtype=dtype, device=device)[None, :, None]
            # e^{K t_i} / D on causal slots (p <= last), exactly 0 elsewhere
            base = (last[:, None, :] + 1 - pos).clamp_(0.0, 1.0).mul_(e[:, :, None])
            base = base.div_(denom[:, None, :])
            g = torch.where(spiked, grad, 0.0)[:, None, :]
            dw = torch.sub(ts[:, :, None], torch.where(spiked, t_out, 0.0)[:, None, :]).mul_(base)
            if need_t:  # w e^{K t_i} (1 + K (t_i - t_out)) / D
                dt = base.add_(dw, alpha=ctx.k).mul_(ws).clamp_(-bound, bound).mul_(g)
                grad_t.scatter_(1, idx, dt.sum(2))
            if need_w:  # e^{K t_i} (t_i - t_out) / D
                dw = dw.clamp_(-bound, bound).mul_(g)
                grad_w.index_add_(0, idx.view(-1), dw.view(-1, n_out))
        if need_w:
            grad_w = grad_w.t()
            if ctx.penalty:
                silent = torch.isinf(t_out).sum(0).to(dtype) * (ctx.penalty / max(n_batch, 1))
                grad_w = grad_w - silent[:, None]
        return grad_t, grad_w, None, None, None, None


def spike_times(t_in: torch.Tensor, weight: torch.Tensor, *, decay: float, threshold: float,
                clip: float | None = None, penalty: float = 0.0) -> torch.Tensor:
    """Spike time of each neuron of a layer: ``t_out (B, n_out)``, ``+inf`` for no spike.

    ``t_in (B, n_in)``: input spike times (float32/float64, ``+inf`` silent, any order);
    ``weight (n_out, n_in)``: same dtype and device; ``decay`` K and ``threshold`` theta: > 0.
    Differentiable w.r.t. ``t_in`` and ``weight`` by the exact eqs. 4-5, with ``clip`` (> 0 or
    None) and the no-spike ``penalty`` (>= 0) of the module docstring. Pulses: concatenate their
    times as extra ``t_in`` columns (expanded over the batch) and their weights as extra columns.
    """
    _check(t_in, weight)
    k = _positive("decay", decay)
    theta = _positive("threshold", threshold)
    clip = None if clip is None else _positive("clip", clip)
    penalty = _positive("penalty", penalty, allow_zero=True)
    return _SpikeTimes.apply(t_in, weight, k, theta, clip, penalty)


def _lambertw0_scalar(x: float) -> float:
    """W0(x) for one float x >= -1/e: branch series or Halley's iteration to convergence."""
    p2 = 2.0 * (math.e * x + 1.0)
    if p2 < 1e-6:
        p = math.sqrt(max(p2, 0.0))
        return -1.0 + p - p * p / 3.0 + 11.0 / 72.0 * p ** 3 - 43.0 / 540.0 * p ** 4
    if x < -0.25:
        p = math.sqrt(p2)
        w = -1.0 + p - p * p / 3.0 + 11.0 / 72.0 * p ** 3
    else:
        w = math.log1p(x) if x < math.e else math.log(x) - math.log(math.log(x))
    for _ in range(100):
        ew = math.exp(w)
        f = w * ew - x
        step = f / (ew * (w + 1) - (w + 2) * f / (2 * w + 2))
        w -= step
        if abs(step) <= 1e-15 * (1 + abs(w)):
            break
    return w


def spike_times_reference(t_in: torch.Tensor, weight: torch.Tensor, *, decay: float,
                          threshold: float) -> torch.Tensor:
    """The C++ event loop, per sample and neuron in Python float64: ``t_out (B, n_out)``.

    The test oracle: no re-centring (fine for K t below ~700) and a scalar Lambert W.
    """
    _check(t_in, weight)
    k = _positive("decay", decay)
    theta = _positive("threshold", threshold)
    if bool(torch.isnan(t_in).any() | (t_in == -math.inf).any()):
        raise InputError("t_in holds NaN or -inf; a silent input is +inf")
    times, weights = t_in.double().tolist(), weight.double().tolist()
    out = []
    for row in times:
        order = sorted((t, i) for i, t in enumerate(row) if t != math.inf)
        out.append([_neuron_reference(order, w_row, k, theta) for w_row in weights])
    return torch.tensor(out, dtype=torch.float64).reshape(len(times), len(weights))


def _neuron_reference(order: list, w_row: list, k: float, theta: float) -> float:
    """One neuron: walk the sorted ``(time, index)`` inputs; the first standing candidate."""
    a = b = 0.0
    for j, (t_i, i) in enumerate(order):
        a += w_row[i] * math.exp(k * t_i)
        b += w_row[i] * math.exp(k * t_i) * t_i
        if a <= 0:
            continue
        try:
            z = -k * theta / a * math.exp(k * b / a)
        except OverflowError:
            continue
        if not z >= -1.0 / math.e:
            continue
        t = b / a - _lambertw0_scalar(z) / k
        t_next = order[j + 1][0] if j + 1 < len(order) else math.inf
        if t_i <= t <= t_next:
            return t
    return math.inf

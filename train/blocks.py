"""SLAYER-compatible CUBA dense block: exact Loihi fixed-point forward, BPTT backward.

The forward pass runs the integer neuron of :mod:`spikecodec.lava_procs.cuba` (the single source
of truth for the dynamics) on int64 tensors, so a trained block *is* the deployed block. It equals
``lava.lib.dl.slayer.block.cuba.Dense(..., delay_shift=False)`` spike for spike on the same
parameters (tests/train/test_blocks.py checks it), but it

* computes every time step's synaptic input with one exact int8 GEMM ``(T*batch, in) @ (in,
  out)`` of spikes and halved weight mantissas instead of a float 3-D convolution,
* runs the neuron loop once, in integers (in C where a compiler is at hand,
  :mod:`spikecodec.train.native_lif`),
* back-propagates through time with a hand-written loop instead of autograd over T small ops,
  with the gradient GEMMs in bfloat16 where the CPU has native bf16 (``bf16_grads``),
* avoids torch's bool tensors in its hot paths (on this CPU a comparison into bool, ``~``,
  ``masked_fill_`` or ``where`` costs several float passes).

Measured side by side (benchmarks/roy_training_speed.py, 784-196-784, batch 100, T=15, 1 torch
thread, on the 2-core machine at load 7-10): 3.5-3.7x the training throughput of two lava-dl
SLAYER blocks and 2.9-3.2x a plain PyTorch LIF loop (README, "Training throughput").

Units follow SLAYER: weights and voltages are real numbers where the threshold is ``threshold``
(1.0 by default); the hardware mantissa of a weight is ``weight * scale`` (an even integer in
[-256, 254]) and the state scale is ``scale * 64``. Weights are quantized in every forward pass
with a straight-through estimator (quantization-aware training is always on, as in SLAYER).

Backward (Roy et al. 2019, eqs. 9-17, generalised to CUBA): the spike non-linearity uses the
derivative of a sigmoid centred on the threshold, ``slope * sig(slope (v - th)) (1 - sig(.))``,
and the reset is not differentiated (``dV/dW`` is zeroed after a spike, as in the paper).

Layouts: public ``forward`` takes and returns ``(batch, neurons, time)``; models chain blocks in
time-major ``(time, batch, neurons)`` through ``forward_tm`` to avoid transposes between layers.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from spikecodec.errors import ConfigError, InputError
from spikecodec.lava_procs.cuba import DECAY_SCALE, STATE_EXP, CubaParams, CubaState, cuba_step
from spikecodec.lava_procs.spec import WEIGHT_MAX as WEIGHT_MANT_MAX
from spikecodec.lava_procs.spec import WEIGHT_MIN as WEIGHT_MANT_MIN
from spikecodec.train import native_lif


@dataclass(frozen=True)
class CubaConfig:
    """CUBA neuron of one block. Decays are fractions per time step."""

    threshold: float = 1.0  # spike when v > threshold (real units)
    current_decay: float = 1.0  # alpha_u; 1.0 = current forgets every step (Roy's LIF)
    voltage_decay: float = 0.1  # alpha_v; Roy et al.'s leak
    scale: int = 64  # weight mantissa = weight * scale; SLAYER's `scale` (power of two)
    surrogate_slope: float = 1.0  # steepness of the sigmoid surrogate (Roy: 1)
    bf16_grads: bool = True  # gradient GEMMs in bfloat16 on CPUs with native bf16 (2.5x faster)

    def __post_init__(self) -> None:
        if not (self.threshold > 0 and math.isfinite(self.threshold)):
            raise ConfigError(f"threshold must be a positive number, got {self.threshold!r}")
        for name in ("current_decay", "voltage_decay"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {value!r}")
        if self.scale < 1 or self.scale & (self.scale - 1):
            raise ConfigError(f"scale must be a power of two >= 1, got {self.scale!r}")
        if not self.surrogate_slope > 0:
            raise ConfigError(f"surrogate_slope must be > 0, got {self.surrogate_slope!r}")
        if int(self.threshold * self.scale) < 1:
            raise ConfigError(
                f"threshold * scale must be >= 1 (vThMant), got {self.threshold} * {self.scale}"
            )

    @property
    def state_scale(self) -> int:
        """Integer state units per real unit (SLAYER's ``s_scale``)."""
        return self.scale << STATE_EXP

    @property
    def v_th_mant(self) -> int:
        """Loihi vThMant (truncated, as SLAYER does)."""
        return int(self.threshold * self.scale)

    def fixed_point(self) -> CubaParams:
        """Integer parameters for :func:`spikecodec.lava_procs.cuba.cuba_step`."""
        return CubaParams(
            du=int(round(self.current_decay * DECAY_SCALE)),
            dv=int(round(self.voltage_decay * DECAY_SCALE)),
            vth=self.v_th_mant << STATE_EXP,
        )


def quantize_weight(weight: torch.Tensor, scale: int) -> torch.Tensor:
    """Round to even mantissas and clamp to 8 bits, with a straight-through gradient: the
    gradient passes unchanged where the rounded weight lies strictly inside the clamp bounds
    and is zero elsewhere (on a bound too), as autograd over ``clamp(w + (round(w / step) step
    - w).detach())`` gives it (tests/train/test_blocks.py checks both equal)."""
    return _QuantizeSTE.apply(weight, scale)


@functools.lru_cache(maxsize=None)
def _inside(lo: float, hi: float, dtype: torch.dtype) -> tuple[float, float]:
    """The representable values of ``dtype`` next to ``lo`` and ``hi`` inside ``(lo, hi)``."""
    bounds = torch.tensor([lo, hi], dtype=dtype)
    return tuple(torch.nextafter(bounds, bounds.flip(0)).tolist())


class _QuantizeSTE(torch.autograd.Function):
    """:func:`quantize_weight` as one autograd function: the same forward expression, and a
    backward of one float pass with a 0/1 "cut" map made in the forward from float passes
    (autograd's clamp backward builds bool masks and a ``where``, several times slower on this
    CPU). A weight is strictly inside ``(lo, hi)`` exactly when clamping it to the next
    representable values inside, ``[lo+, hi-]``, leaves it unchanged."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, scale: int):
        step = 2.0 / scale
        rounded = weight + (torch.round(weight / step) * step - weight)
        lo, hi = WEIGHT_MANT_MIN / scale, WEIGHT_MANT_MAX / scale
        cut = torch.clamp(rounded, *_inside(lo, hi, weight.dtype))  # 1 on or beyond a bound:
        cut.sub_(rounded).abs_().sign_()
        ctx.save_for_backward(cut)
        return rounded.clamp_(lo, hi)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (cut,) = ctx.saved_tensors
        return torch.addcmul(grad, grad, cut, value=-1), None  # grad where kept, else 0


def check_binary_spikes(x: torch.Tensor, what: str) -> None:
    """Raise ``InputError`` unless every value of ``x`` is 0 or 1 (the int8 GEMM needs it).

    Two reductions and one float pass instead of two comparisons into bool tensors (~4.5x
    faster on a training batch): the minimum and maximum put every value in ``[0, 1]`` (a NaN
    fails both), and then a float is 0 or 1 exactly when its fractional part is 0."""
    x = x.detach()
    if x.dtype == torch.bool or x.numel() == 0:
        return
    if x.is_complex():
        ok = bool(torch.eq(x, 0).logical_or_(torch.eq(x, 1)).all())
    else:
        lo, hi = torch.aminmax(x)
        ok = bool(lo >= 0) and bool(hi <= 1)
        if ok and x.is_floating_point():
            ok = bool(torch.frac(x).amax() == 0)
    if not ok:
        raise InputError(f"{what} must be binary spikes (0/1); encode images first, "
                         "e.g. with spikecodec.train.encoding.poisson_rate")


@functools.lru_cache(maxsize=None)
def _cpu_has_fast_bf16() -> bool:
    try:  # a private probe of torch's oneDNN build: treat anything unexpected as "no"
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _spike_gemm_forward(x: torch.Tensor, w: torch.Tensor, scale: int, state: torch.dtype
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x2, a)`` for binary spikes ``x (..., in)`` and quantized weights ``w (out, in)``:
    ``x2`` the spikes as int8 ``(rows, in)`` (kept for the backward), ``a`` the synaptic input
    ``(rows, out)`` as integers in state units of dtype ``state`` (the CUBA step's input).

    Exact: on the CPU an int8 GEMM of the spikes and the halved even mantissas (``[-128,
    127]``, int32 sums), ~4x faster than float32 here; the sum ``acc`` of half mantissas is
    ``z scale / 2`` in real units ``z``, so the state units ``z scale 2^6`` are ``acc << 7`` (one
    in-place pass). Elsewhere float32, exact while row sums stay below 2^24."""
    # 0/1 spikes as int8 (4x less to keep), contiguous: converted in their own memory order
    # first, then (for a permuted view such as a (batch, in, time) input seen time-major)
    # transposed as bytes, half the time of one converting and transposing pass here
    x2 = x.detach().to(torch.int8).contiguous().view(-1, x.shape[-1])
    if x.device.type == "cpu":
        half_mant = torch.round(w.detach() * (scale / 2)).to(torch.int8)
        acc = torch._int_mm(x2, half_mant.t())  # exact either way; faster unpacked
        acc = acc if state == torch.int32 else acc.to(state)
        return x2, acc.bitwise_left_shift_(STATE_EXP + 1)
    z = x2.to(w.dtype) @ w.detach().t()
    return x2, torch.mul(z, scale << STATE_EXP).to(state)


def _spike_gemm_backward(bf16: bool, x2: torch.Tensor, w: torch.Tensor, g: torch.Tensor,
                         in_shape: torch.Size, need_x: bool):
    """``(grad_x, grad_w)`` of ``z = x @ w.T`` from ``g = dL/dz (rows, out)``; the GEMMs in
    bfloat16 (float32 accumulation) when ``bf16``."""
    dtype = torch.bfloat16 if bf16 else w.dtype
    g_lp = g.to(dtype)
    grad_w = (g_lp.t() @ x2.to(dtype)).to(w.dtype)
    grad_x = (g_lp @ w.to(dtype)).to(w.dtype).reshape(in_shape) if need_x else None
    return grad_x, grad_w


def _use_bf16(bf16_grads: bool, x: torch.Tensor) -> bool:
    return bf16_grads and x.device.type == "cpu" and _cpu_has_fast_bf16()


def _lif_forward(a: torch.Tensor, cfg: CubaConfig, dtype: torch.dtype, *,
                 overwrite: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and pre-reset voltage ``(time, batch, n)`` in ``dtype`` (real units) of the exact
    integer CUBA neuron driven by ``a`` (state units, int32 or int64, time-major). The integers
    are converted to the float outputs once; ``1 / state_scale`` is a power of two, so the
    scaling is exact.

    int64 state runs :func:`spikecodec.lava_procs.cuba.cuba_step` itself; int32 state (proven
    by :func:`state_fits_int32`) runs :func:`_lif_forward_int32`, the same arithmetic in fewer
    passes (tests/train/test_blocks.py checks the two equal), in ``a`` itself when
    ``overwrite`` (the caller's fresh GEMM output; it then holds the voltages), or, for float32
    outputs on the CPU, the same loop in C where a C compiler is at hand
    (:mod:`spikecodec.train.native_lif`, ~4x faster again; tests/train/test_native_lif.py
    checks all three equal)."""
    p = cfg.fixed_point()
    if a.dtype == torch.int32 and dtype == torch.float32 and a.device.type == "cpu" \
            and a.is_contiguous():
        native = native_lif.lif_forward_int32(a, p, 1.0 / cfg.state_scale)
        if native is not None:  # the same loop in C (spikecodec.train.native_lif)
            return native
    if a.dtype == torch.int32:
        spikes, voltages = _lif_forward_int32(a if overwrite else a.clone(), p, dtype)
    else:
        voltages = torch.empty(a.shape, dtype=dtype, device=a.device)
        spikes = torch.empty(a.shape, dtype=dtype, device=a.device)
        zeros = torch.zeros_like(a[0])
        state = CubaState(zeros, zeros)
        for t in range(a.shape[0]):
            state, voltages[t], spikes[t] = cuba_step(state, a[t], p)
    return spikes, voltages.mul_(1.0 / cfg.state_scale)


def _lif_forward_int32(a: torch.Tensor, p: CubaParams, dtype: torch.dtype
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`~spikecodec.lava_procs.cuba.cuba_step` (unbounded, int32 state) over every step
    of ``a`` (int32 ``(time, ...)``, overwritten): 0/1 spikes and pre-reset voltages (state
    units) as ``dtype`` tensors shaped like ``a``.

    The same operations as the shared step: ``rstz`` through float64 (the int32 state copied
    into a float64 buffer, multiplied by the dyadic ``keep / 4096``, truncated back into int32:
    exact, see :func:`~spikecodec.lava_procs.cuba.rstz`), integer sums, ``v > vth``, reset to 0.
    What changes is the bookkeeping, 6 passes a step instead of ~10: buffers written in place,
    each step's voltage kept in ``a[t]`` (its input is not needed after the step), the spikes
    compared into int32 (``out=``), the reset ``v = y - y s`` in one int32 pass, and both
    outputs converted to ``dtype`` in one pass each after the loop (torch's bool tensors, ``~``
    and bool-to-float copies cost several int32 passes each on this CPU)."""
    if not (isinstance(p.bias, int) and p.bias == 0):
        raise ValueError("the int32 training loop has no bias (CubaConfig has none)")
    keep_u = (DECAY_SCALE - p.du) / DECAY_SCALE
    keep_v = (DECAY_SCALE - p.dv) / DECAY_SCALE
    fired = torch.empty_like(a)  # 0/1 spikes, int32
    u = torch.zeros_like(a[0])  # current (when it does not forget every step)
    v = torch.zeros_like(a[0])  # voltage after reset
    decayed = torch.empty_like(a[0])
    wide = torch.empty(a.shape[1:], dtype=torch.float64, device=a.device)
    for t in range(a.shape[0]):
        if p.du == DECAY_SCALE:  # the current forgets every step (Roy's LIF): u[t] = a[t]
            current = a[t]
        else:
            wide.copy_(u).mul_(keep_u)  # decay current: rstz(u, 4096 - du), exact
            current = u.copy_(wide).add_(a[t])  # (truncating copy), integrate input
        wide.copy_(v).mul_(keep_v)  # decay voltage: rstz(v, 4096 - dv), exact
        decayed.copy_(wide)  # (truncating copy)
        y = torch.add(decayed, current, out=a[t])  # integrate current; a[t] keeps y
        torch.gt(y, p.vth, out=fired[t])  # fire
        torch.addcmul(y, y, fired[t], value=-1, out=v)  # reset to zero: v = y - y s
    return fired.to(dtype), a.to(dtype)


def _lif_backward(v: torch.Tensor, s: torch.Tensor, cfg: CubaConfig, grad_s, grad_v):
    """``dL/dz`` of the CUBA neuron (BPTT, sigmoid surrogate, reset not differentiated) from
    ``dL/ds`` and ``dL/dv`` (either may be None); None when both are."""
    if grad_s is None and grad_v is None:
        return None
    keep_u = 1.0 - round(cfg.current_decay * DECAY_SCALE) / DECAY_SCALE
    keep_v = 1.0 - round(cfg.voltage_decay * DECAY_SCALE) / DECAY_SCALE
    th = cfg.v_th_mant / cfg.scale
    k = cfg.surrogate_slope
    if grad_s is None:
        direct = grad_v  # dL/dv[t] through v[t] only
    else:
        x = v - th
        sig = torch.sigmoid(x.mul_(k) if k != 1.0 else x)  # (x * 1.0 is x: pass skipped)
        direct = sig.mul_(1.0 - sig).mul_(grad_s)  # through s[t]: surrogate
        if k != 1.0:
            direct.mul_(k)
        if grad_v is not None:
            direct.add_(grad_v)
    carry = torch.rsub(s, keep_v, alpha=keep_v)  # dv[t+1]/dv[t] = keep_v (1 - s[t]): the
    # reset is not differentiated
    grad_v_total = torch.empty_like(v)
    gv = torch.zeros_like(v[0])
    for t in range(v.shape[0] - 1, -1, -1):
        gv = torch.addcmul(direct[t], carry[t], gv, out=grad_v_total[t])  # total dL/dv[t]
    if keep_u == 0.0:  # u[t] = z[t]: dL/dz = dL/dv
        return grad_v_total
    grad_z = torch.empty_like(v)
    gu = torch.zeros_like(v[0])
    for t in range(v.shape[0] - 1, -1, -1):
        gu = torch.add(grad_v_total[t], gu, alpha=keep_u, out=grad_z[t])  # dL/du[t]
    return grad_z


def state_fits_int32(a_max: float, p: CubaParams, steps: int) -> bool:
    """Whether every current and voltage of an unbounded CUBA neuron stays below 2^31 in
    magnitude over ``steps`` steps when each step's input is at most ``a_max`` (state units).

    Proof: ``|rstz(x, k)| <= |x| k / 4096``, so ``|u_t| <= a_max sum_j q_u^j`` with ``q_u = 1 -
    du/4096``: at most ``a_max / (1 - q_u)`` (``du > 0``) and at most ``steps a_max``; the same
    for ``v`` with ``q_v`` on top of ``|u|``'s bound. Intermediate sums (``rstz(v) + u``) are the
    next ``|v|``, within the bound; ``rstz``'s int32 path is exact below 2^31; the GEMM's int32
    sums (``acc << 7 = a``) are within ``a_max`` too."""
    def bound(per_step: float, d: int) -> float:
        geometric = per_step * DECAY_SCALE / d if d > 0 else math.inf
        return min(geometric, per_step * steps)

    u = bound(a_max, p.du)
    v = bound(u + (abs(p.bias) if isinstance(p.bias, int) else math.inf), p.dv)
    return max(u, v) < 2**31 - 1


class _CubaDenseFn(torch.autograd.Function):
    """Dense synapses into CUBA neurons in one function: ``x (time, batch, in)`` binary spikes,
    ``w (out, in)`` quantized weights -> spikes and pre-reset voltage ``(time, batch, out)``.

    Forward: the exact int8 GEMM (:func:`_spike_gemm_forward`) straight into the integer
    state units of the neuron (int32 where :func:`state_fits_int32` proves it), then the
    integer neuron loop (:func:`_lif_forward`). Backward: BPTT with the sigmoid surrogate
    (:func:`_lif_backward`), then the GEMM's gradients (bfloat16 where ``bf16_grads`` and the
    CPU has native bf16). Fusing the two saves the float synaptic input that a separate GEMM
    would hand to the neuron (three passes over ``(time, batch, out)``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, cfg: CubaConfig, bf16_grads: bool):
        a_max = float(w.detach().abs().sum(1).max()) * cfg.state_scale  # 0/1 inputs
        state = torch.int32 if state_fits_int32(a_max, cfg.fixed_point(), x.shape[0]) \
            else torch.int64
        x2, a = _spike_gemm_forward(x, w, cfg.scale, state)
        s, v = _lif_forward(a.view(*x.shape[:-1], w.shape[0]), cfg, w.dtype,
                            overwrite=True)
        ctx.save_for_backward(x2, w, v, s)
        ctx.cfg, ctx.in_shape, ctx.bf16 = cfg, x.shape, _use_bf16(bf16_grads, x)
        ctx.set_materialize_grads(False)  # an unused output gets None, not a tensor of zeros
        return s, v

    @staticmethod
    def backward(ctx, grad_s: torch.Tensor, grad_v: torch.Tensor):
        x2, w, v, s = ctx.saved_tensors
        grad_z = _lif_backward(v, s, ctx.cfg, grad_s, grad_v)
        if grad_z is None:
            return None, None, None, None
        grad_x, grad_w = _spike_gemm_backward(ctx.bf16, x2, w, grad_z.reshape(-1, w.shape[0]),
                                              ctx.in_shape, ctx.needs_input_grad[0])
        return grad_x, grad_w, None, None


class CubaDense(torch.nn.Module):
    """Fully connected synapses into a population of CUBA LIF neurons.

    Args:
        in_neurons, out_neurons: layer sizes.
        neuron: ``CubaConfig``.
        weight_scale: initial weights are ``weight_scale * U(-1, 1) / sqrt(in_neurons)``.
    """

    def __init__(self, in_neurons: int, out_neurons: int, neuron: CubaConfig = CubaConfig(),
                 *, weight_scale: float = 1.0, generator: torch.Generator | None = None):
        super().__init__()
        if in_neurons < 1 or out_neurons < 1:
            raise ConfigError(f"layer sizes must be >= 1, got {in_neurons} -> {out_neurons}")
        self.neuron = neuron
        bound = weight_scale / math.sqrt(in_neurons)
        w = (torch.rand(out_neurons, in_neurons, generator=generator) * 2 - 1) * bound
        self.weight = torch.nn.Parameter(w)

    @property
    def in_neurons(self) -> int:
        return self.weight.shape[1]

    @property
    def out_neurons(self) -> int:
        return self.weight.shape[0]

    def quantized_weight(self) -> torch.Tensor:
        """Weights as used in the forward pass (real units)."""
        return quantize_weight(self.weight, self.neuron.scale)

    def weight_mantissa(self) -> torch.Tensor:
        """Integer Loihi weight mantissas, shape ``(out, in)``."""
        with torch.no_grad():
            return torch.round(self.quantized_weight() * self.neuron.scale).long()

    def forward_tm(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Time-major pass: ``x (time, batch, in)`` -> spikes, voltage ``(time, batch, out)``."""
        return _CubaDenseFn.apply(x, self.quantized_weight(), self.neuron, self.neuron.bf16_grads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (batch, in, time)`` spikes -> output spikes ``(batch, out, time)``."""
        if x.dim() != 3 or x.shape[1] != self.in_neurons:
            raise InputError(
                f"CubaDense expects spikes (batch, {self.in_neurons}, time), got {tuple(x.shape)}"
            )
        check_binary_spikes(x, "CubaDense input")
        s, _ = self.forward_tm(x.permute(2, 0, 1))
        return s.permute(1, 2, 0)

"""Loihi CUBA leaky-integrate-and-fire neuron in fixed point: the one source of truth.

The same function runs on numpy arrays (inside Lava process models and the reference engine) and
on torch int64 tensors (the training blocks' exact forward pass); it uses only operators both
libraries share (numpy is imported only by the parameter checks, :mod:`spikecodec.validate`;
torch never). Scales and bounds come from :mod:`spikecodec.lava_procs.spec`. All quantities are
integers in *state units* (Loihi's 2^12-scaled state, i.e. a weight mantissa ``w`` arrives as
``w << 6``)::

    x[t] = rstz(u[t-1] * (4096 - du)) + a[t]                 # decay current, integrate input
    u[t] = x[t]                      (bounded: wrap_current(wrap_int32(x[t])))
    y[t] = rstz(v[t-1] * (4096 - dv)) + u[t] + bias          # decay voltage, integrate current
    v[t] = y[t]                      (bounded: clip_voltage(y[t]))
    s[t] = v[t] > vth                                        # spike (strictly above threshold)
    v[t] = 0 where s[t]                                      # reset

with ``rstz(x) = sign(x) * (|x| >> 12)`` (right shift rounding towards zero). ``du`` and ``dv``
are Loihi's iDecay / vDecay on the 4096 scale: ``du = 4096`` forgets the current every step
(``u[t] = a[t]``), ``du = 0`` never decays it. In real units (state / 2^12 / 2^scale_bits...)
this is the CUBA model ``u[t] = (1-alpha_u) u[t-1] + a[t]``, ``v[t] = (1-alpha_v) v[t-1] + u[t]``;
with ``du = 4096`` it is Roy et al.'s LIF ``V[t] = (1-alpha) V[t-1] + Z[t]``. ``bias`` is one
integer or one per neuron (an integer array broadcasting against the state).

Unbounded (the default) this equals lava-dl SLAYER's CUBA forward (same 4096 state scale,
``right_shift_to_zero``, ``v >= vth + eps``) spike for spike. ``bounded=True`` adds what Lava's
fixed_pt LIF (``AbstractPyLifModelFixed.subthr_dynamics``, lava-nc 0.10) does to its int32 state
with ``M = 2^23``:

* ``wrap_int32``: the current sum is formed in int32 (the Dense output port is int32 and
  ``a << 6`` is added in place to an int32 array), so it wraps modulo 2^32 first;
* ``wrap_current``: a *single* wrap of the 24-bit current, ``x - 2M`` where ``x > M`` and
  ``x + 2M`` where ``x <= -M`` (Lava's second ``np.where`` tests the unwrapped value), so ``M``
  itself stays and ``-M`` becomes ``+M``, and values beyond ``3M`` stay out of 24 bits;
* ``clip_voltage``: the voltage saturates at ``+-(M - 1)``. Its int32 sum cannot overflow: after
  the single wrap ``|u| <= 2^31 - 2^24`` and ``|rstz(v)| < M``.

``cuba_step_hits`` is the bounded step that also says where the bounds changed the state.
(NetX's ``du`` is ``iDecay - 1``; Lava's model adds the 1 back, so ``du`` here is ``iDecay``.)

State arrays are int64, always exact (products with the decay need 36 bits), or, for the
unbounded step only, int32 where the caller has proven that every ``|u|``, ``|v|``, input and
partial sum of a step stays below 2^31 (the reference engine proves ``< 2^23``): ``rstz`` then
runs through float64, exactly (see :func:`rstz`), and the step moves half the bytes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

# The scales and bounds (re-exported for callers) are the hardware spec's.
from spikecodec.lava_procs.spec import (  # noqa: F401
    DECAY_BITS,
    DECAY_MAX,
    DECAY_MIN,
    DECAY_SCALE,
    STATE_EXP,
    U_MAX,
    V_MAX,
)
from spikecodec.validate import check_int

_INT32_HALF = 2**31


@dataclass(frozen=True, eq=False)
class CubaParams:
    """Fixed-point CUBA parameters (integers, Loihi conventions)."""

    du: int  # current decay, 0..4096 (iDecay)
    dv: int  # voltage decay, 0..4096 (vDecay)
    vth: int  # threshold in state units (vThMant << 6), > 0
    bias: Any = 0  # constant input in state units (bias_mant << 6): an int or an int array

    def __post_init__(self) -> None:
        for name in ("du", "dv"):
            value = check_int("CubaParams", name, getattr(self, name), DECAY_MIN, DECAY_MAX)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "vth", check_int("CubaParams", "vth", self.vth, 1))
        is_int = isinstance(self.bias, int) and not isinstance(self.bias, bool)
        if not is_int and "int" not in str(getattr(self.bias, "dtype", "")):
            raise ValueError(f"CubaParams.bias must be an int or an integer array, "
                             f"got {self.bias!r}")


class CubaState(NamedTuple):
    """Integer state arrays, each shaped like the neuron population (e.g. (batch, neurons))."""

    u: object  # current
    v: object  # voltage after reset


class BoundHits(NamedTuple):
    """Where Lava's bounds changed the state this step (boolean arrays shaped like the state)."""

    u_wrapped: object  # the current differs from the exact sum (int32 or 24-bit wrap)
    v_clipped: object  # the voltage saturated at +-V_MAX


def rstz(x, keep: int):
    """``sign(x) * ((|x| * keep) >> 12)`` for int64 or int32 arrays: decay ``x`` towards zero.

    int64: a truncating division without sign branches: adding 4095 to a negative product
    before the arithmetic shift turns floor into round-towards-zero.

    int32: through float64, exactly: three passes over half the bytes instead of five.
    ``keep / 4096`` is a dyadic rational, exact in float64, and ``|x * keep| <= 2^31 * 2^12 <
    2^53``, so the float64 product is exactly ``x * keep / 4096``; converting it back to int32
    truncates towards zero, which is ``rstz``; ``|rstz(x)| <= |x|`` fits again.
    """
    if _is_int32(x):
        w = _float64(x)
        w *= keep / DECAY_SCALE  # exact (see above)
        return w.astype(x.dtype) if hasattr(w, "astype") else w.to(x.dtype)  # truncates
    n = x * keep  # a fresh array: the rest works in place (half the memory traffic)
    neg = n >> 63
    neg &= DECAY_SCALE - 1
    n += neg
    n >>= DECAY_BITS
    return n


def _is_int32(x) -> bool:
    """Whether ``x`` is an int32 numpy array or torch tensor (by name: no array import)."""
    return str(x.dtype) in ("int32", "torch.int32")


def _float64(x):
    """A float64 copy of a numpy array or torch tensor."""
    return x.astype("float64") if hasattr(x, "astype") else x.double()


def wrap_int32(x):
    """``x`` modulo 2^32 into ``[-2^31, 2^31)``: what an int32 array holds (int64 input)."""
    return ((x + _INT32_HALF) & (2 * _INT32_HALF - 1)) - _INT32_HALF


def wrap_current(x):
    """Lava's 24-bit current wrap (one wrap, not modular; see the module docstring)."""
    return x - (x > U_MAX) * (2 * U_MAX) + (x <= -U_MAX) * (2 * U_MAX)


def clip_voltage(v):
    """Lava's voltage saturation to ``[-V_MAX, V_MAX]``."""
    return v - (v > V_MAX) * (v - V_MAX) - (v < -V_MAX) * (v + V_MAX)


def cuba_step(state: CubaState, a_in, p: CubaParams, *, bounded: bool = False,
              voltage: bool = True):
    """Advance one time step.

    Args:
        state: previous ``CubaState``: int64 arrays, or int32 ones when no value of the step
            can reach 2^31 (unbounded only; module docstring).
        a_in: synaptic input this step, integer array in state units, same shape as the state.
        p: ``CubaParams``.
        bounded: apply Lava's int32/24-bit current wrap and voltage saturation.
        voltage: return the voltage before reset; ``False`` returns ``None`` in its place and
            resets that (fresh) array in place instead of copying it (one pass less).

    Returns:
        ``(new_state, v, spikes)``: ``v`` is the voltage *before* reset (what the threshold
        saw; Roy et al.'s loss reads it) and ``spikes`` a boolean array.
    """
    return _step(state, a_in, p, bounded=bounded, hits=False, voltage=voltage)


def cuba_step_hits(state: CubaState, a_in, p: CubaParams):
    """``cuba_step(..., bounded=True)`` that also returns where the bounds bit: ``BoundHits``."""
    return _step(state, a_in, p, bounded=True, hits=True, voltage=True)


def _step(state: CubaState, a_in, p: CubaParams, *, bounded: bool, hits: bool, voltage: bool):
    if bounded and _is_int32(state.v):
        raise TypeError("the bounded CUBA step needs int64 state: Lava's int32 wrap is "
                        "computed on the exact (wider) sum")
    # In-place operators only ever touch arrays created here (rstz returns a fresh one).
    if p.du == DECAY_SCALE:  # current forgets every step (Roy's LIF): skip the no-op decay
        x = a_in
    else:
        x = rstz(state.u, DECAY_SCALE - p.du)  # decay current
        x += a_in  # integrate input
    u = wrap_current(wrap_int32(x)) if bounded else x  # Lava: int32 sum, 24-bit wrap
    y = rstz(state.v, DECAY_SCALE - p.dv)  # decay voltage
    y += u  # integrate current
    if not (isinstance(p.bias, int) and p.bias == 0):
        y += p.bias  # constant drive
    v = clip_voltage(y) if bounded else y  # Lava: saturate
    spikes = v > p.vth  # fire
    bits = BoundHits(u != x, v != y) if hits else None
    if voltage:
        new = CubaState(u, v * ~spikes)  # reset to zero
    else:
        v *= ~spikes  # reset to zero, in place: v is fresh and nobody reads it
        new, v = CubaState(u, v), None
    return (new, v, spikes, bits) if hits else (new, v, spikes)

"""Loihi CUBA leaky-integrate-and-fire neuron in fixed point: the one source of truth.

The same function runs on numpy arrays (inside Lava process models and the reference engine) and
on torch int64 tensors (the training blocks' exact forward pass); it uses only operators both
libraries share, and this module imports neither. All quantities are integers in *state units*
(Loihi's 2^12-scaled state, i.e. a weight mantissa ``w`` arrives as ``w << 6``)::

    u[t] = rstz(u[t-1] * (4096 - du)) + a[t]                 # decay current, integrate input
    v[t] = rstz(v[t-1] * (4096 - dv)) + u[t] + bias          # decay voltage, integrate current
    s[t] = v[t] > vth                                        # spike (strictly above threshold)
    v[t] = 0 where s[t]                                      # reset

with ``rstz(x) = sign(x) * (|x| >> 12)`` (right shift rounding towards zero). ``du`` and ``dv``
are Loihi's iDecay / vDecay on the 4096 scale: ``du = 4096`` forgets the current every step
(``u[t] = a[t]``), ``du = 0`` never decays it. In real units (state / 2^12 / 2^scale_bits...)
this is the CUBA model ``u[t] = (1-alpha_u) u[t-1] + x[t]``, ``v[t] = (1-alpha_v) v[t-1] + u[t]``;
with ``du = 4096`` it is Roy et al.'s LIF ``V[t] = (1-alpha) V[t-1] + Z[t]``.

This equals lava-dl SLAYER's CUBA forward (same 4096 state scale, ``right_shift_to_zero``,
``v >= vth + eps``) spike for spike. Lava's own fixed_pt LIF additionally wraps ``u`` to 24 bits
and saturates ``v``; those live with the deploy code that emulates Lava.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

DECAY_SCALE = 4096  # decays are fractions of 2^12
DECAY_BITS = 12
STATE_EXP = 6  # Lava shifts weight mantissas and biases left by 6 into the state


@dataclass(frozen=True)
class CubaParams:
    """Fixed-point CUBA parameters (integers, Loihi conventions)."""

    du: int  # current decay, 0..4096 (iDecay)
    dv: int  # voltage decay, 0..4096 (vDecay)
    vth: int  # threshold in state units (vThMant << 6), > 0
    bias: int = 0  # constant input in state units (bias_mant << 6)

    def __post_init__(self) -> None:
        for name in ("du", "dv"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= DECAY_SCALE:
                raise ValueError(f"CubaParams.{name} must be an int in [0, 4096], got {value!r}")
        if not isinstance(self.vth, int) or self.vth <= 0:
            raise ValueError(f"CubaParams.vth must be a positive int, got {self.vth!r}")
        if not isinstance(self.bias, int):
            raise ValueError(f"CubaParams.bias must be an int, got {self.bias!r}")


class CubaState(NamedTuple):
    """Integer state arrays, each shaped like the neuron population (e.g. (batch, neurons))."""

    u: object  # current
    v: object  # voltage after reset


def rstz(x, keep: int):
    """``sign(x) * ((|x| * keep) >> 12)`` for int64 arrays: decay ``x`` towards zero.

    Computed as a truncating division without sign branches: adding 4095 to a negative
    product before the arithmetic shift turns floor into round-towards-zero.
    """
    n = x * keep
    return (n + ((n >> 63) & (DECAY_SCALE - 1))) >> DECAY_BITS


def cuba_step(state: CubaState, a_in, p: CubaParams):
    """Advance one time step.

    Args:
        state: previous ``CubaState`` (int64 arrays: products with the decay need 36 bits).
        a_in: synaptic input this step, integer array in state units, same shape as the state.
        p: ``CubaParams``.

    Returns:
        ``(new_state, v, spikes)``: ``v`` is the voltage *before* reset (what the threshold
        saw; Roy et al.'s loss reads it) and ``spikes`` a boolean array.
    """
    if p.du == DECAY_SCALE:  # current forgets every step (Roy's LIF): skip the no-op decay
        u = a_in
    else:
        u = rstz(state.u, DECAY_SCALE - p.du) + a_in  # decay current, integrate input
    v = rstz(state.v, DECAY_SCALE - p.dv) + u  # decay voltage, integrate current
    if p.bias:
        v = v + p.bias  # constant drive
    spikes = v > p.vth  # fire
    v_reset = v * (spikes == 0)  # reset to zero
    return CubaState(u, v_reset), v, spikes

"""VDIB stochastic readout neuron in fixed point: the one source of truth.

A readout neuron ``i`` is a spike-response-model neuron with a *stochastic threshold* (VDIB
paper section 5 and A.2; ../shared/papers/vdib_equations.md): it spikes with probability
``sigmoid(m_i[t])`` where the membrane potential ``m`` sums ``K`` synaptic basis responses, an
exponential feedback of its own past spikes and a bias. Every basis response ``k`` is a
second-order (alpha-shaped) filter -- a CUBA current and voltage without threshold or reset, with
its own decays -- so the readout's synapses are ``K`` ordinary dense matrices. All quantities are
integers in *state units* (a weight mantissa ``w`` arrives as ``w << 6``; real units = state /
``state_scale``)::

    u_k[t] = sat(rstz(u_k[t-1] * (4096 - du_k)) + a_k[t])           # decay current, integrate
    v_k[t] = sat(rstz(v_k[t-1] * (4096 - dv_k)) + u_k[t])           # decay voltage, integrate
    g[t]   = sat(rstz(g[t-1]   * (4096 - dg))   + w_fb * y[t-1])     # feedback of own spikes
    m[t]   = sum_k v_k[t] + g[t] + bias                              # membrane potential
    p[t]   = lut[clip((m[t] >> lut_shift) + lut_offset, 0, len(lut) - 1)]   # P(spike) * 2^16
    y[t]   = draw(seed, neuron, t, sample) < p[t]                    # stochastic threshold

``rstz`` is :func:`spikecodec.lava_procs.cuba.rstz` (decay rounding towards zero, as Loihi),
``sat`` saturates at 24 bits (:func:`spikecodec.lava_procs.cuba.clip_voltage`), ``a_k`` is the
``k``-th block of the Dense output ``(K * N,)`` (row ``k * N + i``), ``w_fb`` the feedback
weight in state units. ``lut`` holds ``round(2^16 sigmoid(x))`` at the centre of each bin of
``m / state_scale`` (:func:`sigmoid_lut`), so the neuron fires with probability
``sigmoid(m / state_scale)`` up to the bin width (1/32 by default).

Delay-basis synapses (the ``delay_readout`` layer kind): the synapse is a Lava ``DelayDense``
with ``C`` taps of every synapse, ``C * K * N`` rows each with its own synaptic delay;
:func:`tap_sum` zeroes the rows still carrying the previous sample and adds the taps into the
``K * N`` basis rows ``a_k`` above, before the step.

``draw`` is a counter-based pseudo-random number generator: a pure function of
``(seed, neuron, step, sample)`` returning 16 uniform bits, built from the ``lowbias32`` integer
hash (xor-shift-multiply, written here with 16-bit limbs so that no product leaves int64). It
keeps no state, so the torch model in its quantized mode, the batched reference engine and the
Lava process draw the *same* spike for the same key, whatever their batch order, chunking or
streaming: ``step`` is the step within the sample (``0 .. T-1``) and ``sample`` the sample's
index in the run.

Like :mod:`spikecodec.lava_procs.cuba`, every function works on numpy int64 arrays and torch
int64 tensors alike (the key and draw functions on Python ints too); this module imports
neither (numpy only through the parameter checks of :mod:`spikecodec.validate`), and takes its
limits from :mod:`spikecodec.lava_procs.spec`.
"""

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from spikecodec.errors import ConfigError
from spikecodec.lava_procs.cuba import clip_voltage, rstz
from spikecodec.lava_procs.spec import (
    DECAY_MAX,
    DECAY_MIN,
    DECAY_SCALE,
    PROB_BITS,
    PROB_ONE,
    SEED_MAX,
    SEED_MIN,
)
from spikecodec.validate import check_int, check_int_tuple

MASK32 = 0xFFFFFFFF
LUT_BINS_PER_UNIT = 32  # default LUT resolution: 1/32 of a real membrane unit
LUT_RANGE = 8.0  # default LUT covers m / state_scale in [-8, 8); saturates beyond

# lowbias32 (C. Wellons' hash-prospector): two xor-shift-multiply rounds, full avalanche.
_M1, _M2 = 0x7FEB352D, 0x846CA68B
_NEURON_SALT, _STEP_SALT, _SEED_SALT = 0x9E3779B9, 0x85EBCA6B, 0xC2B2AE35


def _mul32(x, c: int):
    """``(x * c) mod 2^32`` for ``0 <= x < 2^32`` without leaving int64 (16-bit limbs of c)."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & MASK32


def mix32(x):
    """The ``lowbias32`` hash of ``0 <= x < 2^32`` (ints or int64 arrays): a bijection."""
    x = x ^ (x >> 16)
    x = _mul32(x, _M1)
    x = x ^ (x >> 15)
    x = _mul32(x, _M2)
    return x ^ (x >> 16)


def sample_key(seed: int, sample):
    """Per-sample half of the key: ``sample`` an int or int64 array (e.g. ``(batch, 1)``)."""
    return mix32(mix32(seed ^ _SEED_SALT) ^ (sample & MASK32))


def neuron_step_key(neuron, step: int):
    """Per-neuron-and-step half of the key: ``neuron`` an int or int64 array ``(N,)``."""
    return mix32(mix32((neuron + _NEURON_SALT) & MASK32) ^ mix32((step + _STEP_SALT) & MASK32))


def draw(sample_k, neuron_step_k):
    """16 uniform random bits in ``[0, 2^16)`` for the keys (broadcasting, e.g. ``(B,1)``,
    ``(N,)`` -> ``(B, N)``)."""
    return mix32(sample_k ^ neuron_step_k) >> (32 - PROB_BITS)


def sigmoid_lut(*, state_scale: int, bins_per_unit: int = LUT_BINS_PER_UNIT,
                value_range: float = LUT_RANGE) -> tuple[list[int], int, int]:
    """``(lut, lut_shift, lut_offset)`` for membrane potentials in state units.

    Bin ``i`` covers ``m / state_scale`` in ``[(i - offset) / bins, (i - offset + 1) / bins)``
    and holds ``round(2^16 sigmoid(centre))``; ``state_scale`` and ``bins_per_unit`` must be
    powers of two with ``bins_per_unit <= state_scale`` so the bin is a right shift.
    """
    for name, value in (("state_scale", state_scale), ("bins_per_unit", bins_per_unit)):
        if check_int("", name, value, 1) & (value - 1):
            raise ConfigError(f"{name} must be a power of two >= 1, got {value!r}")
    if bins_per_unit > state_scale:
        raise ConfigError(f"bins_per_unit ({bins_per_unit}) must be <= state_scale "
                          f"({state_scale})")
    if not value_range > 0:
        raise ConfigError(f"value_range must be > 0, got {value_range!r}")
    shift = int(math.log2(state_scale // bins_per_unit))
    offset = int(round(value_range * bins_per_unit))
    lut = [int(round(PROB_ONE / (1.0 + math.exp(-(i - offset + 0.5) / bins_per_unit))))
           for i in range(2 * offset)]
    return lut, shift, offset


@dataclass(frozen=True, eq=False)
class ReadoutParams:
    """Fixed-point readout parameters (integers; arrays in the engine's type, numpy or torch).

    ``du``/``dv`` hold one current/voltage decay per basis (0..4096, Loihi's 4096 scale);
    ``w_fb`` and ``bias`` are state units, per neuron (arrays ``(N,)``) or one int; ``lut`` a
    1-D integer array of ``P(spike) * 2^16``; ``seed`` keys the random draws.
    """

    du: tuple[int, ...]  # current decay per basis response
    dv: tuple[int, ...]  # voltage decay per basis response
    dg: int  # decay of the feedback trace
    w_fb: Any  # feedback weight (state units), int or (N,)
    bias: Any  # bias (state units), int or (N,)
    lut: Any  # (L,) sigmoid table, values in [0, 2^16]
    lut_shift: int  # bin = m >> lut_shift ...
    lut_offset: int  # ... + lut_offset
    seed: int  # PRNG seed, 0 <= seed < 2^32

    def __post_init__(self) -> None:
        if len(self.du) != len(self.dv) or not self.du:
            raise ConfigError(f"ReadoutParams: du and dv need one decay per basis response, "
                              f"got {self.du!r} and {self.dv!r}")
        for name in ("du", "dv"):
            decays = check_int_tuple("ReadoutParams", name, getattr(self, name), DECAY_MIN,
                                     DECAY_MAX)
            object.__setattr__(self, name, decays)
        object.__setattr__(self, "dg", check_int("ReadoutParams", "dg", self.dg, DECAY_MIN,
                                                 DECAY_MAX))
        object.__setattr__(self, "seed", check_seed(self.seed))

    @property
    def num_basis(self) -> int:
        return len(self.du)


class ReadoutState(NamedTuple):
    """Integer state: ``u``/``v`` tuples of ``K`` arrays ``(..., N)``, feedback ``g (..., N)``
    and the previous spikes ``y (..., N)`` (0/1 of the state's integer dtype)."""

    u: tuple
    v: tuple
    g: Any
    y: Any


def check_seed(seed: Any) -> int:
    """Seeds are integers in ``[0, 2^32)``; anything else raises ``ConfigError``."""
    return check_int("", "seed", seed, SEED_MIN, SEED_MAX)


def readout_step(state: ReadoutState, a_in, p: ReadoutParams, *, keys) -> tuple:
    """Advance one step.

    Args:
        state: previous :class:`ReadoutState` (int64).
        a_in: Dense output this step, int64 ``(..., K * N)`` in state units (row ``k * N + i``).
        p: :class:`ReadoutParams`.
        keys: ``(sample_key (..., 1), neuron_step_key (N,))`` for this step (see :func:`draw`).

    Returns:
        ``(new_state, m, spikes)``: the membrane potential ``m (..., N)`` (state units) and
        boolean spikes.
    """
    n = a_in.shape[-1] // p.num_basis
    us, vs = [], []
    m = None
    for k in range(p.num_basis):
        a_k = a_in[..., k * n:(k + 1) * n]
        u = clip_voltage(rstz(state.u[k], DECAY_SCALE - p.du[k]) + a_k)  # decay, integrate
        v = clip_voltage(rstz(state.v[k], DECAY_SCALE - p.dv[k]) + u)  # alpha response
        us.append(u)
        vs.append(v)
        m = v if m is None else m + v  # sum the basis responses
    g = clip_voltage(rstz(state.g, DECAY_SCALE - p.dg) + state.y * p.w_fb)  # own past spikes
    m = m + g + p.bias
    index = ((m >> p.lut_shift) + p.lut_offset).clip(0, p.lut.shape[0] - 1)
    spikes = draw(*keys) < p.lut[index]  # stochastic threshold
    y = spikes.long() if hasattr(spikes, "long") else spikes.astype(g.dtype)
    return ReadoutState(tuple(us), tuple(vs), g, y), m, spikes


def tap_sum(a_rows, row_delay, step: int, num_taps: int):
    """Delay-basis synapses: the input of the ``K * N`` basis rows from a DelayDense's output.

    ``a_rows (..., C * K * N)`` is what a Lava ``DelayDense`` delivers this step: row
    ``c * K * N + r`` carries ``sum_j w[c, r, j] x_j[t - d]`` with that row's delay ``d =
    row_delay[c * K * N + r]`` (tap ``c`` of every synapse into basis row ``r``). A row whose
    delay exceeds the ``step`` within the sample carries spikes of the *previous* sample, which
    a sample that starts from zero state never sees: it is zeroed. The ``C`` taps then add up
    in the basis row, as synapses converging on one compartment do (the order does not matter:
    integers). ``row_delay`` is an int array ``(C * K * N,)``; returns ``(..., K * N)``.
    """
    if num_taps == 1 and step >= int(row_delay.max()):
        return a_rows  # nothing pending from the previous sample, nothing to add
    arrived = a_rows * (row_delay <= step)  # zero the rows still carrying the last sample
    rows = arrived.shape[-1] // num_taps
    total = arrived[..., :rows]
    for c in range(1, num_taps):
        total = total + arrived[..., c * rows:(c + 1) * rows]
    return total


def zero_state(zeros_like_n, num_basis: int) -> ReadoutState:
    """All-zero state from an int64 array of zeros ``(..., N)`` (copied per field)."""
    def z():
        return zeros_like_n * 0
    return ReadoutState(tuple(z() for _ in range(num_basis)), tuple(z() for _ in range(num_basis)),
                        z(), z())

"""The integer weights Lava's fixed_pt Dense really uses for an HDF5 weight matrix.

NetX (``lava.lib.dl.netx.hdf5``, lava-dl 0.6) passes a dense layer's ``weight`` through
``optimize_weight_bits`` and Lava's Dense fixed_pt model (lava-nc 0.10) then clips and truncates
the result once, before the first step. Each step it sums the weights of the inputs that spiked
and shifts the sum by the exponent (a floor shift)::

    a[j] = (sum_i mantissa[j, i] * s[i]) >> -exponent        (<< exponent when exponent > 0)

:func:`lava_weights` re-implements that chain here (no Lava import), step by step:

1. NetX picks a sign mode from the raw weights (``max < 0``: inhibitory, ``min >= 0``:
   excitatory, else mixed), the largest ``k`` with ``w << k`` inside 8 bits (mixed: 7 bits plus
   sign, ``+1``), and ``n`` = the number of trailing zero bits shared by all weights (at most 8,
   minus one if mixed). It sends ``w << k`` with ``exponent = -k`` and ``num_weight_bits =
   8 - k - n``.
2. Lava's Dense decides the sign mode *again*, from the shifted weights (``max <= 0``:
   inhibitory), clips to 8 bits (mixed ``[-256, 255]``, excitatory ``[0, 255]``, inhibitory
   ``[-255, 0]``) and truncates ``8 - num_weight_bits (+1 if mixed)`` low bits of the magnitude.

For a matrix of mixed sign, or all positive, this is lossless: ``mantissa * 2^exponent`` equals
the HDF5 weight. It is *not* when every weight is ``<= 0``: ``-256`` becomes ``-255`` (or ``-254``),
and when some weight is ``0`` the two sign modes disagree and the truncation can zero or halve
every weight (``[-255, 0, -3]`` -> all zero; ``[-2, 0, -2]`` -> ``[-1, 0, -1]``). NetX cannot load
an all-zero matrix at all (``log2(inf)``); here it maps to zeros.
"""
from __future__ import annotations

import numpy as np

from spikecodec.errors import ConfigError
from spikecodec.lava_procs.spec import (
    WEIGHT_BITS,
    WEIGHT_MAX,
    WEIGHT_MIN,
    WEIGHT_RAW_MAX,
    WEIGHT_RAW_MIN,
)

MANT_MAX = (1 << WEIGHT_BITS) - 1  # 255: Lava's Dense clips magnitudes to 8 bits


def lava_weights(weight: np.ndarray) -> tuple[np.ndarray, int]:
    """``(mantissa (out, in) int64, exponent)`` that Lava's Dense uses for HDF5 ``weight``."""
    w = np.asarray(weight)
    if w.ndim != 2 or w.size == 0:
        raise ConfigError(f"weight must be a non-empty 2-D (out, in) array, got shape {w.shape}")
    if w.dtype.kind == "f" and not np.array_equal(w, np.round(w)):
        raise ConfigError("weight must hold integers, found fractional values")
    if w.dtype.kind not in "iuf":
        raise ConfigError(f"weight must be an integer array, got dtype {w.dtype}")
    w = w.astype(np.int64)
    lo, hi = int(w.min()), int(w.max())
    if lo < WEIGHT_RAW_MIN or hi > WEIGHT_RAW_MAX:
        raise ConfigError(f"weight must lie in [{WEIGHT_RAW_MIN}, {WEIGHT_RAW_MAX}], "
                          f"got [{lo}, {hi}]")
    if lo == hi == 0:
        return w, 0
    if hi > WEIGHT_MAX and lo < 0:  # NetX: a mixed matrix is clipped to [-256, 254] first
        w = np.clip(w, WEIGHT_MIN, WEIGHT_MAX)
        hi = WEIGHT_MAX

    # 1. NetX's optimize_weight_bits
    mixed = int(lo < 0 <= hi)
    if hi < 0:  # inhibitory
        k = _floor_log2_ratio(MANT_MAX + 1, -lo)
    elif lo >= 0:  # excitatory
        k = _floor_log2_ratio(MANT_MAX, hi)
    else:  # mixed: 7 bits and a sign
        k = _floor_log2_ratio(128, -lo)
        if hi > 0:
            k = min(k, _floor_log2_ratio(127, hi))
        k += 1
    # trailing zero bits shared by all weights (at most 8): those of the bitwise OR of them all
    common = int(np.bitwise_or.reduce(w, axis=None))
    n = min(WEIGHT_BITS, (common & -common).bit_length() - 1) if common else WEIGHT_BITS
    num_weight_bits = WEIGHT_BITS - k - (n - mixed)
    shifted = w << k

    # 2. Lava's Dense fixed_pt: its own sign mode, clip_weights, truncate_weights
    if shifted.min() >= 0:
        mantissa = _truncate(np.clip(shifted, 0, MANT_MAX), WEIGHT_BITS - num_weight_bits)
    elif shifted.max() <= 0:
        mantissa = -_truncate(np.clip(-shifted, 0, MANT_MAX), WEIGHT_BITS - num_weight_bits)
    else:
        mantissa = _truncate(np.clip(shifted, -(MANT_MAX + 1), MANT_MAX),
                             WEIGHT_BITS - num_weight_bits + 1)
    return mantissa.astype(np.int64), -k


def synaptic_bound(mantissa: np.ndarray, exponent: int = 0) -> int:
    """Largest ``|a[j]|`` any binary input can produce (see the module docstring for ``a``).

    Per output neuron the sum lies in ``[-N, P]`` (``P``, ``N`` = sums of the positive and of the
    negative mantissas), and so does every partial sum of it: with ``exponent = 0`` this bounds
    every intermediate of a GEMM over the inputs, in any order.
    """
    m = np.asarray(mantissa, dtype=np.int64)
    pos = int(np.clip(m, 0, None).sum(axis=1).max())
    neg = int(np.clip(-m, 0, None).sum(axis=1).max())
    if exponent >= 0:
        return max(pos, neg) << exponent
    return max(pos >> -exponent, -((-neg) >> -exponent))  # floor shift: -N rounds away from 0


def _floor_log2_ratio(num: int, den: int) -> int:
    """Largest ``k`` (possibly negative) with ``den * 2^k <= num``, for positive ints."""
    k = num.bit_length() - den.bit_length()
    if k >= 0 and den << k > num or k < 0 and den > num << -k:
        k -= 1
    return k


def _truncate(magnitude: np.ndarray, bits: int) -> np.ndarray:
    """Clear ``bits`` low bits, as numpy's int32 shifts do (a negative count clears them all)."""
    if bits < 0:
        return np.zeros_like(magnitude)
    return (magnitude >> bits) << bits

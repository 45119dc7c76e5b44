"""Process of the VDIB stochastic readout (ports and Vars; behaviour in ``models.py``).

The dynamics are written once, in :mod:`spikecodec.lava_procs.stochastic_readout.dynamics` (the
equations are in its docstring); this process only holds their parameters and state as Lava
``Var``s and says where each sample lies in the stream of Lava steps.

``a_in`` receives the output of a Lava ``Dense`` with ``K * N`` rows (row ``k * N + i`` feeds
basis response ``k`` of neuron ``i``), in the Dense's units: the model shifts it left by 6 into
state units, as Lava's CUBA neurons do. ``s_out`` sends the ``N`` spikes.

Stream layout (the same as the ``lava-sim`` backend's,
:mod:`spikecodec.deploy.backends.lava_sim`): sample ``first_sample + k`` occupies the ``period``
steps starting at 0-based Lava step ``offset + k * period`` (``time_step - 1``). The state is
zeroed on each sample's first step, the step within the sample (``0 .. period - 1``) and the
sample's index key the random draws; before ``offset`` (while the layers in front fill) the
process sends zeros.

Everything the model reads is validated here: a process model that raises hangs Lava 0.10's
runtime instead of failing.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from spikecodec.lava_procs.cuba import DECAY_SCALE
from spikecodec.lava_procs.stochastic_readout.dynamics import PROB_ONE, SEED_MAX

MANT_LIMIT = 2**23  # bias and feedback mantissas: |value| < 2^23, beyond any 24-bit state
SHIFT_MAX = 31
OFFSET_LIMIT = 2**31


def _int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"StochasticReadout: {name} must be an integer, got {value!r}")
    if not low <= int(value) <= high:
        raise ValueError(f"StochasticReadout: {name} must be in [{low}, {high}], got {value}")
    return int(value)


def _int_array(name: str, value: Any, shape: tuple[int, ...], low: int,
               high: int) -> np.ndarray:
    """``value`` (scalar or array) as an int64 array of ``shape``, every entry in range."""
    arr = np.asarray(value)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise ValueError(f"StochasticReadout: {name} must hold integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not (np.isfinite(arr).all() and np.array_equal(arr,
                                                                                np.round(arr))):
        raise ValueError(f"StochasticReadout: {name} must hold integers, found other values")
    try:
        arr = np.broadcast_to(arr, shape)
    except ValueError:
        raise ValueError(f"StochasticReadout: {name} must be a scalar or have shape {shape}, "
                         f"got {np.shape(value)}") from None
    if arr.size and (arr.min() < low or arr.max() > high):
        raise ValueError(f"StochasticReadout: {name} must lie in [{low}, {high}], got values "
                         f"in [{arr.min():g}, {arr.max():g}]")
    return arr.astype(np.int64)


class StochasticReadout(AbstractProcess):
    """``N`` stochastic-threshold readout neurons with ``K`` alpha-shaped basis responses each.

    Args:
        shape: ``(N,)``, the number of neurons.
        num_basis: ``K``, basis responses per synapse (``a_in`` has ``K * N`` entries).
        du, dv: current / voltage decay of each basis response, ``K`` ints on the 4096 scale
            (4096 forgets everything each step; the deploy layer's ``i_decay`` / ``v_decay``).
        fb_decay: decay of the feedback trace of the neuron's own spikes (4096 scale).
        fb_weight, bias: mantissas (an int or ``(N,)``); the model shifts them left by 6.
        lut: ``P(spike) * 2^16`` per membrane bin, 1-D, >= 2 entries in ``[0, 2^16]``.
        lut_shift, lut_offset: the bin of potential ``m`` is ``(m >> lut_shift) + lut_offset``,
            clipped to the table.
        seed: PRNG seed in ``[0, 2^32)``.
        period: Lava steps per sample (``T`` plus any gap between samples), ``>= 1``.
        offset: 0-based Lava step (``time_step - 1``) on which the process integrates step 0
            of the first sample; earlier steps send zeros.
        first_sample: index of the first sample in the whole batch (keys the draws, so a batch
            run in chunks draws the same spikes as in one run).
    """

    def __init__(self, *, shape: tuple[int, ...], num_basis: int, du: Sequence[int],
                 dv: Sequence[int], fb_decay: int, fb_weight: Any = 0, bias: Any = 0,
                 lut: Any, lut_shift: int, lut_offset: int, seed: int, period: int,
                 offset: int = 0, first_sample: int = 0, name: str | None = None) -> None:
        # Initialize first, so that a process rejected below is still one Lava can delete.
        super().__init__(name=name)
        if (not isinstance(shape, (tuple, list)) or len(shape) != 1
                or isinstance(shape[0], bool) or not isinstance(shape[0], (int, np.integer))
                or shape[0] < 1):
            raise ValueError(f"StochasticReadout: shape must be (N,) with N >= 1, got {shape!r}")
        n = int(shape[0])
        k = _int("num_basis", num_basis, 1, 2**16)
        decays = {}
        for key, value in (("du", du), ("dv", dv)):
            if np.ndim(value) != 1 or len(value) != k:
                raise ValueError(f"StochasticReadout: {key} needs one decay per basis response "
                                 f"(num_basis = {k}), got {value!r}")
            decays[key] = _int_array(key, value, (k,), 0, DECAY_SCALE)
        fb_decay = _int("fb_decay", fb_decay, 0, DECAY_SCALE)
        fb_weight = _int_array("fb_weight", fb_weight, (n,), -MANT_LIMIT, MANT_LIMIT - 1)
        bias = _int_array("bias", bias, (n,), -MANT_LIMIT, MANT_LIMIT - 1)
        if np.ndim(lut) != 1 or np.size(lut) < 2:
            raise ValueError(f"StochasticReadout: lut must be a 1-D table of >= 2 entries, got "
                             f"shape {np.shape(lut)}")
        lut = _int_array("lut", lut, (np.size(lut),), 0, PROB_ONE)
        lut_shift = _int("lut_shift", lut_shift, 0, SHIFT_MAX)
        lut_offset = _int("lut_offset", lut_offset, -OFFSET_LIMIT, OFFSET_LIMIT - 1)
        seed = _int("seed", seed, 0, SEED_MAX)
        period = _int("period", period, 1, 2**40)
        offset = _int("offset", offset, 0, 2**40)
        first_sample = _int("first_sample", first_sample, 0, 2**40)
        for key, value in (("shape", (n,)), ("num_basis", k), ("period", period),
                           ("offset", offset), ("first_sample", first_sample)):
            self.proc_params[key] = value  # the models' constants

        self.a_in = InPort(shape=(k * n,))
        self.s_out = OutPort(shape=(n,))
        # parameters (integers; see dynamics.ReadoutParams)
        self.du = Var(shape=(k,), init=decays["du"])
        self.dv = Var(shape=(k,), init=decays["dv"])
        self.fb_decay = Var(shape=(1,), init=fb_decay)
        self.fb_weight = Var(shape=(n,), init=fb_weight)
        self.bias = Var(shape=(n,), init=bias)
        self.lut = Var(shape=lut.shape, init=lut)
        self.lut_shift = Var(shape=(1,), init=lut_shift)
        self.lut_offset = Var(shape=(1,), init=lut_offset)
        self.seed = Var(shape=(1,), init=seed)
        # state (state units), zeroed on each sample's first step
        self.u = Var(shape=(k, n), init=0)  # current of each basis response
        self.v = Var(shape=(k, n), init=0)  # voltage of each basis response
        self.g = Var(shape=(n,), init=0)  # feedback trace
        self.y = Var(shape=(n,), init=0)  # previous spikes

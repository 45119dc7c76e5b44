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

Everything the model reads is validated here (:mod:`spikecodec.validate`, limits from
:mod:`spikecodec.lava_procs.spec`): a process model that raises hangs Lava 0.10's runtime
instead of failing.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from spikecodec.lava_procs.spec import (
    BIAS_MAX,
    BIAS_MIN,
    DECAY_MAX,
    DECAY_MIN,
    LUT_OFFSET_MAX,
    LUT_OFFSET_MIN,
    LUT_SHIFT_MAX,
    NUM_BASIS_MAX,
    PROB_ONE,
    SEED_MAX,
    SEED_MIN,
    STREAM_MAX,
    SYNAPSE_DELAY_MAX,
    SYNAPSE_DELAY_MIN,
)
from spikecodec.validate import check_int, check_int_array

WHERE = "StochasticReadout"  # names the process in every error


class StochasticReadout(AbstractProcess):
    """``N`` stochastic-threshold readout neurons with ``K`` alpha-shaped basis responses each.

    Args:
        shape: ``(N,)``, the number of neurons.
        num_basis: ``K``, basis responses per synapse (``a_in`` has ``K * N`` entries).
        du, dv: current / voltage decay of each basis response, ``K`` ints on the 4096 scale
            (4096 forgets everything each step; the deploy layer's ``i_decay`` / ``v_decay``).
        fb_decay: decay of the feedback trace of the neuron's own spikes (4096 scale).
        fb_weight, bias: mantissas (an int or ``(N,)``), 13-bit signed like every bias (the
            spec's ``BIAS_MIN .. BIAS_MAX``, as the deploy layer holds); the model shifts
            them left by 6.
        lut: ``P(spike) * 2^16`` per membrane bin, 1-D, >= 2 entries in ``[0, 2^16]``.
        lut_shift, lut_offset: the bin of potential ``m`` is ``(m >> lut_shift) + lut_offset``,
            clipped to the table.
        seed: PRNG seed in ``[0, 2^32)``.
        period: Lava steps per sample (``T`` plus any gap between samples), ``>= 1``.
        offset: 0-based Lava step (``time_step - 1``) on which the process integrates step 0
            of the first sample; earlier steps send zeros.
        first_sample: index of the first sample in the whole batch (keys the draws, so a batch
            run in chunks draws the same spikes as in one run).
        num_taps: ``C``, delayed copies of every synapse (delay-basis synapses): ``a_in`` then
            has ``C * K * N`` entries, the output of a Lava ``DelayDense`` whose row
            ``c * K * N + r`` feeds basis row ``r``
            (:func:`~spikecodec.lava_procs.stochastic_readout.dynamics.tap_sum`).
        row_delay: the synaptic delay of each of those rows (``C * K * N`` ints in
            ``[0, 62]``; default all 0): rows whose delay exceeds the step within the sample
            still carry the previous sample and are zeroed.
    """

    def __init__(self, *, shape: tuple[int, ...], num_basis: int, du: Sequence[int],
                 dv: Sequence[int], fb_decay: int, fb_weight: Any = 0, bias: Any = 0,
                 lut: Any, lut_shift: int, lut_offset: int, seed: int, period: int,
                 offset: int = 0, first_sample: int = 0, num_taps: int = 1,
                 row_delay: Any = 0, name: str | None = None) -> None:
        # Initialize first, so that a process rejected below is still one Lava can delete.
        super().__init__(name=name)
        if (not isinstance(shape, (tuple, list)) or len(shape) != 1
                or isinstance(shape[0], bool) or not isinstance(shape[0], (int, np.integer))
                or shape[0] < 1):
            raise ValueError(f"{WHERE}: shape must be (N,) with N >= 1, got {shape!r}")
        n = int(shape[0])
        k = check_int(WHERE, "num_basis", num_basis, 1, NUM_BASIS_MAX)
        decays = {}
        for key, value in (("du", du), ("dv", dv)):
            if np.ndim(value) != 1 or len(value) != k:
                raise ValueError(f"{WHERE}: {key} needs one decay per basis response "
                                 f"(num_basis = {k}), got {value!r}")
            decays[key] = check_int_array(WHERE, key, value, (k,), DECAY_MIN, DECAY_MAX)
        fb_decay = check_int(WHERE, "fb_decay", fb_decay, DECAY_MIN, DECAY_MAX)
        fb_weight = check_int_array(WHERE, "fb_weight", fb_weight, (n,), BIAS_MIN, BIAS_MAX,
                                    broadcast=True)
        bias = check_int_array(WHERE, "bias", bias, (n,), BIAS_MIN, BIAS_MAX, broadcast=True)
        if np.ndim(lut) != 1 or np.size(lut) < 2:
            raise ValueError(f"{WHERE}: lut must be a 1-D table of >= 2 entries, got "
                             f"shape {np.shape(lut)}")
        lut = check_int_array(WHERE, "lut", lut, None, 0, PROB_ONE)
        lut_shift = check_int(WHERE, "lut_shift", lut_shift, 0, LUT_SHIFT_MAX)
        lut_offset = check_int(WHERE, "lut_offset", lut_offset, LUT_OFFSET_MIN, LUT_OFFSET_MAX)
        seed = check_int(WHERE, "seed", seed, SEED_MIN, SEED_MAX)
        period = check_int(WHERE, "period", period, 1, STREAM_MAX)
        offset = check_int(WHERE, "offset", offset, 0, STREAM_MAX)
        first_sample = check_int(WHERE, "first_sample", first_sample, 0, STREAM_MAX)
        taps = check_int(WHERE, "num_taps", num_taps, 1, SYNAPSE_DELAY_MAX + 1)
        row_delay = check_int_array(WHERE, "row_delay", row_delay, (taps * k * n,),
                                    SYNAPSE_DELAY_MIN, SYNAPSE_DELAY_MAX, broadcast=True)
        for key, value in (("shape", (n,)), ("num_basis", k), ("period", period),
                           ("offset", offset), ("first_sample", first_sample),
                           ("num_taps", taps)):
            self.proc_params[key] = value  # the models' constants

        self.a_in = InPort(shape=(taps * k * n,))
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
        self.row_delay = Var(shape=(taps * k * n,), init=np.array(row_delay))
        # state (state units), zeroed on each sample's first step
        self.u = Var(shape=(k, n), init=0)  # current of each basis response
        self.v = Var(shape=(k, n), init=0)  # voltage of each basis response
        self.g = Var(shape=(n,), init=0)  # feedback trace
        self.y = Var(shape=(n,), init=0)  # previous spikes

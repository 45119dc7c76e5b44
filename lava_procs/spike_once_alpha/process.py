"""Process of the spike-once alpha neuron (ports and Vars; behaviour in ``models.py``).

The dynamics are written once, in :func:`spikecodec.lava_procs.spike_once.spike_once_step`
(equations in that module's docstring): a CUBA neuron with equal current and voltage decays that
fires at most once per sample. ``a_in`` receives Lava ``Dense`` outputs (several Denses may
connect to it, e.g. the layer's synapse and its pulses' own; Lava sums them), in the Dense's
units: the model shifts them left by 6 into state units, as Lava's CUBA neurons do.

Stream layout as every custom process of a ``lava-sim`` run
(:mod:`spikecodec.deploy.backends.lava_sim`): sample ``k`` occupies the ``period`` steps starting
at 0-based Lava step ``offset + k * period``; the state (``u``, ``v``, ``fired``) is zeroed on each
sample's first step, before its input is integrated.

Everything the models read is validated here: a process model that raises hangs Lava 0.10.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from spikecodec.lava_procs.spec import DECAY_MAX, STREAM_MAX, V_TH_MANT_MAX, V_TH_MANT_MIN
from spikecodec.validate import check_int

WHERE = "SpikeOnceAlpha"


class SpikeOnceAlpha(AbstractProcess):
    """``N`` spike-once alpha neurons.

    Args:
        shape: ``(N,)``.
        decay: current and voltage decay ``d`` on the 4096 scale (keeps ``4096 - d``), 1..4096.
        vth: threshold mantissa: spike when ``v > vth << 6``.
        period: Lava steps per sample (``T`` plus any gap), ``>= 1``.
        offset: 0-based Lava step on which the process integrates step 0 of the first sample;
            earlier steps send zeros.
    """

    def __init__(self, *, shape: tuple[int, ...], decay: int, vth: int, period: int,
                 offset: int = 0, name: str | None = None) -> None:
        super().__init__(name=name)  # first, so that a refused process can still be deleted
        if (not isinstance(shape, (tuple, list)) or len(shape) != 1
                or isinstance(shape[0], bool) or not isinstance(shape[0], (int, np.integer))
                or shape[0] < 1):
            raise ValueError(f"{WHERE}: shape must be (N,) with N >= 1, got {shape!r}")
        n = int(shape[0])
        decay = check_int(WHERE, "decay", decay, 1, DECAY_MAX)
        vth = check_int(WHERE, "vth", vth, V_TH_MANT_MIN, V_TH_MANT_MAX)
        self.proc_params["period"] = check_int(WHERE, "period", period, 1, STREAM_MAX)
        self.proc_params["offset"] = check_int(WHERE, "offset", offset, 0, STREAM_MAX)
        self.a_in = InPort(shape=(n,))
        self.s_out = OutPort(shape=(n,))
        self.decay = Var(shape=(1,), init=decay)
        self.vth = Var(shape=(1,), init=vth)
        self.u = Var(shape=(n,), init=0)  # current (state units)
        self.v = Var(shape=(n,), init=0)  # voltage (state units)
        self.fired = Var(shape=(n,), init=0)  # 1 once the neuron spiked in this sample

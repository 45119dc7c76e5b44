"""Process models of :class:`~spikecodec.lava_procs.pulse.process.PulseSource` on the CPU.

The behaviour is written once, in the abstract model around
:func:`~spikecodec.lava_procs.pulse.dynamics.pulse_spikes`; the tagged subclasses only declare
the port type (``fixed_pt``: int32 0/1 spikes; ``floating_pt``: float 0.0/1.0).
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from spikecodec.lava_procs.pulse.dynamics import pulse_spikes
from spikecodec.lava_procs.pulse.process import PulseSource


class AbstractPyPulseSourceModel(PyLoihiProcessModel):
    """Fire the pulses whose step is this step of the sample window."""

    s_out = None
    steps: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._period = proc_params["period"]
        self._offset = proc_params["offset"]

    def run_spk(self) -> None:
        local = self.time_step - 1 - self._offset
        if local < 0:  # before the first sample
            self.s_out.send(np.zeros(self.steps.shape, dtype=np.int32))
            return
        self.s_out.send(pulse_spikes(self.steps, local % self._period).astype(np.int32))


@implements(proc=PulseSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyPulseSourceModelFixed(AbstractPyPulseSourceModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=1)


@implements(proc=PulseSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyPulseSourceModelFloat(AbstractPyPulseSourceModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)

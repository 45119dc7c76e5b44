"""Process models of :class:`~spikecodec.lava_procs.spike_once_alpha.process.SpikeOnceAlpha`
on the CPU.

The behaviour is written once, in the abstract model, around
:func:`~spikecodec.lava_procs.spike_once.spike_once_step`; the tagged subclasses only declare
the port types and how a received message becomes an integer:

* ``fixed_pt``: int32 messages, as Lava's fixed_pt Dense sends. Bit-exact with the reference.
* ``floating_pt``: float messages, so the process plugs into a float graph. Not a float model
  of the neuron: it rounds each received value to the nearest integer and runs the same
  fixed-point step (Lava's floating_pt Dense ignores ``weight_exp``: give it the weights
  ``mantissa * 2^exp`` and it sends what the fixed_pt Dense would).
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from spikecodec.lava_procs.spec import STATE_EXP
from spikecodec.lava_procs.spike_once import SpikeOnceState, spike_once_params, spike_once_step
from spikecodec.lava_procs.spike_once_alpha.process import SpikeOnceAlpha


class AbstractPySpikeOnceAlphaModel(PyLoihiProcessModel):
    """Receive the Dense output(s), zero the state on each sample's first step, step, send."""

    a_in = None
    s_out = None
    decay: int = LavaPyType(int, np.int64, precision=13)
    vth: int = LavaPyType(int, np.int64, precision=17)
    u: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    fired: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=1)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._period = proc_params["period"]
        self._offset = proc_params["offset"]

    def received(self, message: np.ndarray) -> np.ndarray:
        """Hook: the received message as int64 (the Dense's units)."""
        raise NotImplementedError

    def run_spk(self) -> None:
        a_in = self.received(self.a_in.recv())  # always receive, or the senders block
        local = self.time_step - 1 - self._offset
        if local < 0:  # the layers in front are still filling: no sample yet
            self.s_out.send(np.zeros(self.u.shape, dtype=np.int32))
            return
        if local % self._period == 0:  # a sample starts from zero state
            for var in (self.u, self.v, self.fired):
                var[:] = 0
        p = spike_once_params(int(self.decay), int(self.vth) << STATE_EXP)
        state = SpikeOnceState(self.u.copy(), self.v.copy(), self.fired.astype(bool))
        state, spikes = spike_once_step(state, a_in << STATE_EXP, p)
        self.u[:] = state.u
        self.v[:] = state.v
        self.fired[:] = state.fired
        self.s_out.send(spikes.astype(np.int32))


@implements(proc=SpikeOnceAlpha, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeOnceAlphaModelFixed(AbstractPySpikeOnceAlphaModel):
    """int32 messages: the fixed_pt Dense's output in, 0/1 spikes out."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=1)

    def received(self, message: np.ndarray) -> np.ndarray:
        return message.astype(np.int64)


@implements(proc=SpikeOnceAlpha, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySpikeOnceAlphaModelFloat(AbstractPySpikeOnceAlphaModel):
    """Float messages around the same integer dynamics (module docstring)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)

    def received(self, message: np.ndarray) -> np.ndarray:
        return np.rint(message).astype(np.int64)

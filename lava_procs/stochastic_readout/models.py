"""Process models of :class:`~spikecodec.lava_procs.stochastic_readout.process.StochasticReadout`
on the CPU.

The behaviour is written once, in the abstract model, around
:func:`~spikecodec.lava_procs.stochastic_readout.dynamics.readout_step` (the only place the
dynamics are written); the tagged subclasses only declare the port types and how a received
message becomes an integer:

* ``fixed_pt``: int32 messages, as Lava's fixed_pt Dense sends and CUBA neurons send. Integer
  int64 arithmetic, bit-exact with the reference backend.
* ``floating_pt``: float messages, so the process plugs into a float graph. It is *not* a float
  model of the neuron (no float sigmoid, no other random numbers): it rounds each received
  value to the nearest integer and runs the same fixed-point dynamics, so it draws the same
  spikes as ``fixed_pt`` when it receives the same (integer) values -- i.e. when its input
  carries what the fixed_pt Dense would send, mantissa sums already scaled by the exponent
  (Lava's floating_pt Dense ignores ``weight_exp``: give it the weights ``mantissa * 2^exp``).

The state lives in the process's Vars (int64), so ``u``, ``v``, ``g`` and ``y`` can be read
after a run like any Lava neuron's. The parameters are read from the Vars every step; the
process validated them, a ``Var.set`` between runs is not checked again (an invalid value
raises inside the runtime, which hangs Lava 0.10).
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
from spikecodec.lava_procs.stochastic_readout.dynamics import (
    ReadoutParams,
    ReadoutState,
    neuron_step_key,
    readout_step,
    sample_key,
    tap_sum,
)
from spikecodec.lava_procs.stochastic_readout.process import StochasticReadout


class AbstractPyStochasticReadoutModel(PyLoihiProcessModel):
    """Receive the Dense output, step the dynamics from zero state per sample, send spikes."""

    a_in = None
    s_out = None
    du: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=13)
    dv: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=13)
    fb_decay: int = LavaPyType(int, np.int64, precision=13)
    fb_weight: np.ndarray = LavaPyType(np.ndarray, np.int64)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int64)
    lut: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=17)
    lut_shift: int = LavaPyType(int, np.int64)
    lut_offset: int = LavaPyType(int, np.int64)
    seed: int = LavaPyType(int, np.int64, precision=32)
    row_delay: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=6)
    u: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    g: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    y: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=1)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._period = proc_params["period"]
        self._offset = proc_params["offset"]
        self._first_sample = proc_params["first_sample"]
        self._taps = proc_params["num_taps"]
        self._neurons = np.arange(proc_params["shape"][0], dtype=np.int64)
        self._silence = np.zeros(proc_params["shape"], dtype=np.int64)

    def received(self, message: np.ndarray) -> np.ndarray:
        """Hook: the received message as int64 (the Dense's units)."""
        raise NotImplementedError

    def params(self) -> ReadoutParams:
        """The Vars as the dynamics' parameters, in state units (read every step, so a
        ``Var.set`` between runs takes effect)."""
        return ReadoutParams(
            du=tuple(int(d) for d in self.du), dv=tuple(int(d) for d in self.dv),
            dg=int(self.fb_decay), w_fb=self.fb_weight << STATE_EXP,
            bias=self.bias << STATE_EXP, lut=self.lut, lut_shift=int(self.lut_shift),
            lut_offset=int(self.lut_offset), seed=int(self.seed))

    def run_spk(self) -> None:
        a_in = self.received(self.a_in.recv())  # always receive, or the sender blocks
        local = self.time_step - 1 - self._offset
        if local < 0:  # the layers in front are still filling: no sample yet
            self.s_out.send(self._silence)
            return
        sample, step = divmod(local, self._period)
        if step == 0:  # a sample starts from zero state
            for var in (self.u, self.v, self.g, self.y):
                var[:] = 0
        p = self.params()
        keys = (sample_key(p.seed, self._first_sample + sample),
                neuron_step_key(self._neurons, step))
        state = ReadoutState(tuple(self.u), tuple(self.v), self.g, self.y)
        a_in = tap_sum(a_in, self.row_delay, step, self._taps)  # delay-basis taps, if any
        state, _, spikes = readout_step(state, a_in << STATE_EXP, p, keys=keys)
        self.u[:] = np.stack(state.u)
        self.v[:] = np.stack(state.v)
        self.g[:] = state.g
        self.y[:] = state.y
        self.s_out.send(spikes)


@implements(proc=StochasticReadout, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyStochasticReadoutModelFixed(AbstractPyStochasticReadoutModel):
    """int32 messages: the fixed_pt Dense's output in, 0/1 spikes out."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=1)

    def received(self, message: np.ndarray) -> np.ndarray:
        return message.astype(np.int64)


@implements(proc=StochasticReadout, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyStochasticReadoutModelFloat(AbstractPyStochasticReadoutModel):
    """Float messages around the same integer dynamics (module docstring)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)

    def received(self, message: np.ndarray) -> np.ndarray:
        return np.rint(message).astype(np.int64)

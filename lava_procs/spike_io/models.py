"""Process models of :mod:`spikecodec.lava_procs.spike_io.process` on the CPU.

The behaviour is written once in the abstract models; the tagged subclasses only declare the port
types (``floating_pt``: float messages, ``fixed_pt``: int32 messages, as Lava's own I/O). Files
are opened lazily in the runtime's child process, on the first step.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from spikecodec.lava_procs.spike_io.process import SpikeSink, SpikeSource


class AbstractPySpikeSourceModel(PyLoihiProcessModel):
    """Send one row of the memory-mapped file per step, zeros after its end."""

    s_out = None

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._path = proc_params["path"]
        self._data: np.ndarray | None = None
        self._zeros: np.ndarray | None = None

    def run_spk(self) -> None:
        if self._data is None:  # open in the runtime's process, not the parent
            self._data = np.load(self._path, mmap_mode="r")
            self._zeros = np.zeros(self._data.shape[1], dtype=np.int8)
        step = self.time_step - 1
        row = self._data[step] if step < self._data.shape[0] else self._zeros
        self.s_out.send(np.asarray(row))


class AbstractPySpikeSinkModel(PyLoihiProcessModel):
    """Receive every step; write the steps of the recorded windows into the file."""

    a_in = None

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._path = proc_params["path"]
        self._offset = proc_params["offset"]
        self._period = proc_params["period"]
        self._out: np.memmap | None = None

    def run_spk(self) -> None:
        data = self.a_in.recv()  # always receive, or the sender blocks
        k, t = divmod(self.time_step - 1 - self._offset, self._period)
        if k < 0:
            return
        if self._out is None:
            self._out = np.load(self._path, mmap_mode="r+")
        count, window = self._out.shape[:2]
        if k < count and t < window:
            self._out[k, t] = data != 0
            if k == count - 1 and t == window - 1:
                self._out.flush()  # last recorded step: make it durable


@implements(proc=SpikeSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySpikeSourceModelFloat(AbstractPySpikeSourceModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)


@implements(proc=SpikeSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeSourceModelFixed(AbstractPySpikeSourceModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32)


@implements(proc=SpikeSink, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySpikeSinkModelFloat(AbstractPySpikeSinkModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)


@implements(proc=SpikeSink, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeSinkModelFixed(AbstractPySpikeSinkModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)

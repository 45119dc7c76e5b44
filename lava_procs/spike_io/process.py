"""Processes of the file-backed spike I/O (ports and parameters; behaviour in ``models.py``).

Both keep their data in ``.npy`` files laid out time-major, ``(steps, neurons)``, so one time step
is one contiguous row: the source reads a row per step through ``np.load(mmap_mode="r")`` and the
sink writes rows into a file the caller created with ``np.lib.format.open_memmap``. Nothing is
held in a Lava ``Var``, so a stream of any length costs no memory in the runtime and no
element-by-element transfers afterwards.

The sink records a periodic selection of steps: with ``offset``, ``period``, ``window`` and
``count`` it keeps step ``offset + k * period + t`` (0-based, ``t < window``, ``k < count``) as row
``(k, t)`` of its ``(count, window, neurons)`` file, e.g. the ``T`` output steps of each of
``count`` samples laid end to end ``period`` steps apart, ``offset`` steps late.
"""
from __future__ import annotations

import os

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess

from spikecodec.lava_procs.spec import STREAM_MAX
from spikecodec.validate import check_int


def _open_header(path: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the ``.npy`` file at ``path`` without reading its data."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no spike file at {path}")
    data = np.load(path, mmap_mode="r")
    return data.shape, data.dtype


class SpikeSource(AbstractProcess):
    """Sends row ``time_step - 1`` of a ``(steps, neurons)`` 0/1 ``.npy`` file on ``s_out``.

    Steps past the end of the file send zeros, so a run may go on to drain the network.

    Args:
        path: ``.npy`` file of integer or boolean spikes, shape ``(steps, neurons)``.
    """

    def __init__(self, *, path: str | os.PathLike, name: str | None = None) -> None:
        path = os.fspath(path)
        shape, dtype = _open_header(path)
        if len(shape) != 2 or 0 in shape:
            raise ValueError(f"{path}: spikes must be a non-empty (steps, neurons) array, "
                             f"got shape {shape}")
        if dtype.kind not in "biu":
            raise ValueError(f"{path}: spikes must be integer or boolean, got dtype {dtype}")
        super().__init__(path=path, name=name)
        self.num_steps = shape[0]
        self.s_out = OutPort(shape=(shape[1],))


class SpikeSink(AbstractProcess):
    """Writes selected steps received on ``a_in`` into a ``(count, window, neurons)`` ``.npy``.

    The caller creates the file (``np.lib.format.open_memmap(path, "w+", np.uint8, ...)``) before
    the run and reads it after; received values are stored as ``value != 0``.

    Args:
        path: existing ``.npy`` file of shape ``(count, window, neurons)`` and dtype uint8.
        offset: first recorded step (0-based Lava step, i.e. ``time_step - 1``).
        period: steps between the starts of two recorded windows (``>= window``).
    """

    def __init__(self, *, path: str | os.PathLike, offset: int, period: int,
                 name: str | None = None) -> None:
        path = os.fspath(path)
        shape, dtype = _open_header(path)
        if len(shape) != 3 or 0 in shape or dtype != np.uint8:
            raise ValueError(f"{path}: the sink file must be a non-empty uint8 array "
                             f"(count, window, neurons), got {dtype} {shape}")
        offset = check_int("SpikeSink", "offset", offset, 0, STREAM_MAX)
        period = check_int("SpikeSink", "period", period, shape[1], STREAM_MAX)
        super().__init__(path=path, offset=offset, period=period, name=name)
        self.a_in = InPort(shape=(shape[2],))

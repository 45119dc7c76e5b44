"""Process of the pulse sources (ports and Vars; behaviour in ``models.py``).

``P`` sources, each firing once per sample window on its own step (:mod:`.dynamics`). Stream
layout as every custom process of a ``lava-sim`` run (:mod:`spikecodec.deploy.backends.lava_sim`):
sample ``k`` occupies the ``period`` Lava steps starting at 0-based step ``offset + k * period``
(``time_step - 1``); before ``offset`` nothing fires. A source that feeds layer ``i`` through its
own Dense sends one step ahead of the layer (``offset = i``, the layer's is ``i + 1``), as the
layer's other input does.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from spikecodec.lava_procs.spec import NUM_STEPS_MAX, STREAM_MAX
from spikecodec.validate import check_int, check_int_array

WHERE = "PulseSource"


class PulseSource(AbstractProcess):
    """``P`` spike sources firing at ``steps`` of every sample window.

    Args:
        steps: ``P`` fire steps, each in ``[0, period)`` (0-based within the sample).
        period: Lava steps per sample (``T`` plus any gap), ``>= 1``.
        offset: 0-based Lava step on which step 0 of the first sample is sent.
    """

    def __init__(self, *, steps: Sequence[int], period: int, offset: int = 0,
                 name: str | None = None) -> None:
        super().__init__(name=name)  # first, so that a refused process can still be deleted
        if np.ndim(steps) != 1 or np.size(steps) < 1:
            raise ValueError(f"{WHERE}: steps must be a non-empty 1-D sequence, got "
                             f"{steps!r:.80}")
        period = check_int(WHERE, "period", period, 1, STREAM_MAX)
        steps = check_int_array(WHERE, "steps", steps, None, 0, min(period, NUM_STEPS_MAX) - 1)
        offset = check_int(WHERE, "offset", offset, 0, STREAM_MAX)
        self.proc_params["period"] = period
        self.proc_params["offset"] = offset
        self.s_out = OutPort(shape=(steps.size,))
        self.steps = Var(shape=(steps.size,), init=steps)

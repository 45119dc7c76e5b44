"""What every backend shares: the :class:`Backend` protocol, :class:`RunResult` and
:func:`check_input` (the registry and :func:`~spikecodec.deploy.backends.run` are in the
package's ``__init__``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.errors import InputError, InputTypeError


@dataclass
class RunResult:
    """Spikes out of a backend, all ``(batch, neurons, time)`` uint8 and aligned to the input."""

    spikes: np.ndarray  # output layer
    layers: list[np.ndarray] | None = None  # every layer's spikes when run with probe=True
    stats: dict[str, Any] = field(default_factory=dict)  # backend-specific counters, timings


class Backend(Protocol):
    """A way to run a :class:`FixedPointNetwork` on spikes."""

    name: str  # what --backend and run(backend=...) call it
    options: tuple[str, ...]  # the keyword options its run takes besides probe, show_progress

    def unavailable(self) -> str | None:
        """``None`` when the backend can run here, else what is missing and how to get it."""

    def run(self, net: FixedPointNetwork, spikes: np.ndarray, *, probe: bool,
            show_progress: bool, **options: Any) -> RunResult:
        """Binary ``spikes (batch, in, time)`` uint8, already checked -> aligned outputs."""


def check_input(net: FixedPointNetwork, spikes: Any) -> np.ndarray:
    """Validate input spikes ``(batch, in_features, time)``; return them as uint8 numpy."""
    if hasattr(spikes, "detach"):  # torch tensor
        spikes = spikes.detach().cpu().numpy()
    if not isinstance(spikes, np.ndarray):
        raise InputTypeError(f"input spikes must be a numpy array or torch tensor, "
                             f"got {type(spikes).__name__}")
    if spikes.ndim != 3 or spikes.shape[1] != net.in_features or 0 in spikes.shape:
        raise InputError(f"input spikes must be (batch, {net.in_features}, time) with batch "
                         f"and time >= 1, got shape {spikes.shape}")
    if spikes.dtype.kind not in "biuf":
        raise InputError(f"input spikes must be numeric, got dtype {spikes.dtype}")
    if spikes.dtype.kind == "u":  # unsigned ints: binary iff the maximum is <= 1 (50x faster)
        binary = spikes.max() <= 1
    else:
        binary = spikes.dtype == np.bool_ or np.isin(spikes, (0, 1)).all()
    if not binary:
        raise InputError("input spikes must be binary (0/1); found other values")
    return spikes.astype(np.uint8, copy=False)

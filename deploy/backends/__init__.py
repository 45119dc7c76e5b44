"""One entry point for the three backends: ``run(net, spikes, backend=...)``.

Every backend takes a :class:`~spikecodec.deploy.ir.FixedPointNetwork` and binary input
spikes ``(batch, in_features, time)`` and returns a :class:`RunResult` whose output spikes are
``(batch, out_features, time)``, *aligned to the input*: output step ``t`` answers input step
``t`` although Loihi delivers it ``net.latency`` steps later (each Dense adds one step). Each
sample starts from zero state, as NetX's ``reset_interval`` makes it on Lava and Loihi.

* ``reference`` -- :mod:`~spikecodec.deploy.backends.reference`, batched integer engine (torch);
* ``lava-sim`` -- :mod:`~spikecodec.deploy.backends.lava_sim` on
  ``Loihi2SimCfg(select_tag="fixed_pt")``;
* ``loihi2`` -- the same process graph on ``Loihi2HwCfg`` (needs lava-loihi, INRC access).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.errors import ConfigError, InputError, InputTypeError

BACKENDS = ("reference", "lava-sim", "loihi2")


@dataclass
class RunResult:
    """Spikes out of a backend, all ``(batch, neurons, time)`` uint8 and aligned to the input."""

    spikes: np.ndarray  # output layer
    layers: list[np.ndarray] | None = None  # every layer's spikes when run with probe=True
    stats: dict[str, Any] = field(default_factory=dict)  # backend-specific counters, timings


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


def run(net: FixedPointNetwork, spikes: Any, *, backend: str = "reference", probe: bool = False,
        show_progress: bool = False, **options: Any) -> RunResult:
    """Run ``spikes (batch, in, time)`` through ``net`` on ``backend``."""
    if not isinstance(net, FixedPointNetwork):
        raise InputTypeError(f"net must be a FixedPointNetwork, got {type(net).__name__}")
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    x = check_input(net, spikes)
    if backend == "reference":
        from spikecodec.deploy.backends.reference import run_reference
        return run_reference(net, x, probe=probe, show_progress=show_progress, **options)
    from spikecodec.deploy.backends.lava_sim import run_lava
    target = "sim" if backend == "lava-sim" else "loihi2"
    return run_lava(net, x, target=target, probe=probe, show_progress=show_progress, **options)

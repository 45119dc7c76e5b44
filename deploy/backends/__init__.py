"""One entry point for the backends: ``run(net, spikes, backend=...)``, and their one registry.

Every backend takes a :class:`~spikecodec.deploy.ir.FixedPointNetwork` and binary input
spikes ``(batch, in_features, time)`` and returns a :class:`RunResult` whose output spikes are
``(batch, out_features, time)``, *aligned to the input*: output step ``t`` answers input step
``t`` although Loihi delivers it ``net.latency`` steps later (each Dense adds one step). Each
sample starts from zero state, as NetX's ``reset_interval`` makes it on Lava and Loihi.

* ``reference`` -- :mod:`~spikecodec.deploy.backends.reference`, batched integer engine (torch);
* ``lava-sim`` -- :mod:`~spikecodec.deploy.backends.lava_sim` on
  ``Loihi2SimCfg(select_tag="fixed_pt")``;
* ``loihi2`` -- the same process graph on ``Loihi2HwCfg`` (needs lava-loihi, INRC access).

:data:`BACKENDS` is the one list of them; the CLI's ``--backend`` choices and the parity engines
read :func:`backend_names`. A backend's module (torch, Lava) is imported only when it runs.
"""
from __future__ import annotations

from typing import Any

from spikecodec.deploy.backends.base import Backend, RunResult, check_input
from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.errors import BackendUnavailableError, ConfigError, InputTypeError


class _Reference:
    """The batched integer engine (:func:`~.reference.run_reference`)."""

    name = "reference"
    options = ("batch_size", "device")

    def unavailable(self) -> str | None:
        from importlib.util import find_spec

        return None if find_spec("torch") else "the reference backend needs torch"

    def run(self, net: FixedPointNetwork, spikes, **options: Any) -> RunResult:
        from spikecodec.deploy.backends.reference import run_reference

        return run_reference(net, spikes, **options)


class _Lava:
    """A Lava run configuration (:func:`~.lava_sim.run_lava` with ``target``)."""

    options = ("gap", "chunk", "workers", "timeout")

    def __init__(self, name: str, target: str) -> None:
        self.name, self.target = name, target

    def unavailable(self) -> str | None:
        from spikecodec.deploy.backends.lava_sim import unavailable

        return unavailable(self.target)

    def run(self, net: FixedPointNetwork, spikes, **options: Any) -> RunResult:
        from spikecodec.deploy.backends.lava_sim import run_lava

        return run_lava(net, spikes, target=self.target, **options)


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    _Reference(),
    _Lava("lava-sim", "sim"),
    _Lava("loihi2", "loihi2"),
)}


def backend_names() -> tuple[str, ...]:
    """Names of every backend, in order (whether or not it can run here)."""
    return tuple(BACKENDS)


def get_backend(name: str) -> Backend:
    """The backend called ``name``; :class:`ConfigError` for an unknown name,
    :class:`BackendUnavailableError` (saying what to install) for one that cannot run here."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    backend = BACKENDS[name]
    reason = backend.unavailable()
    if reason is not None:
        raise BackendUnavailableError(reason)
    return backend


def run(net: FixedPointNetwork, spikes: Any, *, backend: str = "reference", probe: bool = False,
        show_progress: bool = False, **options: Any) -> RunResult:
    """Run ``spikes (batch, in, time)`` through ``net`` on ``backend``, with that backend's
    ``options`` (e.g. ``workers`` of ``lava-sim``); :class:`ConfigError` for any other."""
    if not isinstance(net, FixedPointNetwork):
        raise InputTypeError(f"net must be a FixedPointNetwork, got {type(net).__name__}")
    chosen = get_backend(backend)
    unknown = sorted(set(options) - set(chosen.options))
    if unknown:
        raise ConfigError(f"backend {backend!r} has no option {', '.join(unknown)}; its "
                          f"options: {', '.join(chosen.options)}")
    x = check_input(net, spikes)
    return chosen.run(net, x, probe=probe, show_progress=show_progress, **options)


__all__ = ["BACKENDS", "Backend", "RunResult", "backend_names", "check_input", "get_backend",
           "run"]

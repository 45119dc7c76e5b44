"""The hooks every layer kind provides, and the registration that checks them.

A layer kind is one frozen dataclass in its own module of :mod:`spikecodec.deploy.layers`. The
dataclass *is* the IR node (its fields are the layer's integers) and it carries every hook a
consumer calls, so no consumer keeps a per-kind table or tests ``isinstance``:

============== ================================================================================
consumer       hook
============== ================================================================================
IR             ``validate()`` -> a checked copy (read-only int64 arrays); ``describe()`` -> the
               summary line; ``check_num_steps(T)`` refuses what does not fit the network's
               ``T`` steps per sample (e.g. a pulse after the horizon); ``in_features`` /
               ``out_features``; class attributes ``kind`` (its
               name in HDF5; a standard kind's ``kind`` is its NetX ``type``) and ``standard``
               (NetX can build it)
HDF5           ``write_hdf5(group)`` writes the layer's data into ``group``;
               ``read_hdf5(group, name)`` (classmethod) reads it back, unvalidated
reference      ``reference_plan(device=, steps=, dtype=, bounded=)`` -> a :class:`ReferencePlan`
lava-sim       ``build_lava(schedule)`` -> ``(InPort, OutPort)``: the layer's Lava processes
check          ``loihi2_check(num_steps=)`` -> the layer's row of the Loihi 2 report
NIR            ``to_nir`` / ``from_nir``: callables, or ``None`` for a kind with no NIR node
============== ================================================================================

Hooks import their consumer's toolkit (torch, Lava, the HDF5 and check helpers) inside the
function: importing a layer kind costs numpy only, and the IR imports no backend.

:func:`register_kinds` builds the registry and refuses a kind that lacks a hook, so a new kind
that forgets one fails when the package is imported, not when a user first exports it.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Protocol

from spikecodec.errors import ConfigError

HOOKS = ("validate", "check_num_steps", "describe", "write_hdf5", "read_hdf5", "reference_plan",
         "build_lava", "loihi2_check")
NIR_HOOKS = ("to_nir", "from_nir")  # must exist; None means "no NIR node" (issue 13)


class ReferencePlan(Protocol):
    """A layer made ready for the reference engine (:mod:`spikecodec.deploy.backends.reference`).

    The engine runs the synapse (``synapse``: Lava's Dense as one exact GEMM, shared by every
    kind) and hands its output to the kind's ``step``; the state is whatever the kind needs.
    """

    synapse: Any  # spikecodec.deploy.backends.reference.Synapse
    state: Any  # torch dtype of the synaptic input (and of the state, as the kind decides)

    def zero_state(self, batch: int) -> Any:
        """The state of ``batch`` samples before their first step."""

    def step(self, state: Any, a: Any, *, t: int, samples: Any) -> tuple[Any, Any]:
        """``a (B, rows)`` synaptic input in state units at step ``t`` of samples ``samples
        (B, 1)`` (their indices in the batch) -> ``(state, spikes (B, out) bool)``."""

    def counts(self, state: Any) -> tuple[int, int]:
        """``(u_wraps, v_clips)`` so far in ``state`` (0, 0 for a kind that has no such bound)."""


class LayerKind(Protocol):
    """What :func:`register_kinds` requires of a layer kind (module docstring)."""

    kind: ClassVar[str]
    standard: ClassVar[bool]
    name: str

    @property
    def in_features(self) -> int: ...

    @property
    def out_features(self) -> int: ...

    def validate(self) -> LayerKind: ...

    def check_num_steps(self, num_steps: int) -> None: ...

    def describe(self) -> str: ...

    def write_hdf5(self, group: Any) -> None: ...

    @classmethod
    def read_hdf5(cls, group: Any, name: str) -> LayerKind: ...

    def reference_plan(self, *, device: Any, steps: int, dtype: Any = None,
                       bounded: bool | None = None) -> ReferencePlan: ...

    def build_lava(self, schedule: Any) -> tuple[Any, Any]: ...

    def loihi2_check(self, *, num_steps: int) -> dict[str, Any]: ...


def register_kinds(*kinds: type) -> dict[str, type]:
    """``{kind: class}`` for the given layer classes; :class:`ConfigError` names the first
    class that is not a frozen dataclass, lacks a hook or reuses a ``kind``."""
    registry: dict[str, type] = {}
    for cls in kinds:
        where = f"layer kind {getattr(cls, '__name__', cls)!r}"
        if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:
            raise ConfigError(f"{where} must be a frozen dataclass")
        kind = getattr(cls, "kind", None)
        if not isinstance(kind, str) or not kind:
            raise ConfigError(f"{where} needs a class attribute kind (a non-empty string)")
        if not isinstance(getattr(cls, "standard", None), bool):
            raise ConfigError(f"{where} needs a class attribute standard (True or False)")
        missing = [hook for hook in HOOKS if not callable(getattr(cls, hook, None))]
        missing += [hook for hook in NIR_HOOKS if not hasattr(cls, hook)]
        missing += [prop for prop in ("in_features", "out_features") if not hasattr(cls, prop)]
        if missing:
            raise ConfigError(f"{where} lacks the hook(s) {', '.join(missing)}")
        if kind in registry:
            raise ConfigError(f"{where} reuses the kind {kind!r} of {registry[kind].__name__}")
        registry[kind] = cls
    return registry


# --------------------------------------------------------------------------- HDF5 helpers

def write_int_fields(layer: Any, group: Any, arrays: tuple[str, ...],
                     attrs: tuple[str, ...]) -> None:
    """Write ``layer``'s integer fields into its HDF5 ``group``: ``arrays`` as int64 datasets,
    ``attrs`` as integer attributes (what a custom kind's ``write_hdf5`` usually is)."""
    import numpy as np

    for key in arrays:
        group.create_dataset(key, data=np.asarray(getattr(layer, key), dtype=np.int64))
    for key in attrs:
        group.attrs[key] = int(getattr(layer, key))


def read_int_fields(group: Any, name: str, arrays: tuple[str, ...], attrs: tuple[str, ...]
                    ) -> tuple[dict[str, Any], str]:
    """The fields :func:`write_int_fields` wrote, read with the typed reader (an
    ``ExportError`` naming the layer, group and field for anything damaged), and the ``where``
    string those errors use."""
    from spikecodec.deploy.h5read import attr_int, read_dataset

    where = f"layer '{name}' ({group.name})"
    values: dict[str, Any] = {key: read_dataset(group, key, where) for key in arrays}
    values.update({key: attr_int(group, key, where) for key in attrs})
    return values, where

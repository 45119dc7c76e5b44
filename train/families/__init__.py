"""Model families: one folder each, registered once here (the hooks: :mod:`.base`).

Adding a family is one folder under ``train/families/`` with a :class:`~.base.Family` subclass,
plus one line in :data:`FAMILIES`; the CLI, the workflows and the family tests pick it up.
"""
from __future__ import annotations

from spikecodec.errors import ConfigError
from spikecodec.train.families.base import ExportInputs, Family
from spikecodec.train.families.comsa.family import ComsaFamily
from spikecodec.train.families.roy.family import RoyFamily
from spikecodec.train.families.roy_audio.family import RoyAudioFamily
from spikecodec.train.families.vdib.family import VDIBFamily

FAMILIES: dict[str, Family] = {f.name: f for f in (RoyFamily(), VDIBFamily(), ComsaFamily(),
                                                RoyAudioFamily())}


def get_family(name: object) -> Family:
    """The registered family called ``name`` (a checkpoint's or an export's model kind)."""
    if name not in FAMILIES:
        raise ConfigError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[name]


__all__ = ["FAMILIES", "ExportInputs", "Family", "get_family"]

"""What an export carries beside its layers: the host decoder and the export's record.

Both are frozen dataclasses that :class:`~spikecodec.deploy.ir.FixedPointNetwork` holds and
:mod:`spikecodec.deploy.hdf5` stores as JSON (plus the decoder's arrays as datasets). A plain
dict is accepted wherever they are expected and converted (``from_dict``), so the JSON read
from a file and the typed objects built in code meet in one place, which also validates them.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikecodec.errors import ConfigError

DECODER_KINDS = ("rate", "ann", "spike_time")


@dataclass(frozen=True)
class HostDecoder:
    """What the host does with output spikes: ``rate`` counts them (the network's output is
    the estimate); ``ann`` runs an ANN (:mod:`spikecodec.deploy.decoders` documents its
    ``config`` keys and ``arrays``); ``spike_time`` reads each output neuron's first spike on
    step ``m`` as the time ``t0 + m dt`` (config ``dt``, ``t0``, ``latency``; the Comsa family
    turns it into the pixel ``1 - (t - latency)``, a silent neuron into background)."""

    kind: str = "rate"
    config: Mapping[str, Any] = field(default_factory=dict)  # JSON-able settings (arch, ...)
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)  # weights, in export order

    def __post_init__(self) -> None:
        if self.kind not in DECODER_KINDS:
            raise ConfigError(f"decoder.kind must be one of {DECODER_KINDS}, got {self.kind!r}")
        if "kind" in self.config:
            raise ConfigError("decoder.config must not repeat 'kind'")
        for name, value in self.arrays.items():
            if not isinstance(value, np.ndarray):
                raise ConfigError(f"decoder array {name!r} must be a numpy array, got "
                                  f"{type(value).__name__}")

    @classmethod
    def from_dict(cls, data: Any) -> HostDecoder:
        """From the flat form ``{"kind": ..., <config keys>, <array names>: ndarray}``."""
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping) or "kind" not in data:
            raise ConfigError(f"decoder must be a mapping with a 'kind', got {data!r:.80}")
        arrays = {k: v for k, v in data.items() if isinstance(v, np.ndarray)}
        config = {k: v for k, v in data.items() if k != "kind" and k not in arrays}
        return cls(kind=data["kind"], config=config, arrays=arrays)

    def as_dict(self) -> dict[str, Any]:
        """The flat form (what the decoder functions and the ANN module read)."""
        return {"kind": self.kind, **self.config, **self.arrays}

    def json_config(self) -> dict[str, Any]:
        """Everything but the arrays (stored as JSON)."""
        return {"kind": self.kind, **self.config}


@dataclass(frozen=True)
class ExportInfo:
    """The record of how an export was made. Every field is optional: a network built by hand,
    or a lava-dl file read as is (``source="netx"``), has few of them."""

    model_kind: str | None = None  # the model family (train/families/), e.g. "roy-ae"
    model_config: Mapping[str, Any] | None = None  # the family's model config, as a dict
    config_toml: str | None = None  # the whole training config (run/eval rebuild inputs)
    dataset: str | None = None
    task: str | None = None  # VDIB: blobs | images | events
    seed: int | None = None  # the training run's seed
    eval_seed: int | None = None  # seed of the inputs its evaluation drew
    eval_batch_size: int | None = None
    trained_epochs: int | None = None
    float_metrics: Mapping[str, Any] | None = None  # the training run's test metrics
    quantized_metrics: Mapping[str, Any] | None = None
    source: str | None = None  # "netx": read from a file spikecodec did not write
    extra: Mapping[str, Any] = field(default_factory=dict)  # anything else, kept as is

    _TYPES = {"model_kind": str, "model_config": Mapping, "config_toml": str, "dataset": str,
              "task": str, "seed": int, "eval_seed": int, "eval_batch_size": int,
              "trained_epochs": int, "float_metrics": Mapping, "quantized_metrics": Mapping,
              "source": str}

    def __post_init__(self) -> None:
        for name, kind in self._TYPES.items():
            value = getattr(self, name)
            if value is None:
                continue
            bad_int = kind is int and (isinstance(value, bool) or not isinstance(value, int))
            if bad_int or not isinstance(value, kind):
                raise ConfigError(f"metadata.{name} must be a {kind.__name__}, got "
                                  f"{type(value).__name__} {value!r:.60}")
        if not isinstance(self.extra, Mapping):
            raise ConfigError(f"metadata.extra must be a mapping, got {type(self.extra)}")

    @classmethod
    def from_dict(cls, data: Any) -> ExportInfo:
        """From the JSON object stored in an export (unknown keys go to ``extra``)."""
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise ConfigError(f"metadata must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: the fields that are set, and ``extra``."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name != "extra" and getattr(self, f.name) is not None}
        return {**out, **self.extra}

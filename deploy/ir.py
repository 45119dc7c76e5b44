"""FixedPointNetwork: the plain, validated description of an exported network.

Everything after training consumes only this: the HDF5 format (:mod:`spikecodec.deploy.hdf5`),
the backends (:mod:`spikecodec.deploy.backends`) and the Loihi 2 check
(:mod:`spikecodec.deploy.check`). A network is its input (:class:`InputSpec`), a chain of layers
and the host decoder; each layer is an instance of a registered layer kind
(:data:`spikecodec.deploy.layers.LAYER_KINDS`), which validates, describes, stores, runs and
checks itself (:mod:`spikecodec.deploy.layers.base`), so nothing here knows any kind.

Layers run in order, each one Dense synapse plus its neurons; on Loihi and in Lava every Dense adds
one step of latency, so a network of ``L`` layers answers input step ``t`` at step ``t + L``.
Backends return outputs realigned to the input (``(batch, neurons, time)`` with the same ``time``).

Two decisions shape what a layer kind may be:

(a) **Extra inputs belong to the layer.** The chain stays linear: layer ``i`` receives the
spikes of layer ``i - 1`` (the input for ``i = 0``) and nothing else from the chain. A kind that
needs inputs of its own -- Comsa et al.'s learnable pulse sources, which feed every layer --
holds them as fields of its own dataclass (e.g. the pulse times and their own weight matrix and
exponent) and its hooks wire them: ``write_hdf5`` stores them in the layer's group, the
reference plan adds their synaptic input in its ``step`` (they do not depend on the data, so
the plan can precompute it per step), and ``build_lava`` creates their source process and
Dense inside the ``(in, out)`` pair it returns. No other layer, backend or file section knows
they exist.

(b) **A custom layer may sit anywhere.** In HDF5, ``/layer/{i}`` holds only the *leading* run
of standard layers (:attr:`FixedPointNetwork.num_netx`), so ``lava.lib.dl.netx.hdf5.Network``
still loads that prefix unchanged; every layer after the first custom one, standard or not,
lives under ``/spikecodec/layers/{i}`` (a standard kind writes the same datasets there as under
``/layer``). The ``lava-sim`` backend lets NetX build the prefix and builds every later layer
through its kind's ``build_lava`` -- a dense layer as NetX's own dense block with the reset
schedule NetX would give it -- so the reference and Lava agree spike for spike whatever the
order (tests/deploy/test_layer_kinds.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikecodec.deploy.info import ExportInfo, HostDecoder
from spikecodec.deploy.layers import LAYER_KINDS
from spikecodec.errors import ConfigError
from spikecodec.lava_procs.spec import NUM_STEPS_MAX
from spikecodec.validate import check_int

FORMAT_VERSION = 1


@dataclass(frozen=True)
class InputSpec:
    """How samples become input spikes, and for how long the network runs."""

    encoding: str  # name of a spikecodec.train.encoding function, or "spikes" for raw events
    num_steps: int  # T, steps per sample (the output is read over the same T steps)
    shape: tuple[int, ...]  # shape of one sample before flattening, e.g. (8, 8)
    params: dict[str, Any] = field(default_factory=dict)  # encoder parameters (max_rate, ...)

    def validate(self) -> None:
        if not isinstance(self.encoding, str) or not self.encoding:
            raise ConfigError(f"input.encoding must be a non-empty string, got {self.encoding!r}")
        check_int("input", "num_steps", self.num_steps, 1, NUM_STEPS_MAX)
        if not self.shape or any(int(s) < 1 for s in self.shape):
            raise ConfigError(f"input.shape must be positive sizes, got {self.shape!r}")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class FixedPointNetwork:
    """An exported network: layers in order, input encoding, host decoder and metadata.

    ``decoder`` (:class:`~spikecodec.deploy.info.HostDecoder`) says what the host does with
    output spikes; ``metadata`` (:class:`~spikecodec.deploy.info.ExportInfo`) records the model
    family, seeds, the training config and its metrics. Plain dicts are accepted for both and
    converted (and validated) on construction.
    """

    layers: tuple[Any, ...]
    input: InputSpec
    decoder: HostDecoder = field(default_factory=HostDecoder)
    metadata: ExportInfo = field(default_factory=ExportInfo)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        self.input.validate()
        if not self.layers:
            raise ConfigError("a FixedPointNetwork needs at least one layer")
        checked = []
        previous = self.input.size
        for i, layer in enumerate(self.layers):
            if LAYER_KINDS.get(getattr(layer, "kind", None)) is not type(layer):
                raise ConfigError(f"layer {i}: unknown layer type {type(layer).__name__}; "
                                  f"known: {sorted(LAYER_KINDS)}")
            layer = layer.validate()
            if layer.in_features != previous:
                raise ConfigError(f"{layer.name}: expects {layer.in_features} inputs but the "
                                  f"previous stage has {previous} outputs")
            layer.check_num_steps(self.input.num_steps)
            previous = layer.out_features
            checked.append(layer)
        object.__setattr__(self, "layers", tuple(checked))
        object.__setattr__(self, "decoder", HostDecoder.from_dict(self.decoder))
        object.__setattr__(self, "metadata", ExportInfo.from_dict(self.metadata))

    @property
    def num_steps(self) -> int:
        return self.input.num_steps

    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @property
    def out_features(self) -> int:
        return self.layers[-1].out_features

    @property
    def num_netx(self) -> int:
        """How many leading layers are standard: NetX builds them from ``/layer/{i}`` (module
        docstring, (b)); the first custom layer and every layer after it are ours."""
        for i, layer in enumerate(self.layers):
            if not layer.standard:
                return i
        return len(self.layers)

    @property
    def latency(self) -> int:
        """Steps between an input spike and the output it causes (one per Dense)."""
        return len(self.layers)

    def summary(self) -> str:
        rows = [f"{'layer':<10} {'type':<8} {'in':>6} {'out':>6}  neuron"]
        for layer in self.layers:
            rows.append(f"{layer.name:<10} {layer.kind[:8]:<8} {layer.in_features:>6} "
                        f"{layer.out_features:>6}  {layer.describe()}")
        return "\n".join(rows)

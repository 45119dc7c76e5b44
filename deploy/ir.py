"""FixedPointNetwork: the plain, validated description of an exported network.

Everything after training consumes only this: the HDF5 format (:mod:`spikecodec.deploy.hdf5`),
the backends (:mod:`spikecodec.deploy.backends`) and the
Loihi 2 check (:mod:`spikecodec.deploy.check`).

Units are Loihi's (see :mod:`spikecodec.lava_procs.cuba` for the dynamics):

* a dense layer's ``weight`` holds the integers NetX reads from HDF5: one input spike adds
  ``weight << 6`` to the post-synaptic current ``u``. Lava's Dense re-expresses them as an 8-bit
  mantissa and an exponent (:func:`spikecodec.deploy.weights.lava_weights`, which the reference
  engine uses); that is lossless unless every weight of the layer is ``<= 0``, which
  ``spikecodec check --target loihi2`` flags;
* ``bias`` is Lava's ``bias_mant`` with ``bias_exp = 6``: it adds ``bias << 6`` to ``v`` each step;
* decays are on the 4096 scale (``i_decay = 4096`` forgets the current every step), the threshold
  is ``v_th_mant`` (Lava compares ``v > v_th_mant << 6``).

Layers run in order, each one Dense synapse plus its neurons; on Loihi and in Lava every Dense adds
one step of latency, so a network of ``L`` layers answers input step ``t`` at step ``t + L``.
Backends return outputs realigned to the input (``(batch, neurons, time)`` with the same ``time``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikecodec.deploy.layers import LAYER_KINDS, DenseLayer
from spikecodec.errors import ConfigError
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
        check_int("input", "num_steps", self.num_steps, 1, 2**20)
        if not self.shape or any(int(s) < 1 for s in self.shape):
            raise ConfigError(f"input.shape must be positive sizes, got {self.shape!r}")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class FixedPointNetwork:
    """An exported network: layers in order, input encoding, host decoder and metadata.

    ``decoder`` describes what the host does with output spikes (``{"kind": "rate"}`` counts
    them; ANN decoders carry their weights, see issue #4); ``metadata`` holds the model kind,
    seeds, the training config (TOML text) and anything else worth keeping beside the weights.
    """

    layers: tuple[Any, ...]
    input: InputSpec
    decoder: dict[str, Any] = field(default_factory=lambda: {"kind": "rate"})
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        self.input.validate()
        if not self.layers:
            raise ConfigError("a FixedPointNetwork needs at least one layer")
        checked = []
        previous = self.input.size
        for i, layer in enumerate(self.layers):
            if getattr(layer, "kind", None) not in LAYER_KINDS:
                raise ConfigError(f"layer {i}: unknown layer type {type(layer).__name__}; "
                                  f"known: {sorted(LAYER_KINDS)}")
            layer = layer.validate()
            if layer.in_features != previous:
                raise ConfigError(f"{layer.name}: expects {layer.in_features} inputs but the "
                                  f"previous stage has {previous} outputs")
            previous = layer.out_features
            if checked and not checked[-1].standard and layer.standard:
                raise ConfigError(f"{layer.name}: a standard layer cannot follow the custom "
                                  f"layer {checked[-1].name!r} (NetX runs the standard layers "
                                  f"first, custom processes after them)")
            checked.append(layer)
        object.__setattr__(self, "layers", tuple(checked))
        if not isinstance(self.decoder, dict) or "kind" not in self.decoder:
            raise ConfigError(f"decoder must be a dict with a 'kind', got {self.decoder!r}")

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
    def num_standard(self) -> int:
        """How many leading layers are standard NetX layers (the rest are custom processes)."""
        return sum(1 for layer in self.layers if layer.standard)

    @property
    def latency(self) -> int:
        """Steps between an input spike and the output it causes (one per Dense)."""
        return len(self.layers)

    def summary(self) -> str:
        rows = [f"{'layer':<10} {'type':<8} {'in':>6} {'out':>6}  neuron"]
        for layer in self.layers:
            if isinstance(layer, DenseLayer):
                n = layer.neuron
                what = f"iDecay={n.i_decay} vDecay={n.v_decay} vThMant={n.v_th_mant}"
            else:
                what = (f"stochastic, {layer.num_basis} basis, iDecay={list(layer.i_decay)} "
                        f"vDecay={list(layer.v_decay)} seed={layer.seed}")
            rows.append(f"{layer.name:<10} {layer.kind[:8]:<8} {layer.in_features:>6} "
                        f"{layer.out_features:>6}  {what}")
        return "\n".join(rows)

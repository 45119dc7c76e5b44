"""Trained model -> :class:`~spikecodec.deploy.network.FixedPointNetwork`, and back.

Training is quantization-aware already: every :class:`~spikecodec.train.blocks.CubaDense`
forward pass uses the rounded 8-bit weight mantissas and the integer Loihi neuron, so
``quantize`` only reads the integers out. What training does *not* model are Lava's 24-bit
wrap of the current and saturation of the voltage; the parity report
(:mod:`spikecodec.train.parity`) counts where they bite.

Models register a quantizer and a rebuilder in ``QUANTIZERS`` / ``REBUILDERS`` (keyed by the
model class and by ``metadata["model_kind"]``).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from spikecodec.deploy.network import CubaNeuron, DenseLayer, FixedPointNetwork, InputSpec
from spikecodec.errors import ConfigError, InputTypeError
from spikecodec.train.blocks import CubaDense
from spikecodec.train.models.roy_ae import RoyAE, RoyAEModelConfig


def dense_layer(block: CubaDense, name: str) -> DenseLayer:
    """One CUBA dense block as a NetX dense layer (weights as SLAYER exports them)."""
    p = block.neuron.fixed_point()
    neuron = CubaNeuron(i_decay=p.du, v_decay=p.dv, v_th_mant=block.neuron.v_th_mant)
    weight = block.weight_mantissa().cpu().numpy().astype(np.int64)
    return DenseLayer(name=name, weight=weight, neuron=neuron)


def _quantize_roy_ae(model: RoyAE, input_spec: InputSpec, metadata: dict[str, Any]):
    layers = (dense_layer(model.encoder, "encoder"), dense_layer(model.decoder, "decoder"))
    meta = {"model_kind": "roy-ae", "model_config": _plain(model.cfg), **metadata}
    return FixedPointNetwork(layers, input_spec, decoder={"kind": "rate"}, metadata=meta)


def _rebuild_roy_ae(net: FixedPointNetwork) -> RoyAE:
    cfg = RoyAEModelConfig(**net.metadata["model_config"])
    model = RoyAE(net.in_features, cfg)
    with torch.no_grad():
        for block, layer in zip((model.encoder, model.decoder), net.layers, strict=True):
            block.weight.copy_(torch.from_numpy(np.array(layer.weight)).to(block.weight.dtype)
                               / cfg.scale)
    return model


def _layers_roy_ae(model: RoyAE, x: torch.Tensor) -> list[torch.Tensor]:
    out = model(x)
    return [out.hidden, out.spikes]


QUANTIZERS: dict[type, Callable[..., FixedPointNetwork]] = {RoyAE: _quantize_roy_ae}
REBUILDERS: dict[str, Callable[[FixedPointNetwork], torch.nn.Module]] = {
    "roy-ae": _rebuild_roy_ae}
# Every layer's spikes ``(batch, neurons, time)`` of a rebuilt float model, in export order.
LAYER_OUTPUTS: dict[str, Callable[[Any, torch.Tensor], list[torch.Tensor]]] = {
    "roy-ae": _layers_roy_ae}


def quantize(model: torch.nn.Module, input_spec: InputSpec, *,
             metadata: dict[str, Any] | None = None) -> FixedPointNetwork:
    """The deployed network of a trained ``model`` fed as ``input_spec`` says."""
    quantizer = QUANTIZERS.get(type(model))
    if quantizer is None:
        raise InputTypeError(f"no quantizer for {type(model).__name__}; known: "
                             f"{', '.join(t.__name__ for t in QUANTIZERS)}")
    if not isinstance(input_spec, InputSpec):
        raise InputTypeError(f"input_spec must be an InputSpec, got {type(input_spec).__name__}")
    return quantizer(model, input_spec, dict(metadata or {}))


def float_model(net: FixedPointNetwork) -> torch.nn.Module:
    """Rebuild the training model (float weights = mantissa / scale) from an export."""
    kind = net.metadata.get("model_kind")
    if kind not in REBUILDERS:
        raise ConfigError(f"the export's model kind {kind!r} has no training model here; "
                          f"known: {', '.join(REBUILDERS)}")
    return REBUILDERS[kind](net)


@torch.no_grad()
def float_layers(net: FixedPointNetwork, spikes: torch.Tensor) -> list[np.ndarray]:
    """Every layer's spikes of the training model rebuilt from ``net`` (uint8 numpy arrays)."""
    model = float_model(net)
    outputs = LAYER_OUTPUTS[net.metadata["model_kind"]](model, torch.as_tensor(spikes).float())
    return [o.numpy().astype(np.uint8) for o in outputs]


def _plain(cfg: Any) -> dict[str, Any]:
    from dataclasses import asdict
    return asdict(cfg)

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

from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import CubaNeuron, DenseLayer, StochasticReadoutLayer
from spikecodec.errors import ConfigError, InputTypeError
from spikecodec.train.blocks import CubaDense
from spikecodec.train.models.roy_ae import RoyAE, RoyAEModelConfig
from spikecodec.train.vdib.model import VDIB, VDIBEncoder, VDIBModelConfig
from spikecodec.train.vdib.readout import StochasticReadout


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


def readout_layer(readout: StochasticReadout, name: str = "readout") -> StochasticReadoutLayer:
    """The VDIB stochastic readout as our custom export layer (same integers as its
    quantized mode: :meth:`StochasticReadout.fixed_point`)."""
    m = {k: v.cpu().numpy().astype(np.int64) for k, v in readout.mantissas().items()}
    p = readout.fixed_point()
    return StochasticReadoutLayer(
        name=name, weight=m["weight"], i_decay=p.du, v_decay=p.dv, fb_decay=p.dg,
        fb_weight=m["feedback"], bias=m["bias"], lut=p.lut.cpu().numpy(),
        lut_shift=p.lut_shift, lut_offset=p.lut_offset, seed=p.seed)


def _quantize_vdib(model: VDIB, input_spec: InputSpec, metadata: dict[str, Any]):
    enc = model.encoder
    layers = [dense_layer(block, f"hidden{i}") for i, block in enumerate(enc.hidden)]
    layers.append(readout_layer(enc.readout))
    meta = {"model_kind": "vdib", "model_config": _plain(enc.cfg), **metadata}
    return FixedPointNetwork(layers, input_spec, decoder=model.decoder.export(), metadata=meta)


def _rebuild_vdib(net: FixedPointNetwork) -> VDIB:
    from dataclasses import replace

    from spikecodec.train import config as config_io
    from spikecodec.train.vdib.decoders import ANNDecoder

    cfg = config_io.from_dict(VDIBModelConfig, net.metadata["model_config"])
    last = net.layers[-1]
    cfg = replace(cfg, readout=replace(cfg.readout, seed=int(last.seed)))  # the export's seed
    encoder = VDIBEncoder(net.in_features, cfg, generator=torch.Generator().manual_seed(0))
    p = encoder.readout.fixed_point()
    if (p.du, p.dv, p.dg, p.lut_shift, p.lut_offset) != (
            last.i_decay, last.v_decay, last.fb_decay, last.lut_shift, last.lut_offset) \
            or not np.array_equal(p.lut.numpy(), last.lut):
        raise ConfigError(f"{last.name}: the export's readout decays or sigmoid table differ "
                          f"from what its model_config gives; the export was edited by hand?")
    with torch.no_grad():
        for block, layer in zip(encoder.hidden, net.layers[:-1], strict=True):
            block.weight.copy_(torch.from_numpy(np.array(layer.weight, dtype=np.float32))
                               / cfg.scale)
        ro, layer, s = encoder.readout, last, cfg.readout.scale
        ro.weight.copy_(torch.from_numpy(np.array(layer.weight, dtype=np.float32)) / s)
        ro.bias.copy_(torch.from_numpy(np.array(layer.bias, dtype=np.float32)) / s)
        ro.feedback.copy_(torch.from_numpy(np.array(layer.fb_weight, dtype=np.float32)) / s)
    decoder = ANNDecoder.from_export(net.decoder) if net.decoder.get("kind") == "ann" else None
    return VDIB(encoder, decoder)


def _layers_vdib(model: VDIB, x: torch.Tensor) -> list[torch.Tensor]:
    """Hidden spikes and the readout's spikes in quantized mode (the deployed arithmetic, so
    the parity report compares like with like: the float mode samples with torch's RNG)."""
    out = model.encoder(x, mode="quantized")
    return [h.permute(1, 2, 0) for h in out.hidden] + [out.readout.spikes]


QUANTIZERS: dict[type, Callable[..., FixedPointNetwork]] = {RoyAE: _quantize_roy_ae,
                                                            VDIB: _quantize_vdib}
REBUILDERS: dict[str, Callable[[FixedPointNetwork], torch.nn.Module]] = {
    "roy-ae": _rebuild_roy_ae, "vdib": _rebuild_vdib}
# Every layer's spikes ``(batch, neurons, time)`` of a rebuilt float model, in export order.
LAYER_OUTPUTS: dict[str, Callable[[Any, torch.Tensor], list[torch.Tensor]]] = {
    "roy-ae": _layers_roy_ae, "vdib": _layers_vdib}


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

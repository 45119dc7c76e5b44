"""Trained blocks -> layers of a :class:`~spikecodec.deploy.ir.FixedPointNetwork`.

Training is quantization-aware already: every :class:`~spikecodec.train.blocks.CubaDense`
forward pass uses the rounded 8-bit weight mantissas and the integer Loihi neuron, so exporting
only reads the integers out. What training does *not* model are Lava's 24-bit wrap of the
current and saturation of the voltage; the parity report (:mod:`spikecodec.workflows.parity`)
counts where they bite. Each family's ``export`` hook assembles its network from these pieces.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from spikecodec.deploy.layers import CubaNeuron, DenseLayer
from spikecodec.train.blocks import CubaDense


def dense_layer(block: CubaDense, name: str) -> DenseLayer:
    """One CUBA dense block as a NetX dense layer (weights as SLAYER exports them)."""
    p = block.neuron.fixed_point()
    neuron = CubaNeuron(i_decay=p.du, v_decay=p.dv, v_th_mant=block.neuron.v_th_mant)
    weight = block.weight_mantissa().cpu().numpy().astype(np.int64)
    return DenseLayer(name=name, weight=weight, neuron=neuron)


def plain(cfg: Any) -> dict[str, Any]:
    """A config dataclass as a plain dict (stored as ``model_config`` in the export)."""
    return dataclasses.asdict(cfg)


def quantize_blocks(blocks: Any, *, num_steps: int, input_shape: tuple[int, ...] | None = None,
                    names: list[str] | None = None,
                    metadata: dict[str, Any] | None = None):
    """A user's feed-forward CUBA network as a :class:`~spikecodec.deploy.ir.FixedPointNetwork`
    that exports, runs and checks like the paper models.

    ``blocks`` is a sequence (``torch.nn.Sequential``, ``ModuleList`` or list) of
    :class:`~spikecodec.train.blocks.CubaDense` blocks and/or lava-dl
    ``lava.lib.dl.slayer.block.cuba.Dense`` blocks, of any depth and sizes, decays 0..4096
    included. Weights and neuron parameters are read as each library exports them (SLAYER's
    own ``pre_hook_fx(..., descale=True)`` and ``device_params`` for lava-dl blocks), so
    nothing is rounded again. SLAYER's ``delay_shift`` only shifts a float model's outputs by
    one step per block -- the latency the backends realign -- so it is accepted either way.
    Refused with a :class:`~spikecodec.errors.ConfigError` naming the block: other module
    types, learnable delays, graded spikes, per-neuron decays, batch-norm or bias.
    ``num_steps`` is T; ``input_shape`` the shape of one sample (default ``(in_features,)``);
    ``names`` the layer names (default ``layer0``, ...); ``metadata`` goes to
    :class:`~spikecodec.deploy.info.ExportInfo` (``source`` defaults to ``"user"``).
    """
    from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
    from spikecodec.errors import ConfigError

    modules = list(blocks.children()) if isinstance(blocks, torch.nn.Module) else list(blocks)
    if not modules:
        raise ConfigError("quantize_blocks needs at least one block")
    if names is not None and len(names) != len(modules):
        raise ConfigError(f"names has {len(names)} entries for {len(modules)} blocks")
    layers = []
    for i, block in enumerate(modules):
        name = names[i] if names is not None else f"layer{i}"
        if isinstance(block, CubaDense):
            layers.append(dense_layer(block, name))
        elif _is_slayer_dense(block):
            layers.append(slayer_dense_layer(block, name))
        else:
            raise ConfigError(f"block {i} ({name}): a {type(block).__module__}."
                              f"{type(block).__name__} is not a CUBA dense block; use "
                              f"spikecodec.train.blocks.CubaDense or "
                              f"lava.lib.dl.slayer.block.cuba.Dense")
    shape = tuple(input_shape) if input_shape is not None else (layers[0].in_features,)
    info = {"source": "user", **(metadata or {})}
    return FixedPointNetwork(layers, InputSpec("spikes", num_steps, shape), metadata=info)


def _is_slayer_dense(block: Any) -> bool:
    cls = type(block)
    return cls.__name__ == "Dense" and cls.__module__.startswith("lava.lib.dl.slayer.block.cuba")


def slayer_dense_layer(block: Any, name: str) -> DenseLayer:
    """A lava-dl ``slayer.block.cuba.Dense`` as a NetX dense layer, read as lava-dl's own
    ``export_hdf5`` reads it."""
    from spikecodec.errors import ConfigError

    where = f"block {name!r} (lava-dl cuba.Dense)"
    if getattr(block, "delay", None) is not None:
        raise ConfigError(f"{where}: learnable axonal delays have no NetX dense equivalent here")
    neuron = block.neuron
    if getattr(neuron, "graded_spike", False):
        raise ConfigError(f"{where}: graded spikes are not supported (binary spikes only)")
    if getattr(neuron, "norm", None) is not None or getattr(block, "bias", None) is not None:
        raise ConfigError(f"{where}: batch-norm / bias is not supported; train without it")
    synapse = block.synapse
    if getattr(synapse, "weight_norm_enabled", False):
        raise ConfigError(f"{where}: disable weight norm first "
                          f"(block.synapse.disable_weight_norm())")
    if hasattr(synapse, "imag"):
        raise ConfigError(f"{where}: complex synapses are not supported")
    with torch.no_grad():
        w = synapse.pre_hook_fx(synapse.weight, descale=True)
    weight = w.reshape(w.shape[:2]).cpu().numpy()
    if not np.array_equal(weight, np.round(weight)):
        raise ConfigError(f"{where}: the exported weights are not integers (a pre_hook_fx "
                          f"that does not quantize?)")
    params = neuron.device_params
    values = {}
    for key in ("iDecay", "vDecay", "vThMant"):
        value = np.asarray(params[key]).reshape(-1)
        if value.size != 1:
            raise ConfigError(f"{where}: per-neuron {key} ({value.size} values); one Loihi "
                              f"layer has one (train with shared decays)")
        values[key] = int(value[0])
    cuba = CubaNeuron(i_decay=values["iDecay"], v_decay=values["vDecay"],
                      v_th_mant=values["vThMant"])
    return DenseLayer(name=name, weight=weight.astype(np.int64), neuron=cuba)

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

"""Layer kinds of a :class:`~spikecodec.deploy.ir.FixedPointNetwork`: one module per kind."""
from __future__ import annotations

from spikecodec.deploy.layers.dense import CubaNeuron, DenseLayer
from spikecodec.deploy.layers.stochastic_readout import StochasticReadoutLayer

LAYER_KINDS: dict[str, type] = {k.kind: k for k in (DenseLayer, StochasticReadoutLayer)}

__all__ = ["LAYER_KINDS", "CubaNeuron", "DenseLayer", "StochasticReadoutLayer"]

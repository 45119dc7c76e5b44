"""Layer kinds of a :class:`~spikecodec.deploy.ir.FixedPointNetwork`: one module per kind.

Each module holds the kind's frozen dataclass and every hook a consumer calls
(:mod:`spikecodec.deploy.layers.base` lists them). Adding a kind is one new module and its line
in :data:`LAYER_KINDS` below; :func:`~spikecodec.deploy.layers.base.register_kinds` refuses a
kind that lacks a hook.
"""
from __future__ import annotations

from spikecodec.deploy.layers.base import register_kinds
from spikecodec.deploy.layers.delay_readout import DelayReadoutLayer
from spikecodec.deploy.layers.dense import CubaNeuron, DenseLayer
from spikecodec.deploy.layers.spike_once_alpha import SpikeOnceAlphaLayer
from spikecodec.deploy.layers.stochastic_readout import StochasticReadoutLayer

LAYER_KINDS: dict[str, type] = register_kinds(
    DenseLayer,
    StochasticReadoutLayer,
    SpikeOnceAlphaLayer,
    DelayReadoutLayer,
)

__all__ = ["LAYER_KINDS", "CubaNeuron", "DelayReadoutLayer", "DenseLayer", "SpikeOnceAlphaLayer",
           "StochasticReadoutLayer", "register_kinds"]

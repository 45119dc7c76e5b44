"""The standard dense layer: fully connected synapses into Loihi CUBA-LIF neurons (NetX ``dense``).

Units are Loihi's (the dynamics are :mod:`spikecodec.lava_procs.cuba`): ``weight`` holds the
integers NetX reads from HDF5, one input spike adds ``weight << 6`` to the current ``u`` (Lava's
Dense re-expresses them as an 8-bit mantissa and an exponent,
:func:`spikecodec.deploy.weights.lava_weights`); ``bias`` is Lava's ``bias_mant`` with
``bias_exp = 6``; decays are on the 4096 scale and the threshold is ``v_th_mant`` (Lava compares
``v > v_th_mant << 6``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from spikecodec.errors import ConfigError
from spikecodec.lava_procs.spec import (
    BIAS_MAX,
    BIAS_MIN,
    DECAY_MAX,
    REF_DELAY_MAX,
    REF_DELAY_MIN,
    V_TH_MANT_MAX,
    V_TH_MANT_MIN,
    WEIGHT_MAX,
    WEIGHT_MIN,
)
from spikecodec.validate import check_int, check_int_array


@dataclass(frozen=True)
class CubaNeuron:
    """Loihi CUBA-LIF parameters exactly as NetX stores them (``neuron/`` in HDF5)."""

    i_decay: int  # current decay, 1..4096 (4096: current forgets each step); Lava du = i_decay-1
    v_decay: int  # voltage decay, 0..4096
    v_th_mant: int  # threshold mantissa, spike when v > v_th_mant << 6
    ref_delay: int = 1  # refractory steps (NetX's CUBA ignores it; stored for the record)

    def validate(self, layer: str) -> None:
        check_int(layer, "neuron.i_decay", self.i_decay, 1, DECAY_MAX)
        check_int(layer, "neuron.v_decay", self.v_decay, 0, DECAY_MAX)
        check_int(layer, "neuron.v_th_mant", self.v_th_mant, V_TH_MANT_MIN, V_TH_MANT_MAX)
        check_int(layer, "neuron.ref_delay", self.ref_delay, REF_DELAY_MIN, REF_DELAY_MAX)


@dataclass(frozen=True)
class DenseLayer:
    """Fully connected synapses ``(out, in)`` followed by CUBA-LIF neurons (NetX ``dense``)."""

    kind: ClassVar[str] = "dense"
    standard: ClassVar[bool] = True  # NetX builds it

    name: str
    weight: np.ndarray  # (out_features, in_features) integers in [-256, 254]
    neuron: CubaNeuron
    bias: np.ndarray | None = None  # (out_features,) bias mantissas, or None

    @property
    def in_features(self) -> int:
        return int(np.shape(self.weight)[1])

    @property
    def out_features(self) -> int:
        return int(np.shape(self.weight)[0])

    def validate(self) -> DenseLayer:
        """Check types and ranges; return a copy holding read-only int64 arrays."""
        if np.ndim(self.weight) != 2 or 0 in np.shape(self.weight):
            raise ConfigError(f"{self.name}: weight must be a non-empty 2-D (out, in) array, "
                              f"got shape {np.shape(self.weight)}")
        weight = check_int_array(self.name, "weight", self.weight, np.shape(self.weight),
                                 WEIGHT_MIN, WEIGHT_MAX)
        self.neuron.validate(self.name)
        bias = None
        if self.bias is not None:
            bias = check_int_array(self.name, "bias", self.bias, (weight.shape[0],),
                                   BIAS_MIN, BIAS_MAX)
        return DenseLayer(self.name, weight, self.neuron, bias)

"""FixedPointNetwork: the plain, validated description of an exported network.

Everything after training consumes only this: the HDF5 format (:mod:`spikecodec.deploy.hdf5`),
the backends (:mod:`spikecodec.deploy.reference`, :mod:`spikecodec.deploy.lava_sim`) and the
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
from typing import Any, ClassVar

import numpy as np

from spikecodec.errors import ConfigError

FORMAT_VERSION = 1

# Limits of what NetX loads and Lava's fixed_pt models hold (lava-nc 0.10 / lava-dl 0.6).
WEIGHT_MIN, WEIGHT_MAX = -256, 254  # signed 8-bit mantissas with an even step (NetX clips here)
DECAY_MAX = 4096  # iDecay / vDecay on the 4096 scale
V_TH_MANT_MAX = 2**17 - 1  # Lava's vth: 17 bits
BIAS_MIN, BIAS_MAX = -(2**12), 2**12 - 1  # Lava's bias_mant: signed 13 bits
REF_DELAY_MAX = 63


def _check_int(layer: str, name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{layer}: {name} must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise ConfigError(f"{layer}: {name} must be in [{lo}, {hi}], got {value}")
    return int(value)


def _check_int_array(layer: str, name: str, value: Any, shape: tuple[int, ...], lo: int,
                     hi: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != shape:
        raise ConfigError(f"{layer}: {name} must have shape {shape}, got {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ConfigError(f"{layer}: {name} contains non-finite values")
        if not np.array_equal(arr, np.round(arr)):
            raise ConfigError(f"{layer}: {name} must hold integers, found fractional values")
    elif arr.dtype.kind not in "iu":
        raise ConfigError(f"{layer}: {name} must be an integer array, got dtype {arr.dtype}")
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise ConfigError(f"{layer}: {name} must lie in [{lo}, {hi}], "
                          f"got values in [{arr.min():g}, {arr.max():g}]")
    out = arr.astype(np.int64)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class CubaNeuron:
    """Loihi CUBA-LIF parameters exactly as NetX stores them (``neuron/`` in HDF5)."""

    i_decay: int  # current decay, 0..4096 (4096: current forgets each step); Lava du = i_decay-1
    v_decay: int  # voltage decay, 0..4096
    v_th_mant: int  # threshold mantissa, spike when v > v_th_mant << 6
    ref_delay: int = 1  # refractory steps (NetX's CUBA ignores it; stored for the record)

    def validate(self, layer: str) -> None:
        _check_int(layer, "neuron.i_decay", self.i_decay, 1, DECAY_MAX)
        _check_int(layer, "neuron.v_decay", self.v_decay, 0, DECAY_MAX)
        _check_int(layer, "neuron.v_th_mant", self.v_th_mant, 1, V_TH_MANT_MAX)
        _check_int(layer, "neuron.ref_delay", self.ref_delay, 1, REF_DELAY_MAX)


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

    def validate(self) -> "DenseLayer":
        """Check types and ranges; return a copy holding read-only int64 arrays."""
        if np.ndim(self.weight) != 2 or 0 in np.shape(self.weight):
            raise ConfigError(f"{self.name}: weight must be a non-empty 2-D (out, in) array, "
                              f"got shape {np.shape(self.weight)}")
        weight = _check_int_array(self.name, "weight", self.weight, np.shape(self.weight),
                                  WEIGHT_MIN, WEIGHT_MAX)
        self.neuron.validate(self.name)
        bias = None
        if self.bias is not None:
            bias = _check_int_array(self.name, "bias", self.bias, (weight.shape[0],),
                                    BIAS_MIN, BIAS_MAX)
        return DenseLayer(self.name, weight, self.neuron, bias)


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
        _check_int("input", "num_steps", self.num_steps, 1, 2**20)
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
            if getattr(layer, "kind", None) not in LAYER_TYPES:
                raise ConfigError(f"layer {i}: unknown layer type {type(layer).__name__}; "
                                  f"known: {sorted(LAYER_TYPES)}")
            layer = layer.validate()
            if layer.in_features != previous:
                raise ConfigError(f"{layer.name}: expects {layer.in_features} inputs but the "
                                  f"previous stage has {previous} outputs")
            previous = layer.out_features
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
    def latency(self) -> int:
        """Steps between an input spike and the output it causes (one per Dense)."""
        return len(self.layers)

    def summary(self) -> str:
        rows = [f"{'layer':<10} {'type':<8} {'in':>6} {'out':>6}  neuron"]
        for layer in self.layers:
            n = layer.neuron
            rows.append(f"{layer.name:<10} {layer.kind:<8} {layer.in_features:>6} "
                        f"{layer.out_features:>6}  iDecay={n.i_decay} vDecay={n.v_decay} "
                        f"vThMant={n.v_th_mant}")
        return "\n".join(rows)


# Layer kinds a FixedPointNetwork may hold. Custom layers (the VDIB stochastic readout, Comsa
# pulses) register here and in spikecodec.deploy.hdf5 when they arrive.
LAYER_TYPES: dict[str, type] = {DenseLayer.kind: DenseLayer}

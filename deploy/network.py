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
from spikecodec.lava_procs.cuba import STATE_EXP

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


@dataclass(frozen=True)
class StochasticReadoutLayer:
    """VDIB readout: dense synapses ``(K * N, in)`` into ``N`` stochastic-threshold neurons.

    The dynamics are :mod:`spikecodec.lava_procs.stochastic_readout.dynamics` (equations in its
    docstring): ``K`` alpha-shaped basis responses per synapse (row ``k * N + i`` of ``weight``
    feeds basis ``k`` of neuron ``i``), an exponential feedback of the neuron's own spikes, a
    bias, and a spike drawn with probability ``lut[bin(m)] / 2^16`` from a counter-based PRNG
    keyed by ``(seed, neuron, step, sample)``. Weights are NetX integers (the synapse is a Lava
    Dense, :func:`spikecodec.deploy.weights.lava_weights`); ``fb_weight`` and ``bias`` are
    mantissas shifted left by 6 into state units, like a CUBA bias.
    """

    kind: ClassVar[str] = "stochastic_readout"
    standard: ClassVar[bool] = False  # our Lava process, not a NetX block

    name: str
    weight: np.ndarray  # (K * N, in) integers in [-256, 254]
    i_decay: tuple[int, ...]  # current decay per basis, 0..4096
    v_decay: tuple[int, ...]  # voltage decay per basis, 0..4096
    fb_decay: int  # decay of the feedback trace, 0..4096
    fb_weight: np.ndarray  # (N,) feedback mantissas
    bias: np.ndarray  # (N,) bias mantissas
    lut: np.ndarray  # (L,) P(spike) * 2^16 per membrane bin
    lut_shift: int  # bin = (m >> lut_shift) + lut_offset, clipped to the table
    lut_offset: int
    seed: int  # PRNG seed in [0, 2^32)

    @property
    def num_basis(self) -> int:
        return len(self.i_decay)

    @property
    def in_features(self) -> int:
        return int(np.shape(self.weight)[1])

    @property
    def out_features(self) -> int:
        return int(np.shape(self.weight)[0]) // max(self.num_basis, 1)

    def params(self, xp_array=np.asarray):
        """:class:`~spikecodec.lava_procs.stochastic_readout.dynamics.ReadoutParams` with the
        arrays made by ``xp_array`` (e.g. ``torch.as_tensor``) in state units."""
        from spikecodec.lava_procs.stochastic_readout.dynamics import ReadoutParams

        return ReadoutParams(
            du=tuple(self.i_decay), dv=tuple(self.v_decay), dg=self.fb_decay,
            w_fb=xp_array(np.asarray(self.fb_weight, dtype=np.int64) << STATE_EXP),
            bias=xp_array(np.asarray(self.bias, dtype=np.int64) << STATE_EXP),
            lut=xp_array(np.asarray(self.lut, dtype=np.int64)), lut_shift=self.lut_shift,
            lut_offset=self.lut_offset, seed=self.seed)

    def validate(self) -> "StochasticReadoutLayer":
        """Check types and ranges; return a copy holding read-only int64 arrays."""
        from spikecodec.lava_procs.stochastic_readout.dynamics import PROB_ONE, check_seed

        k = len(self.i_decay) if isinstance(self.i_decay, (tuple, list)) else 0
        if k < 1 or not isinstance(self.v_decay, (tuple, list)) or len(self.v_decay) != k:
            raise ConfigError(f"{self.name}: i_decay and v_decay must be equal-length tuples "
                              f"(one decay per basis response), got {self.i_decay!r}, "
                              f"{self.v_decay!r}")
        i_decay = tuple(_check_int(self.name, "i_decay", d, 0, DECAY_MAX) for d in self.i_decay)
        v_decay = tuple(_check_int(self.name, "v_decay", d, 0, DECAY_MAX) for d in self.v_decay)
        shape = np.shape(self.weight)
        if len(shape) != 2 or 0 in shape or shape[0] % k:
            raise ConfigError(f"{self.name}: weight must be a non-empty (K * N, in) array with "
                              f"K = {k} basis responses, got shape {shape}")
        weight = _check_int_array(self.name, "weight", self.weight, shape, WEIGHT_MIN,
                                  WEIGHT_MAX)
        n = shape[0] // k
        lut = np.asarray(self.lut)
        if lut.ndim != 1 or lut.size < 2:
            raise ConfigError(f"{self.name}: lut must be a 1-D table of >= 2 entries, "
                              f"got shape {lut.shape}")
        try:
            seed = check_seed(self.seed)
        except ConfigError as err:
            raise ConfigError(f"{self.name}: {err}") from err
        return StochasticReadoutLayer(
            name=self.name, weight=weight, i_decay=i_decay, v_decay=v_decay,
            fb_decay=_check_int(self.name, "fb_decay", self.fb_decay, 0, DECAY_MAX),
            fb_weight=_check_int_array(self.name, "fb_weight", self.fb_weight, (n,), BIAS_MIN,
                                       BIAS_MAX),
            bias=_check_int_array(self.name, "bias", self.bias, (n,), BIAS_MIN, BIAS_MAX),
            lut=_check_int_array(self.name, "lut", lut, lut.shape, 0, PROB_ONE),
            lut_shift=_check_int(self.name, "lut_shift", self.lut_shift, 0, 31),
            lut_offset=_check_int(self.name, "lut_offset", self.lut_offset, -(2**31),
                                  2**31 - 1),
            seed=seed)


# Layer kinds a FixedPointNetwork may hold; custom kinds also register in
# spikecodec.deploy.hdf5 (format), reference (engine), lava_sim (process) and check (mapping).
LAYER_TYPES: dict[str, type] = {DenseLayer.kind: DenseLayer,
                                StochasticReadoutLayer.kind: StochasticReadoutLayer}

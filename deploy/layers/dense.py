"""The standard dense layer: fully connected synapses into Loihi CUBA-LIF neurons (NetX ``dense``).

Units are Loihi's (the dynamics are written once, in :mod:`spikecodec.lava_procs.cuba`):
``weight`` holds the integers NetX reads from HDF5, one input spike adds ``weight << 6`` to the
current ``u`` (Lava's Dense re-expresses them as an 8-bit mantissa and an exponent,
:func:`spikecodec.deploy.weights.lava_weights`; lossless unless every weight of the layer is
``<= 0``, which the Loihi 2 check flags); ``bias`` is Lava's ``bias_mant`` with ``bias_exp = 6``
(it adds ``bias << 6`` to ``v`` each step); decays are on the 4096 scale (``i_decay = 4096``
forgets the current every step) and the threshold is ``v_th_mant`` (Lava compares
``v > v_th_mant << 6``).

Every consumer builds the same neuron: HDF5 ``/layer/{i}`` exactly as lava-dl's SLAYER writes it,
the reference engine's :class:`DensePlan` (``cuba_step``), and in Lava NetX's own dense block
(:meth:`DenseLayer.build_lava`, used where NetX does not build the layer from the file).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from spikecodec.deploy.check import altered_weights, bit_problems, core_estimate, signed_bits
from spikecodec.errors import ConfigError, ExportError
from spikecodec.lava_procs.cuba import CubaParams, CubaState, cuba_step, cuba_step_hits
from spikecodec.lava_procs.spec import (
    BIAS_BITS,
    BIAS_MAX,
    BIAS_MIN,
    DECAY_BITS,
    DECAY_MAX,
    DECAY_MIN,
    REF_DELAY_MAX,
    REF_DELAY_MIN,
    STATE_BITS,
    STATE_EXP,
    U_MAX,
    V_TH_BITS,
    V_TH_MANT_MAX,
    V_TH_MANT_MIN,
    WEIGHT_BITS,
    WEIGHT_MAX,
    WEIGHT_MIN,
)
from spikecodec.validate import check_int, check_int_array

# HDF5 ``neuron/`` datasets of a CUBA neuron and the CubaNeuron fields they hold (SLAYER's names).
NEURON_FIELDS = {"iDecay": "i_decay", "vDecay": "v_decay", "vThMant": "v_th_mant",
                 "refDelay": "ref_delay"}


@dataclass(frozen=True)
class CubaNeuron:
    """Loihi CUBA-LIF parameters exactly as NetX stores them (``neuron/`` in HDF5)."""

    i_decay: int  # current decay, 0..4096 (4096: forgets each step, 0: never); NetX du = i_decay-1
    v_decay: int  # voltage decay, 0..4096
    v_th_mant: int  # threshold mantissa, spike when v > v_th_mant << 6
    ref_delay: int = 1  # refractory steps (NetX's CUBA ignores it; stored for the record)

    def validate(self, layer: str) -> None:
        check_int(layer, "neuron.i_decay", self.i_decay, DECAY_MIN, DECAY_MAX)
        check_int(layer, "neuron.v_decay", self.v_decay, DECAY_MIN, DECAY_MAX)
        check_int(layer, "neuron.v_th_mant", self.v_th_mant, V_TH_MANT_MIN, V_TH_MANT_MAX)
        check_int(layer, "neuron.ref_delay", self.ref_delay, REF_DELAY_MIN, REF_DELAY_MAX)


@dataclass(frozen=True)
class DenseLayer:
    """Fully connected synapses ``(out, in)`` followed by CUBA-LIF neurons (NetX ``dense``)."""

    kind: ClassVar[str] = "dense"  # also its NetX type in /layer/{i}/type
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

    # ------------------------------------------------------------------ IR
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

    def check_num_steps(self, num_steps: int) -> None:
        """Any number of steps per sample fits this layer."""

    def describe(self) -> str:
        n = self.neuron
        return f"iDecay={n.i_decay} vDecay={n.v_decay} vThMant={n.v_th_mant}"

    # ------------------------------------------------------------------ HDF5
    def write_hdf5(self, group) -> None:
        """SLAYER's layout, in SLAYER's order (the bytes of an export depend on it)."""
        group.create_dataset("type", (1,), "S10", [self.kind.encode()])
        group.create_dataset("shape", data=np.array([self.out_features]))
        group.create_dataset("inFeatures", data=self.in_features)
        group.create_dataset("outFeatures", data=self.out_features)
        group.create_dataset("weight", data=self.weight.astype(np.float32))
        if self.bias is not None:
            group.create_dataset("bias", data=self.bias.astype(np.float32))
        neuron = group.create_group("neuron")
        neuron.create_dataset("type", data="CUBA")
        for key, attr in NEURON_FIELDS.items():
            neuron.create_dataset(key, data=getattr(self.neuron, attr))
        neuron.create_dataset("gradedSpike", data=False)

    @classmethod
    def read_hdf5(cls, group, name: str) -> DenseLayer:
        """Read SLAYER's layout; ``shape``, ``inFeatures`` and ``outFeatures`` (what NetX sizes
        the layer by) must agree with ``weight``, or NetX and we would build other layers."""
        import h5py

        from spikecodec.deploy.h5read import read_dataset, read_scalar_int, read_text

        where = f"layer '{name}' ({group.name})"
        weight = read_dataset(group, "weight", where)
        if weight.ndim == 1:  # SLAYER squeezes a single output neuron
            weight = weight.reshape(1, -1)
        if weight.ndim != 2:
            raise ExportError(f"{where}: dataset 'weight' must be 2-D (out, in), got shape "
                              f"{weight.shape}")
        out_n, in_n = weight.shape
        declared = {"outFeatures": out_n, "inFeatures": in_n}
        for key, expected in declared.items():
            if key in group and read_scalar_int(group, key, where) != expected:
                raise ExportError(f"{where}: dataset '{key}' says "
                                  f"{read_scalar_int(group, key, where)}, the weight "
                                  f"{weight.shape} says {expected}")
        if "shape" in group:
            shape = read_dataset(group, "shape", where)
            if shape.reshape(-1).tolist() != [out_n]:
                raise ExportError(f"{where}: dataset 'shape' is {shape.reshape(-1).tolist()}, "
                                  f"the weight {weight.shape} has {out_n} outputs")
        bias = read_dataset(group, "bias", where) if "bias" in group else None
        neuron_group = group.get("neuron")
        if not isinstance(neuron_group, h5py.Group):
            raise ExportError(f"{where}: missing group 'neuron'")
        kind = read_text(neuron_group, "type", where + "/neuron")
        if kind not in ("CUBA", "LOIHI"):
            raise ExportError(f"{where}: neuron type {kind!r} is not supported (only CUBA)")
        values = {}
        for key, attr in NEURON_FIELDS.items():
            if key == "refDelay" and key not in neuron_group:
                values[attr] = 1
                continue
            values[attr] = read_scalar_int(neuron_group, key, where + "/neuron")
        return cls(name=name, weight=weight, neuron=CubaNeuron(**values), bias=bias)

    # ------------------------------------------------------------------ reference engine
    def reference_plan(self, *, device, steps: int, dtype=None,
                       bounded: bool | None = None) -> DensePlan:
        """The layer on ``device`` for ``steps`` steps per sample; ``dtype`` / ``bounded`` force
        the GEMM dtype and the bounded step (tests). The state is int32 only where
        :func:`~spikecodec.deploy.backends.reference.bounds_reachable` proves that Lava's wrap
        and clip cannot bite (the proof is in that module's docstring)."""
        import torch

        from spikecodec.deploy.backends.reference import bounds_reachable, make_synapse

        synapse = make_synapse(self.weight, device, dtype)
        n = self.neuron
        bias = np.asarray(0 if self.bias is None else self.bias, dtype=np.int64) << STATE_EXP
        params = CubaParams(du=n.i_decay, dv=n.v_decay, vth=n.v_th_mant << STATE_EXP)
        reachable = bounds_reachable(synapse.a_max, params, int(np.abs(bias).max()), steps)
        bounded = reachable if bounded is None else bounded
        state = torch.int64 if bounded or reachable else torch.int32
        if np.any(bias):
            params = replace(params, bias=torch.as_tensor(bias, dtype=state, device=device))
        return DensePlan(synapse=synapse, params=params, bounded=bounded, state=state)

    # ------------------------------------------------------------------ Lava
    def build_lava(self, schedule) -> tuple[Any, Any]:
        """NetX's dense block, built as ``netx.hdf5.Network`` builds ``/layer/{i}``: NetX's
        ``optimize_weight_bits`` of the float32 weights, NetX's neuron parameters (``LIFReset``,
        ``du = iDecay - 1``, ``bias_exp = 6``) with the reset on the step the layer integrates
        each sample's first input (``reset_offset`` = that 1-based Lava step). Returns the
        block's ``(inp, out)``."""
        from lava.lib.dl.netx.blocks.process import Dense as DenseBlock
        from lava.lib.dl.netx.hdf5 import Network

        from spikecodec.deploy.backends.lava_sim import netx_weights

        mantissa, num_bits, exponent = netx_weights(self.weight)
        config = {"type": "CUBA", **{key: getattr(self.neuron, attr)
                                     for key, attr in NEURON_FIELDS.items()}}
        neuron = Network.get_neuron_params(config, reset_interval=schedule.period,
                                           reset_offset=schedule.offset + 1)
        bias = None if self.bias is None else np.asarray(self.bias, dtype=np.float32)
        block = DenseBlock(shape=(self.out_features,), neuron_params=neuron, weight=mantissa,
                           num_weight_bits=num_bits, weight_exponent=exponent,
                           input_message_bits=0, bias=bias, name=self.name)
        return block.inp, block.out

    # ------------------------------------------------------------------ NIR
    def to_nir(self, *, dt: float) -> list[tuple[str, Any]]:
        """``Linear`` + ``CubaLIF`` in the layer's integer units, whose Euler step of ``dt`` is
        this neuron without Loihi's rounding (:mod:`spikecodec.deploy.nirgraph`)."""
        from spikecodec.deploy.nirgraph import dense_nodes

        n = self.neuron
        return dense_nodes(self.name, self.weight, self.bias, n.i_decay, n.v_decay,
                           n.v_th_mant, dt=dt)

    @classmethod
    def from_nir(cls, spec) -> tuple[DenseLayer, dict[str, Any]]:
        """Quantize a float layer (:class:`~spikecodec.deploy.nirgraph.FloatCuba`) to Loihi
        fixed point; return the layer and what rounding changed. Where the graph's own units
        are already Loihi integers (one threshold, integral weights and biases in range: e.g.
        a graph spikecodec wrote), they are kept as they are (lossless); otherwise ``vThMant``
        is the largest that keeps every weight in 8 bits and every bias in 13."""
        du_f = (1.0 - spec.alpha) * DECAY_MAX
        dv_f = (1.0 - spec.beta) * DECAY_MAX
        du = int(np.clip(round(du_f), DECAY_MIN, DECAY_MAX))
        dv = int(np.clip(round(dv_f), DECAY_MIN, DECAY_MAX))
        w_norm, b_norm = spec.normalised
        weight, bias, vth = _integral_units(spec)
        lossless = weight is not None
        if not lossless:
            w_max = float(np.abs(w_norm).max())
            b_max = float(np.abs(b_norm).max())
            caps = [V_TH_MANT_MAX]
            if w_max > 0:
                caps.append(int(WEIGHT_MAX // w_max))
            if b_max > 0:
                caps.append(int(BIAS_MAX // b_max))
            vth = max(V_TH_MANT_MIN, min(caps))
            weight = 2 * np.rint(w_norm * vth / 2)  # even mantissas: 8 bits with the exponent
            bias = np.rint(b_norm * vth)
        clipped = int(((weight < WEIGHT_MIN) | (weight > WEIGHT_MAX)).sum()
                      + ((bias < BIAS_MIN) | (bias > BIAS_MAX)).sum())
        weight = np.clip(weight, WEIGHT_MIN, WEIGHT_MAX).astype(np.int64)
        bias = np.clip(bias, BIAS_MIN, BIAS_MAX).astype(np.int64)
        w_err = np.abs(weight / vth - w_norm)
        layer = cls(name=spec.name, weight=weight,
                    neuron=CubaNeuron(i_decay=du, v_decay=dv, v_th_mant=int(vth)),
                    bias=bias if np.any(bias) else None).validate()
        report = {
            "layer": spec.name, "nodes": list(spec.nodes), "lossless_units": lossless,
            "i_decay": {"exact": du_f, "used": du}, "v_decay": {"exact": dv_f, "used": dv},
            "v_th_mant": int(vth),
            "weights_changed": float((w_err > 1e-9).mean()),
            "weight_max_error": float(w_err.max()),  # in units of the threshold
            "bias_max_error": float(np.abs(bias / vth - b_norm).max()),
            "clipped": clipped,
        }
        return layer, report

    # ------------------------------------------------------------------ Loihi 2 check
    def loihi2_check(self, *, num_steps: int) -> dict[str, Any]:
        """A standard CUBA LIF on Loihi 2: every field against its register."""
        w = self.weight
        worst_u = int(np.abs(w).sum(axis=1).max()) << STATE_EXP  # every input spiking at once
        n = self.neuron
        fields = {
            "weight": (signed_bits(w), WEIGHT_BITS),
            "vThMant": (int(n.v_th_mant).bit_length(), V_TH_BITS),
            "bias": (signed_bits(self.bias) if self.bias is not None else 0, BIAS_BITS),
            "iDecay": ((n.i_decay - 1).bit_length(), DECAY_BITS),  # hardware stores iDecay - 1
            "vDecay": (int(n.v_decay).bit_length(), DECAY_BITS),
            "u (one step of input)": (worst_u.bit_length() + 1, STATE_BITS),
        }
        warnings = []
        if worst_u >= U_MAX:
            warnings.append(f"all inputs spiking at once add {worst_u} to u (> 2^23): the "
                            f"current can wrap; the reference engine's u_wraps counter shows "
                            f"whether it does")
        warnings.extend(altered_weights(w))
        if not np.any(w):
            warnings.append("every weight is zero: netx.hdf5.Network cannot load this export "
                            "(NetX's optimize_weight_bits divides by the zero maximum); "
                            "spikecodec's lava-sim builds the layer itself, and on hardware the "
                            "layer can be dropped (it never drives its neurons)")
        return {"layer": self.name, "kind": self.kind, "neurons": self.out_features,
                "synapses": int(np.count_nonzero(w)), "dense_synapses": int(w.size),
                "bits": fields, "cores": core_estimate(self.out_features, w.size),
                "mapping": "netx Dense + CUBA LIF (standard Loihi 2 neuron)", "standard": True,
                "problems": bit_problems(fields), "warnings": warnings}


def _integral_units(spec) -> tuple[Any, Any, int]:
    """``(weight, bias, vThMant)`` when a float layer's own units are Loihi integers in range
    (one threshold, integral weights and biases), else ``(None, None, 0)``."""
    if np.any(spec.threshold != spec.threshold[0]):
        return None, None, 0
    th, w, b = float(spec.threshold[0]), spec.weight, spec.bias
    rw, rb = np.rint(w), np.rint(b)
    if (th != round(th) or not V_TH_MANT_MIN <= th <= V_TH_MANT_MAX
            or np.abs(w - rw).max() > 1e-6 or np.abs(b - rb).max() > 1e-6
            or rw.min() < WEIGHT_MIN or rw.max() > WEIGHT_MAX or signed_bits(rw) > WEIGHT_BITS
            or rb.min() < BIAS_MIN or rb.max() > BIAS_MAX):
        return None, None, 0
    return rw, rb, int(th)


@dataclass(frozen=True)
class DensePlan:
    """A dense layer in the reference engine: Lava's Dense, then ``cuba_step`` on ``(B, out)``
    state of dtype ``state``; bounded (``cuba_step_hits``) only where the bounds can bite."""

    synapse: Any  # spikecodec.deploy.backends.reference.Synapse
    params: CubaParams  # in state units (bias: a tensor or 0)
    bounded: bool  # Lava's wrap / clip can be reached (else the plain step is the same)
    state: Any  # torch.int32 where |u|, |v| < 2^23 is proven, else torch.int64

    def zero_state(self, batch: int):
        """``(CubaState, wraps, clips)``: the counters only when bounded."""
        import torch

        zeros = torch.zeros((batch, self.synapse.rows), dtype=self.state,
                            device=self.synapse.weight_t.device)
        if not self.bounded:
            return CubaState(zeros, zeros), None, None
        counters = [torch.zeros_like(zeros, dtype=torch.int32) for _ in range(2)]
        return CubaState(zeros, zeros), *counters

    def step(self, state, a, *, t: int, samples):
        cuba, wraps, clips = state
        if self.bounded:
            cuba, _, s, hits = cuba_step_hits(cuba, a, self.params)
            wraps += hits.u_wrapped
            clips += hits.v_clipped
        else:
            cuba, _, s = cuba_step(cuba, a, self.params, voltage=False)
        return (cuba, wraps, clips), s

    def counts(self, state) -> tuple[int, int]:
        _, wraps, clips = state
        return (0, 0) if wraps is None else (int(wraps.sum()), int(clips.sum()))

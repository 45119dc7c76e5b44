"""Loihi 2 compatibility check of a FixedPointNetwork, layer by layer.

For each layer: neurons, synapses, the bits each integer field uses against what a Loihi 2 core
holds, the worst-case current one step of input can add (Lava and Loihi wrap ``u`` at 24 bits),
an estimate of the cores it needs, and how it maps to hardware.

The core estimate is deliberately simple and says so: a Loihi 2 neuro-core hosts up to 8,192
neurons and, for this estimate, 128 KiB of synaptic memory holding dense synapses at their
weight precision; real placement (lava-loihi's compiler) also spends memory on routing tables
and microcode, so treat the number as a lower bound.

The VDIB stochastic readout has no standard Loihi 2 neuron (none fires with probability
``sigmoid(m)``); its row describes the two ways to map it (:func:`_stochastic_readout`) and
measures its fields against the registers of the second one (standard CUBA compartments).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.deploy.layers import DenseLayer, StochasticReadoutLayer
from spikecodec.deploy.weights import lava_weights
from spikecodec.lava_procs.cuba import DECAY_SCALE, STATE_EXP
from spikecodec.lava_procs.stochastic_readout.dynamics import PROB_BITS

NEURONS_PER_CORE = 8192
SYNAPSE_BITS_PER_CORE = 128 * 1024 * 8
U_BITS = 24  # current and voltage registers
WEIGHT_BITS = 8  # weight mantissa; an exponent scales the whole matrix
V_TH_BITS = 17
BIAS_BITS = 13  # signed
DECAY_BITS = 12  # unsigned; iDecay = 4096 is reachable through the ds_offset bit
LUT_BITS = PROB_BITS + 1  # readout table entries in [0, 2^16]: 2^16 (certain spike) needs 17
HOST_VALUE_BYTES = 3  # one 24-bit potential read out to the host
V_TH_MAX = ((1 << V_TH_BITS) - 1) << STATE_EXP  # highest CUBA threshold: 2^23 - 64


def signed_bits(values: np.ndarray) -> int:
    """Bits of a two's-complement integer holding every value (after common trailing zeros)."""
    v = np.asarray(values, dtype=np.int64).ravel()
    v = v[v != 0]
    if v.size == 0:
        return 1
    shift = int(np.min([(int(x) & -int(x)).bit_length() - 1 for x in np.unique(np.abs(v))]))
    v = v >> shift
    magnitude = int(max(v.max(), -v.min() - 1, 0)).bit_length()
    return magnitude + (1 if v.min() < 0 else 0)


def _dense(layer: DenseLayer, *, num_steps: int) -> dict[str, Any]:
    w = layer.weight
    synapses = int(np.count_nonzero(w))
    w_bits = signed_bits(w)
    worst_u = int(np.abs(w).sum(axis=1).max()) << 6  # every input spiking in one step
    n = layer.neuron
    fields = {
        "weight": (w_bits, WEIGHT_BITS),
        "vThMant": (int(n.v_th_mant).bit_length(), V_TH_BITS),
        "bias": (signed_bits(layer.bias) if layer.bias is not None else 0, BIAS_BITS),
        "iDecay": ((n.i_decay - 1).bit_length(), DECAY_BITS),  # hardware stores iDecay - 1
        "vDecay": (int(n.v_decay).bit_length(), DECAY_BITS),
        "u (one step of input)": (worst_u.bit_length() + 1, U_BITS),
    }
    problems = [f"{name} needs {used} bits > {avail}" for name, (used, avail) in fields.items()
                if used > avail and not name.startswith("u ")]
    warnings = []
    if worst_u >= 2**(U_BITS - 1):
        warnings.append(f"all inputs spiking at once add {worst_u} to u (> 2^23): the current "
                        f"can wrap; the reference engine's u_wraps counter shows whether it does")
    warnings.extend(_altered_weights(w))
    cores = max(math.ceil(layer.out_features / NEURONS_PER_CORE),
                math.ceil(w.size * WEIGHT_BITS / SYNAPSE_BITS_PER_CORE))
    return {"layer": layer.name, "kind": layer.kind, "neurons": layer.out_features,
            "synapses": synapses, "dense_synapses": int(w.size), "bits": fields,
            "cores": cores, "mapping": "netx Dense + CUBA LIF (standard Loihi 2 neuron)",
            "standard": True,
            "problems": problems, "warnings": warnings}


def _altered_weights(w: np.ndarray) -> list[str]:
    """A warning when Lava's Dense cannot hold ``w`` exactly (spikecodec.deploy.weights)."""
    mantissa, exponent = lava_weights(w)
    if np.array_equal(mantissa, w << -exponent if exponent <= 0 else w >> exponent):
        return []
    return ["NetX and Lava's Dense change these weights (every weight is <= 0, see "
            "spikecodec.deploy.weights): the deployed layer differs from the trained one; the "
            "parity report shows by how much"]


def _stochastic_readout(layer: StochasticReadoutLayer, *, num_steps: int) -> dict[str, Any]:
    """The readout on Loihi 2: no standard neuron fires with probability ``sigmoid(m)``.

    (a) A microcoded neuron (lava-loihi): Loihi 2 neuro-cores run user neuron programs, and
    each core has pseudo-random number hardware, but its draws are not keyed by (seed, neuron,
    step, sample): spikes match the reference in distribution only. Needs lava-loihi (Intel
    INRC) and an NcProcessModel of our process, which spikecodec does not have.

    (b) The synapses and the ``K`` alpha filters as standard CUBA compartments (current =
    ``u_k``, voltage = ``v_k``) with the highest threshold, their ``N * K`` 24-bit potentials
    read out every step; the host adds the feedback trace and the bias, looks up the table and
    draws with the same PRNG: bit-exact with the reference while no compartment wraps, spikes
    or hits a decay the hardware lacks. The bits below are measured against this mapping.
    """
    w = layer.weight
    k, n = layer.num_basis, layer.out_features
    worst_a = int(np.abs(w).sum(axis=1).max()) << STATE_EXP  # every input spiking at once
    fields = {
        "weight": (signed_bits(w), WEIGHT_BITS),
        "bias": (signed_bits(layer.bias), BIAS_BITS),
        "fbWeight": (signed_bits(layer.fb_weight), BIAS_BITS),
        "iDecay": (max(max(d - 1, 0).bit_length() for d in layer.i_decay), DECAY_BITS),
        "vDecay": (max(int(d).bit_length() for d in layer.v_decay), DECAY_BITS),
        "fbDecay": (int(layer.fb_decay).bit_length(), DECAY_BITS),
        "lut": (int(np.max(layer.lut)).bit_length(), LUT_BITS),
        "u (one step of input)": (worst_a.bit_length() + 1, U_BITS),
    }
    problems = [f"{name} needs {used} bits > {avail}" for name, (used, avail) in fields.items()
                if used > avail and not name.startswith("u ")]
    if 0 in layer.i_decay:
        problems.append("iDecay = 0 (a current that never decays) has no CUBA compartment: "
                        "Loihi decays the current by du + 1 >= 1 (Lava's ds_offset)")
    warnings = []
    u_peak, v_peak = _alpha_peaks(worst_a, layer.i_decay, layer.v_decay)
    if u_peak >= 2**(U_BITS - 1):
        warnings.append(f"with every input spiking a basis current can reach {u_peak} (>= 2^23): "
                        f"the readout saturates it, a CUBA compartment (mapping (b)) wraps it")
    if v_peak > V_TH_MAX:
        warnings.append(f"with every input spiking a basis potential can reach {v_peak} > "
                        f"{V_TH_MAX}, the highest CUBA threshold ((2^17 - 1) << 6): in mapping "
                        f"(b) such a compartment would spike and reset")
    warnings.extend(_altered_weights(w))  # the readout's synapse is a Dense too
    per_step = n * k * HOST_VALUE_BYTES
    per_sample = num_steps * per_step
    feedback = ("nonzero feedback weights cost no round trip: the trace depends only on the "
                "host's own draws, so the host keeps it" if np.any(layer.fb_weight)
                else "no feedback (fb_weight = 0)")
    notes = [
        "no standard Loihi 2 neuron fires with probability sigmoid(m); two mappings:",
        "(a) microcoded neuron via lava-loihi: Loihi 2 neuro-cores run user microcode and have "
        "per-core pseudo-random number hardware, but its draws are not keyed by (seed, neuron, "
        "step, sample), so spikes match the reference only in distribution, not bit for bit; "
        "needs lava-loihi (Intel INRC) and an NcProcessModel, which spikecodec does not have "
        "yet",
        f"(b) the synapses and the {k} alpha filter(s) as standard CUBA compartments "
        f"({n * k} of them) with the highest threshold, read out every step (state probes or "
        f"24-bit graded spikes) and sampled on the host with the same PRNG, bit-exact with the "
        f"reference: {n} x {k} x 3 B = {per_step} B per step leave the chip, {num_steps} x "
        f"{per_step} = {per_sample} B per sample; the host does the bias, the feedback trace, "
        f"the table look-up and the draw ({feedback})",
        "the loihi2 backend runs neither yet; --backend lava-sim runs the readout on the CPU",
    ]
    cores = max(math.ceil(n * k / NEURONS_PER_CORE),
                math.ceil(w.size * WEIGHT_BITS / SYNAPSE_BITS_PER_CORE))
    return {"layer": layer.name, "kind": layer.kind, "neurons": n, "compartments": n * k,
            "synapses": int(np.count_nonzero(w)), "dense_synapses": int(w.size),
            "bits": fields, "cores": cores, "standard": False,
            "mapping": "no standard neuron: (a) microcode, or (b) CUBA compartments + host "
                       "sampling (notes)",
            "host_bytes_per_step": per_step, "host_bytes_per_sample": per_sample,
            "problems": problems, "warnings": warnings, "notes": notes}


def _alpha_peaks(worst_a: int, i_decay, v_decay) -> tuple[int, int]:
    """Upper bounds of ``|u_k|`` (before saturation) and ``|v_k|`` over the basis responses for
    an input of at most ``worst_a`` per step: the current settles below ``a 4096 / du``, the
    voltage below ``u 4096 / dv``; a decay of 0 lets them grow to the 24-bit limit."""
    limit = 2**(U_BITS - 1) - 1
    u_peak = v_peak = 0
    for du, dv in zip(i_decay, v_decay, strict=True):
        u = worst_a * DECAY_SCALE // du if du else (limit + 1 if worst_a else 0)
        v = min(limit, u) * DECAY_SCALE // dv if dv else (limit if u else 0)
        u_peak, v_peak = max(u_peak, u), max(v_peak, min(v, limit))
    return u_peak, v_peak


# How each layer kind is checked: checker(layer, num_steps=T) -> row; custom layers register here.
CHECKERS = {DenseLayer.kind: _dense, StochasticReadoutLayer.kind: _stochastic_readout}


def loihi2_report(net: FixedPointNetwork) -> dict[str, Any]:
    """Per-layer resources and compatibility; ``ok`` is False when a field cannot fit,
    ``standard`` when a layer has no standard Loihi 2 mapping (its row's notes say how)."""
    layers = [CHECKERS[layer.kind](layer, num_steps=net.num_steps) for layer in net.layers]
    return {"layers": layers, "cores": sum(row["cores"] for row in layers),
            "neurons": sum(row["neurons"] for row in layers),
            "synapses": sum(row["synapses"] for row in layers),
            "host_bytes_per_sample": sum(row.get("host_bytes_per_sample", 0) for row in layers),
            "standard": all(row["standard"] for row in layers),
            "ok": not any(row["problems"] for row in layers)}


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{'layer':<10} {'neurons':>8} {'synapses':>9} {'cores':>5}  "
             f"bits used/available  mapping"]
    for row in report["layers"]:
        bits = ", ".join(f"{name.split(' ')[0]} {used}/{avail}"
                         for name, (used, avail) in row["bits"].items())
        lines.append(f"{row['layer']:<10} {row['neurons']:>8} {row['synapses']:>9} "
                     f"{row['cores']:>5}  {bits}  {row['mapping']}")
        lines.extend(f"  PROBLEM: {p}" for p in row["problems"])
        lines.extend(f"  warning: {w}" for w in row["warnings"])
        lines.extend(f"  note: {note}" for note in row.get("notes", ()))
    verdict = "fits Loihi 2" if report["ok"] else "does NOT fit Loihi 2 as is"
    if report["ok"] and not report["standard"]:
        verdict = "fits Loihi 2 only through a non-standard mapping (notes)"
    host = report["host_bytes_per_sample"]
    lines.append(f"total: {report['neurons']} neurons, {report['synapses']} synapses, "
                 f"~{report['cores']} core(s) (lower bound)"
                 + (f", {host} B per sample to the host in mapping (b)" if host else "")
                 + f"; {verdict}")
    return "\n".join(lines)

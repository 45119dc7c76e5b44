"""Loihi 2 compatibility check of a FixedPointNetwork, layer by layer.

For each layer: neurons, synapses, the bits each integer field uses against what a Loihi 2 core
holds, the worst-case current one step of input can add (Lava and Loihi wrap ``u`` at 24 bits),
an estimate of the cores it needs, and how it maps to hardware.

The core estimate is deliberately simple and says so: a Loihi 2 neuro-core hosts up to 8,192
neurons and, for this estimate, 128 KiB of synaptic memory holding dense synapses at their
weight precision; real placement (lava-loihi's compiler) also spends memory on routing tables
and microcode, so treat the number as a lower bound.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from spikecodec.deploy.network import DenseLayer, FixedPointNetwork
from spikecodec.deploy.weights import lava_weights

NEURONS_PER_CORE = 8192
SYNAPSE_BITS_PER_CORE = 128 * 1024 * 8
U_BITS = 24  # current and voltage registers
WEIGHT_BITS = 8  # weight mantissa; an exponent scales the whole matrix
V_TH_BITS = 17
BIAS_BITS = 13  # signed
DECAY_BITS = 12  # unsigned; iDecay = 4096 is reachable through the ds_offset bit


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


def _dense(layer: DenseLayer) -> dict[str, Any]:
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
    mantissa, exponent = lava_weights(w)
    if not np.array_equal(mantissa, w << -exponent if exponent <= 0 else w >> exponent):
        warnings.append("NetX and Lava's Dense change these weights (every weight is <= 0, "
                        "see spikecodec.deploy.weights): the deployed layer differs from the "
                        "trained one; the parity report shows by how much")
    cores = max(math.ceil(layer.out_features / NEURONS_PER_CORE),
                math.ceil(w.size * WEIGHT_BITS / SYNAPSE_BITS_PER_CORE))
    return {"layer": layer.name, "kind": layer.kind, "neurons": layer.out_features,
            "synapses": synapses, "dense_synapses": int(w.size), "bits": fields,
            "cores": cores, "mapping": "netx Dense + CUBA LIF (standard Loihi 2 neuron)",
            "problems": problems, "warnings": warnings}


# How each layer kind is checked; custom layers register here.
CHECKERS = {DenseLayer.kind: _dense}


def loihi2_report(net: FixedPointNetwork) -> dict[str, Any]:
    """Per-layer resources and compatibility; ``ok`` is False when a field cannot fit."""
    layers = [CHECKERS[layer.kind](layer) for layer in net.layers]
    return {"layers": layers, "cores": sum(row["cores"] for row in layers),
            "neurons": sum(row["neurons"] for row in layers),
            "synapses": sum(row["synapses"] for row in layers),
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
    verdict = "fits Loihi 2" if report["ok"] else "does NOT fit Loihi 2 as is"
    lines.append(f"total: {report['neurons']} neurons, {report['synapses']} synapses, "
                 f"~{report['cores']} core(s) (lower bound); {verdict}")
    return "\n".join(lines)

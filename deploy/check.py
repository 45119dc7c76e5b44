"""Loihi 2 compatibility check of a FixedPointNetwork, layer by layer.

For each layer, its kind's ``loihi2_check`` hook (:mod:`spikecodec.deploy.layers`) reports:
neurons, synapses, the bits each integer field uses against what a Loihi 2 core holds, the
worst-case current one step of input can add (Lava and Loihi wrap ``u`` at 24 bits), an
estimate of the cores it needs, and how it maps to hardware. This module holds what the rows
share (the bit count, the core estimate, the weights NetX alters) and sums and prints them.

The core estimate is deliberately simple and says so: a Loihi 2 neuro-core hosts up to 8,192
neurons and, for this estimate, 128 KiB of synaptic memory holding dense synapses at their
weight precision; real placement (lava-loihi's compiler) also spends memory on routing tables
and microcode, so treat the number as a lower bound.

A kind with no standard Loihi 2 neuron (the VDIB stochastic readout: none fires with
probability ``sigmoid(m)``) says so in its row (``standard: False``) and its notes describe the
ways to map it.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from spikecodec.deploy.weights import lava_weights
from spikecodec.lava_procs.spec import NEURONS_PER_CORE, SYNAPSE_BITS_PER_CORE, WEIGHT_BITS

if TYPE_CHECKING:
    from spikecodec.deploy.ir import FixedPointNetwork


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


def bit_problems(fields: dict[str, tuple[int, int]]) -> list[str]:
    """A problem per register field ``name: (bits used, bits available)`` that does not fit;
    the one-step current (``"u ..."``) is a warning of the kind, not a problem."""
    return [f"{name} needs {used} bits > {avail}" for name, (used, avail) in fields.items()
            if used > avail and not name.startswith("u ")]


def core_estimate(neurons: int, dense_synapses: int) -> int:
    """Lower bound of the cores for ``neurons`` compartments and a dense synapse matrix of
    ``dense_synapses`` weights (module docstring)."""
    return max(math.ceil(neurons / NEURONS_PER_CORE),
               math.ceil(dense_synapses * WEIGHT_BITS / SYNAPSE_BITS_PER_CORE))


def altered_weights(w: np.ndarray) -> list[str]:
    """A warning when Lava's Dense cannot hold ``w`` exactly (spikecodec.deploy.weights)."""
    mantissa, exponent = lava_weights(w)
    if np.array_equal(mantissa, w << -exponent if exponent <= 0 else w >> exponent):
        return []
    return ["NetX and Lava's Dense change these weights (every weight is <= 0, see "
            "spikecodec.deploy.weights): the deployed layer differs from the trained one; the "
            "parity report shows by how much"]


def loihi2_report(net: FixedPointNetwork) -> dict[str, Any]:
    """Per-layer resources and compatibility; ``ok`` is False when a field cannot fit,
    ``standard`` when a layer has no standard Loihi 2 mapping (its row's notes say how)."""
    layers = [layer.loihi2_check(num_steps=net.num_steps) for layer in net.layers]
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

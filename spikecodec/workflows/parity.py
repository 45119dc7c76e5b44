"""Parity report: the float training model, the reference engine and the Lava simulator on the
same input spikes, layer by layer.

This answers the question lava-dl users ask most (lava-dl issues #63, #77, #92: "my exported
network behaves differently in Lava"): for each layer, which fraction of (sample, neuron, step)
entries agree with the reference engine and how many samples agree exactly, plus the task
metric for each engine. The reference engine also counts the places where Lava's 24-bit current
wrap or voltage saturation changed the state -- the only arithmetic training does not model.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from spikecodec.deploy.backends import BACKENDS, run
from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.deploy.metrics import image_mse, spike_mse
from spikecodec.train.families import FAMILIES, get_family


def default_engines() -> tuple[str, ...]:
    """The float training model and every backend that can run on this machine (the
    ``loihi2`` backend too, where lava-loihi is installed)."""
    return ("float",) + tuple(name for name, backend in BACKENDS.items()
                              if backend.unavailable() is None)


@torch.no_grad()
def float_layers(net: FixedPointNetwork, spikes: Any) -> list[np.ndarray]:
    """Every layer's spikes of the training model rebuilt from ``net`` by its family (uint8
    ``(batch, neurons, time)`` arrays, export order)."""
    family = get_family(net.metadata.model_kind)
    model = family.rebuild(net)
    outputs = family.layer_outputs(model, torch.as_tensor(spikes).float())
    return [o.numpy().astype(np.uint8) for o in outputs]


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of equal (sample, neuron, step) entries of two ``(batch, n, time)`` arrays."""
    return float((a == b).mean())


def samples_equal(a: list[np.ndarray], b: list[np.ndarray]) -> int:
    """Samples whose spikes agree in every layer of the two per-layer lists."""
    equal = [(x == y).reshape(len(x), -1).all(axis=1) for x, y in zip(a, b, strict=True)]
    return int(np.all(equal, axis=0).sum())


def parity_report(net: FixedPointNetwork, spikes: torch.Tensor, *,
                  images: torch.Tensor | None = None, engines: tuple[str, ...] | None = None,
                  metric: tuple[str, Callable[[np.ndarray], float]] | None = None,
                  show_progress: bool = False,
                  backend_options: dict[str, dict[str, Any]] | None = None,
                  spikes_out: dict[str, list[np.ndarray]] | None = None) -> dict[str, Any]:
    """Run ``spikes (batch, in, time)`` on each engine; compare every layer with the reference.

    ``engines`` defaults to :func:`default_engines`. ``float`` is skipped (and said so) when the
    export's model kind has no training model here.
    ``images`` (``(batch, pixels)``) selects the reconstruction MSE as the metric, otherwise
    Spike-MSE of the output. ``metric = (name, score)`` replaces both: ``score`` maps the output
    spikes ``(batch, n, time)`` uint8 to one number (e.g. a host decoder's task error, for
    networks whose output is not a reconstruction of the input). ``backend_options`` maps an
    engine to its backend's options (e.g. ``{"lava-sim": {"workers": 2}}``). ``spikes_out``,
    when given, receives every engine's per-layer spikes.
    """
    layers: dict[str, list[np.ndarray]] = {}
    notes = []
    stats: dict[str, Any] = {}
    engines = default_engines() if engines is None else engines
    for engine in ("reference",) + tuple(e for e in engines if e != "reference"):
        if engine == "float":
            if net.metadata.model_kind not in FAMILIES:
                notes.append("float: no training model for this export's model kind; skipped")
                continue
            layers[engine] = float_layers(net, spikes)
        else:
            result = run(net, spikes, backend=engine, probe=True, show_progress=show_progress,
                         **(backend_options or {}).get(engine, {}))
            layers[engine] = result.layers
            stats[engine] = result.stats
    if spikes_out is not None:
        spikes_out.update(layers)
    ref = layers["reference"]
    rows = []
    for engine, outs in layers.items():
        out = torch.from_numpy(outs[-1].astype(np.float32))
        if metric is not None:
            value = float(metric[1](outs[-1]))
        else:
            value = (image_mse(images, out) if images is not None
                     else spike_mse(torch.as_tensor(spikes).float(), out)).mean().item()
        per_layer = []
        for layer, a, b in zip(net.layers, outs, ref, strict=True):
            per_layer.append({
                "layer": layer.name,
                "agreement": agreement(a, b),
                "samples_equal": samples_equal([a], [b]),
                "spikes": int(a.sum()),
            })
        rows.append({"engine": engine, "metric": value, "layers": per_layer})
    ref_stats = stats.get("reference", {})
    name = metric[0] if metric is not None else "mse" if images is not None else "spike_mse"
    return {"samples": int(len(spikes)), "metric": name,
            "engines": rows, "u_wraps": ref_stats.get("u_wraps"),
            "v_clips": ref_stats.get("v_clips"), "notes": notes}


def check_parity(net: FixedPointNetwork, family, inputs, *, show_progress: bool = False,
                 backend_options: dict[str, dict[str, Any]] | None = None
                 ) -> tuple[dict[str, Any], bool]:
    """Parity of ``inputs`` on every engine (``backend_options`` as :func:`parity_report`),
    scored with the family's metric (spikes per sample where it cannot score, e.g. no host
    decoder); ``ok`` when every engine the family holds to exactness agrees with the reference
    on every layer."""
    from spikecodec.errors import ExportError

    notes = []
    try:
        family.require_scorable(net)
        metric = ("mse", lambda spikes: family.score(net, inputs, spikes)["mse"])
    except ExportError as err:
        notes.append(f"cannot score the outputs ({err}); comparing spikes only")
        metric = ("spikes/sample", lambda spikes: float(spikes.sum()) / len(spikes))
    spikes: dict[str, list[np.ndarray]] = {}
    report = parity_report(net, inputs.spikes, metric=metric, show_progress=show_progress,
                           backend_options=backend_options, spikes_out=spikes)
    details = family.parity_details(net, inputs, spikes["reference"])
    if details is not None:
        report["details"] = details
    if "float" in family.exact_engines:
        notes.append("(the float row is the training model in its deployed arithmetic, so "
                     "every row must agree exactly)")
    report["notes"] = notes + report["notes"]
    ok = all(layer["agreement"] == 1.0 for row in report["engines"]
             if row["engine"] in family.exact_engines for layer in row["layers"])
    return report, ok


def check_file_parity(net: FixedPointNetwork, inputs, *, show_progress: bool = False,
                      backend_options: dict[str, dict[str, Any]] | None = None
                      ) -> tuple[dict[str, Any], bool]:
    """Parity of a spike file's ``inputs`` on every engine, scored by spikes per sample (a file
    carries no task); the float row where the export names a family here. ``ok`` as
    :func:`check_parity`: the family's exact engines (reference and lava-sim for an export of
    no family) agree with the reference on every layer."""
    metric = ("spikes/sample", lambda spikes: float(spikes.sum()) / len(spikes))
    report = parity_report(net, inputs.spikes, metric=metric, show_progress=show_progress,
                           backend_options=backend_options)
    kind = net.metadata.model_kind
    exact = FAMILIES[kind].exact_engines if kind in FAMILIES else ("reference", "lava-sim")
    ok = all(layer["agreement"] == 1.0 for row in report["engines"]
             if row["engine"] in exact for layer in row["layers"])
    return report, ok

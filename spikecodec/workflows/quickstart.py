"""Deploy a finished training run: export, evaluate on every engine, compare, draw figures.

``deploy_run(run_dir)`` is the second half of the quickstart and works for every family: it
quantizes the trained model to ``export.h5``, evaluates the whole test split on the reference
engine and the float training model with the *same* input spikes, replays a subset on the Lava
simulator, and writes ``deployed.json``, ``deployed_reconstructions.png`` (when the outputs are
images) and ``output_raster.png`` into the run directory.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spikecodec.atomic import write_json
from spikecodec.deploy.backends import run
from spikecodec.train import plots
from spikecodec.train.families import ExportInputs, Family
from spikecodec.workflows.evaluate import evaluate_export, slice_inputs, synaptic_ops
from spikecodec.workflows.exporting import export_run, family_of
from spikecodec.workflows.parity import agreement, float_layers, samples_equal

# the main job: the Roy AE-SNN on scikit-learn's digits, small enough for seconds on a laptop
QUICKSTART_SETTINGS = ("data.dataset=digits", "train.epochs=20", "model.hidden=32",
                       "train.batch_size=50")


def quickstart(out: str | None = None, *, lava_samples: int = 40, settings: list[str] = (),
               show_progress: bool = True, log: Callable[[str], None] = print
               ) -> dict[str, Any]:
    """Train the Roy AE-SNN on the embedded digits, export it and deploy it on every engine
    (:func:`deploy_run`), printing each part; returns the deployment results."""
    from spikecodec.train.families import get_family
    from spikecodec.workflows.reports import format_deployment
    from spikecodec.workflows.training import default_run_dir, start_run, train_run

    family = get_family("roy-ae")
    out = out or str(default_run_dir("quickstart"))
    plan = start_run(family, overrides=[*QUICKSTART_SETTINGS, *settings], out=out)
    log(f"quickstart: Roy et al. AE-SNN on scikit-learn's digits (no download) -> {out}")
    run_ = train_run(family, plan, show_progress=show_progress, log=log)
    log(family.format_results(run_.results))
    log("\nquantize -> NetX HDF5 export -> reference engine (whole test split) and Lava "
        "simulator (subset)")
    deployed = deploy_run(plan.run_dir, lava_samples=lava_samples, show_progress=show_progress,
                          log=log)
    log(format_deployment(deployed))
    log(f"run directory: {out} (export.h5, deployed.json, deployed_reconstructions.png, "
        f"output_raster.png, reconstructions.png, loss.png, metrics.csv, results.json)")
    return deployed


def _agreement(net, a: list[np.ndarray], b: list[np.ndarray]) -> dict[str, float]:
    """Per layer name: fraction of equal (sample, neuron, step) entries."""
    return {layer.name: agreement(x, y) for layer, x, y in zip(net.layers, a, b, strict=True)}


def deploy_run(run_dir: str | os.PathLike, *, lava_samples: int = 40, data_dir: str | None = None,
               show_progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Export ``run_dir``, evaluate it on every engine and write results and figures there."""
    run_dir = Path(run_dir)
    net, path = export_run(run_dir)
    log(f"exported {path} ({path.stat().st_size / 1024:.0f} KiB)")
    family = family_of(net)
    ref, ref_run, inputs = evaluate_export(net, backend="reference", data_dir=data_dir,
                                           show_progress=show_progress)
    float_out = float_layers(net, inputs.spikes)
    float_mse = family.score(net, inputs, float_out[-1])["mse"]
    n = min(lava_samples, len(inputs.spikes))
    lava, lava_run = None, None
    if n > 0:
        log(f"replaying {n} test samples on the Lava simulator (fixed_pt) ...")
        sub = slice_inputs(inputs, n)
        tic = time.perf_counter()
        lava_run = run(net, sub.spikes, backend="lava-sim", probe=True,
                       show_progress=show_progress)
        lava_seconds = time.perf_counter() - tic  # wall time, Lava's start-up included
        ref_sub = [s[:n] for s in ref_run.layers]
        lava = {
            "samples": n,
            "mse": family.score(net, sub, lava_run.spikes)["mse"],
            "reference_mse_same_samples": family.score(net, sub, ref_run.spikes[:n])["mse"],
            "agreement_with_reference": _agreement(net, lava_run.layers, ref_sub),
            "samples_equal": samples_equal(lava_run.layers, ref_sub),
            "seconds": lava_seconds,
            "samples_per_second": n / lava_seconds,
        }
    x = np.asarray(inputs.spikes, dtype=np.uint8)
    results = {
        "export": str(path),
        "network": " -> ".join([str(net.in_features)] +
                               [str(layer.out_features) for layer in net.layers]),
        "num_steps": net.num_steps,
        "test_samples": len(inputs.spikes),
        "float": {"mse": float_mse,
                  "agreement_with_reference": _agreement(net, float_out, ref_run.layers)},
        "reference": ref,
        "lava_sim": lava,
        "synops_per_sample_float": synaptic_ops(net, x, float_out),
    }
    _figures(run_dir, net, family, inputs, float_out, ref_run, lava_run)
    write_json(run_dir / "deployed.json", results)
    return results


def _figures(run_dir: Path, net, family: Family, inputs: ExportInputs, float_out, ref_run,
             lava_run, k: int = 10) -> None:
    """Reconstructions (when the target and the outputs are images of the input's shape) and
    a raster of the first test sample through every layer."""
    shape = tuple(net.input.shape)
    target = np.asarray(inputs.target[:k])

    def picture(spikes: np.ndarray) -> np.ndarray:
        decoded = family.decode(net, inputs, spikes[:k])
        return spikes[:k].sum(-1) if decoded is None else decoded

    engines = [("float model", float_out[-1]), ("reference", ref_run.spikes)]
    if lava_run is not None:
        engines.append(("Lava sim", lava_run.spikes))
    rows = [("target", target)] + [(label, picture(s)) for label, s in engines]
    if len(shape) == 2 and all(np.shape(r)[1:] == (shape[0] * shape[1],) for _, r in rows):
        plots.reconstruction_grid(rows, shape, run_dir / "deployed_reconstructions.png",
                                  title="outputs per engine, same input spikes")
    panels = [("input", np.asarray(inputs.spikes[0]))]
    panels += [(f"{layer.name} (ref)", s[0])
               for layer, s in zip(net.layers, ref_run.layers, strict=True)]
    if lava_run is not None:
        panels.append((f"{net.layers[-1].name} (Lava)", lava_run.spikes[0]))
    plots.raster(panels, run_dir / "output_raster.png",
                 title=f"test sample 0, T={net.num_steps} (output aligned to input steps)")

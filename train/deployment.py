"""Deploy a finished training run: export, evaluate, compare engines, draw figures.

``deploy_run(run_dir)`` is the second half of the quickstart: it quantizes the trained model to
``export.h5``, evaluates the whole test split on the reference engine and the float training
model with the *same* input spikes, replays a subset on the Lava simulator, and writes
``deployed.json``, ``deployed_reconstructions.png`` and ``output_raster.png`` into the run
directory.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from spikecodec.atomic import write_json
from spikecodec.deploy.backends import run
from spikecodec.deploy.metrics import image_mse
from spikecodec.train import plots
from spikecodec.train.datasets import load_images
from spikecodec.train.parity import agreement, samples_equal
from spikecodec.train.pipeline import evaluate_export, export_run, synaptic_ops
from spikecodec.train.quantize import float_layers


def _agreement(net, a: list[np.ndarray], b: list[np.ndarray]) -> dict[str, float]:
    """Per layer name: fraction of equal (sample, neuron, step) entries."""
    return {layer.name: agreement(x, y) for layer, x, y in zip(net.layers, a, b, strict=True)}


def deploy_run(run_dir: str | os.PathLike, *, lava_samples: int = 40, data_dir: str | None = None,
               show_progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Export ``run_dir``, evaluate it on every engine and write results and figures there."""
    run_dir = Path(run_dir)
    net, path = export_run(run_dir)
    log(f"exported {path} ({path.stat().st_size / 1024:.0f} KiB)")
    meta = net.metadata
    test = load_images(meta["dataset"], "test", data_dir=data_dir)
    ref, ref_run, x = evaluate_export(net, test, backend="reference", show_progress=show_progress)
    with torch.no_grad():
        float_out = float_layers(net, x)
    float_mse = image_mse(test.images, torch.from_numpy(float_out[-1]).float()).mean().item()
    n = min(lava_samples, len(test))
    lava = None
    if n > 0:
        log(f"replaying {n} test samples on the Lava simulator (fixed_pt) ...")
        tic = time.perf_counter()
        lava_run = run(net, x[:n], backend="lava-sim", probe=True, show_progress=show_progress)
        lava_seconds = time.perf_counter() - tic  # wall time, Lava's start-up included
        ref_sub = [s[:n] for s in ref_run.layers]
        lava = {
            "samples": n,
            "mse": image_mse(test.images[:n],
                             torch.from_numpy(lava_run.spikes).float()).mean().item(),
            "reference_mse_same_samples": image_mse(
                test.images[:n], torch.from_numpy(ref_run.spikes[:n]).float()).mean().item(),
            "agreement_with_reference": _agreement(net, lava_run.layers, ref_sub),
            "samples_equal": samples_equal(lava_run.layers, ref_sub),
            "seconds": lava_seconds,
            "samples_per_second": n / lava_seconds,
        }
    results = {
        "export": str(path),
        "network": " -> ".join([str(net.in_features)] +
                               [str(layer.out_features) for layer in net.layers]),
        "num_steps": net.num_steps,
        "test_samples": len(test),
        "float": {"mse": float_mse,
                  "agreement_with_reference": _agreement(net, float_out, ref_run.layers)},
        "reference": ref,
        "lava_sim": lava,
        "synops_per_sample_float": synaptic_ops(net, x.numpy().astype(np.uint8), float_out),
    }
    _figures(run_dir, net, test, float_out, ref_run, lava_run if n > 0 else None, x)
    write_json(run_dir / "deployed.json", results)
    return results


def _figures(run_dir: Path, net, test, float_out, ref_run, lava_run, x) -> None:
    k = 10
    rows = [("image", test.images[:k].numpy()),
            ("float model", float_out[-1][:k].sum(-1)),
            ("reference", ref_run.spikes[:k].sum(-1))]
    if lava_run is not None:
        rows.append(("Lava sim", lava_run.spikes[:k].sum(-1)))
    plots.reconstruction_grid(rows, test.shape, run_dir / "deployed_reconstructions.png",
                              title="output spike counts per pixel, same input spikes")
    panels = [("input", x[0].numpy())]
    panels += [(f"{layer.name} (ref)", s[0])
               for layer, s in zip(net.layers, ref_run.layers, strict=True)]
    if lava_run is not None:
        panels.append((f"{net.layers[-1].name} (Lava)", lava_run.spikes[0]))
    plots.raster(panels, run_dir / "output_raster.png",
                 title=f"test sample 0, T={net.num_steps} (output aligned to input steps)")


def format_deployment(results: dict[str, Any]) -> str:
    ref, lava = results["reference"], results["lava_sim"]
    fmt = "{:<34} {:>12}"
    lines = [f"deployed {results['network']} (T={results['num_steps']}) on "
             f"{results['test_samples']} test samples",
             fmt.format("float model test MSE", f"{results['float']['mse']:.4f}"),
             fmt.format("deployed (reference) test MSE", f"{ref['mse']:.4f}")]
    if lava is not None:
        agree = min(lava["agreement_with_reference"].values())
        lines += [fmt.format(f"Lava sim MSE ({lava['samples']} samples)", f"{lava['mse']:.4f}"),
                  fmt.format("reference vs Lava spike agreement", f"{100 * agree:.2f}%"),
                  fmt.format("  samples identical", f"{lava['samples_equal']}/{lava['samples']}")]
    spikes = ", ".join(f"{k} {v:.1f}" for k, v in ref["spikes_per_sample"].items())
    lines += [fmt.format("spikes per sample", spikes),
              fmt.format("synaptic ops per sample", f"{ref['synops_per_sample']:.0f}"),
              fmt.format("reference engine", f"{ref['samples_per_second']:.0f} samples/s")]
    if lava is not None:
        lines.append(fmt.format("Lava simulator (start-up included)",
                                f"{lava['samples_per_second']:.1f} samples/s"))
    return "\n".join(lines)

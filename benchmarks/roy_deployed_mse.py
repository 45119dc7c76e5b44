"""Deployed vs float test MSE of the Roy et al. AE-SNN on MNIST (target: gap <= 2%).

    .venv/bin/python benchmarks/roy_deployed_mse.py                  # 784-196-784, T=15, 1 epoch
    .venv/bin/python benchmarks/roy_deployed_mse.py --run-dir runs/my-mnist-run

Trains (or reuses ``--run-dir``) the paper's MNIST row, exports it, and scores the whole test set
with the *same* Poisson input spikes on the float training model and on the reference engine
(the deployed network, bit-exact with Lava); a subset also runs on the Lava simulator to show
the reference is what Lava computes.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _common import DEFAULT_DATA_DIR, RESULTS_DIR, RUNS_DIR, environment, write_json_atomic

from spikecodec.deploy.backends import run
from spikecodec.deploy.metrics import image_mse
from spikecodec.train import config as config_io
from spikecodec.train.datasets import load_images
from spikecodec.train.families.roy.config import RoyAEConfig
from spikecodec.train.families.roy.training import train_roy_ae
from spikecodec.workflows.evaluate import evaluate_export
from spikecodec.workflows.exporting import export_run
from spikecodec.workflows.parity import float_layers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", help="reuse a finished MNIST run instead of training")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--lava-samples", type=int, default=200)
    args = parser.parse_args(argv)

    if args.run_dir:
        run_dir = Path(args.run_dir)
    else:
        run_dir = RUNS_DIR / "roy_deployed_mse"
        cfg = config_io.load(RoyAEConfig, None, ["data.dataset=mnist", "ann.enabled=false",
                                                 f"data.data_dir={args.data_dir}"])
        train_roy_ae(cfg, run_dir, show_progress=True)
    net, path = export_run(run_dir)
    test = load_images(net.metadata.dataset, "test", data_dir=args.data_dir)
    ref, ref_run, inputs = evaluate_export(net, backend="reference", data_dir=args.data_dir,
                                           show_progress=True)
    x = inputs.spikes
    tic = time.perf_counter()
    floats = float_layers(net, x)
    float_seconds = time.perf_counter() - tic
    float_mse = image_mse(test.images, torch.from_numpy(floats[-1]).float()).mean().item()
    agreement_float = [float((a == b).mean()) for a, b in
                       zip(floats, ref_run.layers, strict=True)]
    n = args.lava_samples
    lava = run(net, x[:n], backend="lava-sim", probe=True)
    lava_equal = all(np.array_equal(a, b[:n]) for a, b in
                     zip(lava.layers, ref_run.layers, strict=True))
    gap = (ref["mse"] - float_mse) / float_mse
    print(f"{len(test)} MNIST test digits, same input spikes: float MSE {float_mse:.4f}, "
          f"deployed (reference) MSE {ref['mse']:.4f} -> gap {100 * gap:+.2f}% (target <= 2%)")
    print(f"float vs reference spike agreement per layer: "
          f"{', '.join(f'{100 * a:.4f}%' for a in agreement_float)}; current wraps "
          f"{ref.get('u_wraps')}, voltage clips {ref.get('v_clips')}")
    print(f"Lava simulator on the first {n}: every layer identical to the reference: "
          f"{lava_equal}")
    write_json_atomic(RESULTS_DIR / "roy_deployed_mse_mnist.json", {
        "export": str(path), "test_samples": len(test), "float_mse": float_mse,
        "deployed_mse": ref["mse"], "relative_gap": gap,
        "float_vs_reference_agreement": agreement_float,
        "u_wraps": ref.get("u_wraps"), "v_clips": ref.get("v_clips"),
        "reference_samples_per_second": ref["samples_per_second"],
        "float_model_seconds": float_seconds,
        "lava_samples": n, "lava_equal_to_reference": lava_equal,
        "environment": environment()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

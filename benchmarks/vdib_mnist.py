"""VDIB MNIST naturalization (paper Table 1 layout): LeNet accuracy on decoded test images.

Rows: input encoding (time-to-first-spike, Poisson rate) x decoding (VDIB time decoding of the
whole window of readout spikes, or the rate-decoding baseline that feeds spike counts to the
same decoder family) x decoder (MLP, 1-D conv), plus the BPTT hidden-layer variant of the first
row. Every model: 784-600-256 encoder (SRM hidden, stochastic readout), T = 30, trained here with
the paper's learning rule. Each decoded test image is judged by a LeNet-5 the project trains on
MNIST (its own test accuracy is reported). "deployed" = the export run on the bit-exact
``reference`` backend (sigmoid table + counter-based PRNG) and decoded on the host.

    .venv/bin/python benchmarks/vdib_mnist.py [--train-limit 10000] [--epochs 2] [--rows all]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _common import (
    DEFAULT_DATA_DIR,
    RESULTS_DIR,
    RUNS_DIR,
    environment,
    markdown_table,
    write_json_atomic,
)

from spikecodec.deploy.backends import run
from spikecodec.deploy.decoders import decode
from spikecodec.deploy.ir import InputSpec
from spikecodec.train import config as config_io
from spikecodec.train.families.vdib.config import VDIBConfig
from spikecodec.train.families.vdib.family import VDIBFamily
from spikecodec.train.families.vdib.training import eval_batches, load_task, train_vdib
from spikecodec.train.lenet import lenet_accuracy, load_or_train_lenet

# A time-to-first-spike image has ~150 input spikes (one per lit pixel) against ~1,500 for the
# Poisson code at max_rate 0.5: its hidden weights start 5x larger so that the hidden layer
# fires (~11% of steps, like the Poisson rows' ~14%) instead of staying silent (0.2%).
TTFS = ["data.encoding=time_to_first_spike", "model.hidden_weight_scale=16"]
POISSON = ["data.encoding=poisson_rate", "model.hidden_weight_scale=3"]
ROWS = {
    "ttfs-time-mlp": [*TTFS, "decoder.input=window"],
    "ttfs-rate-mlp": [*TTFS, "decoder.input=rate"],
    "poisson-time-mlp": [*POISSON, "decoder.input=window"],
    "poisson-rate-mlp": [*POISSON, "decoder.input=rate"],
    "ttfs-time-conv": [*TTFS, "decoder.input=window", "decoder.arch=conv1d",
                       "decoder.hidden=256"],
    "ttfs-time-mlp-bptt": [*TTFS, "decoder.input=window", "train.rule=bptt"],
}


def deployed_estimates(model, task, cfg) -> tuple[np.ndarray, dict]:
    """Export, run the test split on the reference backend, decode on the host."""
    enc = task.encoding_params
    spec = InputSpec(task.encoding, task.num_steps, task.image_shape, enc)
    net = VDIBFamily().to_network(model, spec)
    n = task.size("test")
    x = torch.cat([x for _, x, _ in eval_batches(task, cfg, "test")])
    tic = time.perf_counter()
    result = run(net, x, backend="reference")
    seconds = time.perf_counter() - tic
    est = decode(net.decoder, result.spikes, num_steps=task.num_steps)
    return est, {"seconds": seconds, "readout_spikes_per_sample": float(result.spikes.sum()) / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    ap.add_argument("--train-limit", type=int, default=10000)
    ap.add_argument("--test-limit", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rows", default="all", help="comma-separated subset of " + ",".join(ROWS))
    ap.add_argument("--set", action="append", default=[], dest="settings")
    ap.add_argument("--out", default=str(RESULTS_DIR / "vdib_mnist.json"))
    args = ap.parse_args()
    rows = list(ROWS) if args.rows == "all" else args.rows.split(",")
    judge, judge_acc = load_or_train_lenet(RUNS_DIR / "lenet5.pt", args.data_dir)
    print(f"LeNet-5 judge: MNIST test accuracy {judge_acc:.4f}")
    results = {"lenet_test_accuracy": judge_acc, "train_limit": args.train_limit,
               "epochs": args.epochs, "rows": {}, "environment": environment()}
    table = []
    for name in rows:
        overrides = ["data.dataset=mnist", f"data.data_dir={args.data_dir}",
                     f"data.train_limit={args.train_limit}", f"train.epochs={args.epochs}",
                     *ROWS[name], *args.settings]
        if args.test_limit:
            overrides.append(f"data.test_limit={args.test_limit}")
        cfg = config_io.apply_overrides(VDIBConfig(), overrides)
        print(f"\n== {name}: {' '.join(ROWS[name])}")
        task = load_task(cfg)
        out = train_vdib(cfg, RUNS_DIR / f"vdib_mnist_{name}", task=task)
        labels = task.labels["test"]
        float_acc = lenet_accuracy(judge, out["_float"]["estimates"], labels)
        quant_acc = lenet_accuracy(judge, out["_quantized"]["estimates"], labels)
        est, dep = deployed_estimates(out["_model"], task, cfg)
        dep_acc = lenet_accuracy(judge, torch.from_numpy(est), labels)
        if not np.allclose(est, out["_quantized"]["estimates"].numpy(), atol=1e-5):
            raise RuntimeError("reference backend and the quantized torch model disagree")
        row = {"config": ROWS[name], "float_accuracy": float_acc,
               "quantized_accuracy": quant_acc, "deployed_accuracy": dep_acc,
               "float_mse": out["metrics"]["float"]["mse"],
               "deployed_mse": float(((torch.from_numpy(est) - task.references["test"]) ** 2)
                                     .mean()),
               "readout_spikes_per_sample": out["metrics"]["float"]["readout_spikes_per_sample"],
               "deployed": dep, "seconds_per_epoch": out["timing"]["mean_seconds_per_epoch"]}
        results["rows"][name] = row
        print(f"{name}: LeNet accuracy float {float_acc:.4f}, deployed {dep_acc:.4f}; "
              f"MSE {row['float_mse']:.4f}; {row['seconds_per_epoch']:.0f} s/epoch")
        table.append([name, f"{100 * float_acc:.2f}", f"{100 * dep_acc:.2f}",
                      f"{row['float_mse']:.4f}", f"{row['readout_spikes_per_sample']:.0f}",
                      f"{row['seconds_per_epoch']:.0f}"])
        write_json_atomic(Path(args.out), results)
    print(f"\nLeNet-5 judge accuracy on real MNIST test images: {100 * judge_acc:.2f}%")
    print(markdown_table(["row", "LeNet acc. float %", "deployed %", "MSE",
                          "readout spikes/sample", "s/epoch"], table))


if __name__ == "__main__":
    main()

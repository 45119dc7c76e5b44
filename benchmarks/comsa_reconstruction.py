"""Comsa et al. 2021, experiment 1: SNN vs ANN reconstruction error per condition (Fig. 3).

    .venv/bin/python benchmarks/comsa_reconstruction.py --dataset mnist --epochs 3 \\
        --conditions 0.0,1,32 0.0,16,32 0.4,1,32 0.4,16,32

Each condition ``NOISE,LATENCY,HIDDEN`` trains the SNN with the authors' published tuned
hyperparameters for it (``train/families/comsa/hyperparameters.csv``) on the 54,000 / 6,000 /
10,000 split, keeps the epoch with the lowest validation error, and scores the test split with
the C++ code's metric; the paper's ANN baselines (plain and inverted images, same sizes,
optimiser, batch size and epochs) are trained beside it. The paper trains 100 epochs; the
number used here is in the output and the JSON, per condition. Results:
``benchmarks/results/comsa_reconstruction_<dataset>.json`` (merged with earlier runs of other
conditions) and a Fig. 3-like figure ``..._<dataset>.png``.
"""
from __future__ import annotations

import argparse
import json
import time

from _common import DEFAULT_DATA_DIR, RESULTS_DIR, RUNS_DIR, environment, write_json_atomic

from spikecodec.runtime import torch_threads
from spikecodec.train import config as config_io
from spikecodec.train.families.comsa.config import ComsaConfig, published
from spikecodec.train.families.comsa.training import train_comsa


def run_condition(dataset: str, condition: str, epochs: int, args) -> dict:
    noise, latency, hidden = condition.split(",")
    overrides = published(float(noise), int(latency), int(hidden)) + [
        f"data.dataset={dataset}", f"data.data_dir={args.data_dir}", f"train.epochs={epochs}",
        f"train.dtype={args.dtype}", *args.set]
    cfg = config_io.load(ComsaConfig, None, overrides)
    tic = time.perf_counter()
    with torch_threads(args.threads):
        out = train_comsa(cfg, RUNS_DIR / f"comsa_{dataset}_{condition.replace(',', '_')}",
                          show_progress=args.progress, log=print)
    m = out["metrics"]
    row = {"condition": {"noise": float(noise), "latency": int(latency), "hidden": int(hidden)},
           "epochs": epochs, "best_epoch": out["best_epoch"], "snn": m["test"],
           "snn_validation": m["validation"], "ann_plain": m["ann_plain"],
           "ann_inverted": m["ann_inverted"], "per_epoch": m["per_epoch"],
           "seconds_per_epoch": out["timing"]["mean_seconds_per_epoch"],
           "wall_seconds": time.perf_counter() - tic, "overrides": overrides}
    print(f"{dataset} {condition}: SNN {m['test']['mse']:.4f} (pixel {m['test']['pixel_mse']:.4f},"
          f" silent {100 * m['test']['silent_outputs']:.1f}%), ANN plain "
          f"{m['ann_plain']['mse']:.4f}, inverted {m['ann_inverted']['mse']:.4f}; "
          f"{row['seconds_per_epoch']:.0f} s/epoch, {epochs} epoch(s), best {out['best_epoch']}")
    return row


def figure(rows: dict, path) -> None:
    """Test MSE vs noise, one panel per (hidden, latency): SNN and both ANNs (Fig. 3)."""
    from spikecodec.train.plots import new_figure, save_figure

    panels = sorted({(r["condition"]["hidden"], r["condition"]["latency"])
                     for r in rows.values()})
    fig = new_figure(figsize=(3.2 * len(panels), 2.8))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (hidden, latency) in zip(axes, panels, strict=True):
        sel = sorted((r for r in rows.values() if r["condition"]["hidden"] == hidden
                      and r["condition"]["latency"] == latency),
                     key=lambda r: r["condition"]["noise"])
        noise = [r["condition"]["noise"] for r in sel]
        for key, label, style in (("snn", "SNN", "o-"), ("ann_plain", "ANN plain", "s--"),
                                  ("ann_inverted", "ANN inverted", "^:")):
            ax.plot(noise, [r[key]["mse"] for r in sel], style, label=label, ms=4)
        ax.set_title(f"h={hidden}, l={latency}", fontsize=9)
        ax.set_xlabel("noise factor")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test MSE")
    axes[0].legend(fontsize=7)
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--conditions", nargs="+", default=["0.0,1,32", "0.0,16,32",
                                                             "0.4,1,32", "0.4,16,32"])
    parser.add_argument("--epochs", type=int, default=3, help="per condition (paper: 100)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], help="extra config overrides")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    path = RESULTS_DIR / f"comsa_reconstruction_{args.dataset}.json"
    results = json.loads(path.read_text()) if path.is_file() else {"rows": {}}
    for condition in args.conditions:
        results["rows"][condition] = run_condition(args.dataset, condition, args.epochs, args)
        results["environment"] = environment()
        write_json_atomic(path, results)  # after every condition: nothing lost on a stop
    figure(results["rows"], path.with_suffix(".png"))
    print(f"wrote {path} and {path.with_suffix('.png')}")


if __name__ == "__main__":
    main()

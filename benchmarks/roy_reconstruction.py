"""Table 1 of Roy, Panda & Roy 2019: test reconstruction MSE of the AE-SNN and its AE-ANN baselines.

Rows of the paper (1 epoch, batch 100, Poisson input at max rate 1):

* ``--dataset mnist``: 784-196-784, T=15;
* ``--dataset fashion-mnist --hidden 512`` or ``--hidden 1024``: T=60.

Runs ``spikecodec.train.families.roy.training.train_roy_ae`` with the ANN baselines enabled,
writes the run directory to ``benchmarks/results/runs/<name>/`` (git-ignored) and the numbers to
``benchmarks/results/<name>.json``, and prints the test MSE of SNN, ANN-SGD and ANN-Adam beside
the paper's, with seconds per epoch and samples per second of the SNN training. The MSE is the
paper's metric (per-sample z-normalised image vs output spike count; ``train/metrics.py``).

    .venv/bin/python benchmarks/roy_reconstruction.py --dataset mnist
    .venv/bin/python benchmarks/roy_reconstruction.py --dataset fashion-mnist --hidden 1024
    .venv/bin/python benchmarks/roy_reconstruction.py --dataset mnist --train-limit 5000 \\
        --set train.lr=1e-3
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from _common import (
    DEFAULT_DATA_DIR,
    REPO_ROOT,
    RESULTS_DIR,
    RUNS_DIR,
    environment,
    markdown_table,
    write_json_atomic,
)

from spikecodec.errors import ConfigError
from spikecodec.runtime import torch_threads
from spikecodec.train import config as config_io
from spikecodec.train.families.roy.config import PAPER_MSE, RoyAEConfig
from spikecodec.train.families.roy.training import train_roy_ae

PAPER_SETUP = {"mnist": {"hidden": 196, "num_steps": 15},  # hidden: the default row
               "fashion-mnist": {"hidden": 512, "num_steps": 60}}
ROWS = (("snn", "AE-SNN (BPTT, XOR membrane loss)"), ("ann_sgd", "AE-ANN, SGD"),
        ("ann_adam", "AE-ANN, Adam"))


def build_config(args: argparse.Namespace) -> RoyAEConfig:
    """The paper's setup for ``args.dataset``; ``--set`` overrides come last and win."""
    setup = PAPER_SETUP[args.dataset]
    overrides = [
        f"data.dataset={args.dataset}",
        f"data.data_dir={args.data_dir.resolve()}",
        f"data.num_steps={args.num_steps or setup['num_steps']}",
        f"model.hidden={args.hidden or setup['hidden']}",
        "train.epochs=1",
        "train.batch_size=100",
        "ann.enabled=true",
    ]
    if args.train_limit:
        overrides.append(f"data.train_limit={args.train_limit}")
    if args.threads:
        overrides.append(f"train.threads={args.threads}")
    return config_io.load(RoyAEConfig, None, overrides + args.set)


def run_name(cfg: RoyAEConfig, args: argparse.Namespace) -> str:
    name = f"roy_reconstruction_{cfg.data.dataset}_h{cfg.model.hidden}_T{cfg.data.num_steps}"
    if cfg.data.train_limit:
        name += f"_limit{cfg.data.train_limit}"
    return args.name or name


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=sorted(PAPER_SETUP), default="mnist")
    parser.add_argument("--hidden", type=int, default=0,
                        help="hidden neurons (default: 196 for mnist, 512 for fashion-mnist)")
    parser.add_argument("--num-steps", type=int, default=0,
                        help="T (default: 15 for mnist, 60 for fashion-mnist)")
    parser.add_argument("--train-limit", type=int, default=0,
                        help="train on the first N images only (quick check; 0: all)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override passed to the trainer, e.g. train.lr=1e-3")
    parser.add_argument("--name", default="", help="run name (default: from the setup)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction,
                        default=sys.stderr.isatty(), help="tqdm bars on stderr")
    args = parser.parse_args(argv)
    for flag in ("hidden", "num_steps", "train_limit", "threads"):
        if getattr(args, flag) < 0:
            parser.error(f"--{flag.replace('_', '-')} must be >= 0")
    try:
        cfg = build_config(args)
    except ConfigError as err:
        parser.error(str(err))
    name = run_name(cfg, args)
    run_dir = RUNS_DIR / name

    load_start = os.getloadavg()[0]  # before we add ours: others compete for the CPU
    tic = time.perf_counter()
    with torch_threads(cfg.train.threads):
        results = train_roy_ae(cfg, run_dir, show_progress=args.progress)
    wall = time.perf_counter() - tic

    paper = PAPER_MSE.get((cfg.data.dataset, cfg.model.hidden), {})
    metrics, timing = results["metrics"], results["timing"]
    net, T = results["network"], results["num_steps"]
    print(f"## Roy et al. 2019 Table 1: {cfg.data.dataset} {net}, T={T}, "
          f"{results['epochs']} epoch, batch {cfg.train.batch_size}\n")
    print(f"train {results['train_samples']} / test {results['test_samples']} images; "
          f"{timing['torch_threads']} torch thread(s); 1-min load average {load_start:.2f} at "
          f"start; run dir {run_dir.relative_to(REPO_ROOT)}\n")
    rows = [[label, _fmt(metrics.get(key, {}).get("mse")), _fmt(paper.get(key))]
            for key, label in ROWS]
    print(markdown_table(["model", "test MSE (ours)", "test MSE (paper)"], rows))
    print()
    snn, untrained = metrics["snn"], metrics["snn_untrained"]
    print(markdown_table(
        ["SNN s/epoch", "SNN samples/s", "untrained SNN MSE", "test spike-MSE",
         "hidden spikes/sample", "output spikes/sample", "script wall s"],
        [[_fmt(timing["seconds_per_epoch"], 1), _fmt(timing["samples_per_second"], 0),
          _fmt(untrained["mse"]), _fmt(snn["spike_mse"]), _fmt(snn["hidden_spikes_per_sample"], 1),
          _fmt(snn["output_spikes_per_sample"], 1), _fmt(wall, 1)]]))

    payload = {"benchmark": "roy_reconstruction", "name": name,
               "config": config_io.to_dict(cfg), "overrides": args.set,
               "run_dir": str(run_dir.relative_to(REPO_ROOT)),
               "paper_mse": paper or None,
               "mse": {key: metrics.get(key, {}).get("mse") for key, _ in ROWS},
               "timing": timing | {"script_wall_seconds": wall},
               "results": results,
               "environment": environment() | {"load_average_1min_at_start": load_start}}
    path = write_json_atomic(RESULTS_DIR / f"{name}.json", payload)
    print(f"\nwrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

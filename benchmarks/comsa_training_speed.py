"""Seconds per MNIST training epoch of the Comsa et al. autoencoder, 1 vs 2 torch threads.

    .venv/bin/python benchmarks/comsa_training_speed.py [--rounds 1] [--train-limit N]

The workload of the paper's headline condition: 54,000 training images, 784-32-784, 10 pulses
per layer, the published hyperparameters for noise 0 / latency 1 / 32 hidden (batch 7), one
epoch of the real training loop (``train_comsa``: forward, exact backward, Adam, pulse clamp,
the validation pass excluded from the epoch's seconds). Thread counts alternate in one run
(1, 2, 1, 2, ... for ``--rounds``), so a drift of the machine's speed shows as spread, not as a
ratio. The issue's target: <= 60 s per epoch on 2 CPU cores. The per-sample event loop of the
same maths is timed at the kernel level by ``benchmarks/comsa_spiketime_speed.py`` (a whole
epoch of it would take about 20 minutes). Writes ``benchmarks/results/comsa_training_speed.json``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile

from _common import DEFAULT_DATA_DIR, RESULTS_DIR, environment, write_json_atomic

from spikecodec.runtime import tune_allocator
from spikecodec.train import config as config_io
from spikecodec.train.families.comsa import data as data_mod
from spikecodec.train.families.comsa.config import ComsaConfig, published
from spikecodec.train.families.comsa.training import train_comsa
from spikecodec.train.seeds import stream_seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--train-limit", type=int, default=None,
                        help="first N training images (default: all 60,000 -> 54,000 + 6,000)")
    args = parser.parse_args()
    tune_allocator()
    overrides = published(0.0, 1, 32) + ["data.dataset=mnist", f"data.data_dir={args.data_dir}",
                                         "train.epochs=1", "ann.enabled=false"]
    if args.train_limit:
        overrides.append(f"data.train_limit={args.train_limit}")
    cfg = config_io.load(ComsaConfig, None, overrides)
    data = data_mod.load_data(cfg.data, seed=stream_seed(cfg.train.seed, "noise"))
    load_before = os.getloadavg()[0]
    seconds: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.rounds):
        for threads in (1, 2):
            run_cfg = config_io.apply_overrides(cfg, [f"train.threads={threads}"])
            with tempfile.TemporaryDirectory() as tmp:
                out = train_comsa(run_cfg, tmp, show_progress=False, log=lambda _: None,
                                  data=data)
            seconds[threads].append(out["timing"]["seconds_per_epoch"][0])
            print(f"{threads} thread(s): {seconds[threads][-1]:.1f} s per epoch of "
                  f"{data.size('train')} images (test MSE after it "
                  f"{out['metrics']['test']['mse']:.4f})")
    median = {t: statistics.median(s) for t, s in seconds.items()}
    results = {"train_images": data.size("train"), "batch_size": cfg.train.batch_size,
               "seconds_per_epoch": seconds, "median": median,
               "ratio_2_over_1_threads": median[2] / median[1],
               "target_seconds_per_epoch": 60.0,
               "load_average_before": load_before, "environment": environment()}
    print(f"median: 1 thread {median[1]:.1f} s, 2 threads {median[2]:.1f} s per epoch "
          f"(2/1 = {results['ratio_2_over_1_threads']:.2f}); load average before "
          f"{load_before:.2f}")
    write_json_atomic(RESULTS_DIR / "comsa_training_speed.json", results)


if __name__ == "__main__":
    main()

"""Sweep throughput: finished trials per hour with 1 vs N local workers, alternating in one run.

    .venv/bin/python benchmarks/sweep_throughput.py [--trials 8] [--workers 2] [--rounds 2] \
        [--train-limit 1000] [--epochs 3]

Each round runs ``spikecodec sweep roy-ae --trials T --workers W --threads 1`` from scratch (a
fresh SQLite study in a temporary folder) for W = 1 and W = N, one after the other, so load from
other work hits both alike; a trial is a small Roy AE on the embedded digits (64-16-64,
``--train-limit`` training digits, ``--epochs`` epochs, the search space of the family), pruning
off so every trial trains to the end. Reported: wall seconds per sweep (median over rounds,
start-up of the command and of each worker included) and trials/hour; every sweep must finish
T trials with no trial lost or counted twice. Meaningful only on a quiet machine: the load
average is saved.
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS_DIR, environment, write_json_atomic


def settings(train_limit: int, epochs: int) -> tuple[str, ...]:
    return ("data.dataset=digits", "model.hidden=16", f"train.epochs={epochs}",
            "train.batch_size=50", f"data.train_limit={train_limit}", "data.test_limit=40",
            "ann.enabled=false")


def sweep(out: Path, trials: int, workers: int, smoke: tuple[str, ...]) -> float:
    cmd = [sys.executable, "-m", "spikecodec.cli", "sweep", "roy-ae", "--trials", str(trials),
           "--workers", str(workers), "--threads", "1", "--pruner", "none", "--no-progress",
           "--out", str(out)]
    for setting in smoke:
        cmd += ["--set", setting]
    tic = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    seconds = time.perf_counter() - tic
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    done = [r for r in rows if r["state"] == "COMPLETE"]
    numbers = [r["number"] for r in rows]
    if len(done) != trials or len(set(numbers)) != len(numbers):
        raise RuntimeError(f"{workers} worker(s): {len(done)} complete trials of {trials}, "
                           f"{len(numbers)} rows")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--train-limit", type=int, default=1000, help="digits per trial")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial")
    args = parser.parse_args()
    smoke = settings(args.train_limit, args.epochs)
    load_before = os.getloadavg()[0]
    times: dict[int, list[float]] = {1: [], args.workers: []}
    with tempfile.TemporaryDirectory(prefix="spikecodec-sweep-bench-") as tmp:
        for r in range(args.rounds):
            for workers in times:
                seconds = sweep(Path(tmp) / f"r{r}-w{workers}", args.trials, workers, smoke)
                times[workers].append(seconds)
                print(f"round {r + 1}: {workers} worker(s) {seconds:.1f} s")
    rate = {w: args.trials / statistics.median(t) * 3600 for w, t in times.items()}
    for w, value in rate.items():
        print(f"{w} worker(s): {value:.0f} trials/hour")
    ratio = rate[args.workers] / rate[1]
    print(f"{args.workers} workers / 1: {ratio:.2f}x; load average before {load_before:.2f}, "
          f"after {os.getloadavg()[0]:.2f}")
    write_json_atomic(RESULTS_DIR / "sweep_throughput.json",
                      {"trials": args.trials, "settings": smoke,
                       "seconds": {str(k): v for k, v in times.items()},
                       "trials_per_hour": {str(k): v for k, v in rate.items()},
                       "ratio": ratio, "load_average_before": load_before,
                       "load_average_after": os.getloadavg()[0],
                       "environment": environment()})


if __name__ == "__main__":
    main()

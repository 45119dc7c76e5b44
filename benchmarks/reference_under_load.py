"""Throughput with 1 and 2 torch threads, quiet and beside a busy loop: the reference engine,
or training.

    .venv/bin/python benchmarks/reference_under_load.py [--batch 2000] [--repeats 3]
    .venv/bin/python benchmarks/reference_under_load.py --workload training [--steps 20]

Workloads: ``reference``, a Roy AE 784-196-784 (T = 15) at its initial weights scaled up so
that it spikes, on Poisson-encoded MNIST test digits (random images when ../shared/data has
none), run by the reference engine; ``training``, ``--steps`` training steps of the same AE
(batch 100, the step of benchmarks/roy_training_speed.py: forward, membrane-potential loss,
backward, Adam) on Poisson-coded MNIST training digits. Four settings
alternate in one run -- 1 and 2 threads, each with the machine otherwise quiet and while one
other process keeps one core busy (a Python busy loop started and stopped by this script) --
so every ratio is measured side by side. Reported: samples/s per setting (median of
``--repeats``), the busy/quiet ratio per thread count, and the load average; written to
``benchmarks/results/reference_under_load.json`` (``training_under_load.json``). What else
ran on the machine is not controlled: run it when ``uptime`` shows it quiet.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from pathlib import Path

import torch
from _common import DEFAULT_DATA_DIR, RESULTS_DIR, environment, write_json_atomic
from deploy_speed import default_network, images

from spikecodec.deploy.backends import run
from spikecodec.runtime import torch_threads
from spikecodec.train.encoding import poisson_rate


def _spin(stop) -> None:
    """Keep one core busy until ``stop`` is set."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def reference_workload(batch: int, data_dir: Path):
    net = default_network(15)
    imgs, source = images(batch, data_dir)
    x = poisson_rate(imgs, 15, max_rate=1.0, seed=1).numpy().astype("uint8")
    print(f"reference engine, 784-196-784, T=15, {batch} samples ({source})")
    return (lambda: run(net, x, backend="reference").spikes), batch, source


def training_workload(steps: int, data_dir: Path):
    from roy_training_speed import POOL, Workload, _run_ours, input_pool, make_ours, trainer

    from spikecodec.train.losses import MembranePotentialLoss

    w = Workload()
    pool, source = input_pool(w, data_dir)
    step = trainer(make_ours(w), _run_ours, MembranePotentialLoss(w.threshold))

    def unit() -> None:
        for i in range(steps):
            step(pool[i % POOL])

    print(f"Roy AE training, 784-{w.hidden}-784, T={w.num_steps}, batch {w.batch}, {steps} "
          f"steps ({source})")
    return unit, steps * w.batch, source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--workload", default="reference", choices=["reference", "training"])
    parser.add_argument("--steps", type=int, default=20, help="training steps per measurement")
    args = parser.parse_args()
    if args.workload == "training":
        unit, samples, source = training_workload(args.steps, Path(args.data_dir))
    else:
        unit, samples, source = reference_workload(args.batch, Path(args.data_dir))
    unit()  # warm-up
    load_before = os.getloadavg()[0]
    ctx = multiprocessing.get_context("fork")
    times: dict[str, list[float]] = {}
    reference = None
    for _ in range(args.repeats):
        for busy in (False, True):
            stop, spinner = ctx.Event(), None
            if busy:
                spinner = ctx.Process(target=_spin, args=(stop,), daemon=True)
                spinner.start()
                time.sleep(0.5)
            try:
                for threads in (1, 2):
                    with torch_threads(threads):
                        tic = time.perf_counter()
                        out = unit()
                        seconds = time.perf_counter() - tic
                    key = f"{threads} thread(s), {'one core busy' if busy else 'quiet'}"
                    times.setdefault(key, []).append(seconds)
                    if out is None:  # training: float sums may differ with the thread count
                        continue
                    if reference is None:
                        reference = out
                    elif not (out == reference).all():
                        raise RuntimeError(f"{key}: spikes differ between settings")
            finally:
                stop.set()
                if spinner is not None:
                    spinner.join()
    rate = {k: samples / statistics.median(v) for k, v in times.items()}
    for key, value in rate.items():
        print(f"  {key:<30} {value:>9.0f} samples/s")
    ratios = {f"{t} thread(s) busy/quiet": rate[f"{t} thread(s), one core busy"]
              / rate[f"{t} thread(s), quiet"] for t in (1, 2)}
    ratios["quiet 1/2 threads"] = rate["1 thread(s), quiet"] / rate["2 thread(s), quiet"]
    for key, value in ratios.items():
        print(f"  {key:<30} {value:>9.2f}")
    print(f"load average before {load_before:.2f}; torch {torch.__version__}")
    write_json_atomic(RESULTS_DIR / f"{args.workload}_under_load.json",
                      {"workload": args.workload, "samples": samples, "inputs": source,
                       "seconds": times,
                       "samples_per_second": rate, "ratios": ratios,
                       "load_average_before": load_before, "environment": environment()})


if __name__ == "__main__":
    main()

"""Lava simulator throughput with 1 vs N workers, alternating in one run on one input set.

    .venv/bin/python benchmarks/lava_parallel_speed.py              # Roy golden export, 200 digits
    .venv/bin/python benchmarks/lava_parallel_speed.py --workers 2 --rounds 3 --samples 200

Inputs are the export's own (its family's ``inputs`` hook: the digits test split, encoded as
the export says). Each round times ``run(net, x, backend="lava-sim", workers=w)`` for w = 1
and w = N, one after the other, so load from other work hits both alike; the figure per
setting is the median over rounds, end to end (compiling and starting the runtimes
included). The outputs of every run must be equal spike for spike. Meaningful only on a quiet
machine: the load average before and after is printed and saved.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
from _common import REPO_ROOT, RESULTS_DIR, environment, write_json_atomic

from spikecodec.deploy.backends import run
from spikecodec.deploy.hdf5 import read_hdf5
from spikecodec.workflows.exporting import family_of

DEFAULT_EXPORT = REPO_ROOT / "netx_exports" / "roy_ae_digits" / "export.h5"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, default=DEFAULT_EXPORT)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    net = read_hdf5(args.export)
    inputs = family_of(net).inputs(net, split="test", samples=args.samples)
    x = np.asarray(inputs.spikes, dtype=np.uint8)
    run(net, x[:2], backend="lava-sim")  # warm-up: Lava's first import and compile
    load_before = os.getloadavg()[0]
    settings = (1, args.workers)
    seconds: dict[int, list[float]] = {w: [] for w in settings}
    expected = None
    for _ in range(args.rounds):
        for workers in settings:
            tic = time.perf_counter()
            result = run(net, x, backend="lava-sim", workers=workers)
            seconds[workers].append(time.perf_counter() - tic)
            if expected is None:
                expected = result.spikes
            if not np.array_equal(result.spikes, expected):
                raise SystemExit(f"workers={workers}: spikes differ from the first run")
    rate = {w: len(x) / statistics.median(s) for w, s in seconds.items()}
    ratio = rate[args.workers] / rate[1]
    load_after = os.getloadavg()[0]
    export = args.export.resolve()
    label = str(export.relative_to(REPO_ROOT) if export.is_relative_to(REPO_ROOT) else export)
    print(f"export {label}: {len(x)} {inputs.description} samples x {net.num_steps} steps, "
          f"{args.rounds} rounds")
    for w in settings:
        print(f"lava-sim, {w} worker{'s' if w > 1 else ''}: {rate[w]:.1f} samples/s "
              f"(median of {', '.join(f'{s:.2f}' for s in seconds[w])} s)")
    print(f"ratio {args.workers} / 1 workers: {ratio:.2f}x; spikes equal: yes")
    print(f"load average (1 min): {load_before:.2f} before, {load_after:.2f} after; "
          f"{os.cpu_count()} CPUs")
    path = write_json_atomic(RESULTS_DIR / "lava_parallel_speed.json", {
        "export": label,
        "data": inputs.description, "samples": len(x), "num_steps": net.num_steps,
        "rounds": args.rounds,
        "seconds": {str(w): s for w, s in seconds.items()},
        "samples_per_second": {str(w): r for w, r in rate.items()},
        f"ratio_{args.workers}_over_1_workers": ratio,
        "spikes_equal": True,
        "load_average_before": load_before, "load_average_after": load_after,
        "environment": environment(),
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

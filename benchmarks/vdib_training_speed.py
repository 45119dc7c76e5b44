"""VDIB training time per epoch: e-prop (the paper's rule) and BPTT side by side, one run.

The MNIST naturalization model of ``vdib_mnist.py`` (784-600-256, T = 30, time-to-first-spike,
MLP decoder on the 30-step window, batch 64) trains one epoch on the first ``--samples``
training images with each rule, alternating ``--repeats`` times so that both see the same load;
the medians are reported per epoch of the full 60,000 images (scaled by the sample count) and
as a ratio. ``--device cuda`` measures on a GPU when one is present.

    .venv/bin/python benchmarks/vdib_training_speed.py [--samples 6400] [--repeats 2]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from _common import DEFAULT_DATA_DIR, RESULTS_DIR, environment, markdown_table, write_json_atomic

from spikecodec.train import config as config_io
from spikecodec.train.families.vdib.config import VDIBConfig
from spikecodec.train.families.vdib.training import load_task, train_vdib

MNIST_TRAIN = 60_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    ap.add_argument("--samples", type=int, default=6400)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0,
                    help="train.threads (0, the default: torch's own count, 2 on these machines)")
    ap.add_argument("--out", default=str(RESULTS_DIR / "vdib_training_speed.json"))
    args = ap.parse_args()
    base = ["data.dataset=mnist", f"data.data_dir={args.data_dir}",
            f"data.train_limit={args.samples}", "data.test_limit=500",
            "data.encoding=time_to_first_spike", "model.hidden_weight_scale=16",
            "train.epochs=1", f"train.device={args.device}", f"train.threads={args.threads}"]
    task = load_task(config_io.apply_overrides(VDIBConfig(), base))
    seconds: dict[str, list[float]] = {"eprop": [], "bptt": []}
    for _ in range(args.repeats):
        for rule in seconds:
            cfg = config_io.apply_overrides(VDIBConfig(), [*base, f"train.rule={rule}"])
            with tempfile.TemporaryDirectory() as tmp:
                out = train_vdib(cfg, Path(tmp), task=task, show_progress=False,
                                 log=lambda _: None)
            seconds[rule].append(out["timing"]["seconds_per_epoch"][0])
            print(f"{rule}: {seconds[rule][-1]:.1f} s for {args.samples} samples")
    scale = MNIST_TRAIN / args.samples
    med = {rule: statistics.median(v) for rule, v in seconds.items()}
    results = {"samples": args.samples, "repeats": args.repeats, "device": args.device,
               "train_threads": args.threads,  # 0: torch's own (environment.torch_threads)
               "seconds": seconds, "median_seconds": med,
               "seconds_per_mnist_epoch": {r: m * scale for r, m in med.items()},
               "bptt_over_eprop": med["bptt"] / med["eprop"], "environment": environment()}
    write_json_atomic(Path(args.out), results)
    print(markdown_table(["rule", f"s per {args.samples} samples (median)",
                          "s per 60,000-image epoch"],
                         [[r, f"{m:.1f}", f"{m * scale:.0f}"] for r, m in med.items()]))
    print(f"BPTT / e-prop time: {results['bptt_over_eprop']:.2f}")


if __name__ == "__main__":
    main()

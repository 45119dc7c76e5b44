"""Speed of the Comsa spike-time kernel: vectorised torch vs the per-sample reference, one run.

Workload: the paper's MNIST autoencoder layers with 10 pulses each, 784+10 -> 32 and 32+10 -> 784,
batch 32. Inputs are MNIST training digits (``--data-dir``; random sparse inputs, said so, when
MNIST is absent) in inverted latency t = 1 - pixel/256, background (pixel 0) silent. Weights and
pulses follow the reference code's initialisation with the tuned hyperparameters of
comsa_hyperparameters.csv row (noise 0, latency 1, hidden 32): K = 0.172556, theta = 0.834236,
clip 386.06, no-spike penalty 6.25, pulse weight mean 4.21 sigma, pulse i at i/11. The tuned
input-weight mean (-7.04 sigma) silences every hidden neuron at initialisation, so layer 2 would
see only its 10 pulses (P = 10 instead of 42) and time a regime training leaves at once (the
no-spike penalty raises those weights); the input weights are therefore drawn with mean 0
(``--input-weight-mean``), where the hidden neurons fire.

Timed, alternating after a warm-up: ``spike_times`` forward + backward of both layers (MSE to
target + latency 1) in float32 and float64, and forward only in float32; and the float64
per-sample event loop ``spike_times_reference`` (forward only, both layers) on
``--reference-samples`` samples, scaled to a batch. Reported: ms per batch (medians), the
reference / vectorised ratio, the projected seconds per 54,000-sample epoch, torch threads and
the load average before and after. The allocator tuning of :mod:`spikecodec.runtime` is applied.

    .venv/bin/python benchmarks/comsa_spiketime_speed.py [--repeats 40] [--reference-samples 4]
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import torch
from _common import DEFAULT_DATA_DIR, RESULTS_DIR, environment, write_json_atomic

from spikecodec.errors import DatasetNotFoundError
from spikecodec.runtime import tune_allocator
from spikecodec.train.datasets import load_images
from spikecodec.train.families.comsa.spiketime import spike_times, spike_times_reference

BATCH, HIDDEN, PULSES, LATENCY, EPOCH = 32, 32, 10, 1.0, 54_000
DECAY, THRESHOLD, CLIP, PENALTY = 0.172556, 0.834236, 386.058227, 6.250341
PULSE_MEAN, TUNED_INPUT_MEAN = 4.213218, -7.038462  # weight means, in units of sigma


def input_times(data_dir: Path, seed: int) -> tuple[torch.Tensor, str]:
    """``(BATCH, 784)`` float64 spike times, +inf for background, and where they came from."""
    try:
        images = load_images("mnist", "train", data_dir=data_dir, limit=BATCH).images
        source = f"MNIST train[:{BATCH}] from {data_dir}"
        pixels = torch.round(images.double() * 255)
    except DatasetNotFoundError:
        g = torch.Generator().manual_seed(seed)
        pixels = torch.randint(1, 256, (BATCH, 784), generator=g).double()
        pixels[torch.rand(BATCH, 784, generator=g) > 0.19] = 0  # MNIST-like: ~19 % lit
        source = "random sparse inputs, 19 % active (MNIST not found)"
    return torch.where(pixels > 0, 1 - pixels / 256, math.inf), source


def init_layer(n_in: int, n_out: int, g: torch.Generator,
               input_mean: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights ``(n_out, n_in + PULSES)`` and pulse times ``(PULSES,)`` as the reference code."""
    sigma = math.sqrt(2.0 / (n_in + n_out + PULSES))
    w = torch.randn(n_out, n_in + PULSES, generator=g, dtype=torch.float64) * sigma
    w[:, :n_in] += input_mean * sigma
    w[:, n_in:] += PULSE_MEAN * sigma
    return w, torch.arange(1, PULSES + 1, dtype=torch.float64) / (PULSES + 1)


def make_step(x, params, dtype, backward: bool):
    """One batch through both layers (and the backward pass of the MSE loss if asked)."""
    x = x.to(dtype)
    leaves = [p.detach().to(dtype).clone().requires_grad_(backward) for p in params]
    w1, p1, w2, p2 = leaves
    target = torch.where(torch.isfinite(x), x, 1.0) + LATENCY
    kw = dict(decay=DECAY, threshold=THRESHOLD, clip=CLIP, penalty=PENALTY)

    def step():
        with torch.set_grad_enabled(backward):
            hidden = spike_times(torch.cat([x, p1.expand(BATCH, -1)], 1), w1, **kw)
            out = spike_times(torch.cat([hidden, p2.expand(BATCH, -1)], 1), w2, **kw)
            if backward:
                for leaf in leaves:
                    leaf.grad = None
                err = torch.where(torch.isfinite(out), out - target, 0.0)
                (err.square().sum() / BATCH).backward()
        return hidden, out

    return step


def reference_pass(x: torch.Tensor, params) -> torch.Tensor:
    """Both layers by the per-sample event loop (float64)."""
    w1, p1, w2, p2 = params
    kw = dict(decay=DECAY, threshold=THRESHOLD)
    hidden = spike_times_reference(torch.cat([x, p1.expand(len(x), -1)], 1), w1, **kw)
    return spike_times_reference(torch.cat([hidden, p2.expand(len(x), -1)], 1), w2, **kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--reference-samples", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0 leaves the default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--input-weight-mean", type=float, default=0.0,
                    help=f"in sigma; the tuned value {TUNED_INPUT_MEAN} leaves the hidden silent")
    ap.add_argument("--out", default=str(RESULTS_DIR / "comsa_spiketime_speed.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = [round(v, 2) for v in os.getloadavg()]
    allocator = tune_allocator()
    x, source = input_times(Path(args.data_dir), args.seed)
    g = torch.Generator().manual_seed(args.seed)
    m = args.input_weight_mean
    params = (*init_layer(784, HIDDEN, g, m), *init_layer(HIDDEN, 784, g, m))
    steps = {"float32 fwd+bwd": make_step(x, params, torch.float32, True),
             "float64 fwd+bwd": make_step(x, params, torch.float64, True),
             "float32 fwd": make_step(x, params, torch.float32, False)}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(3):  # warm-up
        for step in steps.values():
            step()
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    ms = {name: 1e3 * statistics.median(v) for name, v in times.items()}

    n_ref = args.reference_samples
    start = time.perf_counter()
    ref_out = reference_pass(x[:n_ref], params)
    ref_ms = 1e3 * (time.perf_counter() - start) / n_ref * BATCH
    hidden, out = steps["float64 fwd+bwd"]()
    same = torch.equal(torch.isfinite(out[:n_ref]), torch.isfinite(ref_out))
    both = torch.isfinite(ref_out)
    max_dt = float((out.detach()[:n_ref][both] - ref_out[both]).abs().max()) if both.any() else 0.0

    results = {
        "workload": {"layers": ["784+10 -> 32", "32+10 -> 784"], "batch": BATCH,
                     "decay": DECAY, "threshold": THRESHOLD, "clip": CLIP, "penalty": PENALTY,
                     "input_weight_mean_sigma": m, "pulse_weight_mean_sigma": PULSE_MEAN,
                     "inputs": source, "finite_inputs_max": int(torch.isfinite(x).sum(1).max()),
                     "hidden_spiking_fraction": float(torch.isfinite(hidden).float().mean()),
                     "output_spiking_fraction": float(torch.isfinite(out).float().mean())},
        "ms_per_batch": {**{k: round(v, 3) for k, v in ms.items()},
                         "reference fwd (float64, per-sample loop)": round(ref_ms, 1)},
        "reference_samples": n_ref,
        "ratio_reference_fwd_over_vectorised_fwd": round(ref_ms / ms["float32 fwd"], 1),
        "ratio_reference_fwd_over_vectorised_fwd_bwd": round(ref_ms / ms["float32 fwd+bwd"], 1),
        "epoch_seconds_54000": {"float32 fwd+bwd": round(ms["float32 fwd+bwd"] * EPOCH / BATCH
                                                          / 1e3, 1),
                                "float64 fwd+bwd": round(ms["float64 fwd+bwd"] * EPOCH / BATCH
                                                          / 1e3, 1),
                                "reference fwd only": round(ref_ms * EPOCH / BATCH / 1e3)},
        "reference_agrees": {"same_spike_decisions": same, "max_abs_dt_float64": max_dt},
        "allocator_tuned": allocator,
        "torch_threads": torch.get_num_threads(),
        "load_average_before_1_5_15min": load_before,
        "environment": environment(),
    }
    write_json_atomic(Path(args.out), results)
    print(f"inputs: {source}; threads {torch.get_num_threads()}; load before {load_before}, "
          f"after {results['environment']['load_average_at_end_1_5_15min']}")
    for name, value in results["ms_per_batch"].items():
        print(f"  {name:42s} {value:10.3f} ms/batch")
    print(f"  ratio reference fwd / vectorised float32 fwd:     "
          f"{results['ratio_reference_fwd_over_vectorised_fwd']}x")
    print(f"  ratio reference fwd / vectorised float32 fwd+bwd: "
          f"{results['ratio_reference_fwd_over_vectorised_fwd_bwd']}x")
    print(f"  projected s per 54,000-sample epoch: {results['epoch_seconds_54000']}")
    print(f"  reference agrees on {n_ref} samples: same decisions {same}, max |dt| {max_dt:.2e}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Deployment throughput, measured side by side in one run on one export and one input set.

    .venv/bin/python benchmarks/deploy_speed.py                       # 784-196-784, T=15
    .venv/bin/python benchmarks/deploy_speed.py --export runs/x/export.h5

Three ratios (the issue's targets in brackets):

1. reference engine vs the Lava simulator, samples/s on the same export and inputs
   (reference batch >= 1000, Lava streams a subset) [>= 200x], with spike equality on the
   samples both ran [100%];
2. reference engine vs this machine's dense float32 GEMM of the same shapes (the synaptic
   matmuls alone, ``(T*batch, in) @ (in, out)`` per layer): the fraction of that roofline the
   whole engine (GEMMs + integer neuron loop) reaches;
3. Lava streaming (one run, samples end to end) vs one Lava run per sample [>= 20x].

Without ``--export`` the network is a Roy AE 784-196-784 at its initial weights, scaled up so
that it spikes (speed does not depend on training); inputs are Poisson-encoded MNIST test
digits when ../shared/data has them, else random images.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _common import DEFAULT_DATA_DIR, RESULTS_DIR, environment, markdown_table, write_json_atomic

from spikecodec.deploy.backends import run
from spikecodec.deploy.hdf5 import read_hdf5
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.train.encoding import poisson_rate
from spikecodec.train.families.roy.family import RoyFamily
from spikecodec.train.families.roy.model import RoyAE, RoyAEModelConfig


def default_network(num_steps: int) -> FixedPointNetwork:
    model = RoyAE(784, RoyAEModelConfig(hidden=196, init_scale=3.0), seed=0)
    spec = InputSpec("poisson_rate", num_steps, (28, 28), {"max_rate": 1.0})
    return RoyFamily().to_network(model, spec)


def images(n: int, data_dir: Path) -> tuple[torch.Tensor, str]:
    try:
        from spikecodec.train.datasets import load_images

        return load_images("mnist", "test", data_dir=data_dir, limit=n).images, "mnist/test"
    except Exception:  # noqa: BLE001 -- any missing/corrupt data: fall back to random images
        return torch.rand(n, 784, generator=torch.Generator().manual_seed(0)), "random"


def timed(fn, repeats: int = 1):
    best, out = float("inf"), None
    for _ in range(repeats):
        tic = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - tic)
    return best, out


def gemm_roofline(net: FixedPointNetwork, batch: int, steps: int, repeats: int) -> float:
    """Seconds for the float32 GEMMs of every layer at (steps*batch) rows, best of repeats."""
    mats = [(torch.rand(steps * batch, layer.in_features).round(),
             torch.from_numpy(layer.weight.T.astype(np.float32)).contiguous())
            for layer in net.layers]
    return timed(lambda: [a @ w for a, w in mats], repeats)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", help="an export (.h5); default: Roy AE 784-196-784")
    parser.add_argument("--num-steps", type=int, default=15)
    parser.add_argument("--batch", type=int, default=2000, help="reference engine samples")
    parser.add_argument("--lava-samples", type=int, default=600, help="streamed on Lava")
    parser.add_argument("--per-sample-runs", type=int, default=8, help="isolated Lava runs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    args = parser.parse_args(argv)

    net = read_hdf5(args.export) if args.export else default_network(args.num_steps)
    T = net.num_steps
    imgs, source = images(args.batch, Path(args.data_dir))
    x = poisson_rate(imgs, T, max_rate=float(net.input.params.get("max_rate", 1.0)), seed=1)
    x = x.numpy().astype(np.uint8)
    shape = "-".join(str(n) for n in [net.in_features] + [lay.out_features for lay in net.layers])
    print(f"network {shape}, T={T}, inputs: {source}, torch threads {torch.get_num_threads()}")

    run(net, x[:50], backend="reference")  # warm-up
    ref_s, ref = timed(lambda: run(net, x, backend="reference"), args.repeats)
    ref_rate = len(x) / ref_s
    gemm_s = gemm_roofline(net, len(x), T, args.repeats)
    print(f"reference: {ref_rate:,.0f} samples/s ({ref_s:.3f} s for {len(x)}); the float32 "
          f"GEMMs of the same shapes alone take {gemm_s:.3f} s: the whole engine reaches "
          f"{100 * gemm_s / ref_s:.0f}% of that roofline's throughput")

    n = args.lava_samples
    lava_s, lava = timed(lambda: run(net, x[:n], backend="lava-sim"))
    lava_rate = n / lava_s
    steady_rate = n / lava.stats["seconds"]  # Lava's steps only: compile and start-up excluded
    equal = bool(np.array_equal(lava.spikes, ref.spikes[:n]))
    agreement = float((lava.spikes == ref.spikes[:n]).mean())
    print(f"lava-sim streaming: {lava_rate:.1f} samples/s ({lava_s:.1f} s for {n}, start-up "
          f"included; {steady_rate:.1f} samples/s while stepping); spikes equal to the "
          f"reference on all {n}: {equal}")
    k = args.per_sample_runs
    single_s = 0.0
    for i in range(k):
        s, single = timed(lambda i=i: run(net, x[i:i + 1], backend="lava-sim"))
        single_s += s
        equal = equal and bool(np.array_equal(single.spikes, ref.spikes[i:i + 1]))
    single_rate = k / single_s
    print(f"lava-sim one run per sample: {single_rate:.2f} samples/s ({single_s:.1f} s for {k})")

    ratios = {"reference_vs_lava_streaming": ref_rate / lava_rate,
              "reference_vs_lava_steady_state": ref_rate / steady_rate,
              "reference_fraction_of_gemm_roofline": gemm_s / ref_s,
              "lava_streaming_vs_per_sample": lava_rate / single_rate}
    rows = [["reference engine", f"{ref_rate:,.0f}", f"{len(x)}", "1.0x"],
            ["Lava sim, streamed", f"{lava_rate:.1f}", f"{n}",
             f"1/{ratios['reference_vs_lava_streaming']:.0f}"],
            ["Lava sim, one run per sample", f"{single_rate:.2f}", f"{k}",
             f"1/{ref_rate / single_rate:.0f}"]]
    print(markdown_table(["engine", "samples/s", "samples", "vs reference"], rows))
    print(f"ratios: reference/Lava {ratios['reference_vs_lava_streaming']:.0f}x (target 200x; "
          f"{ratios['reference_vs_lava_steady_state']:.0f}x against Lava's stepping alone), "
          f"Lava streaming/per-sample {ratios['lava_streaming_vs_per_sample']:.1f}x (target 20x), "
          f"reference at {100 * ratios['reference_fraction_of_gemm_roofline']:.0f}% of the "
          f"float32-GEMM roofline; spikes identical on every sample both ran: {equal}")
    write_json_atomic(RESULTS_DIR / f"deploy_speed_{shape}_T{T}.json", {
        "network": shape, "num_steps": T, "inputs": source,
        "reference": {"samples": len(x), "seconds": ref_s, "samples_per_second": ref_rate,
                      "gemm_seconds": gemm_s},
        "lava_streaming": {"samples": n, "seconds": lava_s, "samples_per_second": lava_rate,
                           "stepping_seconds": lava.stats["seconds"],
                           "stepping_samples_per_second": steady_rate},
        "lava_per_sample": {"samples": k, "seconds": single_s,
                            "samples_per_second": single_rate},
        "ratios": ratios, "spikes_equal": equal, "agreement_streamed": agreement,
        "environment": environment()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

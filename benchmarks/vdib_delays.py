"""VDIB predictive coding with delay-basis readout synapses (``model.readout.delays``).

The blobs task of ``benchmarks/vdib_blobs.py`` (20 inputs -> 10 stochastic readout neurons, no
hidden layer, softmax regression at every step from the last ``tau_d = 5`` readout steps,
beta = 1e-3) with the reference lagged by ``delta = 3`` steps, one seed, 1 torch thread. The
encoding window ``tau_e`` is swept as the readout's synaptic memory: 0 = the plain readout (its
alpha filter, decays 0.5 / 0.25, is its only memory), D > 0 = D separately weighted taps per
synapse on the same filtered trace delayed by 0..D-1 steps (an FIR filter, paper eq. 34 with
delta-delay bases). Beside them: chance (a uniform estimate) and the same decoder on the raw
input spikes. For every delay run the export is run on the reference engine (whole test split)
and on the Lava simulator (DelayDense into the readout process; first ``--lava-samples``) and
compared spike for spike with the training model's quantized mode.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/vdib_delays.py [--epochs 20] [--train 4096]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS_DIR, RUNS_DIR, environment, markdown_table, write_json_atomic
from vdib_blobs import BASE, input_bound

from spikecodec.deploy.backends import run
from spikecodec.deploy.ir import InputSpec
from spikecodec.train import config as config_io
from spikecodec.train import plots
from spikecodec.train.families.vdib.config import VDIBConfig
from spikecodec.train.families.vdib.family import VDIBFamily
from spikecodec.train.families.vdib.training import eval_batches, load_task, train_vdib

DELAYS = (0, 1, 2, 4, 6)
DELTA, TAU_D, BETA = 3, 5, 1e-3


def deployed_check(out: dict, cfg: VDIBConfig, lava_samples: int) -> dict:
    """The run's export on the reference engine and Lava vs its quantized-mode spikes."""
    from spikecodec.deploy.backends.lava_sim import run_lava

    task, model = out["_task"], out["_model"]
    net = VDIBFamily().to_network(model, InputSpec("spikes", task.num_steps,
                                                   (task.in_features,)))
    x = torch.cat([x for _, x, _ in eval_batches(task, cfg, "test")]).numpy().astype(np.uint8)
    want = out["_quantized"]["spikes"].numpy()
    ref = run(net, x).spikes
    lava = run_lava(net, x[:lava_samples]).spikes
    return {"reference_equal": bool(np.array_equal(ref, want)), "reference_samples": len(x),
            "lava_equal": bool(np.array_equal(lava, want[:lava_samples])),
            "lava_samples": lava_samples, "spikes_compared": int(want.sum()),
            "kind": net.layers[-1].kind, "synapses": int(np.size(net.layers[-1].weight))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--train", type=int, default=4096, help="training sequences of T = 100")
    ap.add_argument("--lava-samples", type=int, default=8)
    ap.add_argument("--out", default=str(RESULTS_DIR / "vdib_delays.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    base = [*BASE, f"data.delta={DELTA}", f"decoder.window={TAU_D}", f"train.beta={BETA}",
            f"train.epochs={args.epochs}", f"data.blobs_train={args.train}", "train.threads=1"]
    task = load_task(config_io.apply_overrides(VDIBConfig(), base))
    results = {"settings": base, "delays": {}, "environment": environment(),
               "raw_input_decoder_mse": input_bound(task, TAU_D, args.epochs)}
    for d in DELAYS:
        cfg = config_io.apply_overrides(VDIBConfig(), [*base, f"model.readout.delays={d}"])
        out = train_vdib(cfg, RUNS_DIR / f"vdib_delays_{d}", task=task, show_progress=False,
                         log=lambda s: None)
        m = out["metrics"]
        point = {"float": m["float"], "quantized": m["quantized"],
                 "spikes_per_step": m["float"]["readout_spikes_per_sample"] / task.num_steps,
                 "seconds_per_epoch": out["timing"]["mean_seconds_per_epoch"]}
        results["chance_mse"] = m["chance"]["mse"]
        if d > 0:
            point["deployed"] = deployed_check(out, cfg, args.lava_samples)
        results["delays"][d] = point
        print(f"tau_e={d}: float MSE {m['float']['mse']:.5f}, quantized "
              f"{m['quantized']['mse']:.5f}, {point['spikes_per_step']:.2f} spikes/step, "
              f"{point['seconds_per_epoch']:.1f} s/epoch, deployed {point.get('deployed')}",
              flush=True)
    figure(results, Path(args.out).with_suffix(".png"))
    write_json_atomic(Path(args.out), results)
    print(f"\nchance MSE {results['chance_mse']:.5f}, raw-input decoder (tau_d = {TAU_D}) "
          f"{results['raw_input_decoder_mse']:.5f}")
    print(markdown_table(
        ["tau_e", "readout synapses", "test MSE float", "test MSE quantized",
         "readout spikes/step", "deployed == quantized (reference / Lava)"],
        [[f"{d} ({'exponential' if d == 0 else 'delay basis'})", 20 * 10 * max(d, 1),
          f"{p['float']['mse']:.5f}", f"{p['quantized']['mse']:.5f}",
          f"{p['spikes_per_step']:.2f}", _deployed(p.get("deployed"))]
         for d, p in results["delays"].items()]))


def _deployed(check: dict | None) -> str:
    if check is None:
        return "-"
    return (f"{check['reference_equal']} ({check['reference_samples']} samples) / "
            f"{check['lava_equal']} ({check['lava_samples']})")


def figure(results: dict, path: Path) -> None:
    """Test MSE against tau_e, with chance and the raw-input decoder."""
    ds = list(results["delays"])
    fig = plots.new_figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(ds, [results["delays"][d]["float"]["mse"] for d in ds], "o-", label="VDIB (float)")
    ax.plot(ds, [results["delays"][d]["quantized"]["mse"] for d in ds], "s:",
            label="VDIB (deployed arithmetic)")
    ax.axhline(results["chance_mse"], color="grey", ls="--", label="chance")
    ax.axhline(results["raw_input_decoder_mse"], color="k", ls=":", label="raw-input decoder")
    ax.axvline(DELTA, color="tab:red", alpha=0.3, label=f"lag delta = {DELTA}")
    ax.set(title="blobs: test MSE vs encoding window (0 = exponential)",
           xlabel="tau_e = delay taps per readout synapse", ylabel="test MSE (one seed)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plots.save_figure(fig, path)


if __name__ == "__main__":
    main()

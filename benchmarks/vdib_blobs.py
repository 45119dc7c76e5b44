"""VDIB predictive coding with two drifting Gaussian blobs (paper section 6.1, Figs. 2 and 4).

A one-layer encoder (20 inputs -> 10 stochastic readout neurons, no hidden layer) and a softmax
regression decoder estimating both blob positions at every step from the last ``tau_d`` readout
steps, trained with the VDIB rule (REINFORCE, per-step learning signals). Sweeps:

* ``beta`` (the bottleneck weight): test MSE and readout spikes per step -- the trade-off
  between temporal sparsity and accuracy;
* the decoding window ``tau_d`` and the encoding window ``tau_e`` (the readout's synaptic
  memory: current and voltage decay ``1 / tau_e``), one at a time.

Beside each MSE: chance (a uniform estimate) and the same decoder trained directly on the raw
input spikes (no bottleneck). One seed per point (the paper averages five).

    .venv/bin/python benchmarks/vdib_blobs.py [--epochs 20] [--train 4096]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from _common import RESULTS_DIR, RUNS_DIR, environment, markdown_table, write_json_atomic

from spikecodec.train import config as config_io
from spikecodec.train import plots
from spikecodec.train.families.vdib.config import VDIBConfig
from spikecodec.train.families.vdib.decoders import make_decoder
from spikecodec.train.families.vdib.learning import decoder_nll
from spikecodec.train.families.vdib.tasks import score
from spikecodec.train.families.vdib.training import load_task, train_vdib

BASE = ["data.task=blobs", "data.blobs_protocol=smooth", "data.num_steps=100", "model.hidden=",
        "model.readout.neurons=10", "decoder.arch=linear", "train.batch_size=32",
        "train.lr_encoder=1e-2", "train.lr_decoder=1e-2"]
BETAS = (0.0, 1e-3, 1e-2, 1e-1, 1.0)
WINDOWS = (1, 2, 5, 10)
DEFAULT_TAU_D, DEFAULT_TAU_E, DEFAULT_BETA = 5, 4, 1e-3


def input_bound(task, window: int, epochs: int) -> float:
    """Test MSE of the same decoder fed the raw input spikes (no encoder, no bottleneck)."""
    torch.manual_seed(0)
    dec = make_decoder(arch="linear", input="window", window=window, at="every",
                       output="softmax", out_shape=task.out_shape, neurons=task.in_features)
    opt = torch.optim.Adam(dec.parameters(), 1e-2)
    x, ref = task.inputs["train"].float(), task.references["train"]
    for _ in range(epochs):
        for lo in range(0, len(x), 32):
            loss = decoder_nll("softmax", dec(x[lo:lo + 32]), ref[lo:lo + 32]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        est = dec.estimate(task.inputs["test"].float())
    return score(task, est, task.references["test"])["mse"]


def run_point(name: str, overrides: list[str]) -> dict:
    cfg = config_io.apply_overrides(VDIBConfig(), overrides)
    out = train_vdib(cfg, RUNS_DIR / f"vdib_blobs_{name}", show_progress=False, log=lambda s: None)
    m = out["metrics"]["float"]
    steps = out["num_steps"]
    print(f"{name}: MSE {m['mse']:.5f}, position accuracy {m['position_accuracy']:.3f}, "
          f"{m['readout_spikes_per_sample'] / steps:.2f} readout spikes/step, "
          f"{out['timing']['mean_seconds_per_epoch']:.1f} s/epoch")
    return {"overrides": overrides, "float": m, "quantized": out["metrics"]["quantized"],
            "spikes_per_step": m["readout_spikes_per_sample"] / steps,
            "seconds_per_epoch": out["timing"]["mean_seconds_per_epoch"], "_out": out}


def tau_e_settings(tau: int) -> list[str]:
    d = f"{1.0 / tau:.6f}"
    return [f"model.readout.current_decay={d}", f"model.readout.voltage_decay={d}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--train", type=int, default=4096, help="training sequences of T = 100")
    ap.add_argument("--out", default=str(RESULTS_DIR / "vdib_blobs.json"))
    args = ap.parse_args()
    base = [*BASE, f"train.epochs={args.epochs}", f"data.blobs_train={args.train}"]
    task = load_task(config_io.apply_overrides(VDIBConfig(), base))
    chance = score(task, torch.full_like(task.references["test"], 1 / task.out_shape[1]),
                   task.references["test"])["mse"]
    results = {"chance_mse": chance, "epochs": args.epochs, "train_sequences": args.train,
               "beta": {}, "tau_d": {}, "tau_e": {}, "input_bound": {},
               "environment": environment()}
    defaults = [f"decoder.window={DEFAULT_TAU_D}", *tau_e_settings(DEFAULT_TAU_E)]
    for beta in BETAS:
        results["beta"][beta] = run_point(f"beta{beta:g}", [*base, *defaults,
                                                           f"train.beta={beta}"])
    for tau in WINDOWS:
        results["tau_d"][tau] = run_point(f"taud{tau}", [*base, f"decoder.window={tau}",
                                                         *tau_e_settings(DEFAULT_TAU_E),
                                                         f"train.beta={DEFAULT_BETA}"])
        results["input_bound"][tau] = input_bound(task, tau, args.epochs)
        results["tau_e"][tau] = run_point(f"taue{tau}", [*base, f"decoder.window={DEFAULT_TAU_D}",
                                                         *tau_e_settings(tau),
                                                         f"train.beta={DEFAULT_BETA}"])
    figure(results, RESULTS_DIR / "vdib_blobs.png")
    for key in ("beta", "tau_d", "tau_e"):
        for point in results[key].values():
            point.pop("_out")
    write_json_atomic(Path(args.out), results)
    print(f"\nchance MSE {chance:.5f}")
    print(markdown_table(["beta", "test MSE", "position acc.", "readout spikes/step"],
                         [[f"{b:g}", f"{p['float']['mse']:.5f}",
                           f"{p['float']['position_accuracy']:.3f}",
                           f"{p['spikes_per_step']:.2f}"] for b, p in results["beta"].items()]))
    print(markdown_table(["window", "MSE vs tau_d", "raw-input decoder vs tau_d", "MSE vs tau_e"],
                         [[t, f"{results['tau_d'][t]['float']['mse']:.5f}",
                           f"{results['input_bound'][t]:.5f}",
                           f"{results['tau_e'][t]['float']['mse']:.5f}"] for t in WINDOWS]))


def figure(results: dict, path: Path) -> None:
    """Fig. 2/4-like panels: one test sequence (inputs, readout, true and decoded positions),
    MSE and sparsity vs beta, MSE vs the windows."""
    out = results["beta"][DEFAULT_BETA]["_out"]
    task, ev = out["_task"], out["_float"]
    fig = plots.new_figure(figsize=(15, 7))
    ax = fig.subplots(2, 3)
    ax[0, 0].imshow(task.inputs["test"][0].numpy(), aspect="auto", cmap="Greys",
                    interpolation="nearest")
    ax[0, 0].set(title="input spikes (20 neurons)", xlabel="step")
    ax[0, 1].imshow(ev["spikes"][0].numpy(), aspect="auto", cmap="Greys",
                    interpolation="nearest")
    ax[0, 1].set(title=f"readout spikes (beta={DEFAULT_BETA:g})", xlabel="step")
    est = ev["estimates"][0]  # (T, 2, 20)
    ref = ev["reference"][0]
    ax[0, 2].imshow((est[:, 0] + est[:, 1]).t().numpy(), aspect="auto", cmap="viridis",
                    interpolation="nearest")
    for b in range(ref.shape[1]):
        ax[0, 2].plot(ref[:, b].argmax(-1).numpy(), "w.", markersize=3)
    ax[0, 2].set(title="decoded position probability (white: true)", xlabel="step")
    betas = list(results["beta"])
    xs = [max(b, 1e-4) for b in betas]
    ax[1, 0].semilogx(xs, [results["beta"][b]["float"]["mse"] for b in betas], "o-")
    ax[1, 0].axhline(results["chance_mse"], color="grey", ls="--", label="chance")
    ax[1, 0].set(title="test MSE vs beta (beta=0 drawn at 1e-4)", xlabel="beta", ylabel="MSE")
    ax[1, 0].legend()
    ax[1, 1].semilogx(xs, [results["beta"][b]["spikes_per_step"] for b in betas], "o-")
    ax[1, 1].set(title="readout spikes per step vs beta", xlabel="beta")
    for key, label in (("tau_d", "decoding window tau_d"), ("tau_e", "encoding window tau_e")):
        ts = list(results[key])
        ax[1, 2].plot(ts, [results[key][t]["float"]["mse"] for t in ts], "o-", label=label)
    ts = list(results["input_bound"])
    ax[1, 2].plot(ts, [results["input_bound"][t] for t in ts], "k:", label="raw inputs, tau_d")
    ax[1, 2].axhline(results["chance_mse"], color="grey", ls="--", label="chance")
    ax[1, 2].set(title="test MSE vs windows", xlabel="steps", ylabel="MSE")
    ax[1, 2].legend()
    fig.tight_layout()
    plots.save_figure(fig, path)


if __name__ == "__main__":
    main()

"""Comsa et al. on Loihi 2's grid: deployed vs continuous MSE, the grid trade-offs, Lava parity.

    .venv/bin/python benchmarks/comsa_deploy.py --run-dir runs/comsa-mnist-l1
    .venv/bin/python benchmarks/comsa_deploy.py --run-dir RUN --finetuned RUN_FT --lava-samples 200
    .venv/bin/python benchmarks/comsa_deploy.py --run-dir RUN_W8 --baseline RUN --name w8 \
        --sweep-samples 0 --lava-samples 0     # a run trained on the weight grid vs a plain one

For a finished MNIST run (trained with ``spikecodec train comsa --published 0.0,1,32 ...``):

1. the continuous model's test MSE (exact spike times) beside the deployed model's (the run's
   grid, fixed point: the discrete torch model, which equals the reference engine spike for
   spike -- checked below on the whole test set), and the same for a fine-tuned copy
   (``--finetuned``: the run resumed with ``train.deploy_aware=true``);
2. MSE vs the grid step (steps per unit time 8, 16, 32, 64 at the run's horizon) and vs the
   horizon (``T = (l + 1 + margin) / dt`` for margins -0.5 .. 1): the accuracy / time-steps
   trade-off, with spikes and synaptic operations per sample, on ``--sweep-samples`` digits;
3. reference == lava-sim on the first ``--lava-samples`` test digits (every layer, every
   sample), and both engines' throughput on them in one run.

``--baseline RUN0``: a run trained the same way but without ``train.weight_bits``; its
continuous model is then the one the deployed MSEs are compared with (``vs_baseline``), beside
the run's own continuous model on its grid weights and on its float weights. ``--sweep-samples
0`` / ``--lava-samples 0`` leave parts 2 / 3 out (l = 16 has T = 552 steps).

Writes ``benchmarks/results/comsa_deploy_<dataset>_l<latency>[_<name>].json`` and, with the
sweeps, a figure beside it.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS_DIR, environment, write_json_atomic

from spikecodec.deploy.backends import run
from spikecodec.train.families import get_family
from spikecodec.train.families.comsa import data as data_mod
from spikecodec.train.families.comsa.finetune import discrete_model_times
from spikecodec.train.families.comsa.quantize import Grid, quantize
from spikecodec.train.families.comsa.training import load_trained, output_scores, predict
from spikecodec.train.seeds import stream_seed
from spikecodec.workflows.exporting import export_run

STEPS_PER_UNIT = (8, 16, 32, 64)
MARGINS = (-0.5, -0.25, 0.0, 0.25, 0.5, 1.0)


def deployed(model, cfg, x, y, grid: Grid | None = None) -> dict:
    """Deployed scores of input times ``x`` against targets ``y`` on ``grid``."""
    layers, report = quantize(model, cfg, grid=grid)
    grid = grid or Grid(report["dt"], report["num_steps"], 2)
    hidden, out = discrete_model_times(layers, x, grid)
    scores = output_scores(out, y, cfg.model.latency)
    hidden_spikes = float(torch.isfinite(hidden).sum(1).double().mean())
    out_spikes = float(torch.isfinite(out).sum(1).double().mean())
    inputs = float(torch.isfinite(x).sum(1).double().mean())
    synops = inputs * layers[0].out_features + hidden_spikes * layers[1].out_features
    return {**scores, "num_steps": grid.num_steps, "dt": grid.dt,
            "hidden_spikes_per_sample": hidden_spikes, "output_spikes_per_sample": out_spikes,
            "synops_per_sample": synops,
            "decay": report["encoder"]["decay"],
            "decay_rel_error": report["encoder"]["decay_rel_error"]}


def continuous(model, cfg, x, y) -> dict:
    _, out = predict(model, x, batch_size=500, device=torch.device("cpu"),
                     dtype=next(model.parameters()).dtype)
    return output_scores(out, y, cfg.model.latency)


def float_weights(model, cfg, x, y) -> dict | None:
    """The continuous scores of a run trained on the weight grid with its float weights
    (None for a run without ``train.weight_bits``)."""
    if cfg.train.weight_bits is None:
        return None
    grid = model.encoder.weight_grid
    model.set_weight_grid(None)
    try:
        return continuous(model, cfg, x, y)
    finally:
        model.set_weight_grid(grid)


def figure(sweep_dt: list[dict], sweep_h: list[dict], cont: float, path: Path, title: str):
    from spikecodec.train import plots

    fig = plots.new_figure(figsize=(10, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot([r["num_steps"] for r in sweep_dt], [r["mse"] for r in sweep_dt], "o-",
             label="deployed (fixed point)")
    for r in sweep_dt:
        ax1.annotate(f"dt=1/{round(1 / r['dt'])}", (r["num_steps"], r["mse"]), fontsize=8)
    ax1.axhline(cont, color="k", ls="--", label="continuous (same digits)")
    ax1.set_xscale("log", base=2)
    ax1.set_xlabel("time steps per sample T (finer grid ->)")
    ax1.set_ylabel("test MSE")
    ax1.legend()
    ax2.plot([r["horizon"] for r in sweep_h], [r["mse"] for r in sweep_h], "o-")
    ax2.axhline(cont, color="k", ls="--")
    ax2.set_xlabel("horizon T dt (units of the input interval)")
    ax2.set_ylabel("test MSE")
    fig.suptitle(title)
    plots.save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", required=True, help="a finished Comsa run (MNIST)")
    parser.add_argument("--finetuned", help="the same run resumed with train.deploy_aware")
    parser.add_argument("--baseline", help="the same schedule without train.weight_bits: "
                                               "its continuous model is the reference")
    parser.add_argument("--name", help="suffix of the result files")
    parser.add_argument("--sweep-samples", type=int, default=2000, help="0: no grid sweeps")
    parser.add_argument("--lava-samples", type=int, default=200, help="0: no Lava parity")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    cfg, model = load_trained(args.run_dir)
    data = data_mod.load_data(cfg.data, seed=stream_seed(cfg.train.seed, "noise"))
    x, y = data.inputs["test"], data.targets["test"]
    result: dict = {"run_dir": str(args.run_dir), "dataset": cfg.data.dataset,
                    "latency": cfg.model.latency, "hidden": cfg.model.hidden,
                    "weight_bits": cfg.train.weight_bits, "test_samples": len(x)}
    tic = time.perf_counter()
    result["continuous"] = continuous(model, cfg, x, y)
    result["continuous_float_weights"] = float_weights(model, cfg, x, y)
    result["deployed"] = deployed(model, cfg, x, y)
    result["deployed_over_continuous"] = result["deployed"]["mse"] / result["continuous"]["mse"]
    if args.baseline:
        cfg_0, model_0 = load_trained(args.baseline)
        base = {"run_dir": str(args.baseline), "continuous": continuous(model_0, cfg_0, x, y)}
        base["deployed"] = deployed(model_0, cfg_0, x, y)
        result["baseline"] = base
        result["vs_baseline"] = {
            "deployed_over_baseline_continuous": result["deployed"]["mse"]
            / base["continuous"]["mse"],
            "baseline_deployed_over_baseline_continuous": base["deployed"]["mse"]
            / base["continuous"]["mse"]}
        print("baseline continuous", base["continuous"]["mse"], "deployed",
              base["deployed"]["mse"])
    if args.finetuned:
        cfg_ft, model_ft = load_trained(args.finetuned)
        result["finetuned"] = {"run_dir": str(args.finetuned),
                               "continuous": continuous(model_ft, cfg_ft, x, y),
                               "deployed": deployed(model_ft, cfg_ft, x, y)}
        result["finetuned"]["deployed_over_continuous_before"] = (
            result["finetuned"]["deployed"]["mse"] / result["continuous"]["mse"])
        print("fine-tuned continuous", result["finetuned"]["continuous"]["mse"], "deployed",
              result["finetuned"]["deployed"]["mse"])
    print("continuous", result["continuous"]["mse"], "deployed", result["deployed"]["mse"],
          f"({time.perf_counter() - tic:.0f} s)")
    stem = f"comsa_deploy_{cfg.data.dataset}_l{cfg.model.latency:g}" + (
        f"_{args.name}" if args.name else "")
    result["note"] = ("speeds measured on 2 shared CPU cores while other jobs ran (load in "
                      "environment); the deployed MSE is the discrete torch model's, equal to the "
                      "reference engine's spike for spike (tests/train/families/test_registry.py)")
    if args.sweep_samples > 0:
        sweeps(result, model, cfg, x, y, args.sweep_samples, RESULTS_DIR / f"{stem}.png")
    if args.lava_samples > 0:
        result["lava"] = lava_parity(Path(args.run_dir), args.lava_samples)
        print("lava", result["lava"])
    result["environment"] = environment()
    write_json_atomic(RESULTS_DIR / f"{stem}.json", result)
    return 0


def sweeps(result: dict, model, cfg, x, y, n: int, figure_path: Path) -> None:
    """Part 2 of the module docstring, into ``result``, and its figure."""
    sweep_dt = []
    for spu in STEPS_PER_UNIT:
        c = dataclasses.replace(cfg, deploy=dataclasses.replace(cfg.deploy, steps_per_unit=spu))
        sweep_dt.append({"steps_per_unit": spu, **deployed(model, c, x[:n], y[:n])})
        print("dt 1 /", spu, sweep_dt[-1]["mse"], sweep_dt[-1]["num_steps"])
    sweep_h = []
    dt = 1.0 / cfg.deploy.steps_per_unit
    for margin in MARGINS:
        steps = math.ceil((cfg.model.latency + 1.0 + margin) / dt - 1e-9)
        try:
            row = deployed(model, cfg, x[:n], y[:n], Grid(dt, steps, 2))
        except ValueError as err:  # a pulse past a short horizon
            print("margin", margin, "refused:", err)
            continue
        sweep_h.append({"margin": margin, "horizon": steps * dt, **row})
        print("margin", margin, row["mse"], steps)
    result["sweep_samples"] = n
    result["continuous_sweep_samples"] = continuous(model, cfg, x[:n], y[:n])
    result["mse_vs_dt"] = sweep_dt
    result["mse_vs_horizon"] = sweep_h
    figure(sweep_dt, sweep_h, result["continuous_sweep_samples"]["mse"], figure_path,
           f"Comsa AE on {cfg.data.dataset}, l = {cfg.model.latency:g}, h = {cfg.model.hidden}: "
           f"deployed test MSE ({n} digits) vs grid")


def lava_parity(run_dir: Path, samples: int) -> dict:
    """reference == lava-sim on the first ``samples`` test digits, and both engines'
    throughput in one run."""
    net, _ = export_run(run_dir, run_dir / "export.h5")
    family = get_family("comsa")
    inputs = family.inputs(net, samples=samples)
    tic = time.perf_counter()
    ref = run(net, inputs.spikes, backend="reference", probe=True)
    ref_s = time.perf_counter() - tic
    tic = time.perf_counter()
    lava = run(net, inputs.spikes, backend="lava-sim", probe=True)
    lava_s = time.perf_counter() - tic
    equal = np.ones(len(inputs.spikes), dtype=bool)
    for a, b in zip(ref.layers, lava.layers, strict=True):
        equal &= (a == b).reshape(len(a), -1).all(axis=1)
    return {
        "samples": len(inputs.spikes), "samples_equal": int(equal.sum()),
        "reference_samples_per_second": len(inputs.spikes) / ref_s,
        "lava_sim_samples_per_second": len(inputs.spikes) / lava_s,
        "lava_sim_steps_per_second": lava.stats["steps"] / lava.stats["seconds"],
        "reference_mse": family.score(net, inputs, ref.spikes)["mse"],
        "lava_mse": family.score(net, inputs, lava.spikes)["mse"],
        "num_steps": net.num_steps}


if __name__ == "__main__":
    raise SystemExit(main())

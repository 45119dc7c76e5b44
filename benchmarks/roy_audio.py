"""Roy et al. audio-to-image synthesis on FSDD + MNIST, beside the paper's Table 1 (TI-46).

    .venv/bin/python benchmarks/roy_audio.py                        # everything, ~1 h on 1 core
    .venv/bin/python benchmarks/roy_audio.py --parts rows deploy    # Table 1 rows + deployment

Parts (results in ``benchmarks/results/roy_audio.json``, runs in ``benchmarks/results/runs/``;
a finished run is reused, so parts can be rerun one at a time):

* ``rows``: datasets A (T_h = 15) and B (T_h = 10) with their ANN baselines (SGD, Adam), and the
  speaker-independent split (A, one speaker held out) -- test MSE by the paper's protocol;
* ``th``: SNN test MSE vs T_h on dataset A (paper Fig. 7c, SNN half), ``--sweep-epochs`` each;
* ``bits``: ANN (SGD / Adam) test MSE vs bits of the quantized hidden state on A (Fig. 7c);
* ``deploy``: each row's export on the reference engine over all test recordings (deployed MSE
  vs the float model's) and on the Lava simulator over ``--lava-samples`` of them (every layer's
  spikes compared with the reference's), plus the Loihi 2 check;
* figures: ``roy_audio_generated.png`` (5 test recordings per digit, A | B, Fig. 8b) and
  ``roy_audio_th_bits.png`` (Fig. 7c).

The AE-SNN (784-196-784, T = 15, 1 epoch, as the paper) is trained once and shared.
The paper used TI-46 (16 speakers, 39 x 1500 spectrograms); FSDD has 6 speakers at 8 kHz and
our front end keeps 39 x 40: the data differ, so the paper's numbers are context, not targets.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from _common import DEFAULT_DATA_DIR, RESULTS_DIR, RUNS_DIR, environment, write_json_atomic

from spikecodec.deploy.backends import run
from spikecodec.deploy.check import format_report, loihi2_report
from spikecodec.deploy.hdf5 import read_hdf5
from spikecodec.train import plots
from spikecodec.train.families import FAMILIES
from spikecodec.train.families.roy.training import train_roy_ae
from spikecodec.train.families.roy_audio.training import ae_config, ann_baselines, prepare
from spikecodec.workflows.training import start_run, train_run

FAMILY = FAMILIES["roy-audio"]
OUT = RESULTS_DIR / "roy_audio.json"


def train_or_reuse(name: str, overrides: list[str], root: Path) -> tuple[dict, Path]:
    """Results and export of run ``root/name`` (trained now unless it finished before)."""
    run_dir = root / name
    if (run_dir / "results.json").is_file() and (run_dir / "export.h5").is_file():
        return json.loads((run_dir / "results.json").read_text()), run_dir / "export.h5"
    tic = time.perf_counter()
    if (run_dir / "checkpoint.pt").is_file():  # an interrupted run: continue it
        plan = start_run(FAMILY, resume=str(run_dir), log=print)
    else:
        plan = start_run(FAMILY, overrides=overrides, out=str(run_dir))
    done = train_run(FAMILY, plan, show_progress=False, log=print)
    print(f"{name}: {time.perf_counter() - tic:.0f} s", flush=True)
    return done.results, done.export


def deploy(export: Path, lava_samples: int, data_dir: str) -> dict:
    """Reference over every test recording, Lava over the first ``lava_samples``."""
    net = read_hdf5(export)
    inputs = FAMILY.inputs(net, data_dir=data_dir)
    tic = time.perf_counter()
    ref = run(net, inputs.spikes, backend="reference", probe=True)
    ref_s = time.perf_counter() - tic
    n = min(lava_samples, len(inputs.spikes))
    tic = time.perf_counter()
    lava = run(net, inputs.spikes[:n], backend="lava-sim", probe=True)
    lava_s = time.perf_counter() - tic
    equal = [bool(np.array_equal(a[:n], b)) for a, b in zip(ref.layers, lava.layers, strict=True)]
    report = loihi2_report(net)
    print(format_report(report))
    deployed = FAMILY.score(net, inputs, ref.spikes)
    return {"test_recordings": len(inputs.spikes),
            "reference_mse": deployed["mse"],
            "reference_class_accuracy": deployed["class_accuracy"],
            "float_mse": dict(FAMILY.training_metrics(net))["float"]["mse"],
            "lava_samples": n, "lava_equal_per_layer": equal,
            "lava_mse": FAMILY.score(net, inputs._replace(spikes=inputs.spikes[:n],
                                                          labels=inputs.labels[:n]),
                                     lava.spikes)["mse"],
            "reference_seconds": ref_s, "lava_seconds": lava_s,
            "loihi2_ok": report["ok"], "cores": report["cores"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", default=["rows", "th", "bits", "deploy"],
                        choices=["rows", "th", "bits", "deploy"])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--hidden", type=int, default=512, help="audiocoder hidden (paper 2048)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--sweep-epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--th", type=int, nargs="+", default=[1, 2, 5, 10, 15])
    parser.add_argument("--bits", type=int, nargs="+", default=[1, 2, 4, 8, 0])
    parser.add_argument("--rows", nargs="+", default=["A", "B", "speaker"],
                        choices=["A", "B", "speaker"])
    parser.add_argument("--test-speaker", default="theo")
    parser.add_argument("--lava-samples", type=int, default=300)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    root = RUNS_DIR / "roy_audio"
    root.mkdir(parents=True, exist_ok=True)
    out: dict = {}

    # the AE-SNN, once
    base = FAMILY.load_config(None, [f"data.data_dir={args.data_dir}",
                                     f"ae.data_dir={args.data_dir}"])
    ae_dir = root / "ae"
    if not (ae_dir / "results.json").is_file():
        train_roy_ae(ae_config(base), ae_dir, show_progress=False)
    ae = json.loads((ae_dir / "results.json").read_text())
    out["ae"] = {"network": ae["network"], "test_mse": ae["metrics"]["snn"]["mse"],
                 "test_samples": ae["test_samples"], "epochs": ae["epochs"]}
    common = [f"data.data_dir={args.data_dir}", f"ae.data_dir={args.data_dir}",
              f"ae.run_dir={ae_dir}", f"model.hidden={args.hidden}", f"train.lr={args.lr}"]
    rows = {"A": ["data.pairing=A", "ae.hidden_steps=15"],
            "B": ["data.pairing=B", "ae.hidden_steps=10"],
            "speaker": ["data.pairing=A", "ae.hidden_steps=15",
                        f"data.test_speaker={args.test_speaker}", "ann.enabled=false"]}
    labels = {"A": "A", "B": "B", "speaker": f"A, test speaker {args.test_speaker}"}
    size = f"h{args.hidden}"
    exports = {}
    if "rows" in args.parts or "deploy" in args.parts:
        out.setdefault("rows", {})
        for key in args.rows:
            label = f"{labels[key]} ({size})"
            name = f"row_{key}_{size}_e{args.epochs}"
            results, exports[label] = train_or_reuse(
                name, common + rows[key] + [f"train.epochs={args.epochs}"], root)
            m = results["metrics"]
            out["rows"][label] = {
                "snn": m["snn"]["mse"], "ann_sgd": m.get("ann_sgd", {}).get("mse"),
                "ann_adam": m.get("ann_adam", {}).get("mse"), "paper": results["paper_mse"],
                "class_accuracy": {k: v.get("class_accuracy") for k, v in m.items()},
                "hidden_steps": results["hidden_steps"], "epochs": results["epochs"],
                "network": results["network"], "test_recordings": results["test_samples"],
                "seconds_per_epoch": results["timing"]["seconds_per_epoch"],
                "spikes_per_sample": {k: v for k, v in m["snn"].items() if "spikes" in k}}
    if "th" in args.parts:
        out["th"] = {"epochs": args.sweep_epochs, "hidden": args.hidden, "snn_mse": {}}
        for th in args.th:
            results, _ = train_or_reuse(f"th{th}_{size}_e{args.sweep_epochs}", common + [
                "data.pairing=A", f"ae.hidden_steps={th}", "ann.enabled=false",
                f"train.epochs={args.sweep_epochs}"], root)
            out["th"]["snn_mse"][str(th)] = results["metrics"]["snn"]["mse"]
    if "bits" in args.parts:
        cfg = FAMILY.load_config(None, common + ["data.pairing=A"])
        prep = prepare(cfg, root / "unused", log=print)
        out["bits"] = {"epochs": cfg.ann.epochs, "hidden": args.hidden, "mse": {}}
        for bits in args.bits:
            res = ann_baselines(prep, cfg, bits=bits)
            out["bits"]["mse"][str(bits)] = {k: v["mse"] for k, v in res.items()}
            out["bits"].setdefault("class_accuracy", {})[str(bits)] = {
                k: v["class_accuracy"] for k, v in res.items()}
            print(f"bits {bits}: {out['bits']['mse'][str(bits)]}", flush=True)
    if "deploy" in args.parts:
        out.setdefault("deploy", {}).update(
            {label: deploy(path, args.lava_samples, args.data_dir)
             for label, path in exports.items()})
        if {"A", "B"} <= set(args.rows):
            figure_generated(exports[f"A ({size})"], exports[f"B ({size})"])
    if "th" in out or "bits" in out:
        figure_th_bits(merged(out))
    out["environment"] = environment()
    out.setdefault("settings", {})[size] = vars(args)
    write_json_atomic(OUT, merged(out))
    print(json.dumps({k: v for k, v in out.items() if k != "environment"}, indent=1))
    return 0


def merged(out: dict) -> dict:
    """``out`` over the results file as it is now (another invocation may have written rows
    meanwhile): tables merge by row, everything else is replaced."""
    now = json.loads(OUT.read_text()) if OUT.is_file() else {}
    for key, value in out.items():
        if key in ("rows", "deploy", "settings") and isinstance(now.get(key), dict):
            now[key] = {**now[key], **value}
        else:
            now[key] = value
    return now


def figure_generated(export_a: Path, export_b: Path) -> None:
    """5 test recordings per digit: dataset A's synthesis | dataset B's (paper Fig. 8b)."""
    counts = {}
    for label, export in (("A", export_a), ("B", export_b)):
        net = read_hdf5(export)
        inputs = FAMILY.inputs(net)
        out = run(net, inputs.spikes, backend="reference").spikes.sum(-1)
        counts[label] = (out, inputs.labels.numpy())
    rows = []
    for digit in range(10):
        maps = [c[labels == digit][:5] for c, labels in counts.values()]
        rows.append((f"'{digit}'", np.concatenate(maps)))
    plots.reconstruction_grid(rows, (28, 28), RESULTS_DIR / "roy_audio_generated.png",
                              title="FSDD test recordings -> images (deployed, reference "
                                    "engine): 5 per digit, dataset A (left) | B (right)")


def figure_th_bits(out: dict) -> None:
    """Test MSE vs hidden-state bits: SNN T_h steps of 1 bit, ANN 2^bits levels (Fig. 7c)."""
    fig = plots.new_figure(figsize=(5, 3.4))
    ax = fig.subplots()
    if "th" in out:
        th = sorted((int(k), v) for k, v in out["th"]["snn_mse"].items())
        ax.plot(*zip(*th, strict=True), "o-", label=f"AC-SNN, T_h ({out['th']['epochs']} epochs)")
    if "bits" in out:
        full = out["bits"]["mse"].get("0")
        pts = sorted((int(k), v) for k, v in out["bits"]["mse"].items() if k != "0")
        epochs = out["bits"]["epochs"]
        for key, label in (("ann_sgd", f"AC-ANN (SGD, {epochs} epochs)"),
                           ("ann_adam", f"AC-ANN (Adam, {epochs} epochs)")):
            line = ax.plot([b for b, _ in pts], [v[key] for _, v in pts], "s--", label=label)
            if full is not None:
                ax.axhline(full[key], color=line[0].get_color(), lw=0.8, ls=":")
    ax.set_xlabel("bits of the hidden state (SNN: T_h)")
    ax.set_ylabel("test MSE (dataset A)")
    ax.set_title("FSDD -> MNIST, dataset A (dotted: ANN unquantized)", fontsize=9)
    ax.legend(fontsize=8)
    plots.save_figure(fig, RESULTS_DIR / "roy_audio_th_bits.png")


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``spikecodec`` command.

    spikecodec train roy-ae --dataset digits|mnist|fashion-mnist [--data-dir D] [--download]
                            [--config F] [--set key=value ...] [--out DIR] [--resume DIR]
    spikecodec train vdib [--task blobs|images|events] [--dataset D] [--data-dir D] [--download]
                          [--config F] [--set key=value ...] [--out DIR]
    spikecodec quickstart [--out DIR] [--lava-samples N]
    spikecodec export RUN_DIR [--out FILE.h5]
    spikecodec run EXPORT --backend reference|lava-sim|loihi2 [--dataset D] [--samples N]
                          [--out SPIKES.npz]
    spikecodec eval EXPORT [--backend B] [--dataset D] [--samples N] [--out RESULTS.json]
    spikecodec check EXPORT [--target loihi2] [--samples N]

Each training run writes ``config.toml`` (the resolved config), ``checkpoint.pt``,
``results.json`` and PNG figures into its run directory; ``train vdib`` and ``quickstart`` also
export it (``export.h5``), ``quickstart`` deploys it too. Bad input exits with status 2 and a
one-line message.

VDIB exports (hybrid SNN encoder + host ANN decoder) draw their inputs from the task their
training config describes: ``run`` saves the decoded estimates beside the spikes, ``eval`` scores
them next to the training-time float and quantized metrics. ``run`` on an export without its
decoder says so, saves the spikes and exits 0; ``eval`` needs the decoder and exits 2.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from spikecodec import __version__
from spikecodec.atomic import atomic_path, write_json
from spikecodec.errors import ConfigError, SpikecodecError

BACKEND_CHOICES = ["reference", "lava-sim", "loihi2"]
QUICKSTART_SETTINGS = [
    "data.dataset=digits",
    "train.epochs=20",
    "model.hidden=32",
    "train.batch_size=50",
]


def _default_run_dir(name: str) -> Path:
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _format_results(results: dict[str, Any]) -> str:
    m = results["metrics"]
    paper = results.get("paper_mse", {})
    rows = [("AE-SNN (trained)", m["snn"]["mse"], m["snn"]["spike_mse"], paper.get("snn")),
            ("AE-SNN (untrained)", m["snn_untrained"]["mse"], m["snn_untrained"]["spike_mse"],
             None)]
    for key, label in (("ann_sgd", "AE-ANN (SGD)"), ("ann_adam", "AE-ANN (Adam)")):
        if key in m:
            rows.append((label, m[key]["mse"], None, paper.get(key)))
    fmt = "{:<20} {:>9} {:>10} {:>10}"
    lines = [f"{results['model']} {results['network']} on {results['dataset']} "
             f"(T={results['num_steps']}, {results['epochs']} epoch(s), "
             f"{results['test_samples']} test samples)",
             fmt.format("model", "test MSE", "Spike-MSE", "paper MSE")]
    for label, mse, smse, ref in rows:
        lines.append(fmt.format(label, f"{mse:.4f}", "-" if smse is None else f"{smse:.4f}",
                                "-" if ref is None else f"{ref:.3f}"))
    t = results["timing"]
    sps = t["samples_per_second"]
    lines.append(f"training: {t['seconds_per_epoch']:.1f} s/epoch, "
                 f"{sps:.0f} samples/s ({t['torch_threads']} threads); spikes/sample: hidden "
                 f"{m['snn']['hidden_spikes_per_sample']:.0f}, output "
                 f"{m['snn']['output_spikes_per_sample']:.0f}")
    return "\n".join(lines)


def _format_vdib_results(results: dict[str, Any]) -> str:
    m = results["metrics"]
    accuracy = "position_accuracy" in m["float"]
    fmt = "{:<10} {:>9} {:>22}" + (" {:>13}" if accuracy else "")
    where = results["task"] + ("" if results["task"] == "blobs" else f"/{results['dataset']}")
    lines = [f"VDIB {results['network']} on {where} ({results['encoding']}, "
             f"T={results['num_steps']}, {results['epochs']} epoch(s), {results['rule']}, "
             f"{results['train_samples']} train / {results['test_samples']} test samples)",
             fmt.format("encoder", "test MSE", "readout spikes/sample",
                        *(["position acc."] if accuracy else []))]
    for mode in ("float", "quantized"):
        row = m[mode]
        lines.append(fmt.format(mode, f"{row['mse']:.4f}",
                                f"{row['readout_spikes_per_sample']:.1f}",
                                *([f"{row['position_accuracy']:.3f}"] if accuracy else [])))
    t = results["timing"]
    lines.append(f"training: {t['mean_seconds_per_epoch']:.1f} s/epoch ({t['device']}, "
                 f"{t['torch_threads']} threads)")
    return "\n".join(lines)


def _overrides(args: argparse.Namespace, *pairs: tuple[str, Any]) -> list[str]:
    """Command-line options as config overrides, before the ``--set`` ones (which win)."""
    return [f"{key}={value}" for key, value in pairs if value] + list(args.settings)


def cmd_train(args: argparse.Namespace) -> int:
    if args.model == "vdib":
        return _train_vdib(args)
    if args.task:
        raise ConfigError("--task is an option of `train vdib`; roy-ae trains on images")
    from spikecodec.train import config as config_io
    from spikecodec.train.roy_training import RoyAEConfig, train_roy_ae

    resume = args.resume is not None
    if resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.toml").is_file():
            raise ConfigError(f"--resume {run_dir}: no config.toml there (not a run directory)")
        cfg = config_io.load(RoyAEConfig, run_dir / "config.toml")
    else:
        overrides = list(args.settings)
        if args.dataset:
            overrides.insert(0, f"data.dataset={args.dataset}")
        if args.data_dir:
            overrides.insert(0, f"data.data_dir={args.data_dir}")
        if args.download:
            overrides.insert(0, "data.download=true")
        cfg = config_io.load(RoyAEConfig, args.config, overrides)
        run_dir = Path(args.out) if args.out else _default_run_dir(f"roy-ae-{cfg.data.dataset}")
    results = train_roy_ae(cfg, run_dir, resume=resume, show_progress=not args.no_progress)
    print(_format_results(results))
    print(f"run directory: {run_dir}")
    return 0


def _train_vdib(args: argparse.Namespace) -> int:
    from spikecodec.train import config as config_io
    from spikecodec.train.pipeline import export_run
    from spikecodec.train.vdib.training import VDIBConfig, train_vdib

    if args.resume:
        raise ConfigError("--resume is not supported by `train vdib` yet; start a new run")
    overrides = _overrides(args, ("data.task", args.task), ("data.dataset", args.dataset),
                           ("data.data_dir", args.data_dir),
                           ("data.download", "true" if args.download else None))
    cfg = config_io.load(VDIBConfig, args.config, overrides)
    if cfg.decoder.window > cfg.data.num_steps:  # build_model says so too, after loading data
        raise ConfigError(f"decoder.window ({cfg.decoder.window}) must be <= data.num_steps "
                          f"({cfg.data.num_steps}); 0 decodes the whole T")
    name = cfg.data.task + ("" if cfg.data.task == "blobs" else f"-{cfg.data.dataset}")
    run_dir = Path(args.out) if args.out else _default_run_dir(f"vdib-{name}")
    results = train_vdib(cfg, run_dir, show_progress=not args.no_progress)
    print(_format_vdib_results(results))
    net, path = export_run(run_dir)
    print(f"exported {path}: {net.in_features} inputs -> "
          f"{' -> '.join(str(layer.out_features) for layer in net.layers)} readout neurons, "
          f"{net.decoder['arch']} decoder on the host")
    print(f"run directory: {run_dir}")
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from spikecodec.train import config as config_io
    from spikecodec.train.roy_training import RoyAEConfig, train_roy_ae

    cfg = config_io.load(RoyAEConfig, None, QUICKSTART_SETTINGS + list(args.settings))
    run_dir = Path(args.out) if args.out else _default_run_dir("quickstart")
    print(f"quickstart: Roy et al. AE-SNN on scikit-learn's digits (no download) -> {run_dir}")
    results = train_roy_ae(cfg, run_dir, show_progress=not args.no_progress)
    print(_format_results(results))
    from spikecodec.train.deployment import deploy_run, format_deployment

    print("\nquantize -> NetX HDF5 export -> reference engine (whole test split) and Lava "
          "simulator (subset)")
    deployed = deploy_run(run_dir, lava_samples=args.lava_samples, data_dir=cfg.data.data_dir,
                          show_progress=not args.no_progress)
    print(format_deployment(deployed))
    print(f"run directory: {run_dir} (export.h5, deployed.json, deployed_reconstructions.png, "
          f"output_raster.png, reconstructions.png, loss.png, results.json)")
    return 0


def _load_export(path: str):
    from spikecodec.deploy.hdf5 import read_hdf5

    return read_hdf5(path)


def _test_split(net, args: argparse.Namespace):
    from spikecodec.train.datasets import load_images

    dataset = args.dataset or net.metadata.get("dataset")
    if dataset is None:
        raise ConfigError("this export does not name its dataset; pass --dataset")
    return load_images(dataset, args.split, data_dir=args.data_dir, download=args.download,
                       limit=args.samples)


def cmd_export(args: argparse.Namespace) -> int:
    from spikecodec.train.pipeline import export_run

    net, path = export_run(args.run_dir, args.out)
    print(net.summary())
    print(f"wrote {path}")
    return 0


def _is_vdib(net) -> bool:
    return net.metadata.get("model_kind") == "vdib"


def _vdib_inputs(net, args: argparse.Namespace):
    from spikecodec.train.vdib.deployment import export_inputs

    return export_inputs(net, split=args.split, samples=args.samples, dataset=args.dataset,
                         data_dir=args.data_dir, download=args.download)


def _decoded(net, spikes, inputs) -> dict[str, Any]:
    """The host decoder's estimates of output spikes, if the export has one (else a note)."""
    from spikecodec.deploy.decoders import decode
    from spikecodec.errors import ExportError

    if not _is_vdib(net) and net.decoder.get("kind") != "ann":
        return {}
    try:
        if inputs is not None:
            from spikecodec.train.vdib.deployment import decode_spikes

            decoded = decode_spikes(net, spikes, inputs.cfg)
        else:
            decoded = decode(net.decoder, spikes, num_steps=net.num_steps)
    except ExportError as err:
        print(f"no decoder: {err}")
        return {}
    line = f"decoded on the host: {len(decoded)} estimates of shape {decoded.shape[1:]}"
    if inputs is not None:
        import torch

        from spikecodec.train.vdib.tasks import score

        scores = score(inputs.task, torch.from_numpy(decoded), inputs.reference)
        line += "; " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
    print(line)
    out = {"decoded": decoded}
    if inputs is not None:
        out["reference"] = inputs.reference.numpy()
    return out


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    from spikecodec.deploy.backends import run
    from spikecodec.train.pipeline import encode

    net = _load_export(args.export)
    inputs = None
    if _is_vdib(net):
        inputs = _vdib_inputs(net, args)
        x, labels = inputs.spikes, inputs.labels
    else:
        split = _test_split(net, args)
        x = encode(net, split.images, seed=int(net.metadata.get("eval_seed", 0)))
        labels = split.labels
    tic = time.perf_counter()
    result = run(net, x, backend=args.backend, show_progress=not args.no_progress)
    seconds = time.perf_counter() - tic
    print(f"{args.backend}: {len(x)} samples x {net.num_steps} steps in {seconds:.2f} s "
          f"({len(x) / seconds:.1f} samples/s); output spikes per sample "
          f"{result.spikes.sum() / len(x):.1f}")
    arrays = {"input": x.numpy().astype(np.uint8), "output": result.spikes,
              **_decoded(net, result.spikes, inputs)}
    if labels is not None:
        arrays["labels"] = labels.numpy()
    if args.out:
        out = Path(args.out)
        with atomic_path(out) as tmp, open(tmp, "wb") as fh:  # a handle: numpy adds no suffix
            np.savez_compressed(fh, **arrays)
        print(f"wrote {out} ({', '.join(arrays)}; spikes are (batch, neurons, time))")
    return 0


def _eval_vdib(net, args: argparse.Namespace) -> int:
    from spikecodec.train.vdib.deployment import evaluate_vdib_export

    metrics, _ = evaluate_vdib_export(net, backend=args.backend, samples=args.samples,
                                      split=args.split, dataset=args.dataset,
                                      data_dir=args.data_dir, download=args.download,
                                      show_progress=not args.no_progress)
    where = metrics["task"] + ("" if metrics["task"] == "blobs" else f"/{metrics['dataset']}")
    print(f"{args.backend} on {metrics['samples']} {where} {metrics['split']} samples: "
          f"{metrics['samples_per_second']:.1f} samples/s, host decoding "
          f"{metrics['decode_seconds']:.2f} s")
    rows = []
    for mode in ("float", "quantized"):  # the training run's evaluation, stored in the export
        m = net.metadata.get(f"{mode}_metrics")
        if m:
            same = m["samples"] == metrics["samples"] and args.split == "test"
            note = "" if same else f", {m['samples']} test samples"
            rows.append((f"{mode} (training{note})", m))
    rows.append((f"{args.backend} (deployed)", metrics))
    accuracy = "position_accuracy" in metrics
    width = max(len(label) for label, _ in rows)
    fmt = f"{{:<{width}}} {{:>9}} {{:>22}}" + (" {:>13}" if accuracy else "")
    print(fmt.format("", "MSE", "readout spikes/sample", *(["position acc."] if accuracy else [])))
    for label, m in rows:
        print(fmt.format(label, f"{m['mse']:.4f}", f"{m['readout_spikes_per_sample']:.1f}",
                         *([f"{m.get('position_accuracy', float('nan')):.3f}"]
                           if accuracy else [])))
    if args.out:
        write_json(args.out, metrics)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from spikecodec.train.pipeline import evaluate_export

    net = _load_export(args.export)
    if _is_vdib(net):
        return _eval_vdib(net, args)
    split = _test_split(net, args)
    metrics, _, _ = evaluate_export(net, split, backend=args.backend,
                                    show_progress=not args.no_progress)
    spikes = ", ".join(f"{k} {v:.1f}" for k, v in metrics["spikes_per_sample"].items())
    print(f"{args.backend} on {metrics['samples']} {split.name} samples: MSE {metrics['mse']:.4f}, "
          f"Spike-MSE {metrics['spike_mse']:.4f}\nspikes per sample: {spikes}; synaptic ops "
          f"per sample {metrics['synops_per_sample']:.0f}; "
          f"{metrics['samples_per_second']:.1f} samples/s")
    float_metrics = net.metadata.get("float_metrics")
    if float_metrics:
        print(f"float model at training time: MSE {float_metrics['mse']:.4f}")
    if args.out:
        write_json(args.out, metrics)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    net = _load_export(args.export)
    if args.target == "loihi2":
        from spikecodec.deploy.check import format_report, loihi2_report

        report = loihi2_report(net)
        print(format_report(report))
        return 0 if report["ok"] else 1
    from spikecodec.train.parity import format_parity, parity_report
    from spikecodec.train.pipeline import encode

    if _is_vdib(net):  # inputs from the export's task (spikes or encoded images)
        x, images, metric = _vdib_parity_inputs(net, args)
    else:
        if net.input.encoding == "spikes":
            raise ConfigError("this export takes raw spikes; parity needs an encoding to draw "
                              "inputs from (export it with spikecodec)")
        images, metric = _test_split(net, args).images, None
        x = encode(net, images, seed=int(net.metadata.get("eval_seed", 0)))
    report = parity_report(net, x, images=images, metric=metric,
                           show_progress=not args.no_progress)
    print(format_parity(report))
    # The "float" row of a VDIB export is the torch model in its quantized mode (its float mode
    # samples with torch's RNG), which must agree bit for bit too; Roy's float model may differ.
    exact = ("float", "reference", "lava-sim") if _is_vdib(net) else ("reference", "lava-sim")
    ok = all(layer["agreement"] == 1.0 for row in report["engines"]
             if row["engine"] in exact for layer in row["layers"])
    if _is_vdib(net):
        print("(VDIB: the float row is the training model in its quantized mode: sigmoid table "
              "and counter-based PRNG, so all three rows must agree exactly)")
    return 0 if ok else 1


def _vdib_parity_inputs(net, args: argparse.Namespace):
    """Input spikes and the parity metric of a VDIB export: the decoded task MSE, or readout
    spikes per sample when the export has no decoder."""
    import torch

    from spikecodec.errors import ExportError
    from spikecodec.train.vdib.deployment import decode_spikes, require_decoder
    from spikecodec.train.vdib.tasks import score

    inputs = _vdib_inputs(net, args)

    def decoded_mse(spikes) -> float:
        estimates = torch.from_numpy(decode_spikes(net, spikes, inputs.cfg))
        return score(inputs.task, estimates, inputs.reference)["mse"]

    try:
        require_decoder(net)
        metric = ("decoded MSE", decoded_mse)
    except ExportError as err:
        print(f"no decoder: {err}; comparing spikes only")
        metric = ("spikes/sample", lambda spikes: float(spikes.sum()) / len(spikes))
    return inputs.spikes, None, metric


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikecodec",
        description="Spiking autoencoders from training to Loihi 2.")
    parser.add_argument("--version", action="version", version=f"spikecodec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--set", dest="settings", action="append", default=[],
                       metavar="KEY=VALUE", help="override a config value, e.g. train.lr=1e-3")
        p.add_argument("--out", help="run directory (default runs/<name>-<time>)")
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")

    train = sub.add_parser("train", help="train a model (roy-ae, vdib)",
                           description="Train a model and write a run directory (vdib also "
                           "exports it to RUN_DIR/export.h5).")
    train.add_argument("model", choices=["roy-ae", "vdib"],
                       help="which paper's model: roy-ae (Roy et al. 2019 AE-SNN) or vdib "
                       "(Skatchkovsky et al. 2021 SNN encoder + ANN decoder)")
    train.add_argument("--task", choices=["blobs", "images", "events"],
                       help="vdib only: the task (default images)")
    train.add_argument("--dataset", help="digits (default, embedded), mnist or fashion-mnist; "
                       "vdib events: nmnist or mnist-dvs")
    train.add_argument("--data-dir", help="folder with the dataset files (npz or IDX)")
    train.add_argument("--download", action="store_true",
                       help="allow downloading the dataset with torchvision (needs internet)")
    train.add_argument("--config", help="TOML config file (see docs/configs/)")
    train.add_argument("--resume", metavar="RUN_DIR",
                       help="roy-ae only: continue an interrupted run from its last checkpoint")
    common(train)
    train.set_defaults(func=cmd_train)

    quick = sub.add_parser("quickstart", help="train the Roy AE-SNN on the embedded digits",
                           description="The main job: a spiking autoencoder trained end to end "
                           "on scikit-learn's bundled digits, no download needed.")
    quick.add_argument("--lava-samples", type=int, default=40, metavar="N",
                       help="test samples replayed on the Lava simulator (default 40; 0 skips)")
    common(quick)
    quick.set_defaults(func=cmd_quickstart)

    def data_args(p: argparse.ArgumentParser, samples: int | None) -> None:
        p.add_argument("export", help="an export written by `spikecodec export` (.h5)")
        p.add_argument("--dataset", help="dataset to draw inputs from (default: the export's)")
        p.add_argument("--data-dir", help="folder with the dataset files")
        p.add_argument("--download", action="store_true", help="allow torchvision downloads")
        p.add_argument("--split", default="test", choices=["train", "test"])
        p.add_argument("--samples", type=_positive, default=samples, metavar="N",
                       help=f"first N samples of the split (default {samples or 'all'})")
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")

    export = sub.add_parser("export", help="quantize a training run to a NetX HDF5 export")
    export.add_argument("run_dir", help="run directory with config.toml and checkpoint.pt")
    export.add_argument("--out", help="export path (default RUN_DIR/export.h5)")
    export.set_defaults(func=cmd_export)

    run_p = sub.add_parser("run", help="run an export on a backend, save the spikes")
    data_args(run_p, None)
    run_p.add_argument("--backend", default="reference", choices=BACKEND_CHOICES)
    run_p.add_argument("--out", help="write input/output spikes to this .npz")
    run_p.set_defaults(func=cmd_run)

    eval_p = sub.add_parser("eval", help="reconstruction metrics of an export on a backend")
    data_args(eval_p, None)
    eval_p.add_argument("--backend", default="reference", choices=BACKEND_CHOICES)
    eval_p.add_argument("--out", help="write the metrics to this JSON file")
    eval_p.set_defaults(func=cmd_eval)

    check = sub.add_parser("check", help="parity of float/reference/Lava, or Loihi 2 resources",
                           description="Without --target: run the float model, the reference "
                           "engine and the Lava simulator on the same inputs and compare every "
                           "layer (exit 1 if reference and Lava differ). With --target loihi2: "
                           "per-layer resources and bit widths against Loihi 2 (exit 1 if a "
                           "field does not fit).")
    data_args(check, 20)
    check.add_argument("--target", choices=["loihi2"], help="check Loihi 2 limits instead")
    check.set_defaults(func=cmd_check)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SpikecodecError as err:
        print(f"spikecodec: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spikecodec: interrupted; resume with `spikecodec train ... --resume RUN_DIR`",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The ``spikecodec`` command.

    spikecodec train roy-ae --dataset digits|mnist|fashion-mnist [--data-dir D] [--download]
                            [--config F] [--set key=value ...] [--out DIR] [--resume DIR]
    spikecodec quickstart [--out DIR] [--lava-samples N]
    spikecodec export RUN_DIR [--out FILE.h5]
    spikecodec run EXPORT --backend reference|lava-sim|loihi2 [--dataset D] [--samples N]
                          [--out SPIKES.npz]
    spikecodec eval EXPORT [--backend B] [--dataset D] [--samples N] [--out RESULTS.json]
    spikecodec check EXPORT [--target loihi2] [--samples N]

Each training run writes ``config.toml`` (the resolved config), ``checkpoint.pt``,
``results.json`` and PNG figures into its run directory; ``quickstart`` also exports and deploys
it. Bad input exits with status 2 and a one-line message.
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


def cmd_train(args: argparse.Namespace) -> int:
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


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    from spikecodec.deploy.backends import run
    from spikecodec.train.pipeline import encode

    net = _load_export(args.export)
    split = _test_split(net, args)
    x = encode(net, split.images, seed=int(net.metadata.get("eval_seed", 0)))
    tic = time.perf_counter()
    result = run(net, x, backend=args.backend, show_progress=not args.no_progress)
    seconds = time.perf_counter() - tic
    print(f"{args.backend}: {len(x)} samples x {net.num_steps} steps in {seconds:.2f} s "
          f"({len(x) / seconds:.1f} samples/s); output spikes per sample "
          f"{result.spikes.sum() / len(x):.1f}")
    if args.out:
        out = Path(args.out)
        with atomic_path(out) as tmp, open(tmp, "wb") as fh:  # a handle: numpy adds no suffix
            np.savez_compressed(fh, input=x.numpy().astype(np.uint8), output=result.spikes,
                                labels=split.labels.numpy())
        print(f"wrote {out} (input and output spikes, (batch, neurons, time))")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from spikecodec.train.pipeline import evaluate_export

    net = _load_export(args.export)
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

    images = None
    if net.input.encoding == "spikes":
        raise ConfigError("this export takes raw spikes; parity needs an encoding to draw "
                          "inputs from (export it with spikecodec)")
    split = _test_split(net, args)
    images = split.images
    x = encode(net, images, seed=int(net.metadata.get("eval_seed", 0)))
    report = parity_report(net, x, images=images, show_progress=not args.no_progress)
    print(format_parity(report))
    ok = all(layer["agreement"] == 1.0 for row in report["engines"]
             if row["engine"] != "float" for layer in row["layers"])
    return 0 if ok else 1


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

    train = sub.add_parser("train", help="train a model (roy-ae)",
                           description="Train a model and write a run directory.")
    train.add_argument("model", choices=["roy-ae"], help="which paper's model")
    train.add_argument("--dataset", help="digits (default, embedded), mnist or fashion-mnist")
    train.add_argument("--data-dir", help="folder with the dataset files (npz or IDX)")
    train.add_argument("--download", action="store_true",
                       help="allow downloading the dataset with torchvision (needs internet)")
    train.add_argument("--config", help="TOML config file (see docs/configs/)")
    train.add_argument("--resume", metavar="RUN_DIR",
                       help="continue an interrupted run from its last checkpoint")
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

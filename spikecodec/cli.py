"""The ``spikecodec`` command.

    spikecodec train roy-ae --dataset digits|mnist|fashion-mnist [--data-dir D] [--download]
                            [--config F] [--set key=value ...] [--out DIR] [--resume DIR]
    spikecodec quickstart [--out DIR]

Each run writes ``config.toml`` (the resolved config), ``checkpoint.pt``, ``results.json`` and
PNG figures into its run directory. Bad input exits with status 2 and a one-line message.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from spikecodec import __version__
from spikecodec.errors import ConfigError, SpikecodecError

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
    print(f"run directory: {run_dir} (reconstructions.png, loss.png, results.json)")
    return 0


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
    common(quick)
    quick.set_defaults(func=cmd_quickstart)
    return parser


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

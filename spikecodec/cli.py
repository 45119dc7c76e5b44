"""The ``spikecodec`` command: argparse and thin commands over :mod:`spikecodec.workflows`.

    spikecodec train FAMILY [--config F] [--set key=value ...] [--out DIR] [--resume DIR] ...
    spikecodec quickstart [--out DIR] [--lava-samples N]
    spikecodec export RUN_DIR [--out FILE.h5]
    spikecodec run EXPORT [--backend B] [--samples N] [--workers N] [--out SPIKES.npz]
    spikecodec eval EXPORT [--backend B] [--samples N] [--workers N] [--out RESULTS.json]
    spikecodec check EXPORT [--target loihi2] [--samples N] [--workers N]
    spikecodec sweep FAMILY [--trials N] [--workers N] [--seeds K] [--storage URL] [--out DIR]
    spikecodec run|eval|check EXPORT --input SPIKES.npy [--target T.npy --metric M] [--probe L]
    spikecodec export RUN_DIR|EXPORT --format nir [--out FILE.nir]
    spikecodec import-nir FILE.nir --out EXPORT.h5 [--dt DT] [--steps T]
    spikecodec bundle EXPORT DIR [--input SPIKES.npy]
    spikecodec config FAMILY [--out FILE.toml]

``train`` takes one subcommand per registered model family (``spikecodec train -h`` lists
them); every run writes config.toml, checkpoint.pt, metrics.csv, results.json and figures into
its run directory and exports it (export.h5). ``run``, ``eval`` and ``check`` draw inputs as
the export's training config says (unless ``--dataset`` / ``--data-dir`` say otherwise).

Exit status: 0 done; 1 ``check`` found a difference or a misfit; 2 bad input (one line saying
what and where); 3 the backend cannot run on this machine; 130 interrupted; 143 / 129 SIGTERM /
SIGHUP during a Lava run (stopped cleanly).
"""
from __future__ import annotations

import argparse
import sys

from spikecodec import __version__
from spikecodec.atomic import atomic_path, check_target, write_json, write_text
from spikecodec.errors import BackendUnavailableError, SpikecodecError, Terminated

EXIT_MISMATCH, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 1, 2, 3, 130
# torch threads of the commands that are not training runs (run, eval, check, ...), measured
# (benchmarks/reference_under_load.py, 2 cores): the reference engine keeps 0.70 of its quiet
# speed with 1 thread when another process holds a core, 0.27 with 2 (quiet, 2 are 1.4x faster)
DEFAULT_THREADS = 1


def cmd_train(args: argparse.Namespace) -> int:
    from spikecodec.train.families import FAMILIES
    from spikecodec.workflows.training import start_run, train_run

    family = FAMILIES[args.family]
    plan = start_run(family, config=args.config, out=args.out, resume=args.resume,
                     overrides=family.cli_overrides(args) + list(args.settings))
    run = train_run(family, plan, show_progress=not args.no_progress)
    if run.results is None:
        return 0  # a torchrun rank > 0: rank 0 reports
    print(family.format_results(run.results))
    if run.net is not None:
        print(f"exported {run.export}: {run.net.in_features} inputs -> "
              f"{' -> '.join(str(layer.out_features) for layer in run.net.layers)}")
    print(f"run directory: {plan.run_dir}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from spikecodec.workflows.sweep import sweep_command

    return sweep_command(args)


def cmd_quickstart(args: argparse.Namespace) -> int:
    from spikecodec.workflows.quickstart import quickstart

    quickstart(args.out, lava_samples=args.lava_samples, settings=args.settings,
               show_progress=not args.no_progress)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from spikecodec.workflows.exporting import export_run

    if args.out:
        check_target(args.out)  # before the work, not after it
    if args.format == "nir":
        from spikecodec.workflows.interop import export_nir

        graph, path = export_nir(args.run_dir, args.out, dt=args.dt)
        kinds = ", ".join(f"{k} {type(v).__name__}" for k, v in graph.nodes.items())
        print(f"NIR graph (dt = {args.dt:g}): {kinds}\nwrote {path}")
        return 0
    net, path = export_run(args.run_dir, args.out)
    print(f"{net.summary()}\nwrote {path}")
    return 0


def cmd_import_nir(args: argparse.Namespace) -> int:
    from spikecodec.workflows.interop import format_import, import_nir

    spikes = None
    if args.input:
        from spikecodec.workflows.spikefiles import read_spike_file

        spikes = read_spike_file(args.input)
    result = import_nir(args.file, args.out, dt=args.dt, num_steps=args.steps, spikes=spikes,
                        samples=args.samples, seed=args.seed)
    print(format_import(result.report))
    print(f"{result.net.summary()}\nwrote {result.path}")
    if args.report:
        write_json(args.report, result.report)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from spikecodec.workflows.configs import default_config_toml

    text = default_config_toml(args.family)
    if args.out:
        write_text(args.out, text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from spikecodec.workflows.bundle import make_bundle

    spikes = None
    if args.input:
        from spikecodec.workflows.spikefiles import read_spike_file

        spikes = read_spike_file(args.input)
    path = make_bundle(args.export, args.dir, input_spikes=spikes)
    print(f"wrote {path}/ (export.h5, run_export.py, README.md"
          f"{', input.npy' if spikes is not None else ''}); on the target machine: "
          f"python run_export.py --input SPIKES.npy --output out.npz")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    from spikecodec.deploy.hdf5 import read_hdf5
    from spikecodec.workflows.evaluate import export_inputs, run_export, worker_options
    from spikecodec.workflows.spikefiles import file_inputs, probe_indices

    if args.out:
        check_target(args.out)
    net = read_hdf5(args.export)
    probe = probe_indices(net, args.probe)
    if args.input:
        family, inputs = None, file_inputs(net, args.input, samples=args.samples)
    else:
        family, inputs = export_inputs(net, args)
    arrays, report = run_export(net, family, inputs, backend=args.backend, show_progress=not
                                args.no_progress, backend_options=worker_options(args),
                                probe=probe)
    print(report)
    if args.out:
        with atomic_path(args.out) as tmp, open(tmp, "wb") as fh:  # numpy adds no suffix
            np.savez_compressed(fh, **arrays)
        print(f"wrote {args.out} ({', '.join(arrays)}; spikes are (batch, neurons, time))")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from spikecodec.deploy.hdf5 import read_hdf5
    from spikecodec.workflows.evaluate import evaluate_export, worker_options
    from spikecodec.workflows.exporting import family_of
    from spikecodec.workflows.reports import format_evaluation, same_samples

    if args.out:
        check_target(args.out)
    net = read_hdf5(args.export)
    if args.input:
        from spikecodec.workflows.reports import format_file_evaluation
        from spikecodec.workflows.spikefiles import evaluate_file, file_inputs

        inputs = file_inputs(net, args.input, target=args.target, samples=args.samples)
        metrics = evaluate_file(net, inputs, metric=args.metric or "spike_mse",
                                backend=args.backend,
                                show_progress=not args.no_progress,
                                backend_options=worker_options(args))
        print(format_file_evaluation(metrics, target=args.target))
        if args.out:
            write_json(args.out, metrics)
        return 0
    if args.target or args.metric:
        from spikecodec.errors import InputError

        raise InputError("--target and --metric score a spike file: give --input FILE too")
    metrics = evaluate_export(net, backend=args.backend, samples=args.samples,
                              split=args.split, dataset=args.dataset, data_dir=args.data_dir,
                              download=args.download, show_progress=not args.no_progress,
                              backend_options=worker_options(args)).metrics
    training = family_of(net).training_metrics(net)
    same = same_samples(metrics, training, split=args.split, samples=args.samples)
    print(format_evaluation(metrics, training, same_samples=same))
    if args.out:
        write_json(args.out, metrics)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from spikecodec.deploy.hdf5 import read_hdf5
    from spikecodec.workflows.evaluate import export_inputs, worker_options
    from spikecodec.workflows.parity import check_parity
    from spikecodec.workflows.reports import format_parity

    net = read_hdf5(args.export)
    if args.target == "loihi2":
        from spikecodec.deploy.check import format_report, loihi2_report

        report = loihi2_report(net)
        print(format_report(report))
        return 0 if report["ok"] else EXIT_MISMATCH
    options = {"lava-sim": worker_options(args)}
    if args.input:
        from spikecodec.workflows.parity import check_file_parity
        from spikecodec.workflows.spikefiles import file_inputs

        inputs = file_inputs(net, args.input, samples=args.samples)
        report, ok = check_file_parity(net, inputs, show_progress=not args.no_progress,
                                       backend_options=options)
        print(format_parity(report))
        return 0 if ok else EXIT_MISMATCH
    family, inputs = export_inputs(net, args)
    report, ok = check_parity(net, family, inputs, show_progress=not args.no_progress,
                              backend_options=options)
    print(format_parity(report))
    return 0 if ok else EXIT_MISMATCH


def build_parser() -> argparse.ArgumentParser:
    from spikecodec.deploy.backends import backend_names
    from spikecodec.train.families import FAMILIES

    parser = argparse.ArgumentParser(prog="spikecodec",
                                     description="Spiking autoencoders from training to Loihi 2.")
    parser.add_argument("--version", action="version", version=f"spikecodec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(p: argparse.ArgumentParser, out_help: str) -> None:
        p.add_argument("--set", dest="settings", action="append", default=[],
                       metavar="KEY=VALUE", help="override a config value, e.g. train.lr=1e-3")
        p.add_argument("--out", help=out_help)
        p.add_argument("--no-progress", action="store_true", help="one line per epoch, no bars")

    train = sub.add_parser("train", help="train a model family, then export it",
                           description="Train a model and write a run directory, exported to "
                           "RUN_DIR/export.h5.")
    families = train.add_subparsers(dest="family", metavar="FAMILY", required=True)
    for name, family in FAMILIES.items():
        p = families.add_parser(name, help=family.title, description=family.title)
        family.add_arguments(p)
        p.add_argument("--config", help="TOML config file (see docs/configs/)")
        p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its "
                       "last checkpoint (--set may change epochs, checkpoint interval, lr)")
        common(p, "run directory (default runs/<name>-<time>)")
        p.set_defaults(func=cmd_train)

    quick = sub.add_parser("quickstart", help="train the Roy AE-SNN on the embedded digits",
                           description="The main job: a spiking autoencoder trained end to end "
                           "on scikit-learn's bundled digits, no download needed.")
    quick.add_argument("--lava-samples", type=_at_least(0), default=40, metavar="N",
                       help="test samples replayed on the Lava simulator (default 40; 0 skips)")
    common(quick, "run directory (default runs/quickstart-<time>)")
    quick.set_defaults(func=cmd_quickstart)

    export = sub.add_parser("export", help="quantize a training run to a NetX HDF5 export "
                            "(or write a NIR graph)")
    export.add_argument("run_dir", help="run directory with config.toml and checkpoint.pt "
                        "(--format nir: or an export .h5)")
    export.add_argument("--out", help="export path (default RUN_DIR/export.h5, or .nir)")
    export.add_argument("--format", choices=["netx", "nir"], default="netx",
                        help="netx: HDF5 for NetX (default); nir: a NIR graph (dense CUBA "
                        "layers -> Linear + CubaLIF)")
    export.add_argument("--dt", type=float, default=1e-4, help="NIR Euler step the time "
                        "constants are written for (default 1e-4, snnTorch's)")
    export.set_defaults(func=cmd_export)

    imp = sub.add_parser("import-nir", help="quantize a NIR graph to a NetX export",
                         description="Read a NIR graph of Affine/Linear + CubaLIF/LIF/IF nodes "
                         "(snnTorch, Norse, ...), quantize it to Loihi 2 fixed point, report "
                         "per layer what rounding changed and the spike agreement with the "
                         "graph's float simulation, and write a NetX export.")
    imp.add_argument("file", help="a .nir file")
    imp.add_argument("--out", required=True, help="the NetX export to write (.h5)")
    imp.add_argument("--dt", type=float, help="Euler step (default: the graph's metadata, "
                     "else 1e-4, snnTorch's; Norse's default is 1e-3)")
    imp.add_argument("--steps", type=_at_least(1), metavar="T", help="steps per sample of "
                     "the export (default: the graph's metadata, else 32)")
    imp.add_argument("--input", metavar="FILE", help="spikes to measure the agreement on "
                     "(default: random Bernoulli(0.2) spikes)")
    imp.add_argument("--samples", type=_at_least(1), default=100, metavar="N",
                     help="random samples for the agreement (default 100)")
    imp.add_argument("--seed", type=int, default=0, help="seed of the random samples")
    imp.add_argument("--report", metavar="JSON", help="also write the report here")
    imp.set_defaults(func=cmd_import_nir)

    config = sub.add_parser("config", help="print a family's full default config (TOML)",
                            description="The full default config of a model family as "
                            "commented TOML, ready for --config.")
    config.add_argument("family", choices=list(FAMILIES))
    config.add_argument("--out", help="write it to this file instead")
    config.set_defaults(func=cmd_config)

    bundle = sub.add_parser("bundle", help="a folder to copy to a Loihi 2 (INRC) machine",
                            description="Write DIR (a new folder) with the export, a standalone "
                            "run_export.py (lava, lava-dl, numpy, h5py only; Loihi2HwCfg when "
                            "lava-loihi is present, else the CPU simulator) and a README.")
    bundle.add_argument("export", help="an export (.h5)")
    bundle.add_argument("dir", help="the folder to create (must not exist)")
    bundle.add_argument("--input", metavar="FILE", help="spikes to include as input.npy")
    bundle.set_defaults(func=cmd_bundle)

    def data_args(p: argparse.ArgumentParser, samples: int | None) -> None:
        p.add_argument("export", help="an export written by spikecodec (.h5)")
        p.add_argument("--dataset", help="dataset to draw inputs from (default: the export's)")
        p.add_argument("--data-dir", help="dataset folder (default: the export's training's)")
        p.add_argument("--download", action="store_true", help="allow dataset downloads")
        p.add_argument("--split", default="test", choices=["train", "test"])
        p.add_argument("--samples", type=_at_least(1), default=samples, metavar="N",
                       help=f"first N samples of the split (default {samples or 'all'})")
        p.add_argument("--input", metavar="FILE", help="spikes (batch, neurons, time) from an "
                       ".npy/.npz file instead of the export's dataset (0/1 values)")
        p.add_argument("--workers", type=_at_least(1), metavar="N", help="N Lava runtimes at once")
        p.add_argument("--lava-timeout", type=float, metavar="SECONDS", help="stop a Lava run "
                       "that has no result after SECONDS (a typed error, no process left)")
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")

    for name, func, helptext, out in (("run", cmd_run, "run an export on a backend, save the "
                                       "spikes", "write input/output spikes (and host estimates) "
                                       "to this .npz"), ("eval", cmd_eval, "an export's metrics "
                                       "on a backend", "write the metrics to this JSON file")):
        p = sub.add_parser(name, help=helptext)
        data_args(p, None)
        p.add_argument("--backend", default="reference", choices=backend_names())
        p.add_argument("--out", help=out)
        p.set_defaults(func=func)
        if name == "run":
            p.add_argument("--probe", nargs="+", metavar="LAYER", help="also save these "
                           "layers' spikes (as probe/LAYER in the .npz)")
        else:
            from spikecodec.workflows.spikefiles import METRICS

            p.add_argument("--target", metavar="FILE", help="with --input: target spikes of "
                           "the output layer (default: the input spikes)")
            p.add_argument("--metric", choices=METRICS, help="with --input: the score "
                           "(default spike_mse)")

    check = sub.add_parser("check", help="parity of float/reference/Lava, or Loihi 2 resources",
                           description="Without --target: compare every layer of the float "
                           "model, reference engine and Lava simulator on the same inputs (exit 1 "
                           "where they differ and must not). With --target loihi2: per-layer "
                           "resources and bit widths against Loihi 2 (exit 1 if one does not fit).")
    data_args(check, 20)
    check.add_argument("--target", choices=["loihi2"], help="check Loihi 2 limits instead")
    check.set_defaults(func=cmd_check)

    sweep = sub.add_parser("sweep", help="search a family's hyperparameters (Optuna; resumable)")
    sweep.add_argument("family", choices=list(FAMILIES))
    for flag, default, text in (("--trials", 20, "finished trials wanted"), ("--workers", 1,
                                "local worker processes"), ("--seeds", 1, "seeds per trial")):
        sweep.add_argument(flag, type=_at_least(1), default=default, metavar="N", help=text)
    sweep.add_argument("--storage", metavar="URL", help="Optuna URL or journal:PATH")
    sweep.add_argument("--pruner", default="median", choices=["median", "hyperband", "none"])
    sweep.add_argument("--space", metavar="TOML", help="search ranges to add or replace")
    common(sweep, "sweep folder (default sweeps/FAMILY, its SQLite study.db the storage)")
    sweep.set_defaults(func=cmd_sweep)
    for p in (*sub.choices.values(), *families.choices.values()):
        if p is not train:  # every command that computes
            p.add_argument("--threads", type=_at_least(0), metavar="N",
                           help="torch CPU threads (default: a run's train.threads, else 1, "
                           "which keeps its speed when another process holds a core; 0: "
                           "torch's default)")
    return parser


def _at_least(lo: int):
    def parse(text: str) -> int:
        if int(text) < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {text}")
        return int(text)
    return parse


def main(argv: list[str] | None = None) -> int:
    from spikecodec.runtime import configure_process, torch_threads

    args = build_parser().parse_args(argv)
    configure_process()
    threads = args.threads
    if hasattr(args, "settings"):  # train, quickstart, sweep: the run's train.threads
        if threads is not None:
            args.settings.append(f"train.threads={threads}")
        threads = 0  # the run scopes its own
    elif threads is None:
        threads = DEFAULT_THREADS
    try:
        with torch_threads(threads):
            return args.func(args)
    except Terminated as err:  # SIGTERM / SIGHUP during a Lava run, stopped cleanly
        print(f"spikecodec: {err}", file=sys.stderr)
        return 128 + err.signum
    except BackendUnavailableError as err:
        print(f"spikecodec: backend unavailable: {err}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except SpikecodecError as err:
        print(f"spikecodec: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        hint = f"; continue with `spikecodec train {args.family} --resume RUN_DIR`" \
            if args.command == "train" else ""
        print(f"spikecodec: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

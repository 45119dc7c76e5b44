"""Hyperparameter sweeps on Optuna: ``spikecodec sweep FAMILY``.

One sweep is one Optuna study (named :data:`STUDY`) in one storage: by default a SQLite file in
the sweep folder, so running the same command again after a crash or Ctrl-C continues it; any
Optuna storage URL (PostgreSQL, MySQL) or ``journal:PATH`` (a journal file) lets workers on
many machines, each started with the same command, share it. The study records its family and
``--set`` settings and refuses workers of another sweep.

A trial samples the family's search space (:meth:`Family.search_space`, declared beside its
config), applies it over the ``--set`` settings, and trains ``--seeds`` K runs (``train.seed``
+ 0..K-1) in ``SWEEP/trials/trial-NNNN/seed-K``; its value is the mean of
:meth:`Family.sweep_objective` over the seeds. After every epoch the pruner sees the family's
:attr:`Family.prune_metric` (at step ``seed * epochs + epoch``) and may stop the trial
(``PRUNED``; a run that diverges is pruned too). A worker asks for trials until the finished
(complete or pruned) and running ones reach ``--trials``; the running trials of local workers
that died (their process is gone) are marked ``FAIL`` first, so a rerun replaces them. Storages
with heartbeats (the RDB ones) also fail trials of workers that died on other machines.

Results, rewritten at the end of every command: ``best.toml`` (the best trial's config, for
``spikecodec train FAMILY --config``), ``trials.csv``, ``history.png`` and ``importances.png``.
"""
from __future__ import annotations

import csv
import io
import multiprocessing
import os
import shutil
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spikecodec.atomic import atomic_path, write_text
from spikecodec.errors import ConfigError, TrainingError, WorkerError
from spikecodec.runtime import torch_threads
from spikecodec.train import config as config_io
from spikecodec.train import search
from spikecodec.train.families import get_family
from spikecodec.train.fit import on_epoch
from spikecodec.workflows.training import run_folder

STUDY = "spikecodec-sweep"
HEARTBEAT_S = 10  # RDB storages: a RUNNING trial without a heartbeat for 2x this is FAIL
PRUNERS: dict[str, Callable[[], Any]] = {
    # prune below the median of earlier trials at the same epoch, once 2 trials finished
    "median": lambda: _optuna().pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    "hyperband": lambda: _optuna().pruners.HyperbandPruner(min_resource=1),
    "none": lambda: _optuna().pruners.NopPruner(),
}


def _optuna():
    import optuna  # only sweeps need it

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@dataclass(frozen=True)
class Sweep:
    """Everything a worker needs (picklable: workers are spawned processes)."""

    family: str
    out: Path
    storage: str
    trials: int
    seeds: int = 1
    settings: tuple[str, ...] = ()
    pruner: str = "median"
    space: tuple[tuple[str, search.Param], ...] = ()  # replaces the family's where given


def plan_sweep(family: str, *, out: str | os.PathLike, trials: int, storage: str | None = None,
               seeds: int = 1, settings: list[str] = (), pruner: str = "median",
               space_file: str | None = None) -> Sweep:
    """A checked :class:`Sweep` (every bad input is a ConfigError naming it)."""
    get_family(family)
    if trials < 1 or seeds < 1:
        raise ConfigError(f"--trials and --seeds must be >= 1, got {trials} and {seeds}")
    if pruner not in PRUNERS:
        raise ConfigError(f"--pruner must be one of {', '.join(PRUNERS)}, got {pruner!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    space = ()
    if space_file is not None:
        try:
            table = config_io.tomllib.loads(Path(space_file).read_text())
        except (OSError, config_io.tomllib.TOMLDecodeError) as err:
            raise ConfigError(f"--space {space_file}: {err}") from err
        space = tuple(search.from_table(table).items())
    sweep = Sweep(family, out, storage or f"sqlite:///{out.resolve() / 'study.db'}", trials,
                  seeds, tuple(settings), pruner, space)
    search_space(sweep)
    return sweep


def base_config(sweep: Sweep) -> Any:
    family = get_family(sweep.family)
    cfg = family.load_config(None, list(sweep.settings))
    family.check_config(cfg)
    return cfg


def search_space(sweep: Sweep) -> dict[str, search.Param]:
    family = get_family(sweep.family)
    space = {**family.search_space(base_config(sweep)), **dict(sweep.space)}
    return search.check_space(family.config_type, space)


def open_storage(url: str) -> Any:
    """An Optuna storage for ``url`` (``journal:PATH``: a journal file); ConfigError if it
    cannot be opened."""
    optuna = _optuna()
    try:
        if url.startswith("journal:"):
            path = Path(url.removeprefix("journal:"))
            path.parent.mkdir(parents=True, exist_ok=True)
            backend = optuna.storages.journal.JournalFileBackend(str(path))
            return optuna.storages.JournalStorage(backend)
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
        for attempt in range(3):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # heartbeats are "experimental" in Optuna 4
                    return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S,
                                                      engine_kwargs=kwargs)
            except Exception as err:
                # two workers started at once on a new database both create Optuna's schema;
                # the later one fails on a table the other just made: open it again
                if "already exists" not in str(err) or attempt == 2:
                    raise
                time.sleep(0.5)
    except Exception as err:  # drivers raise their own types (sqlalchemy, psycopg, OSError)
        raise ConfigError(f"cannot open the sweep storage {url!r}: "
                          f"{type(err).__name__}: {err}") from err


def open_study(sweep: Sweep) -> Any:
    """The sweep's study, created on first use (with the family's warm-start trials queued);
    ConfigError when the storage holds another family's or other settings' sweep."""
    optuna = _optuna()
    study = optuna.create_study(storage=open_storage(sweep.storage), study_name=STUDY,
                                direction="minimize", pruner=PRUNERS[sweep.pruner](),
                                load_if_exists=True)
    attrs = study.user_attrs
    if "family" not in attrs:
        study.set_user_attr("family", sweep.family)
        study.set_user_attr("settings", list(sweep.settings))
        space = search_space(sweep)
        for point in get_family(sweep.family).warm_starts(base_config(sweep)):
            params = {k: _typed(space[k], v) for k, v in point.items() if k in space}
            study.enqueue_trial(params, skip_if_exists=True)
    elif attrs["family"] != sweep.family:
        raise ConfigError(f"the storage {sweep.storage!r} holds a sweep of {attrs['family']}, "
                          f"not {sweep.family}; use another --storage or --out")
    elif list(attrs.get("settings", [])) != list(sweep.settings):
        raise ConfigError(f"the storage {sweep.storage!r} holds a {sweep.family} sweep with "
                          f"--set {attrs.get('settings')}, not {list(sweep.settings)}; use the "
                          f"same settings or another --storage")
    return study


def _typed(p: search.Param, value: Any) -> Any:
    if isinstance(p, search.Int):
        return int(value)
    if isinstance(p, search.Float):
        return float(value)
    return next((c for c in p.values if str(c) == str(value)), value)


def _suggest(trial: Any, key: str, p: search.Param) -> Any:
    if isinstance(p, search.Float):
        return trial.suggest_float(key, p.low, p.high, log=p.log)
    if isinstance(p, search.Int):
        return trial.suggest_int(key, p.low, p.high, log=p.log)
    return trial.suggest_categorical(key, list(p.values))


def trial_config(sweep: Sweep, params: dict[str, Any]) -> Any:
    """The base config with a trial's parameters applied."""
    text = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in params.items()]
    return config_io.apply_overrides(base_config(sweep), text)


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_dead_trials(study: Any) -> int:
    """Mark ``FAIL`` the RUNNING trials whose worker ran on this machine and is gone."""
    optuna = _optuna()
    host, failed = socket.gethostname(), 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker_host, _, pid = str(t.user_attrs.get("worker", "")).rpartition(":")
        if worker_host == host and pid.isdigit() and not _alive(int(pid)):
            study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            failed += 1
    return failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not Path(f"/proc/{pid}/status").exists() or "State:\tZ" not in \
        Path(f"/proc/{pid}/status").read_text()


def objective(sweep: Sweep, trial: Any, log: Callable[[str], None]) -> float:
    """Train the trial's config ``--seeds`` times; the mean of the family's objective."""
    optuna = _optuna()
    trial.set_user_attr("worker", _worker_id())
    family = get_family(sweep.family)
    params = {k: _suggest(trial, k, p) for k, p in search_space(sweep).items()}
    cfg = trial_config(sweep, params)
    family.check_config(cfg)
    values = []
    for k in range(sweep.seeds):
        seeded = config_io.apply_overrides(cfg, [f"train.seed={cfg.train.seed + k}"])
        run_dir = sweep.out / "trials" / f"trial-{trial.number:04d}" / f"seed-{k}"
        shutil.rmtree(run_dir, ignore_errors=True)  # a number is never reused in one study
        run_dir.mkdir(parents=True)

        def report(epoch: int, means: dict[str, float], k: int = k,
                   epochs: int = seeded.train.epochs) -> None:
            if family.prune_metric not in means:
                raise ConfigError(f"{family.name}: prune metric {family.prune_metric!r} not "
                                  f"among the epoch's metrics {sorted(means)}")
            trial.report(means[family.prune_metric], k * epochs + epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch + 1} of seed {k}: "
                                         f"{family.prune_metric} {means[family.prune_metric]:.4g}")

        try:
            with on_epoch(report), run_folder(run_dir), torch_threads(seeded.train.threads):
                results = family.train(seeded, run_dir, start=None, show_progress=False,
                                       log=lambda _: None)
        except TrainingError as err:  # diverged: a bad point, not a broken sweep
            trial.set_user_attr("diverged", str(err))
            raise optuna.TrialPruned(str(err)) from err
        values.append(family.sweep_objective(results))
    value = sum(values) / len(values)
    log(f"trial {trial.number}: {value:.5g} ({', '.join(f'{k}={v}' for k, v in params.items())})")
    return value


def work(sweep: Sweep, log: Callable[[str], None] = print) -> None:
    """One worker: run trials until finished + running ones reach ``sweep.trials``."""
    optuna = _optuna()
    states = optuna.trial.TrialState
    study = open_study(sweep)
    while True:
        fail_dead_trials(study)
        trials = study.get_trials(deepcopy=False)
        busy = sum(t.state in (states.COMPLETE, states.PRUNED, states.RUNNING) for t in trials)
        waiting = any(t.state == states.WAITING for t in trials)
        if busy >= sweep.trials and not waiting:
            return
        study.optimize(lambda trial: objective(sweep, trial, log), n_trials=1)


def sweep_command(args: Any) -> int:
    """``spikecodec sweep``: plan from the parsed command line, run, write the results."""
    sweep = plan_sweep(args.family, out=args.out or Path("sweeps") / args.family,
                       trials=args.trials, storage=args.storage, seeds=args.seeds,
                       settings=args.settings, pruner=args.pruner, space_file=args.space)
    run_sweep(sweep, workers=args.workers)
    return 0


def _worker_main(sweep: Sweep, index: int) -> None:
    try:
        work(sweep, log=lambda line: print(f"[worker {index}] {line}", flush=True))
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def run_sweep(sweep: Sweep, *, workers: int = 1, log: Callable[[str], None] = print
              ) -> dict[str, Path]:
    """Run ``sweep`` with ``workers`` local workers (processes when more than one), then write
    its results; returns their paths."""
    open_study(sweep)  # bad storage, another family's study: refused here, before any worker
    if workers == 1:
        work(sweep, log)
    else:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_worker_main, args=(sweep, i)) for i in range(workers)]
        try:
            for p in procs:
                p.start()
            for p in procs:
                p.join()
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()
                    p.join()
        bad = [f"worker {i} exited with {p.exitcode}" for i, p in enumerate(procs) if p.exitcode]
        if bad:
            raise WorkerError(f"sweep workers failed: {', '.join(bad)} (their trials are "
                              f"FAIL; run the same command again to continue)")
    return write_results(sweep, log)


def write_results(sweep: Sweep, log: Callable[[str], None] = print) -> dict[str, Path]:
    """``best.toml``, ``trials.csv`` and the plots of the sweep's study, in its folder."""
    optuna = _optuna()
    study = open_study(sweep)
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    out: dict[str, Path] = {"trials": write_text(sweep.out / "trials.csv", trials_csv(trials))}
    counts = {s.name: sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
    log(f"{sweep.family} sweep: " + ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n))
    if not done:
        log("no complete trial yet: no best.toml or plots")
        return out
    best = study.best_trial
    out["best"] = config_io.save(trial_config(sweep, best.params), sweep.out / "best.toml")
    log(f"best: trial {best.number}, {best.value:.5g}; train it with `spikecodec train "
        f"{sweep.family} --config {out['best']}`")
    out.update(_plots(study, sweep.out, len(done), log))
    return out


def trials_csv(trials: list[Any]) -> str:
    keys = list(dict.fromkeys(k for t in trials for k in t.params))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["number", "state", "value", "seconds", *keys, "worker"])
    for t in trials:
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        value = t.value if t.state.name == "COMPLETE" else None  # pruned: last epoch's
        writer.writerow([t.number, t.state.name, "" if value is None else f"{value:.6g}",
                         "" if seconds is None else f"{seconds:.1f}",
                         *(t.params.get(k, "") for k in keys), t.user_attrs.get("worker", "")])
    return buf.getvalue()


def _plots(study: Any, folder: Path, complete: int, log: Callable[[str], None]
           ) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as vis

    plots = {"history": vis.plot_optimization_history}
    if complete >= 2:
        plots["importances"] = vis.plot_param_importances
    else:
        log("parameter importances need >= 2 complete trials: importances.png skipped")
    out = {}
    for name, plot in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning on every plot
            try:
                ax = plot(study)
            except (ValueError, RuntimeError) as err:  # e.g. all trials at one point
                log(f"{name}.png skipped: {err}")
                continue
        path = folder / f"{name}.png"
        with atomic_path(path) as tmp:
            ax.figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        plt.close(ax.figure)
        out[name] = path
    return out

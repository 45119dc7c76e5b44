"""A training run from the command line's point of view: config, run folder, resume, export.

:func:`start_run` resolves what to train (a fresh config, or the saved config of a run to
resume plus the overrides that are safe to change), :func:`train_run` trains it through the
family, with the run's thread count scoped to the call, and exports it. A run that fails
before its first checkpoint leaves no run folder behind; one interrupted later keeps its
folder, which ``--resume`` continues.
"""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from spikecodec.atomic import check_folder
from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.errors import ConfigError
from spikecodec.runtime import torch_threads
from spikecodec.train import config as config_io
from spikecodec.train import parallel
from spikecodec.train.families import Family
from spikecodec.train.families.base import RESUME_SAFE
from spikecodec.train.fit import CHECKPOINT, read_resume_checkpoint
from spikecodec.workflows.exporting import export_run


class RunPlan(NamedTuple):
    cfg: Any
    run_dir: Path
    start: dict[str, Any] | None  # the checkpoint to resume from


class TrainedRun(NamedTuple):
    results: dict[str, Any] | None  # None on torchrun ranks > 0
    net: FixedPointNetwork | None  # None for a family that does not export yet
    export: Path | None


def default_run_dir(name: str) -> Path:
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configs of the same type."""
    out = []
    for f in dataclasses.fields(old):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
            out += changed_keys(a, b, f"{prefix}{f.name}.")
        elif a != b:
            out.append(prefix + f.name)
    return out


def start_run(family: Family, *, config: str | None = None, overrides: list[str] = (),
              out: str | None = None, resume: str | None = None,
              log: Callable[[str], None] = print) -> RunPlan:
    """What to train and where. With ``resume``, the run's saved config plus ``overrides``,
    which may only change what :data:`~spikecodec.train.families.base.RESUME_SAFE` allows
    (epochs, checkpoint interval, threads, learning rates); anything else is refused."""
    if resume is None:
        cfg = family.load_config(config, list(overrides))
        family.check_config(cfg)
        run_dir = check_folder(out) if out else default_run_dir(family.run_name(cfg))
        return RunPlan(cfg, run_dir, None)
    run_dir = Path(resume)
    if config is not None:
        raise ConfigError("--resume continues a run with its own config.toml; --config cannot "
                          "replace it (use --set for what may change)")
    if not (run_dir / "config.toml").is_file():
        raise ConfigError(f"--resume {run_dir}: no config.toml there (not a run directory)")
    start = read_resume_checkpoint(run_dir, family.name)
    saved = family.load_config(run_dir / "config.toml", [])
    cfg = config_io.apply_overrides(saved, list(overrides))
    unsafe = [k for k in changed_keys(saved, cfg) if not RESUME_SAFE.match(k)]
    if unsafe:
        raise ConfigError(f"--resume cannot change {', '.join(unsafe)}: the resumed run would "
                          f"be another experiment; start a new run (on resume only "
                          f"train.epochs, train.checkpoint_every, train.threads and learning rates "
                          f"may change)")
    family.check_config(cfg)
    if start is None:
        log(f"no checkpoint in {run_dir} yet: starting from scratch")
    return RunPlan(cfg, run_dir, start)


@contextmanager
def run_folder(path: Path) -> Iterator[Path]:
    """Remove ``path`` again if this block created it and fails before the first checkpoint."""
    existed = path.exists()
    try:
        yield path
    except BaseException:
        if not existed and not (path / CHECKPOINT).exists():
            shutil.rmtree(path, ignore_errors=True)
        raise


def train_run(family: Family, plan: RunPlan, *, show_progress: bool = True,
              log: Callable[[str], None] = print) -> TrainedRun:
    """Train ``plan`` (``train.threads`` torch threads for the call, restored after), then
    export it to ``RUN_DIR/export.h5`` (when the family is deployable). Under ``torchrun``
    every rank trains (:mod:`spikecodec.train.parallel`) and rank 0 alone writes the run folder
    and the export."""
    parallel.init_from_env(plan.cfg.train.device)
    if not parallel.is_main():  # torchrun rank > 0: same work, files in a private folder
        with tempfile.TemporaryDirectory(prefix="spikecodec-rank") as tmp, \
                torch_threads(plan.cfg.train.threads):
            family.train(plan.cfg, Path(tmp), start=plan.start,
                         show_progress=False, log=lambda _: None)
        return TrainedRun(None, None, None)  # rank 0 reports and exports
    with run_folder(plan.run_dir), torch_threads(plan.cfg.train.threads):
        results = family.train(plan.cfg, plan.run_dir, start=plan.start,
                               show_progress=show_progress, log=log)
        net, path = export_run(plan.run_dir) if family.deployable else (None, None)
    return TrainedRun(results, net, path)

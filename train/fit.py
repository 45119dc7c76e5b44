"""The one training loop: every model family trains through :func:`fit`.

A family hands ``fit`` a :class:`Trainer` -- its model, optimiser and the step that takes one
batch of sample indices -- and a :class:`FitPlan`; ``fit`` owns what every family needs the same
way:

* **order**: epoch ``e`` visits the training samples in ``epoch_order(n, seed, e)`` (a pure
  function, :mod:`spikecodec.train.seeds`), in batches of ``batch_size``;
* **checkpoints**: atomically, every ``checkpoint_every`` batches (``None``: at epoch ends only)
  and at every epoch end, holding the model, the optimiser, the trainer's own state (random
  generators, running baselines: :meth:`Trainer.state_dict`), the per-batch history and the
  position ``(epoch, batch)``;
* **resume**: from such a checkpoint, mid-epoch too, *bit-exactly*: the order and the
  per-batch draws are functions of ``(seed, epoch, batch)`` and everything stateful is in the
  checkpoint, so the resumed run ends with the same weights as an uninterrupted one
  (tests/train/test_fit.py). Learning rates come from the (possibly overridden) config, not
  from the checkpoint, so ``--resume --set train.lr=...`` takes effect;
* **learning-rate schedule** (``train.lr_schedule``, the same for every family): ``constant``,
  or ``cosine``, which scales every group's rate by ``(1 + cos(pi * s / S)) / 2`` at step ``s``
  of ``S = epochs * batches`` -- a pure function of ``(epoch, batch)``, so a resumed run follows
  the same schedule (:func:`lr_factor`);
* **timing** (seconds per epoch, checkpoint writes excluded), **progress** (a bar per epoch; with
  the bars off, one line per epoch), **metric logs** (``metrics.csv``: one row per epoch with
  the mean of every metric the step returns), and a stop with :class:`TrainingError` naming the
  epoch, batch and metric as soon as a step returns a non-finite value.
"""
from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from spikecodec.atomic import write_text
from spikecodec.errors import CheckpointError, ConfigError, TrainingError
from spikecodec.runtime import torch_threads
from spikecodec.train import parallel
from spikecodec.train.checkpoint import FORMAT, load_checkpoint, save_atomic
from spikecodec.train.progress import progress
from spikecodec.train.seeds import epoch_order

CHECKPOINT = "checkpoint.pt"
LR_SCHEDULES = ("constant", "cosine")
METRICS = "metrics.csv"
EpochCallback = Callable[[int, dict[str, float]], None]
_ON_EPOCH: ContextVar[EpochCallback | None] = ContextVar("on_epoch", default=None)


@contextmanager
def on_epoch(callback: EpochCallback) -> Iterator[None]:
    """Call ``callback(epoch, means)`` after every epoch of every :func:`fit` in this block
    (``epoch`` from 0; ``means`` as in ``metrics.csv``); it may raise to stop the run."""
    token = _ON_EPOCH.set(callback)
    try:
        yield
    finally:
        _ON_EPOCH.reset(token)


class Trainer(Protocol):
    """What a family gives :func:`fit`."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer

    def step(self, epoch: int, batch: int, index: torch.Tensor) -> dict[str, float]:
        """One optimisation step on the training samples ``index``; returns named scalars
        (the first one is shown on the progress bar)."""

    def learning_rates(self) -> list[float]:
        """The learning rate of each optimiser parameter group, from the config."""

    def state_dict(self) -> dict[str, Any]:
        """Everything beyond model and optimiser that a bit-exact resume needs."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""

    # Optional: ``end_epoch(epoch) -> dict[str, float]``, called after each epoch's last batch
    # (e.g. a validation score and model selection); its values are logged beside the batch
    # metrics' means, and the checkpoint written after it holds the trainer's state.


@dataclass(frozen=True)
class FitPlan:
    """How to loop; ``static`` is stored as is in every checkpoint (what export reads)."""

    kind: str  # the family's name, checked on resume and export
    epochs: int
    batch_size: int
    n_train: int  # training samples
    seed: int
    checkpoint_every: int | None = None  # batches between mid-epoch checkpoints
    threads: int = 0  # torch CPU threads for the loop (0: as they are); restored afterwards
    device: str = "cpu"
    desc: str = ""  # progress bar label, e.g. "AE-SNN"
    lr_schedule: str = "constant"  # one of LR_SCHEDULES (see lr_factor)
    static: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "n_train"):
            if getattr(self, name) < 1:
                raise ConfigError(f"fit: {name} must be >= 1, got {getattr(self, name)}")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise ConfigError(f"train.checkpoint_every must be >= 1 or unset, got "
                              f"{self.checkpoint_every}")
        _check_schedule(self.lr_schedule)

    @property
    def num_batches(self) -> int:
        return math.ceil(self.n_train / self.batch_size)


@dataclass
class FitResult:
    """What the loop did: per-batch history, seconds, and where it started."""

    history: dict[str, list[float]]
    epoch_seconds: list[float]  # one per epoch (of this run and the ones it resumed)
    epoch_metrics: list[dict[str, float]]  # what Trainer.end_epoch returned, one per epoch
    train_seconds: float
    resumed_at: tuple[int, int] | None  # (epoch, batch) of the checkpoint it resumed from
    static: dict[str, Any]  # the checkpoint's static part (the resumed one's, when resuming)


def check_loop_settings(train: Any) -> None:
    """The settings every family's ``train`` table shares with this loop: ``epochs``,
    ``batch_size``, ``eval_batch_size`` (>= 1), ``checkpoint_every`` (>= 1, or None where the
    family allows it), ``threads`` (>= 0) and ``device`` (cpu or cuda[:N]). One check, so the
    families' configs cannot drift apart; each family calls it from its ``__post_init__``."""
    for name in ("epochs", "batch_size", "eval_batch_size"):
        if getattr(train, name) < 1:
            raise ConfigError(f"train.{name} must be >= 1, got {getattr(train, name)}")
    if train.checkpoint_every is not None and train.checkpoint_every < 1:
        raise ConfigError(f"train.checkpoint_every must be >= 1 (or unset where allowed), got "
                          f"{train.checkpoint_every}")
    if train.threads < 0:
        raise ConfigError(f"train.threads must be >= 0, got {train.threads}")
    if train.device.split(":")[0] not in ("cpu", "cuda"):
        raise ConfigError(f"train.device must be 'cpu' or 'cuda[:N]', got {train.device!r}")
    _check_schedule(train.lr_schedule)


def _check_schedule(name: str) -> None:
    if name not in LR_SCHEDULES:
        raise ConfigError(f"train.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got "
                          f"{name!r}")


def lr_factor(schedule: str, epoch: int, batch: int, epochs: int, batches: int) -> float:
    """What every learning rate is multiplied by at ``(epoch, batch)`` of a run of ``epochs`` x
    ``batches`` steps: 1 for ``constant``; for ``cosine`` ``(1 + cos(pi * s / S)) / 2`` with
    ``s = epoch * batches + batch`` and ``S = epochs * batches``: 1 at the first step, falling
    smoothly to ``(1 + cos(pi * (S - 1) / S)) / 2 > 0`` at the last."""
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * (epoch * batches + batch) / (epochs * batches)))
    _check_schedule(schedule)  # raises for an unknown name
    return 1.0


def training_device(name: str) -> torch.device:
    """``torch.device(name)``; a CUDA name without a visible GPU raises ``ConfigError``. Under
    ``torchrun``, ``cuda`` means this rank's GPU."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but torch sees no CUDA GPU; use train.device=cpu")
    return torch.device(parallel.device_for_rank(name))


def read_resume_checkpoint(run_dir: str | Path, kind: str) -> dict[str, Any] | None:
    """The checkpoint to resume ``run_dir`` from, or ``None`` when it has none yet."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        return None
    ckpt = load_checkpoint(path, model_kind=kind)
    if ckpt.get("format") != FORMAT or "trainer" not in ckpt:
        raise CheckpointError(f"{path} was written by an older spikecodec without resume "
                              f"state; it can be exported but not resumed")
    return ckpt


def fit(trainer: Trainer, plan: FitPlan, run_dir: str | Path, *,
        start: dict[str, Any] | None = None, show_progress: bool = True,
        log: Callable[[str], None] = print) -> FitResult:
    """Train ``trainer`` as ``plan`` says, from scratch or from the checkpoint ``start``."""
    run_dir = Path(run_dir)
    history: dict[str, list[float]] = {}
    epoch_seconds: list[float] = []
    epoch_metrics: list[dict[str, float]] = []
    epoch_batches: list[int] = []  # batches of each finished epoch (may change on resume)
    end_epoch = getattr(trainer, "end_epoch", None)
    epoch_callback = _ON_EPOCH.get()
    epoch0 = batch0 = 0
    static = dict(plan.static)
    if start is not None:
        trainer.model.load_state_dict(start["model"])
        trainer.optimizer.load_state_dict(start["optimizer"])
        trainer.load_state_dict(start["trainer"])
        epoch0, batch0 = int(start["epoch"]), int(start["batch"])
        history = {k: list(v) for k, v in start["history"].items()}
        epoch_seconds = list(start["epoch_seconds"])
        epoch_metrics = [dict(m) for m in start.get("epoch_metrics", [])]
        epoch_batches = [int(b) for b in start.get("epoch_batches")
                         or _older_epoch_batches(history, len(epoch_seconds), batch0)]
        static = {**start["static"], **static}
        log(f"resuming {run_dir} at epoch {epoch0 + 1}, batch {batch0}")
    base_lrs = trainer.learning_rates()  # the config's, also after a resume that changed it
    partial = start["partial_seconds"] if start is not None else 0.0

    def checkpoint(epoch: int, batch: int, partial_seconds: float) -> None:
        if not main:
            return
        save_atomic({"format": FORMAT, "model_kind": plan.kind, **static, "static": static,
                     "model": {k: v.detach().cpu() for k, v in
                               trainer.model.state_dict().items()},
                     "optimizer": trainer.optimizer.state_dict(),
                     "trainer": trainer.state_dict(), "epoch": epoch, "batch": batch,
                     "history": history, "epoch_seconds": epoch_seconds,
                     "epoch_metrics": epoch_metrics, "epoch_batches": epoch_batches,
                     "partial_seconds": partial_seconds},
                    run_dir / CHECKPOINT)

    n_batches, bs = plan.num_batches, plan.batch_size
    parallel.init_from_env(plan.device)
    parallel.check_trainer(trainer)
    parallel.check_batches(plan.n_train, bs)
    main, share = parallel.is_main(), [1.0]
    with torch_threads(plan.threads), parallel.average_gradients(trainer.optimizer, share):
        for epoch in range(epoch0, plan.epochs):
            order = epoch_order(plan.n_train, plan.seed, epoch)
            first = batch0 if epoch == epoch0 else 0
            seconds = partial if epoch == epoch0 else 0.0
            bar = progress(range(first, n_batches), enabled=show_progress and main,
                           total=n_batches,
                           initial=first, desc=f"{plan.desc} epoch {epoch + 1}/{plan.epochs}")
            tic = time.perf_counter()
            for batch in bar:
                index = order[batch * bs:(batch + 1) * bs]
                rows = parallel.local_rows(len(index))
                share[0] = (rows.stop - rows.start) / len(index)
                factor = lr_factor(plan.lr_schedule, epoch, batch, plan.epochs, n_batches)
                for group, lr in zip(trainer.optimizer.param_groups, base_lrs, strict=True):
                    group["lr"] = lr * factor  # set every step: one place, resume-proof
                metrics = parallel.reduce_metrics(trainer.step(epoch, batch, index), share[0])
                for key, value in metrics.items():
                    if not math.isfinite(value):
                        raise TrainingError(f"epoch {epoch + 1}, batch {batch}: {key} is "
                                            f"{value}; training diverged (lower the learning "
                                            f"rate, or check the inputs)")
                    history.setdefault(key, []).append(float(value))
                if hasattr(bar, "set_postfix") and batch % 10 == 0 and metrics:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in list(metrics.items())[:2]})
                done = batch + 1
                if plan.checkpoint_every and done % plan.checkpoint_every == 0 \
                        and done < n_batches:
                    seconds += time.perf_counter() - tic
                    checkpoint(epoch, done, seconds)
                    tic = time.perf_counter()
            seconds += time.perf_counter() - tic
            epoch_seconds.append(seconds)
            epoch_metrics.append(dict(end_epoch(epoch)) if end_epoch is not None else {})
            epoch_batches.append(n_batches)
            checkpoint(epoch + 1, 0, 0.0)
            means = {**_epoch_means(history, n_batches), **epoch_metrics[-1]}
            if main:
                write_text(run_dir / METRICS,
                           _metrics_csv(history, epoch_seconds, epoch_metrics, epoch_batches))
                write_tensorboard(run_dir, history, epoch_seconds, epoch_metrics, epoch_batches)
            if not show_progress and main:
                log(f"{plan.desc} epoch {epoch + 1}/{plan.epochs}: {seconds:.1f} s"
                    + "".join(f", {k} {v:.4g}" for k, v in means.items()))
            if epoch_callback is not None:
                epoch_callback(epoch, means)
    return FitResult(history, epoch_seconds, epoch_metrics, float(sum(epoch_seconds)),
                     None if start is None else (epoch0, batch0), static)


def _older_epoch_batches(history: dict[str, list[float]], epochs: int, batch: int
                         ) -> list[int]:
    """Batches per finished epoch of a checkpoint written before they were recorded (all its
    epochs had the same number): the history's length, less the running epoch's batches."""
    done = len(next(iter(history.values()), [])) - batch
    return [done // epochs] * epochs if epochs else []


def _epoch_means(history: dict[str, list[float]], per_epoch: int | list[int], epoch: int = -1
                 ) -> dict[str, float]:
    """Mean of each metric over one epoch's batches (the last one by default); ``per_epoch``:
    batches per epoch, or the list of every finished epoch's."""
    out = {}
    for key, values in history.items():
        if isinstance(per_epoch, int):
            lo = len(values) - per_epoch if epoch < 0 else epoch * per_epoch
            n = per_epoch
        else:
            e = epoch % len(per_epoch)
            lo, n = sum(per_epoch[:e]), per_epoch[e]
        chunk = values[lo:lo + n]
        out[key] = sum(chunk) / len(chunk) if chunk else math.nan
    return out


def tensorboard_available() -> bool:
    """Whether TensorBoard logs are written: the ``tensorboard`` package is installed and
    ``$SPIKECODEC_TENSORBOARD`` is not ``0``."""
    import os
    from importlib.util import find_spec

    return os.environ.get("SPIKECODEC_TENSORBOARD", "1") != "0" and \
        find_spec("tensorboard") is not None


def write_tensorboard(run_dir: Path, history: dict[str, list[float]],
                      epoch_seconds: list[float], epoch_metrics: list[dict[str, float]],
                      per_epoch: int | list[int]) -> Path | None:
    """``RUN_DIR/tensorboard/events.out.tfevents.spikecodec``: the rows of ``metrics.csv`` as
    TensorBoard scalars (``train/<metric>`` per epoch, ``epoch/seconds``), when TensorBoard is
    installed. The file is rewritten whole each epoch from the run's history and replaced
    atomically, so a resumed run logs every epoch once. ``tensorboard --logdir runs/``."""
    if not tensorboard_available():
        return None
    import shutil
    import tempfile

    from torch.utils.tensorboard import SummaryWriter

    from spikecodec.atomic import atomic_path

    target = run_dir / "tensorboard" / "events.out.tfevents.spikecodec"
    target.parent.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="spikecodec-tb-") as tmp:
        writer = SummaryWriter(log_dir=tmp)
        try:
            for e, seconds in enumerate(epoch_seconds):
                row = {**_epoch_means(history, per_epoch, e),
                       **(epoch_metrics[e] if e < len(epoch_metrics) else {})}
                writer.add_scalar("epoch/seconds", seconds, e + 1)
                for key, value in row.items():
                    if isinstance(value, (int, float)) and math.isfinite(value):
                        writer.add_scalar(f"train/{key}", float(value), e + 1)
        finally:
            writer.close()
        (event,) = Path(tmp).glob("events.out.tfevents.*")
        with atomic_path(target) as out:
            shutil.copyfile(event, out)
    return target


def _metrics_csv(history: dict[str, list[float]], epoch_seconds: list[float],
                 epoch_metrics: list[dict[str, float]], per_epoch: int | list[int]) -> str:
    """``epoch, seconds, <batch metric means...>, <end-of-epoch metrics...>``, one row per
    finished epoch."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    keys = list(history)
    extra = list(dict.fromkeys(k for m in epoch_metrics for k in m))
    writer.writerow(["epoch", "seconds", *keys, *extra])
    for e, seconds in enumerate(epoch_seconds):
        means = _epoch_means(history, per_epoch, e)
        row = epoch_metrics[e] if e < len(epoch_metrics) else {}
        writer.writerow([e + 1, f"{seconds:.3f}", *(f"{means[k]:.6g}" for k in keys),
                         *(f"{row[k]:.6g}" if k in row else "" for k in extra)])
    return buf.getvalue()

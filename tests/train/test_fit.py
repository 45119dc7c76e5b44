"""The one training loop, for every registered family: bit-exact mid-epoch resume, metric logs,
one line per epoch without progress bars, and a clear stop on a non-finite loss."""
from __future__ import annotations

import csv

import pytest
import torch

from spikecodec.cli import main
from spikecodec.errors import ConfigError, TrainingError
from spikecodec.train import fit as fit_module
from spikecodec.train.checkpoint import load_checkpoint
from spikecodec.train.families import FAMILIES
from spikecodec.workflows.training import start_run, train_run


def _train(family, out, extra=(), resume=None):
    plan = start_run(family, overrides=list(family.smoke_settings) + list(extra),
                     out=str(out), resume=resume)
    return train_run(family, plan, show_progress=False, log=lambda _: None)


class _Interrupt:
    """progress() stand-in that raises KeyboardInterrupt before batch number ``after``."""

    def __init__(self, after: int):
        self.after, self.seen = after, 0

    def __call__(self, items, **kwargs):
        for item in items:
            if self.seen == self.after:
                raise KeyboardInterrupt
            self.seen += 1
            yield item


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_resume_mid_epoch_ends_bit_exactly_where_an_uninterrupted_run_ends(
        name, tmp_path, monkeypatch):
    family = FAMILIES[name]
    full = _train(family, tmp_path / "full", ["train.checkpoint_every=1"])
    with monkeypatch.context() as patch:
        patch.setattr(fit_module, "progress", _Interrupt(after=5))  # mid-way into epoch 2
        with pytest.raises(KeyboardInterrupt):
            _train(family, tmp_path / "part", ["train.checkpoint_every=1"])
    ckpt = load_checkpoint(tmp_path / "part" / "checkpoint.pt", model_kind=name)
    assert ckpt["epoch"] == 1 and ckpt["batch"] > 0  # mid-way into the second epoch
    resumed = _train(family, tmp_path / "part", resume=str(tmp_path / "part"))
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt", model_kind=name)
    b = load_checkpoint(tmp_path / "part" / "checkpoint.pt", model_kind=name)
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["history"] == b["history"]
    assert resumed.results["metrics"] == full.results["metrics"]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_metrics_csv_and_one_line_per_epoch_without_bars(name, tmp_path, capsys):
    family = FAMILIES[name]
    settings = [a for s in family.smoke_settings for a in ("--set", s)]
    assert main(["train", name, "--out", str(tmp_path / "run"), "--no-progress",
                 *settings]) == 0
    out = capsys.readouterr().out
    epoch_lines = [line for line in out.splitlines() if " epoch " in line and " s, " in line]
    assert len(epoch_lines) == 2 and epoch_lines[1].split(" epoch ")[1].startswith("2/2:")
    with open(tmp_path / "run" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert all(float(row["seconds"]) > 0 for row in rows)
    assert len(rows[0]) > 2  # the family's own metrics beside epoch and seconds


def test_a_non_finite_loss_stops_training_with_a_clear_message(tmp_path, monkeypatch, capsys):
    from spikecodec.train.families.roy.training import RoyTrainer

    monkeypatch.setattr(RoyTrainer, "step", lambda self, e, b, i: {"loss": float("nan")})
    run = tmp_path / "run"
    family = FAMILIES["roy-ae"]
    with pytest.raises(TrainingError, match="epoch 1, batch 0: loss is nan"):
        _train(family, run)
    assert not run.exists()  # failed before its first checkpoint: nothing left behind
    settings = [a for s in family.smoke_settings for a in ("--set", s)]
    assert main(["train", "roy-ae", "--out", str(run), "--no-progress", *settings]) == 2
    assert "training diverged" in capsys.readouterr().err


def test_on_epoch_sees_every_epochs_means_and_can_stop_the_run(tmp_path):
    family = FAMILIES["roy-ae"]
    seen = []

    def record(epoch, means):
        seen.append((epoch, dict(means)))

    with fit_module.on_epoch(record):
        _train(family, tmp_path / "a")
    assert [e for e, _ in seen] == [0, 1] and all("loss" in m for _, m in seen)

    class Stop(Exception):
        pass

    def stop(epoch, means):
        raise Stop(epoch)

    with fit_module.on_epoch(stop), pytest.raises(Stop):
        _train(family, tmp_path / "b")
    ckpt = load_checkpoint(tmp_path / "b" / "checkpoint.pt", model_kind="roy-ae")
    assert ckpt["epoch"] == 1  # stopped after the first epoch's checkpoint
    seen.clear()
    _train(family, tmp_path / "c")  # outside the block the hook is gone
    assert seen == []


def test_tensorboard_scalars_match_metrics_csv_and_resume_logs_each_epoch_once(tmp_path,
                                                                              monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    family = FAMILIES["roy-ae"]
    with monkeypatch.context() as patch:
        patch.setattr(fit_module, "progress", _Interrupt(after=5))  # stop in epoch 2
        with pytest.raises(KeyboardInterrupt):
            _train(family, tmp_path / "run", ["train.checkpoint_every=1"])
    _train(family, tmp_path / "run", resume=str(tmp_path / "run"))
    events = list((tmp_path / "run" / "tensorboard").iterdir())
    assert [p.name for p in events] == ["events.out.tfevents.spikecodec"]
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    with open(tmp_path / "run" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    metric = next(k for k in rows[0] if k not in ("epoch", "seconds"))
    scalars = acc.Scalars(f"train/{metric}")
    assert [s.step for s in scalars] == [1, 2]  # each epoch once, also after the resume
    assert [s.value for s in scalars] == pytest.approx([float(r[metric]) for r in rows],
                                                       rel=1e-5)
    assert [s.step for s in acc.Scalars("epoch/seconds")] == [1, 2]


def test_no_tensorboard_log_when_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKECODEC_TENSORBOARD", "0")
    _train(FAMILIES["roy-ae"], tmp_path / "run")
    assert (tmp_path / "run" / "metrics.csv").is_file()
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_epoch_means_follow_each_epochs_own_batch_count():
    history = {"loss": [1.0, 3.0, 5.0, 7.0, 9.0, 2.0, 4.0]}  # epochs of 2, 3 and 2 batches
    means = [fit_module._epoch_means(history, [2, 3, 2], e)["loss"] for e in range(3)]
    assert means == [2.0, 7.0, 3.0]
    assert fit_module._epoch_means(history, [2, 3, 2])["loss"] == 3.0  # the last epoch
    assert fit_module._epoch_means({"loss": [1.0, 3.0, 5.0, 7.0]}, 2, 1)["loss"] == 6.0
    # a checkpoint from before the counts were kept: 2 epochs of 3 batches, 1 batch into the 3rd
    assert fit_module._older_epoch_batches({"loss": [0.0] * 7}, 2, 1) == [3, 3]
    assert fit_module._older_epoch_batches({}, 0, 0) == []


def test_lr_factor_constant_and_cosine():
    assert fit_module.lr_factor("constant", 3, 7, 4, 10) == 1.0
    steps = [fit_module.lr_factor("cosine", e, b, 4, 10) for e in range(4) for b in range(10)]
    assert steps[0] == 1.0 and steps[20] == pytest.approx(0.5)  # half-way: half the rate
    assert all(a > b for a, b in zip(steps, steps[1:], strict=False))  # falls at every step
    assert 0 < steps[-1] < 0.01  # the last step still moves
    with pytest.raises(ConfigError, match="train.lr_schedule.*'linear'"):
        fit_module.lr_factor("linear", 0, 0, 1, 1)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_steps_with_the_cosine_schedules_rate(name, tmp_path, monkeypatch):
    """Each step of the run's optimiser sees config rate x lr_factor(epoch, batch) in every
    param group (roy-audio's auto-encoder, trained first by its own optimiser, is left out)."""
    seen: dict[int, list[list[float]]] = {}
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        seen.setdefault(id(self), []).append([group["lr"] for group in self.param_groups])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    family = FAMILIES[name]
    plan = start_run(family, overrides=[*family.smoke_settings, "train.lr_schedule=cosine"],
                     out=str(tmp_path / "run"), resume=None)
    train_run(family, plan, show_progress=False, log=lambda _: None)
    lrs = list(seen.values())[-1]  # the run's own optimiser steps last
    epochs = plan.cfg.train.epochs
    per_epoch = len(lrs) // epochs
    assert per_epoch >= 2 and per_epoch * epochs == len(lrs)
    bases = lrs[0]  # the config's rates: the first step's factor is exactly 1
    for i, step_lrs in enumerate(lrs):
        factor = fit_module.lr_factor("cosine", i // per_epoch, i % per_epoch, epochs, per_epoch)
        assert step_lrs == pytest.approx([b * factor for b in bases], rel=1e-12), i
    assert all(last < 0.2 * base for last, base in zip(lrs[-1], bases, strict=True))


def test_cosine_schedule_resumes_mid_epoch_bit_exactly(tmp_path, monkeypatch):
    family = FAMILIES["vdib"]
    extra = ["train.checkpoint_every=1", "train.lr_schedule=cosine"]
    _train(family, tmp_path / "full", extra)
    constant = _train(family, tmp_path / "constant", ["train.checkpoint_every=1"])
    with monkeypatch.context() as patch:
        patch.setattr(fit_module, "progress", _Interrupt(after=3))
        with pytest.raises(KeyboardInterrupt):
            _train(family, tmp_path / "part", extra)
    resumed = _train(family, tmp_path / "part", resume=str(tmp_path / "part"))
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt", model_kind="vdib")
    b = load_checkpoint(tmp_path / "part" / "checkpoint.pt", model_kind="vdib")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert resumed.results["metrics"] != constant.results["metrics"]  # the schedule mattered


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_train_threads_hold_in_the_loop_of_a_direct_library_call(name, tmp_path, monkeypatch):
    """``train.threads`` is the loop's thread count also when a script calls the family's
    ``train`` itself (benchmarks do), not only through the CLI's workflow; restored after."""
    seen: list[int] = []
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    family = FAMILIES[name]
    cfg = family.load_config(None, [*family.smoke_settings, "train.threads=1"])
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        family.train(cfg, tmp_path / "run", start=None, show_progress=False,
                     log=lambda _: None)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {1}

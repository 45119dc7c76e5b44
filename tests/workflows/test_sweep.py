"""``spikecodec sweep``: workers sharing a storage, resume after a killed worker, best.toml,
pruning, search spaces, and bad input (exit 2 naming the problem). Roy smoke runs, 2-4 trials."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from spikecodec.cli import main
from spikecodec.errors import ConfigError
from spikecodec.train.families import FAMILIES
from spikecodec.train.search import check_space
from spikecodec.workflows import sweep as sw

States = optuna.trial.TrialState
SMOKE = [arg for s in FAMILIES["roy-ae"].smoke_settings for arg in ("--set", s)]
# ranges where a smoke-size Roy run never diverges, so every trial of these tests completes
SAFE_SPACE = ('"train.lr" = {low = 1e-3, high = 3e-3, log = true}\n'
              '"data.num_steps" = {low = 8, high = 15, int = true}\n')


def sweep_args(out: Path, *extra: str) -> list[str]:
    space = out.parent / "safe_space.toml"
    space.parent.mkdir(parents=True, exist_ok=True)
    space.write_text(SAFE_SPACE)
    return ["sweep", "roy-ae", "--out", str(out), "--pruner", "none", "--space", str(space),
            *SMOKE, *extra]


def trials_of(storage: str) -> list:
    study = optuna.load_study(study_name=sw.STUDY, storage=sw.open_storage(storage))
    return study.get_trials(deepcopy=False)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_workers_share_one_storage(tmp_path, kind):
    storage = f"sqlite:///{tmp_path / 's.db'}" if kind == "sqlite" else \
        f"journal:{tmp_path / 's.journal'}"
    assert main(sweep_args(tmp_path / "sw", "--trials", "4", "--workers", "2",
                           "--storage", storage)) == 0
    trials = trials_of(storage)
    numbers = sorted(t.number for t in trials)
    assert numbers == list(range(len(trials)))  # none lost, none twice
    assert all(t.state == States.COMPLETE for t in trials)
    assert 4 <= len(trials) <= 5  # two workers may both take the last slot at once
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both worked
    for t in trials:
        assert (tmp_path / "sw" / "trials" / f"trial-{t.number:04d}" / "seed-0"
                / "checkpoint.pt").is_file()
    rows = (tmp_path / "sw" / "trials.csv").read_text().splitlines()
    assert len(rows) == len(trials) + 1
    assert {"best.toml", "history.png", "importances.png"} <= set(os.listdir(tmp_path / "sw"))


# The worker to kill: the same command, with every training step slowed by 0.2 s so that a
# smoke trial (well under a second otherwise) stays running long enough to be caught running.
SLOW_WORKER = """
import sys, time
import spikecodec.train.fit as fit
real = fit.fit
def slow(trainer, *args, **kwargs):
    step = trainer.step
    def slowed(*a, **k):
        time.sleep(0.2)
        return step(*a, **k)
    trainer.step = slowed
    return real(trainer, *args, **kwargs)
fit.fit = slow  # before the families import it
from spikecodec.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_resume_after_a_killed_worker_finishes_the_count(tmp_path):
    out = tmp_path / "sw"
    storage = f"sqlite:///{out / 'study.db'}"
    log = tmp_path / "worker.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, "-c", SLOW_WORKER,
                                 *sweep_args(out, "--trials", "3")], stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # kill it in the middle of its second trial
            time.sleep(0.3)
            if not (out / "study.db").exists():
                continue
            try:
                states = [t.state for t in trials_of(storage)]
            except (KeyError, ConfigError):  # the study is being created
                continue
            if States.COMPLETE in states and States.RUNNING in states:
                break
        else:
            pytest.fail(f"the worker never reached its second trial (exit {proc.poll()}):\n"
                        f"{log.read_text()[-3000:]}")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert main(sweep_args(out, "--trials", "3")) == 0  # the same command again
    trials = trials_of(storage)
    # finished = complete or pruned (the median pruner may stop one of them)
    assert sum(t.state in (States.COMPLETE, States.PRUNED) for t in trials) == 3
    assert [t.state for t in trials].count(States.FAIL) == 1  # the killed one
    assert sorted(t.number for t in trials) == list(range(4))
    assert main(sweep_args(out, "--trials", "3")) == 0  # done: nothing more to run
    assert len(trials_of(storage)) == 4


def test_best_toml_trains(tmp_path):
    assert main(sweep_args(tmp_path / "sw", "--trials", "2")) == 0
    best = tmp_path / "sw" / "best.toml"
    assert main(["train", "roy-ae", "--config", str(best), "--out", str(tmp_path / "run"),
                 "--no-progress"]) == 0
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_a_pruned_trial_is_recorded_as_pruned(tmp_path, monkeypatch):
    # a pruner that stops every trial after its first epoch (any training loss is > 0)
    monkeypatch.setitem(sw.PRUNERS, "always", lambda: optuna.pruners.ThresholdPruner(upper=0.0))
    sweep = sw.plan_sweep("roy-ae", out=tmp_path / "sw", trials=2, pruner="always",
                          settings=list(FAMILIES["roy-ae"].smoke_settings))
    paths = sw.run_sweep(sweep, log=lambda _: None)
    trials = trials_of(sweep.storage)
    assert [t.state for t in trials] == [States.PRUNED, States.PRUNED]
    assert all(list(t.intermediate_values) == [0] for t in trials)  # after epoch 1 of 2
    assert "best" not in paths and not (tmp_path / "sw" / "best.toml").exists()
    assert (tmp_path / "sw" / "trials" / "trial-0000" / "seed-0" / "checkpoint.pt").is_file()


@pytest.mark.parametrize("name", list(FAMILIES))
def test_each_family_declares_a_valid_search_space(name):
    family = FAMILIES[name]
    cfg = family.load_config(None, list(family.smoke_settings))
    space = check_space(family.config_type, family.search_space(cfg))
    assert space and family.prune_metric
    assert family.sweep_objective.__doc__  # says which split it scores


def test_comsa_warm_starts_with_the_published_row(tmp_path):
    settings = [*FAMILIES["comsa"].smoke_settings, "model.hidden=32"]
    study = sw.open_study(sw.plan_sweep("comsa", out=tmp_path, trials=1, settings=settings))
    (waiting,) = study.get_trials(states=(States.WAITING,))
    from spikecodec.train.families.comsa.config import published

    row = dict(item.split("=", 1) for item in published(0.0, 1, 32))
    queued = waiting.system_attrs["fixed_params"]  # what the first trial will take
    assert queued["train.lr"] == float(row["train.lr"])
    assert queued["model.pulses"] == int(row["model.pulses"])
    assert set(queued) == set(sw.search_space(sw.plan_sweep("comsa", out=tmp_path, trials=1,
                                                            settings=settings)))
    sw.open_study(sw.plan_sweep("comsa", out=tmp_path, trials=1, settings=settings))
    assert len(study.get_trials()) == 1  # queued once, not on every start


@pytest.mark.parametrize("space, message", [
    ('"train.nope" = {low = 1, high = 2}', "unknown parameter 'train.nope'"),
    ('"train.lr" = {low = 0.1, high = 0.01}', "empty range"),
])
def test_bad_search_space_exits_2(tmp_path, capsys, space, message):
    (tmp_path / "space.toml").write_text(space + "\n")
    assert main(sweep_args(tmp_path / "sw", "--space", str(tmp_path / "space.toml"))) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("url", ["postgresql://nobody@127.0.0.1:1/none",
                                 "sqlite:////proc/no/such/study.db", "nonsense://x"])
def test_unreachable_storage_exits_2(tmp_path, capsys, url):
    assert main(sweep_args(tmp_path / "sw", "--storage", url)) == 2
    assert "cannot open the sweep storage" in capsys.readouterr().err


def test_a_storage_of_another_family_exits_2(tmp_path, capsys):
    storage = f"journal:{tmp_path / 's.journal'}"
    sw.open_study(sw.plan_sweep("roy-ae", out=tmp_path, trials=1, storage=storage))
    assert main(["sweep", "vdib", "--storage", storage, "--out", str(tmp_path / "v")]) == 2
    assert "holds a sweep of roy-ae, not vdib" in capsys.readouterr().err
    assert main(["sweep", "roy-ae", "--storage", storage, "--out", str(tmp_path / "r"),
                 "--set", "train.lr=0.01"]) == 2
    assert "with --set []" in capsys.readouterr().err


def test_a_schema_race_between_two_new_workers_is_retried(tmp_path, monkeypatch):
    """Two workers opening a new SQLite storage at once both create Optuna's tables; the later
    one fails with "table ... already exists" and must simply open it again."""
    import optuna

    from spikecodec.workflows import sweep as sweep_mod

    real, calls = optuna.storages.RDBStorage, []

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("(sqlite3.OperationalError) table study_directions already exists")
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    storage = sweep_mod.open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    assert len(calls) == 2 and storage is not None

"""The spikecodec command: help lists the commands; bad input exits 2 with a clear message."""
from __future__ import annotations

import pytest

from spikecodec.cli import build_parser, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in build_parser()._subparsers._group_actions[0].choices:
        assert command in out


@pytest.mark.parametrize("argv, message", [
    (["train", "roy-ae", "--set", "train.nope=1"], "unknown config key 'train.nope'"),
    (["train", "roy-ae", "--dataset", "cifar"], "data.dataset must be one of"),
    (["train", "roy-ae", "--dataset", "mnist", "--data-dir", "/nonexistent/spikecodec"],
     "--download"),
    (["train", "roy-ae", "--resume", "/nonexistent/run"], "not a run directory"),
])
def test_bad_input_exits_2(argv, message, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spikecodec: error:") and message in err


def test_unknown_model_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "vdib-typo"])
    assert exc.value.code == 2


@pytest.mark.parametrize("setting, message", [
    ("train.prior=1.5", "train.prior must be a probability in (0, 1)"),
    ("train.beta=-1", "beta must be a finite number >= 0"),
    ("decoder.window=999", "decoder.window (999) must be <= data.num_steps (30)"),
    ("train.seed=abc", "train.seed: expected an int, got 'abc'"),
    ("data.task=video", "data.task must be one of"),
])
def test_train_vdib_bad_settings_exit_2_before_training(setting, message, capsys, tmp_path):
    run_dir = tmp_path / "run"
    assert main(["train", "vdib", "--set", setting, "--out", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spikecodec: error:") and message in err
    assert "Traceback" not in err and not run_dir.exists()


@pytest.mark.parametrize("argv, message", [
    (["train", "roy-ae", "--task", "blobs"], "--task is an option of `train vdib`"),
    (["train", "vdib", "--resume", "runs/x"], "--resume is not supported by `train vdib`"),
])
def test_options_of_the_other_model_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_train_vdib_task_is_a_choice(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "vdib", "--task", "video"])
    assert exc.value.code == 2
    assert "invalid choice: 'video'" in capsys.readouterr().err

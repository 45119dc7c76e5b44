"""The spikecodec command: help lists the commands; bad input exits 2 with a clear message."""
from __future__ import annotations

import os
import re

import pytest

from spikecodec.cli import build_parser, main

from conftest import REPO


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
    assert not (tmp_path / "run").exists()  # a run that failed before training leaves nothing


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


def test_options_of_another_family_are_argparse_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "roy-ae", "--task", "blobs"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --task blobs" in capsys.readouterr().err


def test_every_family_has_a_train_command_with_resume(capsys):
    from spikecodec.train.families import FAMILIES

    for name in FAMILIES:
        assert main(["train", name, "--resume", "/nonexistent/run"]) == 2
        assert "not a run directory" in capsys.readouterr().err


def test_resume_refuses_overrides_that_change_the_experiment(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "roy-ae", "--out", str(run), "--no-progress", "--set",
                 "train.epochs=1", "--set", "model.hidden=8", "--set", "ann.enabled=false",
                 "--set", "data.test_limit=20"]) == 0
    capsys.readouterr()
    assert main(["train", "roy-ae", "--resume", str(run), "--set", "model.hidden=16",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--resume cannot change model.hidden" in err and "train.epochs" in err
    assert main(["train", "vdib", "--resume", str(run)]) == 2  # another family's run
    assert "holds a 'roy-ae' model, not 'vdib'" in capsys.readouterr().err


def test_ctrl_c_suggests_resume_only_for_training(monkeypatch, capsys):
    import spikecodec.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_export", interrupted)
    assert main(["export", "somewhere"]) == 130
    assert "--resume" not in capsys.readouterr().err
    monkeypatch.setattr(cli, "cmd_train", interrupted)
    assert main(["train", "vdib"]) == 130
    assert "spikecodec train vdib --resume RUN_DIR" in capsys.readouterr().err


def test_train_vdib_task_is_a_choice(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "vdib", "--task", "video"])
    assert exc.value.code == 2
    assert "invalid choice: 'video'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "eval"])
@pytest.mark.parametrize("out,message", [
    ("/dev/full", "is a device node"), ("/proc/self/x.json", "kernel file system"),
    ("{tmp}", "names a folder|is a directory"), ("{tmp}/missing/out", "does not exist")])
def test_odd_out_paths_exit_2_before_running(command, out, message, tmp_path, capsys):
    export = REPO / "netx_exports" / "roy_ae_digits" / "export.h5"
    out = out.format(tmp=tmp_path)
    before = os.stat("/dev/full").st_rdev
    assert main([command, str(export), "--samples", "2", "--out", out, "--no-progress"]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert os.stat("/dev/full").st_rdev == before and os.path.exists("/dev/full")


@pytest.mark.parametrize("argv,message", [
    (["export", "{tmp}", "--out", "/dev/null"], "is a device node"),
    (["quickstart", "--out", "/dev/null"], "exists and is not a folder"),
    (["train", "roy-ae", "--out", "/proc/self/run"], "kernel file system")])
def test_export_quickstart_and_train_refuse_odd_outputs(argv, message, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path) for a in argv] + (["--no-progress"] if "export" not in argv
                                                     else [])
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def test_threads_option_on_every_computing_command(tmp_path, monkeypatch, capsys):
    """``--threads`` sets torch's threads for the command (and a run's train.threads), then
    the previous count is back; a resumed run may change it."""
    import torch

    import spikecodec.cli as cli
    from spikecodec.runtime import torch_threads

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for name in ("quickstart", "export", "run", "eval", "check", "sweep"):
        assert "--threads" in sub[name].format_help(), name
    seen = []
    monkeypatch.setattr(cli, "cmd_export", lambda args: seen.append(torch.get_num_threads()) or 0)
    before = torch.get_num_threads()
    with torch_threads(2):
        assert main(["export", str(tmp_path), "--threads", "2"]) == 0
        assert main(["export", str(tmp_path)]) == 0  # default: 1 (cli.DEFAULT_THREADS)
        assert main(["export", str(tmp_path), "--threads", "0"]) == 0  # torch's: as it was
    assert seen == [2, 1, 2] and torch.get_num_threads() == before
    run = tmp_path / "run"
    base = ["--no-progress", "--set", "train.epochs=1", "--set", "model.hidden=8", "--set",
            "ann.enabled=false", "--set", "data.test_limit=20", "--set", "data.train_limit=100"]
    assert main(["train", "roy-ae", "--out", str(run), "--threads", "1", *base]) == 0
    assert "threads = 1" in (run / "config.toml").read_text()
    assert main(["train", "roy-ae", "--resume", str(run), "--threads", "2", "--set",
                 "train.epochs=2", "--no-progress"]) == 0
    assert "threads = 2" in (run / "config.toml").read_text()

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

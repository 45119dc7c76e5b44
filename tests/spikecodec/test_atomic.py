"""Atomic writes: complete files or the previous file, never a partial one or a stray temp."""
from __future__ import annotations

import json
import os
import stat

import pytest

from spikecodec.atomic import atomic_path, write_json
from spikecodec.errors import ConfigError


def test_success_replaces_the_target(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    write_json(target, {"x": 1})
    assert json.loads(target.read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_failure_keeps_the_previous_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "net.h5"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["net.h5"]


def test_temporary_keeps_the_suffix_beside_the_target(tmp_path):
    with atomic_path(tmp_path / "fig.png") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp.name.startswith(".")
        tmp.write_bytes(b"png")
    assert (tmp_path / "fig.png").read_bytes() == b"png"


@pytest.mark.parametrize("target,match", [
    ("/dev/null", "is a device node"),
    ("/dev/full", "is a device node"),
    ("/proc/self/comm", "kernel file system"),
    ("/proc/spikecodec-new.json", "kernel file system"),
])
def test_special_targets_are_refused_and_left_alone(target, match):
    before = os.stat(target) if os.path.exists(target) else None
    with pytest.raises(ConfigError, match=match):
        write_json(target, {"x": 1})
    if before is not None:
        after = os.stat(target)
        assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)


def test_fifo_directory_missing_folder_and_links_to_devices_are_refused(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "null.json"
    link.symlink_to("/dev/null")
    cases = {fifo: "is a FIFO", tmp_path: "names a folder|is a directory",
             tmp_path / "sub": "is a directory", tmp_path / "missing" / "a.json": "does not exist",
             link: "is a device node"}
    (tmp_path / "sub").mkdir()
    for target, match in cases.items():
        with pytest.raises(ConfigError, match=match):
            with atomic_path(target) as tmp:
                tmp.write_text("never")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null.json", "pipe", "sub"]


def test_unwritable_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: every folder is writable")
        with pytest.raises(ConfigError, match="is not writable"):
            write_json(folder / "a.json", {})
    finally:
        folder.chmod(0o700)


def test_a_target_that_turns_special_while_writing_is_not_replaced(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(ConfigError, match="is a FIFO"):
        with atomic_path(target) as tmp:
            tmp.write_text("data")
            os.mkfifo(target)
    assert stat.S_ISFIFO(os.stat(target).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]

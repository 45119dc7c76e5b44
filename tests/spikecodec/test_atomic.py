"""Atomic writes: complete files or the previous file, never a partial one or a stray temp."""
from __future__ import annotations

import json

import pytest

from spikecodec.atomic import atomic_path, write_json


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

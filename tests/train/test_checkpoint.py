"""Atomic checkpoints: a failed save keeps the previous file; foreign files are refused."""
from __future__ import annotations

import pytest
import torch

from spikecodec.errors import CheckpointError
from spikecodec.train.checkpoint import FORMAT, load_checkpoint, save_atomic


def test_round_trip(tmp_path):
    path = save_atomic({"format": FORMAT, "model_kind": "roy-ae", "x": torch.arange(3)},
                       tmp_path / "c.pt")
    assert load_checkpoint(path, model_kind="roy-ae")["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temp files left


def test_failed_save_keeps_previous(tmp_path):
    path = save_atomic({"format": FORMAT, "model_kind": "roy-ae", "v": 1}, tmp_path / "c.pt")

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_atomic({"format": FORMAT, "bad": Unpicklable()}, path)
    assert load_checkpoint(path, model_kind="roy-ae")["v"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def test_refuses_corrupt_foreign_and_other_models(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "none.pt", model_kind="roy-ae")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(junk, model_kind="roy-ae")
    foreign = save_atomic({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a spikecodec checkpoint"):
        load_checkpoint(foreign, model_kind="roy-ae")
    other = save_atomic({"format": FORMAT, "model_kind": "vdib"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="'vdib' model"):
        load_checkpoint(other, model_kind="roy-ae")

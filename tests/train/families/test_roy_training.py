"""Train the Roy AE-SNN briefly on the embedded digits: loss falls, files appear, resume works."""
from __future__ import annotations

import json

import pytest
import torch

from spikecodec.cli import main
from spikecodec.train import config as config_io
from spikecodec.train.checkpoint import load_checkpoint
from spikecodec.train.families.roy.config import RoyAEConfig
from spikecodec.train.families.roy.training import train_roy_ae

QUICK = ["data.dataset=digits", "model.hidden=32", "train.epochs=6", "train.batch_size=50",
         "ann.enabled=false"]


def test_training_beats_untrained_network(tmp_path):
    cfg = config_io.load(RoyAEConfig, None, QUICK)
    results = train_roy_ae(cfg, tmp_path, show_progress=False, log=lambda _: None)
    trained, untrained = results["metrics"]["snn"], results["metrics"]["snn_untrained"]
    assert untrained["mse"] > 1.0  # random weights: no better than a silent output
    assert trained["mse"] < 0.4 * untrained["mse"]
    assert trained["mse"] < 0.5 and trained["spike_mse"] < 0.5
    assert trained["output_spikes_per_sample"] > 0
    for name in ("config.toml", "checkpoint.pt", "results.json", "reconstructions.png",
                 "loss.png", "metrics.csv"):
        assert (tmp_path / name).stat().st_size > 0
    assert json.loads((tmp_path / "results.json").read_text())["metrics"]["snn"] == trained
    assert config_io.load(RoyAEConfig, tmp_path / "config.toml") == cfg


def test_resume_replays_an_uninterrupted_run(tmp_path):
    full_cfg = config_io.load(RoyAEConfig, None, QUICK[:-2] + ["train.epochs=2",
                                                                "ann.enabled=false",
                                                                "train.batch_size=50"])
    full = train_roy_ae(full_cfg, tmp_path / "full", show_progress=False)
    # "interrupt" after one epoch: train 1 epoch, then resume the same run with epochs=2
    part_dir = tmp_path / "part"
    train_roy_ae(config_io.apply_overrides(full_cfg, ["train.epochs=1"]), part_dir,
                 show_progress=False)
    # the number of epochs is one of the settings a resume may change
    assert main(["train", "roy-ae", "--resume", str(part_dir), "--set", "train.epochs=2",
                 "--no-progress"]) == 0
    assert config_io.load(RoyAEConfig, part_dir / "config.toml") == full_cfg
    resumed = json.loads((part_dir / "results.json").read_text())
    assert resumed["metrics"]["snn"] == pytest.approx(full["metrics"]["snn"])
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt", model_kind="roy-ae")["model"]
    b = load_checkpoint(part_dir / "checkpoint.pt", model_kind="roy-ae")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

"""Slow: one epoch on real MNIST (784-196-784, T=15) must beat the paper's AE-SNN test MSE."""
from __future__ import annotations

import pytest

from spikecodec.train import config as config_io
from spikecodec.train.families.roy.config import PAPER_MSE, RoyAEConfig
from spikecodec.train.families.roy.training import train_roy_ae

pytestmark = pytest.mark.slow


def test_one_mnist_epoch_beats_the_paper(tmp_path, shared_data):
    cfg = config_io.load(RoyAEConfig, None, ["data.dataset=mnist", f"data.data_dir={shared_data}",
                                             "ann.enabled=false"])
    results = train_roy_ae(cfg, tmp_path, show_progress=False)
    assert results["metrics"]["snn"]["mse"] < PAPER_MSE[("mnist", 196)]["snn"]

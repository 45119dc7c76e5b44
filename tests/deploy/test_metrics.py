"""Spike-MSE and MSE with per-sample z-normalisation (Roy et al. section 3.1)."""
from __future__ import annotations

import pytest
import torch

from spikecodec.deploy.metrics import image_mse, spike_mse, znorm_mse
from spikecodec.errors import InputError


def test_identical_and_affine_maps_score_zero():
    a = torch.rand(3, 10)
    assert znorm_mse(a, a).max().item() == pytest.approx(0.0, abs=1e-12)
    assert znorm_mse(a, 3 * a + 1).max().item() == pytest.approx(0.0, abs=1e-12)


def test_anticorrelated_scores_four_and_silent_scores_one():
    a = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    assert znorm_mse(a, 1 - a).item() == pytest.approx(4.0)
    assert znorm_mse(a, torch.zeros_like(a)).item() == pytest.approx(1.0)


def test_spike_and_image_mse_sum_over_time():
    spikes = torch.zeros(1, 4, 5)
    spikes[0, 0, :3] = 1
    spikes[0, 1, :1] = 1
    counts = spikes.sum(-1)
    assert spike_mse(spikes, spikes).item() == pytest.approx(0.0, abs=1e-12)
    assert image_mse(counts / 3, spikes).item() == pytest.approx(0.0, abs=1e-12)


def test_bad_input():
    with pytest.raises(InputError, match="shape"):
        znorm_mse(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(InputError, match="non-finite"):
        znorm_mse(torch.tensor([[float("nan"), 1.0]]), torch.zeros(1, 2))

"""VDIB tasks: the paper's blobs protocol (pairs of driven inputs, its MSE) and bad input."""
from __future__ import annotations

import itertools

import pytest
import torch

from spikecodec.errors import ConfigError
from spikecodec.train import config as config_io
from spikecodec.train.families.vdib import tasks
from spikecodec.train.families.vdib.config import VDIBConfig


def test_pair_table_lists_every_unordered_pair_once_in_row_major_order():
    table = tasks.pair_patterns(20)
    assert table.shape == (210, 20)  # the paper's 210 decoder outputs
    expected = [(i, j) for i, j in itertools.combinations_with_replacement(range(20), 2)]
    for k, (i, j) in enumerate(expected):
        row = torch.zeros(20)
        row[[i, j]] = 1.0
        assert torch.equal(table[k], row), (i, j)
        assert int(tasks.pair_index(torch.tensor(i), torch.tensor(j), 20)) == k
        assert int(tasks.pair_index(torch.tensor(j), torch.tensor(i), 20)) == k


@pytest.mark.parametrize("delta", [0, 3])
def test_paper_blobs_reference_is_the_pair_of_inputs_driven_delta_steps_ago(delta):
    task = tasks.blobs_task(train=4, test=3, num_steps=40, delta=delta, seed=0)
    assert task.out_shape == (210,) and task.at == "every" and task.output == "softmax"
    ref = task.references["test"]
    assert ref.shape == (3, 40, 210) and torch.equal(ref.sum(-1), torch.ones(3, 40))
    driven = task.pairs[ref.argmax(-1)]  # (n, T, N)
    x = task.inputs["test"].float().permute(0, 2, 1)  # (n, T, N)
    assert torch.equal(driven[:, delta:], x[:, : 40 - delta])


def test_paper_mse_scores_the_most_likely_pair_against_the_true_inputs():
    task = tasks.blobs_task(train=2, test=2, num_steps=5, delta=0, seed=1)
    ref = task.references["test"]
    assert tasks.score(task, ref, ref) == {"mse": 0.0, "position_accuracy": 1.0}
    # a guess of pair (0, 1) at every step, against the true pairs
    guess = torch.zeros_like(ref)
    guess[..., int(tasks.pair_index(torch.tensor(0), torch.tensor(1), 20))] = 0.6
    truth = task.pairs[ref.argmax(-1)]
    wrong = torch.zeros(20)
    wrong[[0, 1]] = 1.0
    expected = float(((truth - wrong) ** 2).mean())  # averaged over the 20 inputs and steps
    got = tasks.score(task, guess, ref)
    assert got["mse"] == pytest.approx(expected)
    assert got["mse"] == pytest.approx(float(((truth - wrong) ** 2).sum(-1).mean()) / 20)


def test_smooth_protocol_keeps_the_first_layout():
    task = tasks.blobs_task(train=2, test=2, num_steps=6, delta=0, seed=0, protocol="smooth")
    assert task.out_shape == (2, 20) and task.pairs is None
    assert task.references["test"].shape == (2, 6, 2, 20)


def test_bad_blobs_protocol_raises_config_error():
    with pytest.raises(ConfigError, match="data.blobs_protocol must be one of"):
        config_io.apply_overrides(VDIBConfig(), ["data.blobs_protocol=chalk"])
    with pytest.raises(ConfigError, match="data.blobs_protocol"):
        tasks.blobs_task(train=1, test=1, num_steps=3, delta=0, seed=0, protocol="x")
    with pytest.raises(ConfigError, match="num_blobs = 2"):
        tasks.blobs_task(train=1, test=1, num_steps=3, delta=0, seed=0, num_blobs=3)


def test_the_paper_protocol_config_in_docs_loads_with_the_papers_settings():
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "docs" / "configs" / "vdib_predictive_coding.toml"
    cfg = config_io.load(VDIBConfig, path)
    assert (cfg.data.task, cfg.data.num_steps, cfg.data.blobs_protocol) == ("blobs", 100, None)
    assert cfg.model.hidden == () and cfg.model.readout.neurons == 10
    assert (cfg.decoder.arch, cfg.decoder.window) == ("linear", 5)
    assert (cfg.train.prior, cfg.train.lr_encoder, cfg.train.lr_decoder) == (0.2, 0.01, 0.01)
    assert cfg.train.credit_discount == 0.0  # the authors' online credit

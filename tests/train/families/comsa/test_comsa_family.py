"""Comsa et al. 2021 family: encoding and noise, published hyperparameters, metrics, the
model's initialisation and a short training run that learns."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikecodec.cli import main
from spikecodec.errors import ConfigError
from spikecodec.train import config as config_io
from spikecodec.train.families.comsa import data as data_mod
from spikecodec.train.families.comsa.config import ComsaConfig, ComsaModelConfig, published
from spikecodec.train.families.comsa.model import ComsaAE
from spikecodec.train.families.comsa.training import loss_fn, observed, scores


def test_brightness_inverted_times_with_silent_background():
    x = torch.tensor([[0.0, 1 / 256, 0.5, 255 / 256]], dtype=torch.float64)
    t = data_mod.clean_times(x)
    assert torch.isinf(t[0, 0]) and t[0, 1] == 1 - 1 / 256 and t[0, 3] == 1 / 256
    assert torch.equal(data_mod.targets(x), 1 - x)  # background target 1.0, never silent
    raw = torch.tensor([[0.0, 255.0]]) / 255.0  # the loader's scale
    assert torch.equal(data_mod.intensities(raw, "mnist"),
                       torch.tensor([[0.0, 255 / 256]], dtype=torch.float64))


def test_noise_is_eq6_in_time_space():
    t = torch.tensor([[0.2, math.inf, 0.9]], dtype=torch.float64).repeat(20000, 1)
    noisy = data_mod.add_noise(t, 0.2, torch.Generator().manual_seed(0))
    assert torch.equal(data_mod.add_noise(t, 0.0, torch.Generator()), t)
    finite = torch.isfinite(noisy)
    assert ((noisy[finite] >= 0) & (noisy[finite] < 1)).all()
    # r ~ N(1, 1): t + 0.2 r has mean t + 0.2 before clamping; a silent input counts as 1.0
    # and stays silent whenever 1 + 0.2 r >= 1, i.e. r >= 0 (84% of draws)
    assert abs(noisy[:, 0].clamp(max=1).mean().item() - 0.4) < 0.01
    assert abs(torch.isinf(noisy[:, 1]).double().mean().item() - 0.8413) < 0.01
    same = data_mod.add_noise(t, 0.2, torch.Generator().manual_seed(0))
    assert torch.equal(noisy, same)


def test_published_table_has_75_conditions_and_sets_every_tuned_value():
    over = published(0.0, 1, 32)
    cfg = config_io.load(ComsaConfig, None, over)
    assert cfg.train.batch_size == 7 and cfg.model.pulses == 10
    assert cfg.model.decay == pytest.approx(0.172556) and cfg.train.lr == pytest.approx(0.001676)
    assert cfg.model.weight_mean == pytest.approx(-7.038462)
    assert cfg == ComsaConfig()  # the defaults are this condition (on the embedded digits)
    from spikecodec.train.families.comsa.config import _table
    assert len(_table()) == 75
    with pytest.raises(ConfigError, match="no published configuration for noise 0.3"):
        published(0.3, 1, 32)


def test_cli_published_and_bad_values(capsys, tmp_path):
    assert main(["train", "comsa", "--published", "0,1", "--out", str(tmp_path / "r")]) == 2
    assert "--published takes NOISE,LATENCY,HIDDEN" in capsys.readouterr().err
    for setting, message in (("model.decay=-1", "model.decay must be a finite number > 0"),
                             ("train.penalty_no_spike=-2", "train.penalty_no_spike must be"),
                             ("data.noise_draw=sometimes", "data.noise_draw must be one of"),
                             ("model.pulses=-1", "model.pulses must be >= 0"),
                             ("train.dtype=float16", "train.dtype must be one of")):
        assert main(["train", "comsa", "--set", setting, "--out", str(tmp_path / "r")]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "r").exists()


def test_metrics_are_the_cpp_codes():
    y = torch.tensor([[0.5, 1.0], [0.25, 0.75]], dtype=torch.float64)
    t_out = torch.tensor([[1.5, math.inf], [1.5, 1.75]], dtype=torch.float64)  # latency 1
    o = observed(t_out, 1.0)
    assert o.tolist() == [[0.5, 1.0], [0.5, 0.75]]  # silent -> 1.0
    m = scores(torch.zeros(2, 3), t_out, y, 1.0)
    assert m["mse"] == pytest.approx((0 + 0 + 0.25 ** 2 + 0) / 4)
    assert m["silent_outputs"] == 0.25
    # pixel space: silent reconstructs background (0) against the clean pixel 0
    assert m["pixel_mse"] == pytest.approx(((0.5 - 0.5) ** 2 + 0 + (0.5 - 0.75) ** 2 + 0) / 4)
    t = t_out.clone().requires_grad_(True)
    loss_fn(t, y, 1.0).backward()
    assert t.grad[0, 1] == 0 and torch.isfinite(t.grad).all()  # silent: no gradient
    assert t.grad[1, 0].item() == pytest.approx((0.5 - 0.25) / 2)  # delta averaged over batch


def test_initialisation_follows_the_modified_glorot_rule():
    cfg = ComsaModelConfig(hidden=32, pulses=10, weight_mean=-2.0, pulse_weight_mean=3.0)
    model = ComsaAE(784, cfg, generator=torch.Generator().manual_seed(0))
    sigma = math.sqrt(2.0 / (784 + 32 + 10))
    w = model.encoder.weight.detach()
    assert w.mean().item() == pytest.approx(-2.0 * sigma, abs=0.05 * sigma)
    assert w.std().item() == pytest.approx(sigma, rel=0.05)
    assert model.encoder.pulse_weight.mean().item() == pytest.approx(3.0 * sigma, abs=0.3 * sigma)
    np.testing.assert_allclose(model.decoder.pulse_times.detach().numpy(),
                               np.arange(1, 11) / 11)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    from spikecodec.train.families.comsa.training import train_comsa

    cfg = config_io.load(ComsaConfig, None, ["data.train_limit=800", "data.test_limit=100",
                                             "train.epochs=4"])
    run_dir = tmp_path_factory.mktemp("comsa")
    return train_comsa(cfg, run_dir, show_progress=False, log=lambda _: None), run_dir


def test_training_learns_and_keeps_the_best_validation_epoch(short_run):
    short_run, _ = short_run
    m = short_run["metrics"]
    first, *_ = m["per_epoch"]
    best = min(e["val_mse"] for e in m["per_epoch"])
    assert m["validation"]["mse"] == pytest.approx(best)  # the model kept is the best one
    assert short_run["best_epoch"] == 1 + [e["val_mse"] for e in m["per_epoch"]].index(best)
    y = short_run["_data"].targets["test"]
    all_silent = float(((1.0 - y) ** 2).mean())  # every output read as 1.0
    assert m["test"]["mse"] < 0.5 * all_silent and m["test"]["silent_outputs"] < 0.5
    assert m["ann_plain"]["mse"] > 0 and m["ann_inverted"]["mse"] > 0
    assert short_run["_model"].encoder.pulse_times.min() >= 0  # clamped after every step


def test_potential_reaches_the_threshold_at_the_spike_time():
    from spikecodec.train.families.comsa.spiketime import spike_times
    from spikecodec.train.families.comsa.training import potential

    gen = torch.Generator().manual_seed(3)
    t_in = torch.rand(1, 12, generator=gen, dtype=torch.float64)
    t_in[0, 5] = math.inf  # a silent input contributes nothing
    w = torch.rand(4, 12, generator=gen, dtype=torch.float64) * 2.0
    t_out = spike_times(t_in, w, decay=1.0, threshold=1.0)[0]
    assert torch.isfinite(t_out).all()
    for k in range(4):
        v = potential(t_out[k:k + 1], t_in[0], w[k], 1.0)
        assert v.item() == pytest.approx(1.0, abs=1e-9)
        before = potential(t_out[k:k + 1] - 1e-3, t_in[0], w[k], 1.0)
        assert before.item() < 1.0  # the first crossing, from below


def test_load_trained_returns_the_model_validation_chose(short_run):
    from spikecodec.train.families.comsa.training import load_trained

    results, run_dir = short_run
    cfg, model = load_trained(run_dir)
    assert cfg.model.hidden == 32
    for key, value in results["_model"].state_dict().items():  # the run's final, best model
        assert torch.equal(model.state_dict()[key], value), key

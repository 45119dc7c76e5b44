"""Training the continuous Comsa model on the deployed weight grid (``train.weight_bits``) and
bounded epochs (``train.epoch_samples``): the grid is exactly the export's, the gradient passes
straight through, bad values are typed errors, subsets are pure functions of seed and epoch."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from spikecodec.errors import ConfigError
from spikecodec.lava_procs.spec import WEIGHT_MAX, WEIGHT_MIN
from spikecodec.train import config as config_io
from spikecodec.train.checkpoint import load_checkpoint
from spikecodec.train.families import FAMILIES
from spikecodec.train.families.comsa.config import ComsaConfig
from spikecodec.train.families.comsa.model import ComsaAE
from spikecodec.train.families.comsa.quantize import _even, mantissa_max, quantize, weight_grid
from spikecodec.train.families.comsa.training import loss_fn

SMALL = ["data.train_limit=300", "data.test_limit=40", "model.hidden=12", "model.pulses=3",
         "model.weight_mean=0.0", "ann.enabled=false", "train.batch_size=10"]


def _cfg(*settings: str) -> ComsaConfig:
    return config_io.load(ComsaConfig, None, ["model.pulses=3", "model.hidden=12",
                                              "model.weight_mean=0.0", *settings])


def _inputs(n: int = 9, pixels: int = 64, seed: int = 1) -> torch.Tensor:
    x = torch.rand((n, pixels), generator=torch.Generator().manual_seed(seed),
                   dtype=torch.float64)
    x[x > 0.8] = math.inf  # silent pixels
    return x


@pytest.mark.parametrize("setting, message", [
    ("train.weight_bits=9", r"train.weight_bits must be an integer in \[2, 8\].*got 9"),
    ("train.weight_bits=1", r"train.weight_bits must be an integer in \[2, 8\].*got 1"),
    ("train.weight_bits=8.5", r"train.weight_bits: expected an int"),
    ("train.weight_bits=true", r"train.weight_bits: expected an int"),
    ("train.epoch_samples=0", r"train.epoch_samples must be an integer >= 1 or unset, got 0"),
    ("train.epoch_samples=-5", r"train.epoch_samples must be an integer >= 1"),
    ("train.epoch_samples=2.5", r"train.epoch_samples: expected an int"),
])
def test_bad_weight_bits_and_epoch_samples_are_typed_errors(setting, message):
    with pytest.raises(ConfigError, match=message):
        config_io.load(ComsaConfig, None, [setting])


def test_the_grid_is_loihi_2s_mantissa_and_off_by_default():
    assert mantissa_max(8) == WEIGHT_MAX and -2 ** 8 == WEIGHT_MIN
    assert _even(np.array([300.0, -300.0, 3.0, -1.0])).tolist() == [254, -256, 4, 0]
    cfg = _cfg()
    assert cfg.train.weight_bits is None and weight_grid(cfg) is None
    model = ComsaAE(64, cfg.model, generator=torch.Generator().manual_seed(0))
    w, pw = model.encoder.weights()
    assert w is model.encoder.weight and pw is model.encoder.pulse_weight


@pytest.mark.parametrize("bits", [8, 5])
def test_the_weights_trained_on_are_exactly_the_exported_ones(bits):
    cfg = _cfg(f"train.weight_bits={bits}")
    model = ComsaAE(64, cfg.model, generator=torch.Generator().manual_seed(0),
                    weight_grid=weight_grid(cfg))
    with torch.no_grad():
        model.decoder.pulse_weight.mul_(9.0)  # pulse weights that need an extra shift
    layers, report = quantize(model, cfg)
    assert report["weight_bits"] == bits
    for layer, block in zip(layers, (model.encoder, model.decoder), strict=True):
        c = report[layer.name]["weight_scale"]
        w, pw = block.weights()
        assert int(np.abs(layer.weight).max()) == mantissa_max(bits)
        assert layer.weight.min() >= -2 ** bits
        assert torch.equal(w, torch.from_numpy(layer.weight.astype(np.float64)) / c)
        assert torch.equal(pw, torch.from_numpy(layer.pulse_weight.astype(np.float64))
                           * 2.0 ** layer.pulse_exp / c)
        assert not torch.equal(w, block.weight)  # rounding changed something
    assert layers[1].pulse_exp > 0


def test_the_gradient_passes_straight_through_the_rounding():
    cfg = _cfg("train.weight_bits=8")
    grid_model = ComsaAE(64, cfg.model, generator=torch.Generator().manual_seed(0),
                         weight_grid=weight_grid(cfg))
    plain = ComsaAE(64, cfg.model, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # the plain model holds the rounded weights as its parameters
        for a, b in ((grid_model.encoder, plain.encoder), (grid_model.decoder, plain.decoder)):
            w, pw = a.weights()
            b.weight.copy_(w)
            b.pulse_weight.copy_(pw)
    x = _inputs()
    y = 1.0 - torch.rand((9, 64), generator=torch.Generator().manual_seed(2),
                         dtype=torch.float64)
    outs = []
    for model in (grid_model, plain):
        out = model(x, clip=100.0, penalty=1.0)
        loss_fn(out.output, y, cfg.model.latency).backward()
        outs.append(out)
    assert torch.equal(outs[0].output, outs[1].output)
    assert torch.isfinite(outs[0].output).any()
    for a, b in zip(grid_model.parameters(), plain.parameters(), strict=True):
        assert a.grad is not None and torch.equal(a.grad, b.grad)
    assert grid_model.encoder.weight.grad.abs().sum() > 0


def test_a_run_trained_on_the_grid_is_its_exports_continuous_model(tmp_path):
    """End to end: the trained model's spike times (the weights it trained and was selected
    on) equal those of the continuous model ``check`` rebuilds from the export's integers."""
    from spikecodec.train.families.comsa.parity import continuous_layers
    from spikecodec.train.families.comsa.training import load_trained
    from spikecodec.workflows.training import start_run, train_run

    family = FAMILIES["comsa"]
    plan = start_run(family, overrides=[*SMALL, "train.epochs=1", "train.weight_bits=8",
                                        "train.dtype=float64"], out=str(tmp_path / "run"))
    done = train_run(family, plan, show_progress=False, log=lambda _: None)
    cfg, model = load_trained(tmp_path / "run")
    assert cfg.train.weight_bits == 8 and model.encoder.weight_grid is not None
    inputs = family.inputs(done.net, samples=40)
    times = inputs.context["times"]
    with torch.no_grad():
        out = model(times)
    hidden, output = continuous_layers(done.net, times)
    assert torch.equal(out.hidden, hidden) and torch.equal(out.output, output)
    assert done.net.metadata.extra["quantization"]["weight_bits"] == 8
    assert done.results["metrics"]["test"]["mse"] == pytest.approx(
        done.net.metadata.float_metrics["mse"])


def test_epoch_samples_bound_each_epoch_to_its_own_random_subset(tmp_path):
    from spikecodec.train.families.comsa import data as data_mod
    from spikecodec.train.families.comsa.training import ComsaTrainer, build_model
    from spikecodec.workflows.training import start_run, train_run

    cfg = config_io.load(ComsaConfig, None, [*SMALL, "train.epoch_samples=50"])
    data = data_mod.load_data(cfg.data, seed=0)
    trainer = ComsaTrainer(build_model(cfg, data.pixels), data, cfg, torch.device("cpu"))
    assert trainer.samples_per_epoch == 50 < data.size("train")
    first = trainer.images(0, torch.arange(50))
    again = ComsaTrainer(build_model(cfg, data.pixels), data, cfg, torch.device("cpu"))
    assert torch.equal(again.images(0, torch.arange(50)), first)  # seed and epoch fix it
    assert len(set(first.tolist())) == 50 and int(first.max()) < data.size("train")
    assert not torch.equal(trainer.images(1, torch.arange(50)), first)
    assert torch.equal(trainer.images(0, torch.tensor([3, 7])), first[[3, 7]])
    big = config_io.load(ComsaConfig, None, [*SMALL, "train.epoch_samples=100000"])
    assert ComsaTrainer(build_model(big, data.pixels), data, big,
                        torch.device("cpu")).samples_per_epoch == data.size("train")

    # resume-safe: two epochs in one go == one, then resumed for the second
    family = FAMILIES["comsa"]
    settings = [*SMALL, "train.epoch_samples=50", "train.epochs=2"]
    whole = train_run(family, start_run(family, overrides=settings, out=str(tmp_path / "a")),
                      show_progress=False, log=lambda _: None)
    assert whole.results["epoch_samples"] == 50
    first_half = [*SMALL, "train.epoch_samples=50", "train.epochs=1"]
    train_run(family, start_run(family, overrides=first_half, out=str(tmp_path / "b")),
              show_progress=False, log=lambda _: None)
    train_run(family, start_run(family, resume=str(tmp_path / "b"),
                                overrides=["train.epochs=2"]),
              show_progress=False, log=lambda _: None)
    a = load_checkpoint(tmp_path / "a" / "checkpoint.pt", model_kind="comsa")
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt", model_kind="comsa")
    assert len(a["history"]["loss"]) == 2 * 5  # 50 images in batches of 10, twice
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key

    # a third epoch of 20 images (2 batches): metrics.csv keeps each epoch's own batches
    train_run(family, start_run(family, resume=str(tmp_path / "b"),
                                overrides=["train.epochs=3", "train.epoch_samples=20"]),
              show_progress=False, log=lambda _: None)
    c = load_checkpoint(tmp_path / "b" / "checkpoint.pt", model_kind="comsa")
    assert c["epoch_batches"] == [5, 5, 2] and len(c["history"]["loss"]) == 12
    with open(tmp_path / "b" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    loss = c["history"]["loss"]
    for row, (lo, hi) in zip(rows, ((0, 5), (5, 10), (10, 12)), strict=True):
        assert float(row["loss"]) == pytest.approx(sum(loss[lo:hi]) / (hi - lo), rel=1e-5)

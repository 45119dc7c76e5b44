"""Comsa deployment: quantization onto the grid (and its refusals), the discrete model against
the continuous one, host decoding, and reference == lava-sim on an exported trained run."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikecodec.deploy.backends import run
from spikecodec.errors import ConfigError, InputError
from spikecodec.train import config as config_io
from spikecodec.train.checkpoint import load_checkpoint
from spikecodec.train.families import FAMILIES
from spikecodec.train.families.comsa.config import ComsaConfig
from spikecodec.train.families.comsa.model import ComsaAE
from spikecodec.train.families.comsa.quantize import (
    Grid,
    alpha_decay,
    grid_for,
    input_spikes,
    output_times,
    quantize,
)


def _model(cfg: ComsaConfig, pixels: int = 64) -> ComsaAE:
    return ComsaAE(pixels, cfg.model, generator=torch.Generator().manual_seed(0))


def test_the_grid_and_the_decay_cover_the_target_window():
    cfg = config_io.load(ComsaConfig, None, ["model.latency=1.0"])
    grid = grid_for(cfg)
    assert grid.dt == 1 / 32 and grid.num_steps == math.ceil(2.25 * 32) and grid.t0 == 1 / 32
    assert alpha_decay(0.172556, 1 / 32, "x") == 22  # 4096 (1 - e^{-K/32}) = 22.03
    with pytest.raises(ConfigError, match=r"enc: decay K = 0.172556 cannot be expressed at "
                                          r"dt = 0.000244141.*rounds to 0"):
        alpha_decay(0.172556, 1 / 4096, "enc")


def test_quantization_reports_what_rounding_changed():
    from spikecodec.deploy.check import loihi2_report
    from spikecodec.deploy.ir import FixedPointNetwork, InputSpec

    cfg = config_io.load(ComsaConfig, None, ["model.pulses=3"])
    layers, report = quantize(_model(cfg), cfg)
    assert [layer.name for layer in layers] == ["encoder", "decoder"]
    for layer in layers:
        rep = report[layer.name]
        assert int(np.abs(layer.weight).max()) == 254  # the largest weight uses 8 bits
        assert abs(rep["decay_rel_error"]) < 0.5 / 22 + 1e-3  # ~ 0.5 / d
        assert abs(rep["threshold_rel_error"]) < 1e-3 and rep["weight_rel_error"] <= 1 / 254
        assert np.all(layer.weight % 2 == 0) and np.all(layer.pulse_weight % 2 == 0)
        assert np.abs(layer.pulse_weight).max() * 2 ** layer.pulse_exp >= 128
        assert all(abs(e) <= 0.5 for e in rep["pulse_step_error"])
    net = FixedPointNetwork(layers, InputSpec("comsa_latency", 72, (8, 8)))
    report_l2 = loihi2_report(net)
    assert report_l2["ok"], [row["problems"] for row in report_l2["layers"]]  # 8-bit weights
    # pulse i of layer 1 runs half a step behind layer 0's frame (quantize.py)
    p = _model(cfg).decoder.pulse_times.detach().numpy()
    assert layers[1].pulse_steps.tolist() == np.round(p * 32 - 0.5).astype(int).tolist()


def test_a_pulse_past_the_horizon_is_left_out_and_reported():
    cfg = config_io.load(ComsaConfig, None, ["model.pulses=2"])
    model = _model(cfg)
    with torch.no_grad():
        model.decoder.pulse_times[1] = 4.0  # step 128 > T = 72
    layers, report = quantize(model, cfg)
    assert layers[1].num_pulses == 1 and layers[1].pulse_weight.shape == (64, 1)
    assert report["decoder"]["pulses_past_horizon"] == [4.0]
    assert len(report["decoder"]["pulse_times"]) == 1 and layers[0].num_pulses == 2


def test_times_to_steps_and_back():
    grid = Grid(0.25, 8, 2)
    t = torch.tensor([[0.0, 0.3, math.inf, 1.5]], dtype=torch.float64)
    s = input_spikes(t, grid)
    assert s.shape == (1, 4, 8) and s.sum().item() == 3
    assert s[0, 1].argmax().item() == 1 and s[0, 3].argmax().item() == 6
    back = output_times(s.numpy(), grid)  # step m reads (m + 1) dt with two layers
    assert back[0, :2].tolist() == [0.25, 0.5] and math.isinf(back[0, 2])
    with pytest.raises(InputError, match=r"horizon"):
        input_spikes(torch.tensor([[2.5]], dtype=torch.float64), grid)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from spikecodec.train.families.comsa.training import train_comsa

    cfg = config_io.load(ComsaConfig, None, ["data.train_limit=800", "data.test_limit=60",
                                             "train.epochs=3", "ann.enabled=false"])
    run_dir = tmp_path_factory.mktemp("comsa")
    train_comsa(cfg, run_dir, show_progress=False, log=lambda _: None)
    family = FAMILIES["comsa"]
    net = family.export(run_dir, load_checkpoint(run_dir / "checkpoint.pt", model_kind="comsa"))
    return family, net


def test_the_deployed_model_scores_close_to_the_continuous_one(exported):
    family, net = exported
    float_mse = net.metadata.float_metrics["mse"]
    quantized_mse = net.metadata.quantized_metrics["mse"]
    # measured on these embedded digits: within 15% (MNIST, 4 epochs: 0.0128 vs 0.0123, README)
    assert quantized_mse == pytest.approx(float_mse, rel=0.15)
    report = net.metadata.extra["quantization"]
    assert report["num_steps"] == net.num_steps and report["encoder"]["decay"] == 22
    inputs = family.inputs(net, samples=60)
    ref = run(net, inputs.spikes, backend="reference", probe=True)
    assert family.score(net, inputs, ref.spikes)["mse"] == pytest.approx(quantized_mse,
                                                                         rel=1e-12)
    assert ref.layers[0].sum(axis=2).max() <= 1 and ref.layers[1].sum(axis=2).max() <= 1
    pixels = family.decode(net, inputs, ref.spikes)
    silent = ref.spikes.sum(axis=2) == 0
    assert pixels.shape == (60, 64) and np.all(pixels[silent] == 0.0)  # background
    recon_mse = float(((np.clip(pixels, 0, 1) - inputs.target.numpy()) ** 2).mean())
    assert recon_mse == pytest.approx(family.score(net, inputs, ref.spikes)["pixel_mse"])


@pytest.mark.lava
def test_reference_equals_lava_sim_on_an_exported_run(exported, no_leftover_children):
    family, net = exported
    inputs = family.inputs(net, samples=12)
    ref = run(net, inputs.spikes, backend="reference", probe=True)
    lava = run(net, inputs.spikes, backend="lava-sim", probe=True, chunk=7)
    for a, b in zip(ref.layers, lava.layers, strict=True):
        np.testing.assert_array_equal(a, b)
    assert ref.spikes.sum() > 0


@pytest.mark.lava
def test_check_adds_the_continuous_model_and_the_step_errors(exported, no_leftover_children):
    from spikecodec.workflows.parity import check_parity
    from spikecodec.workflows.reports import format_parity

    family, net = exported
    inputs = family.inputs(net, samples=10)
    report, ok = check_parity(net, family, inputs)
    assert ok and {row["engine"] for row in report["engines"]} >= {"float", "reference",
                                                                   "lava-sim"}
    details = report["details"]
    ref = run(net, inputs.spikes, backend="reference", probe=True)
    for row, spikes in zip(details["layers"], ref.layers, strict=True):
        assert sum(row["histogram"].values()) == row["compared"]
        fired = int((spikes.sum(axis=2) > 0).sum())
        assert row["compared"] + row["gained"] == fired  # every discrete spike is accounted
    assert details["continuous"]["mse"] > 0
    text = format_parity(report)
    assert "spike-step error" in text and "continuous model" in text


def test_a_continuous_spike_on_the_grid_has_step_error_zero():
    from spikecodec.train.families.comsa.parity import step_errors

    dt, steps = 0.25, 8
    discrete = np.zeros((1, 3, steps), dtype=np.uint8)
    discrete[0, 0, 2] = 1  # layer 0: step 2 reads (2 + 1/2) dt
    discrete[0, 1, 5] = 1  # the continuous neuron is silent: gained
    t = torch.tensor([[2.5 * dt, math.inf, 3.0 * dt]], dtype=torch.float64)  # 3rd: lost
    row = step_errors(discrete, t, index=0, dt=dt, num_steps=steps)
    assert row["compared"] == 1 and row["histogram"][0] == 1
    assert row["gained"] == 1 and row["lost"] == 1 and row["past_horizon"] == 0
    late = step_errors(np.zeros((1, 1, steps)), torch.tensor([[9.0]]), index=0, dt=dt,
                       num_steps=steps)
    assert late["past_horizon"] == 1 and late["lost"] == 0


def test_deploy_aware_forward_is_the_deployed_model_with_exact_gradients():
    from spikecodec.train.families.comsa.finetune import deploy_aware_forward, discrete_times
    from spikecodec.train.families.comsa.training import loss_fn

    cfg = config_io.load(ComsaConfig, None, ["model.pulses=3", "model.hidden=12",
                                             "model.weight_mean=0.0"])
    model = _model(cfg).double()
    gen = torch.Generator().manual_seed(1)
    x = torch.rand((9, 64), generator=gen, dtype=torch.float64)
    x[x > 0.8] = math.inf  # silent pixels
    out = deploy_aware_forward(model, x, cfg, clip=100.0, penalty=1.0)
    t_hidden, t_out = discrete_times(model, x, cfg)
    assert torch.equal(out.hidden, t_hidden) and torch.equal(out.output, t_out)
    assert torch.isfinite(t_hidden).any() and torch.isfinite(t_out).any()
    loss_fn(out.output, 1.0 - torch.rand((9, 64), generator=gen, dtype=torch.float64),
            cfg.model.latency).backward()
    for p in (model.encoder.weight, model.decoder.weight, model.decoder.pulse_times):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_fine_tuning_resumes_a_run_deploy_aware_and_selects_on_the_deployed_mse(tmp_path):
    from spikecodec.workflows.training import start_run, train_run

    family = FAMILIES["comsa"]
    settings = ["data.train_limit=300", "data.test_limit=40", "model.hidden=12",
                "model.pulses=3", "model.weight_mean=0.0", "train.epochs=1", "ann.enabled=false"]
    run_dir = tmp_path / "run"
    train_run(family, start_run(family, overrides=settings, out=str(run_dir)),
              show_progress=False, log=lambda _: None)
    plan = start_run(family, resume=str(run_dir), overrides=["train.epochs=2",
                                                             "train.deploy_aware=true"])
    done = train_run(family, plan, show_progress=False, log=lambda _: None)
    ckpt = load_checkpoint(run_dir / "checkpoint.pt", model_kind="comsa")
    assert ckpt["trainer"]["best"]["model"] == "deployed" and ckpt["trainer"]["best"]["epoch"] == 2
    assert done.results["metrics"]["per_epoch"][-1]["val_mse"] == pytest.approx(
        ckpt["trainer"]["best"]["mse"])
    assert done.net.metadata.quantized_metrics["mse"] > 0

"""Run directory -> export -> deployed evaluation, through the Python API and the command."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from spikecodec.cli import main
from spikecodec.deploy.hdf5 import read_hdf5
from spikecodec.train import config as config_io
from spikecodec.train.datasets import load_images
from spikecodec.train.encoding import encode_input
from spikecodec.train.families.roy.config import RoyAEConfig
from spikecodec.train.families.roy.training import train_roy_ae
from spikecodec.workflows.evaluate import evaluate_export
from spikecodec.workflows.exporting import export_run
from spikecodec.workflows.parity import float_layers

from conftest import edit_export

TINY = ["data.dataset=digits", "model.hidden=32", "train.epochs=6", "train.batch_size=50",
        "data.test_limit=60", "ann.enabled=false"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run")
    cfg = config_io.load(RoyAEConfig, None, TINY)
    train_roy_ae(cfg, path, show_progress=False, log=lambda _: None)
    return path


@pytest.fixture(scope="module")
def exported(run_dir):
    return export_run(run_dir)


def test_export_carries_what_deployment_needs(exported, run_dir):
    net, path = exported
    assert path == run_dir / "export.h5"
    back = read_hdf5(path)
    assert back.input.encoding == "poisson_rate" and back.input.num_steps == 15
    assert back.input.shape == (8, 8) and back.input.params == {"max_rate": 1.0}
    assert back.metadata.dataset == "digits" and back.metadata.model_kind == "roy-ae"
    assert "model" in back.metadata.config_toml
    results = json.loads((run_dir / "results.json").read_text())
    assert back.metadata.float_metrics == results["metrics"]["snn"]


def test_deployed_network_is_the_evaluated_one(exported):
    net, _ = exported
    metrics, result, inputs = evaluate_export(net, backend="reference", samples=60)
    x = inputs.spikes
    assert metrics["samples"] == 60 and metrics["u_wraps"] == [0, 0]
    floats = float_layers(net, x)
    for a, b in zip(floats, result.layers, strict=True):
        np.testing.assert_array_equal(a, b)
    assert metrics["mse"] < 1.0  # trained: better than a silent output
    assert metrics["synops_per_sample"] > 0
    # the same seed draws the same input spikes the training-time evaluation drew
    assert metrics["mse"] == pytest.approx(net.metadata.float_metrics["mse"], rel=1e-6)


def test_encode_is_seeded(exported):
    net, _ = exported
    images = load_images("digits", "test", limit=5).images
    assert torch.equal(encode_input(net.input, images, seed=3),
                       encode_input(net.input, images, seed=3))
    assert not torch.equal(encode_input(net.input, images, seed=3),
                           encode_input(net.input, images, seed=4))


def test_cli_export_eval_run_and_loihi2_check(run_dir, tmp_path, capsys):
    out = tmp_path / "net.h5"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    assert "encoder" in capsys.readouterr().out and out.is_file()
    assert main(["eval", str(out), "--samples", "30", "--no-progress",
                 "--out", str(tmp_path / "m.json")]) == 0
    text = capsys.readouterr().out
    assert "reference on 30 digits test samples" in text
    assert "float (training, 60 samples (another set))" in text  # data.test_limit=60
    assert json.loads((tmp_path / "m.json").read_text())["samples"] == 30
    assert main(["run", str(out), "--samples", "7", "--no-progress",
                 "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as z:
        assert z["input"].shape == (7, 64, 15) and z["output"].shape == (7, 64, 15)
    assert main(["check", str(out), "--target", "loihi2"]) == 0
    assert "fits Loihi 2" in capsys.readouterr().out


@pytest.mark.parametrize("damage, message", [
    ("missing", "no export at"),
    ("garbage", "not a readable HDF5 file"),
    ("weights", "encoder: weight must lie in"),
    ("edited", "is damaged: sha256 of its content"),
])
def test_cli_refuses_bad_exports(exported, tmp_path, capsys, damage, message):
    path = tmp_path / "bad.h5"
    if damage == "garbage":
        path.write_bytes(b"\x00" * 64)
    elif damage in ("weights", "edited"):  # "weights": resealed, as a buggy writer would
        path.write_bytes(exported[1].read_bytes())
        with edit_export(path, reseal=damage == "weights") as f:
            f["layer/0/weight"][0, 0] = 1000
    assert main(["eval", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spikecodec: error:") and message in err


def test_cli_unknown_backend_exits_2(exported, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", str(exported[1]), "--backend", "gpu"])
    assert exc.value.code == 2
    assert "invalid choice: 'gpu'" in capsys.readouterr().err


@pytest.mark.lava
def test_cli_parity_check_agrees_on_every_layer(exported, capsys):
    assert main(["check", str(exported[1]), "--samples", "6", "--no-progress"]) == 0
    text = capsys.readouterr().out
    for engine in ("float", "reference", "lava-sim"):
        assert engine in text
    assert text.count("100.000%") == 6  # 3 engines x 2 layers


@pytest.mark.lava
def test_quickstart_runs_the_whole_path(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), "--no-progress", "--lava-samples", "4",
                 "--set", "train.epochs=2", "--set", "ann.enabled=false"]) == 0
    text = capsys.readouterr().out
    for line in ("float model test MSE", "deployed (reference) test MSE",
                 "reference vs Lava spike agreement", "synaptic ops per sample"):
        assert line in text
    assert re.search(r"reference vs Lava spike agreement +100\.00%", text)
    assert re.search(r"samples identical +4/4", text)
    for name in ("export.h5", "deployed.json", "deployed_reconstructions.png",
                 "output_raster.png", "reconstructions.png", "results.json"):
        assert (out / name).stat().st_size > 0
    deployed = json.loads((out / "deployed.json").read_text())
    assert deployed["reference"]["samples"] == 360 and deployed["lava_sim"]["samples_equal"] == 4
    assert deployed["reference"]["mse"] == pytest.approx(deployed["float"]["mse"])


def test_cli_loihi2_without_lava_loihi_says_what_is_missing(exported, capsys):
    assert main(["run", str(exported[1]), "--backend", "loihi2", "--samples", "2",
                 "--no-progress"]) == 3  # not a usage error: this machine cannot run it
    err = capsys.readouterr().err
    assert err.startswith("spikecodec: backend unavailable:") and "lava-loihi" in err
    assert "lava-sim" in err

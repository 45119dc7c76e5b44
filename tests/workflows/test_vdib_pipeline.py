"""VDIB from training to a deployed export, through the Python API and the command.

The invariant: an export replayed on the reference engine decodes to exactly the metrics of
the training run's quantized evaluation (same input spikes, same readout spikes, same decoder
floats). Tiny models on the embedded digits (and on drifting blobs) keep this under ~30 s.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re

import numpy as np
import pytest
import torch

from spikecodec.cli import main
from spikecodec.deploy.hdf5 import read_hdf5, write_hdf5
from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.errors import CheckpointError, ExportError
from spikecodec.train import config as config_io
from spikecodec.train import encoding
from spikecodec.train.checkpoint import FORMAT, save_atomic
from spikecodec.train.encoding import encode_input
from spikecodec.train.families.vdib.config import VDIBConfig
from spikecodec.train.families.vdib.family import VDIBFamily
from spikecodec.train.families.vdib.training import train_vdib
from spikecodec.workflows.evaluate import evaluate_export
from spikecodec.workflows.exporting import export_run
from spikecodec.workflows.parity import parity_report

TINY = ["data.dataset=digits", "data.train_limit=120", "data.test_limit=40", "model.hidden=16",
        "model.readout.neurons=8", "decoder.hidden=16", "train.epochs=1", "train.batch_size=40"]
# poisson inputs drawn in several evaluation batches: the export must replay their seeds
POISSON = ["data.encoding=poisson_rate", "data.max_rate=0.8", "train.eval_batch_size=16"]
TINY_BLOBS = ["data.task=blobs", "data.blobs_train=48", "data.blobs_test=12", "data.num_steps=16",
              "decoder.window=4", "model.hidden=16", "model.readout.neurons=8",
              "decoder.hidden=16", "train.epochs=1", "train.batch_size=16"]


def _train(tmp_path_factory, settings):
    run_dir = tmp_path_factory.mktemp("vdib")
    cfg = config_io.load(VDIBConfig, None, settings)
    results = train_vdib(cfg, run_dir, show_progress=False, log=lambda _: None)
    net, path = export_run(run_dir)
    return run_dir, results, net, path


@pytest.fixture(scope="module", params=["time_to_first_spike", "poisson_rate"])
def trained(request, tmp_path_factory):
    return _train(tmp_path_factory, TINY + (POISSON if request.param == "poisson_rate" else []))


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    return _train(tmp_path_factory, TINY_BLOBS)


def test_export_carries_encoding_decoder_and_training_metrics(trained):
    run_dir, results, net, path = trained
    back = read_hdf5(path)
    enc = results["encoding"]
    assert back.input.encoding == enc and back.input.num_steps == 30
    assert back.input.shape == (8, 8)
    assert back.input.params == ({"max_rate": 0.8} if enc == "poisson_rate" else {})
    assert back.metadata.model_kind == "vdib" and back.metadata.task == "images"
    assert back.decoder.kind == "ann" and back.decoder.config["out_shape"] == [64]
    on_disk = json.loads((run_dir / "results.json").read_text())["metrics"]
    assert back.metadata.float_metrics == on_disk["float"]
    assert back.metadata.quantized_metrics == on_disk["quantized"]
    assert config_io.from_dict(VDIBConfig, config_io.tomllib.loads(
        back.metadata.config_toml)) == config_io.load(VDIBConfig, run_dir / "config.toml")


def test_reference_engine_reproduces_the_quantized_evaluation_exactly(trained):
    _, results, _, path = trained
    metrics, run, _ = evaluate_export(read_hdf5(path), backend="reference")
    quantized = results["_quantized"]
    assert metrics["samples"] == 40
    np.testing.assert_array_equal(run.spikes, quantized["spikes"].numpy())
    for key in ("mse", "readout_spikes_per_sample", "samples"):
        assert metrics[key] == quantized["metrics"][key], key  # exact: same spikes and floats
    assert metrics["spikes_per_sample"]["readout"] == metrics["readout_spikes_per_sample"]
    assert metrics["samples_per_second"] > 0


def test_a_prefix_of_the_split_gets_the_same_spikes(trained):
    _, results, net, _ = trained
    _, run, _ = evaluate_export(net, samples=21)  # ends inside the second eval batch
    np.testing.assert_array_equal(run.spikes, results["_quantized"]["spikes"][:21].numpy())


def test_encode_serves_both_image_encoders(trained):
    _, results, net, _ = trained
    images = results["_task"].inputs["test"][:5]
    x = encode_input(net.input, images, seed=3)
    if net.input.encoding == "time_to_first_spike":  # deterministic: the seed is ignored
        assert torch.equal(x, encoding.time_to_first_spike(images, 30))
        assert torch.equal(x, encode_input(net.input, images, seed=4))
    else:
        assert torch.equal(x, encoding.poisson_rate(images, 30, seed=3, max_rate=0.8))


def test_parity_float_and_reference_agree(trained):
    _, _, net, _ = trained
    x = VDIBFamily().inputs(net, samples=6).spikes
    report = parity_report(net, x, engines=("float", "reference"),
                           metric=("spikes/sample", lambda s: float(s.sum()) / len(s)))
    assert [row["engine"] for row in report["engines"]] == ["reference", "float"]
    assert all(layer["agreement"] == 1.0 for row in report["engines"] for layer in row["layers"])


def test_blobs_export_takes_spikes_and_matches_training(blobs):
    _, results, net, path = blobs
    assert net.input.encoding == "spikes" and net.input.shape == (20,)
    metrics, run, _ = evaluate_export(read_hdf5(path))
    quantized = results["_quantized"]["metrics"]
    for key in ("mse", "position_accuracy", "readout_spikes_per_sample"):
        assert metrics[key] == quantized[key], key
    np.testing.assert_array_equal(run.spikes, results["_quantized"]["spikes"].numpy())


def test_export_run_refuses_an_unknown_model_kind(trained, tmp_path):
    run_dir = trained[0]
    (tmp_path / "config.toml").write_text((run_dir / "config.toml").read_text())
    save_atomic({"format": FORMAT, "model_kind": "mystery"}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="'mystery' model, not 'roy-ae' or 'vdib'"):
        export_run(tmp_path)


# ------------------------------------------------------------------------------- the command

@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    settings = [a for s in TINY for a in ("--set", s)]
    with contextlib.redirect_stdout(io.StringIO()) as text:
        code = main(["train", "vdib", "--task", "images", "--dataset", "digits", "--out",
                     str(run_dir), "--no-progress", *settings])
    return code, run_dir, text.getvalue()


def test_cli_train_vdib_trains_summarises_and_exports(cli_run):
    code, run_dir, text = cli_run
    assert code == 0
    assert "VDIB 64-16-8 on images/digits (time_to_first_spike, T=30, 1 epoch(s)" in text
    assert re.search(r"^float +\d\.\d{4} +\d+\.\d$", text, re.M)
    assert re.search(r"^quantized +\d\.\d{4} +\d+\.\d$", text, re.M)
    assert re.search(r"training: \d+\.\d s/epoch", text)
    assert f"exported {run_dir / 'export.h5'}" in text
    for name in ("config.toml", "checkpoint.pt", "results.json", "export.h5", "loss.png"):
        assert (run_dir / name).stat().st_size > 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["test_samples"] == 40 and results["network"] == "64-16-8"


def test_cli_eval_prints_training_and_deployed_metrics(cli_run, tmp_path, capsys):
    export = cli_run[1] / "export.h5"
    assert main(["eval", str(export), "--no-progress", "--out", str(tmp_path / "m.json")]) == 0
    text = capsys.readouterr().out
    quantized = read_hdf5(export).metadata.quantized_metrics
    rows = {line.split("  ")[0].strip(): line.split()[-2:] for line in text.splitlines()
            if "(training" in line or "(deployed)" in line}
    assert set(rows) == {"float (training, 40 samples)", "quantized (training, 40 samples)",
                         "reference (deployed)"}
    assert rows["reference (deployed)"] == rows["quantized (training, 40 samples)"]
    assert json.loads((tmp_path / "m.json").read_text())["mse"] == quantized["mse"]


def test_cli_run_saves_spikes_and_decoded_estimates(cli_run, tmp_path, capsys):
    out = tmp_path / "s.npz"
    assert main(["run", str(cli_run[1] / "export.h5"), "--samples", "7", "--no-progress",
                 "--out", str(out)]) == 0
    assert "decoded on the host: 7 estimates of shape (64,)" in capsys.readouterr().out
    with np.load(out) as z:
        assert z["input"].shape == (7, 64, 30) and z["output"].shape == (7, 8, 30)
        assert z["decoded"].shape == (7, 64) and z["reference"].shape == (7, 64)
        assert z["labels"].shape == (7,)


def test_cli_on_an_export_without_its_decoder(cli_run, tmp_path, capsys):
    net = read_hdf5(cli_run[1] / "export.h5")
    stripped = write_hdf5(FixedPointNetwork(net.layers, net.input, decoder={"kind": "rate"},
                                            metadata=net.metadata), tmp_path / "nodec.h5")
    out = tmp_path / "s.npz"
    assert main(["run", str(stripped), "--samples", "5", "--no-progress",
                 "--out", str(out)]) == 0  # documented: the spikes are still saved
    captured = capsys.readouterr()
    assert "no decoder: this export has no ANN decoder" in captured.out
    assert "Traceback" not in captured.out + captured.err
    with np.load(out) as z:
        assert z["output"].shape == (5, 8, 30) and "decoded" not in z
    assert main(["eval", str(stripped), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spikecodec: error: this export has no ANN decoder")
    with pytest.raises(ExportError):
        evaluate_export(read_hdf5(stripped))


def test_cli_refuses_a_vdib_export_without_its_config(cli_run, tmp_path, capsys):
    net = read_hdf5(cli_run[1] / "export.h5")
    meta = dataclasses.replace(net.metadata, config_toml=None)
    bare = write_hdf5(FixedPointNetwork(net.layers, net.input, decoder=net.decoder,
                                        metadata=meta), tmp_path / "bare.h5")
    assert main(["eval", str(bare), "--no-progress"]) == 2
    assert "has no training config" in capsys.readouterr().err


@pytest.mark.lava
def test_cli_parity_check_of_a_spike_input_export(blobs, capsys):
    assert main(["check", str(blobs[3]), "--samples", "3", "--no-progress"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    header = lines[lines.index("parity on 3 samples (agreement with the reference engine)") + 1]
    assert header.split()[-1] == "mse"  # scored by the host decoder
    assert re.search(r"100\.000% +3/3 +\d+ +\d\.\d{4}$", text, re.M)
    assert text.count("100.000%") == 6  # float, reference, lava-sim x hidden0, readout


def test_results_carry_the_chance_level_and_the_summary_prints_it(blobs):
    """Chance: the training references' mean given for every test sample, scored as the paper
    scores (the most likely pair's inputs against the true ones), by hand."""
    from spikecodec.train.families import FAMILIES

    _, results, _, _ = blobs
    task = results["_task"]
    ref = task.references["test"]  # (n, T, 210) one-hot pairs
    assert ref.shape[2] == 210 and task.pairs.shape == (210, 20)
    mean = task.references["train"].double().mean(0)  # (T, 210)
    guess = task.pairs[mean.argmax(-1)]  # (T, 20): the most frequent pair per step
    truth = task.pairs[ref.argmax(-1)]  # (n, T, 20)
    expected = float(((guess - truth) ** 2).mean())
    assert results["metrics"]["chance"]["mse"] == pytest.approx(expected, rel=1e-6)
    assert 0 <= results["metrics"]["chance"]["position_accuracy"] < 0.2
    line = next(row for row in FAMILIES["vdib"].format_results(results).splitlines()
                if row.startswith("chance"))
    assert f"{expected:.4f}" in line and "(input ignored)" in line


def test_blobs_results_carry_the_raw_input_decoder_and_the_summary_prints_it(blobs):
    from spikecodec.train.families import FAMILIES

    run_dir, results, _, _ = blobs
    raw = results["metrics"]["raw_inputs"]
    on_disk = json.loads((run_dir / "results.json").read_text())["metrics"]["raw_inputs"]
    assert on_disk == raw
    # delta = 0 and a window of 4 steps: the inputs hold the reference itself
    assert raw["mse"] < results["metrics"]["chance"]["mse"]
    line = next(row for row in FAMILIES["vdib"].format_results(results).splitlines()
                if row.startswith("raw inputs"))
    assert f"{raw['mse']:.4f}" in line and "(decoder on inputs)" in line


def test_blobs_run_draws_the_three_figures(blobs):
    run_dir = blobs[0]
    for name in ("loss.png", "readout_raster.png", "positions.png"):
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name

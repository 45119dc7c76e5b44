"""VDIB with delay-basis readout synapses, trained and deployed through the command: the export
holds a delay_readout, replays the training run's quantized evaluation exactly, and the parity
check finds the float model, the reference engine and Lava (DelayDense) equal."""
from __future__ import annotations

import contextlib
import io
import json
import re

import numpy as np
import pytest

from spikecodec.cli import main
from spikecodec.deploy.hdf5 import read_hdf5
from spikecodec.workflows.evaluate import evaluate_export

TINY_BLOBS = ["data.task=blobs", "data.blobs_train=48", "data.blobs_test=12",
              "data.num_steps=16", "data.delta=2", "decoder.window=4", "model.hidden=",
              "model.readout.neurons=8", "decoder.arch=linear", "train.epochs=1",
              "train.batch_size=16", "model.readout.delays=3"]


@pytest.fixture(scope="module")
def delay_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("delays") / "run"
    settings = [a for s in TINY_BLOBS for a in ("--set", s)]
    with contextlib.redirect_stdout(io.StringIO()) as text:
        code = main(["train", "vdib", "--task", "blobs", "--out", str(run_dir), "--no-progress",
                     *settings])
    return code, run_dir, text.getvalue()


def test_train_writes_a_delay_readout_export_that_replays_the_run(delay_run):
    code, run_dir, _ = delay_run
    assert code == 0
    net = read_hdf5(run_dir / "export.h5")
    layer = net.layers[-1]
    assert layer.kind == "delay_readout" and layer.num_taps == 3
    np.testing.assert_array_equal(layer.delay, np.repeat([0, 1, 2], 8))
    assert net.metadata.model_config["readout"]["delays"] == 3
    metrics, _, _ = evaluate_export(net)
    quantized = json.loads((run_dir / "results.json").read_text())["metrics"]["quantized"]
    for key in ("mse", "position_accuracy", "readout_spikes_per_sample"):
        assert metrics[key] == quantized[key], key


@pytest.mark.lava
def test_parity_check_float_reference_and_lava_agree(delay_run, capsys):
    _, run_dir, _ = delay_run
    assert main(["check", str(run_dir / "export.h5"), "--samples", "3", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert text.count("100.000%") == 3  # float, reference, lava-sim x the readout
    assert re.search(r"^lava-sim +readout +100\.000% +3/3", text, re.M)

"""Spike files through run, eval and check (--input, --target, --metric, --probe)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from spikecodec.cli import main
from spikecodec.deploy.hdf5 import read_hdf5, write_hdf5
from spikecodec.errors import InputError
from spikecodec.workflows.spikefiles import check_spikes, file_inputs, read_spike_file, score_spikes

from conftest import REPO

ROY = REPO / "netx_exports" / "roy_ae_digits"


@pytest.fixture(scope="module")
def golden():
    with np.load(ROY / "golden.npz") as g:
        return {k: g[k] for k in g.files}


@pytest.fixture
def spike_file(tmp_path, golden):
    path = tmp_path / "in.npy"
    np.save(path, golden["input"][:3])
    return path


def test_reads_npy_and_npz_in_any_binary_dtype(tmp_path, golden):
    x = golden["input"][:2]
    for dtype in (np.bool_, np.int64, np.float32, np.uint8):
        np.save(tmp_path / "a.npy", x.astype(dtype))
        assert np.array_equal(read_spike_file(tmp_path / "a.npy"), x)
    np.savez(tmp_path / "run.npz", output=x * 0, input=x)  # a `run --out` file: 'input' wins
    assert np.array_equal(read_spike_file(tmp_path / "run.npz"), x)
    np.savez(tmp_path / "one.npz", whatever=x)
    assert np.array_equal(read_spike_file(tmp_path / "one.npz"), x)


@pytest.mark.parametrize("array, message", [
    (np.zeros((2, 64)), "must be a (batch, neurons, time) array"),
    (np.zeros((0, 64, 15)), "every size >= 1"),
    (np.array([[["a"]]]), "got dtype <U1"),
    (np.full((1, 2, 3), 0.5), "must be 0 or 1; found 0.5 at (sample, neuron, step) (0, 0, 0)"),
    (np.full((1, 2, 3), np.nan), "non-finite"),
    (np.array([[[0, 1, -1]]]), "found -1 at (sample, neuron, step) (0, 0, 2) (1 such values)"),
])
def test_bad_arrays_are_input_errors_naming_the_place(array, message):
    with pytest.raises(InputError) as err:
        check_spikes(array, "input file x.npy")
    assert str(err.value).startswith("input file x.npy: ") and message in str(err.value)


def test_bad_files_are_input_errors_naming_the_file(tmp_path):
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    np.savez(tmp_path / "two.npz", a=np.zeros((1, 1, 1)), b=np.zeros((1, 1, 1)))
    np.save(tmp_path / "obj.npy", np.array([None, 1], dtype=object))
    for name, message in (("missing.npy", "no such file"), ("junk.npy", "not a readable"),
                          ("two.npz", "it has ['a', 'b']"), ("obj.npy", "not a readable")):
        with pytest.raises(InputError, match=name) as err:
            read_spike_file(tmp_path / name)
        assert message in str(err.value)


def test_shapes_must_fit_the_export(tmp_path, golden):
    net = read_hdf5(ROY / "export.h5")
    np.save(tmp_path / "narrow.npy", golden["input"][:, :10])
    with pytest.raises(InputError, match="10 neurons, but the export takes 64 inputs"):
        file_inputs(net, tmp_path / "narrow.npy")
    np.save(tmp_path / "in.npy", golden["input"][:4])
    np.save(tmp_path / "target.npy", golden["layer_decoder"][:3])
    with pytest.raises(InputError, match=r"target file .*target.npy: shape \(3, 64, 15\), "
                                         r"expected \(4, 64, 15\)"):
        file_inputs(net, tmp_path / "in.npy", target=tmp_path / "target.npy")
    inputs = file_inputs(net, tmp_path / "in.npy", samples=2)
    assert inputs.spikes.shape == (2, 64, 15) and np.array_equal(inputs.target, golden["input"][:2])


def test_metrics():
    a = np.zeros((2, 3, 4), np.uint8)
    b = a.copy()
    b[0, 0, :2] = 1
    assert score_spikes(a, a, "agreement") == 1.0
    assert score_spikes(b, a, "agreement") == pytest.approx(1 - 2 / 24)
    assert score_spikes(b, a, "count_mse") == pytest.approx(4 / 6)
    assert score_spikes(a, a, "spike_mse") == 0.0 and score_spikes(b, a, "spike_mse") > 0
    with pytest.raises(InputError, match="unknown metric"):
        score_spikes(a, a, "accuracy")


def test_run_input_and_probe_give_the_golden_layers(spike_file, golden, tmp_path, capsys):
    out = tmp_path / "s.npz"
    assert main(["run", str(ROY / "export.h5"), "--input", str(spike_file), "--probe",
                 "encoder", "--out", str(out), "--no-progress"]) == 0
    with np.load(out) as saved:
        assert sorted(saved.files) == ["input", "output", "probe/encoder"]
        assert np.array_equal(saved["probe/encoder"], golden["layer_encoder"][:3])
        assert np.array_equal(saved["output"], golden["layer_decoder"][:3])
    assert "probe encoder:" in capsys.readouterr().out
    assert main(["run", str(ROY / "export.h5"), "--input", str(spike_file), "--probe",
                 "hidden"]) == 2
    assert "--probe hidden: no such layer; this export's layers are encoder, decoder" in \
        capsys.readouterr().err


def test_eval_with_target_and_metric(spike_file, golden, tmp_path, capsys):
    target = tmp_path / "t.npz"
    np.savez(target, spikes=golden["layer_decoder"][:3])
    out = tmp_path / "m.json"
    assert main(["eval", str(ROY / "export.h5"), "--input", str(spike_file), "--target",
                 str(target), "--metric", "agreement", "--out", str(out), "--no-progress"]) == 0
    assert "agreement against target" in capsys.readouterr().out
    import json

    metrics = json.loads(out.read_text())
    assert metrics["agreement"] == 1.0 and metrics["samples"] == 3
    # without a target the input is the target (an autoencoder's reconstruction)
    assert main(["eval", str(ROY / "export.h5"), "--input", str(spike_file), "--no-progress"]) == 0
    assert "spike_mse against the input spikes" in capsys.readouterr().out
    assert main(["eval", str(ROY / "export.h5"), "--target", str(target)]) == 2
    assert "give --input FILE too" in capsys.readouterr().err


def test_bad_spike_file_exits_2_and_writes_nothing(tmp_path, golden, capsys):
    bad = tmp_path / "bad.npy"
    np.save(bad, golden["input"][:2] * 2)
    out = tmp_path / "s.npz"
    assert main(["run", str(ROY / "export.h5"), "--input", str(bad), "--out", str(out)]) == 2
    assert "spikes must be 0 or 1; found 2" in capsys.readouterr().err
    assert not out.exists()


def test_an_export_of_no_family_runs_with_input(spike_file, golden, tmp_path, capsys):
    net = read_hdf5(ROY / "export.h5")
    foreign = dataclasses.replace(net, metadata={"source": "netx"})
    path = write_hdf5(foreign, tmp_path / "foreign.h5")
    assert main(["run", str(path), "--no-progress"]) == 2
    assert "names no model family" in capsys.readouterr().err
    out = tmp_path / "s.npz"
    assert main(["run", str(path), "--input", str(spike_file), "--out", str(out),
                 "--no-progress"]) == 0
    with np.load(out) as saved:
        assert np.array_equal(saved["output"], golden["layer_decoder"][:3])


@pytest.mark.lava
def test_check_with_input_compares_every_engine(spike_file, tmp_path, capsys,
                                                no_leftover_children):
    net = read_hdf5(ROY / "export.h5")
    path = write_hdf5(dataclasses.replace(net, metadata={"source": "netx"}), tmp_path / "f.h5")
    assert main(["check", str(path), "--input", str(spike_file), "--samples", "2",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "lava-sim" in out and not any(line.startswith("float ") for line in out.splitlines())
    assert "float: no training model for this export's model kind; skipped" in out
    assert "100.000%" in out


def test_a_target_of_the_wrong_shape_is_refused_before_running(tmp_path, golden):
    from spikecodec.workflows.spikefiles import evaluate_file

    net = read_hdf5(ROY / "export.h5")
    inputs = file_inputs(net, ROY / "golden.npz", samples=2)
    bad = inputs._replace(target=np.zeros((2, 10, 15), np.uint8))
    with pytest.raises(InputError, match=r"target has shape \(2, 10, 15\) but the network's "
                                         r"output is \(2, 64, 15\)"):
        evaluate_file(net, bad)

"""CI replays the committed exports: reference engine and Lava simulator must reproduce the
golden spikes exactly. How the files were made: netx_exports/regenerate.py (and the slow test
at the end of this file, which runs it)."""
from __future__ import annotations

import dataclasses
import importlib.util
import json

import numpy as np
import pytest

from spikecodec.deploy.backends import run
from spikecodec.deploy.hdf5 import read_hdf5

from conftest import REPO

EXPORTS = REPO / "netx_exports"
EXPORT_DIR = EXPORTS / "roy_ae_digits"
NAMES = ["roy_ae_digits", "vdib_digits", "comsa_digits", "vdib_blobs_delays"]


def load_golden(directory=EXPORT_DIR):
    net = read_hdf5(directory / "export.h5")
    with np.load(directory / "golden.npz") as z:
        golden = {key: z[key] for key in z.files}
    return net, golden


def check_replay(net, golden, backend):
    result = run(net, golden["input"], backend=backend, probe=True)
    for layer, spikes in zip(net.layers, result.layers, strict=True):
        expected = golden[f"layer_{layer.name}"]
        assert expected.sum() > 0, f"golden {layer.name} spikes are empty: not a real test"
        np.testing.assert_array_equal(spikes, expected, err_msg=f"{backend}: {layer.name}")
    np.testing.assert_array_equal(result.spikes, golden[f"layer_{net.layers[-1].name}"])
    if "decoded" in golden:  # VDIB, Comsa: the host decoder on the backend's output spikes
        decoded = _regen().host_decode(net, result.spikes)
        np.testing.assert_allclose(decoded, golden["decoded"], rtol=0, atol=1e-6)


def _regen():
    spec = importlib.util.spec_from_file_location("regen", REPO / "netx_exports" / "regenerate.py")
    regen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(regen)
    return regen


@pytest.mark.parametrize("name", NAMES)
def test_manifest_matches_the_files(name):
    from importlib.util import module_from_spec

    manifest = json.loads((EXPORTS / name / "manifest.json").read_text())
    spec = importlib.util.spec_from_file_location("regen", REPO / "netx_exports" / "regenerate.py")
    regen = module_from_spec(spec)
    spec.loader.exec_module(regen)
    for file, digest in manifest["sha256"].items():
        assert regen.sha256(EXPORTS / name / file) == digest, f"{file} changed since regeneration"


@pytest.mark.parametrize("name", NAMES)
def test_reference_engine_replays_golden_spikes(name):
    check_replay(*load_golden(EXPORTS / name), "reference")


@pytest.mark.lava
@pytest.mark.parametrize("name", NAMES)
def test_lava_simulator_replays_golden_spikes(name):
    check_replay(*load_golden(EXPORTS / name), "lava-sim")


def test_comsa_export_has_spike_once_alpha_layers_with_pulses():
    net, golden = load_golden(EXPORTS / "comsa_digits")
    assert [layer.kind for layer in net.layers] == ["spike_once_alpha"] * 2
    assert all(layer.num_pulses == 3 for layer in net.layers)
    assert net.decoder.kind == "spike_time" and golden["decoded"].shape == (16, 64)
    for layer in net.layers:  # spike once per sample at most
        assert golden[f"layer_{layer.name}"].sum(axis=2).max() == 1


def test_vdib_export_has_a_stochastic_readout_and_a_host_decoder():
    net, golden = load_golden(EXPORTS / "vdib_digits")
    assert net.layers[-1].kind == "stochastic_readout" and net.layers[-1].num_basis == 2
    assert net.decoder.kind == "ann" and golden["decoded"].shape == (16, 64)


def test_vdib_delay_export_has_a_delay_basis_readout():
    """The delay golden must stay a delay-basis readout: a plain readout (or all-zero delays)
    would still replay, but would no longer test Loihi 2's synaptic delays."""
    net, golden = load_golden(EXPORTS / "vdib_blobs_delays")
    manifest = json.loads((EXPORTS / "vdib_blobs_delays" / "manifest.json").read_text())
    [layer] = net.layers
    assert layer.kind == "delay_readout" and layer.num_taps == 4 and layer.max_delay > 0
    np.testing.assert_array_equal(layer.delay, np.repeat([0, 1, 2, 3], 10))  # tap c: delay c
    assert manifest["delay_taps"] == layer.num_taps
    assert manifest["delay_range"] == [int(layer.delay.min()), layer.max_delay]
    assert net.decoder.kind == "ann" and net.decoder.as_dict()["at"] == "every"
    assert golden["input"].shape == (16, 20, net.num_steps)
    # a softmax over the pairs at every step
    assert golden["decoded"].shape == (16, net.num_steps, 210)
    np.testing.assert_allclose(golden["decoded"].sum(-1), 1.0, atol=1e-5)


def test_delay_golden_depends_on_the_delays():
    """Replaying with every delay set to 0 changes the readout spikes: the golden output is
    sensitive to the synaptic delays it is meant to check."""
    net, golden = load_golden(EXPORTS / "vdib_blobs_delays")
    layer = net.layers[0]
    flat = dataclasses.replace(net, layers=[dataclasses.replace(
        layer, delay=np.zeros_like(layer.delay))])
    spikes = run(flat, golden["input"], backend="reference").spikes
    assert not np.array_equal(spikes, golden["layer_readout"])


def test_quantized_torch_model_reproduces_the_delay_golden():
    """Issue 15's third party: the training model rebuilt from the export, in its deployed
    arithmetic (torch), draws the golden readout spikes too (Lava recorded them, the reference
    engine replays them above)."""
    from spikecodec.workflows.parity import float_layers

    net, golden = load_golden(EXPORTS / "vdib_blobs_delays")
    [spikes] = float_layers(net, golden["input"])
    np.testing.assert_array_equal(spikes, golden["layer_readout"])


@pytest.mark.lava
def test_netx_loads_the_committed_export():
    from lava.lib.dl import netx

    net = netx.hdf5.Network(net_config=str(EXPORT_DIR / "export.h5"))
    assert len(net.layers) == 2 and net.inp.shape == (64,)


@pytest.mark.slow
@pytest.mark.lava
def test_regeneration_script_produces_a_consistent_export(tmp_path):
    spec = importlib.util.spec_from_file_location("regen", REPO / "netx_exports" / "regenerate.py")
    regen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(regen)
    manifest = regen.regenerate_roy_ae_digits(tmp_path)
    assert manifest["network"] == [64, 16, 64]
    check_replay(*load_golden(tmp_path), "reference")
    manifest = regen.regenerate_vdib_digits(tmp_path / "vdib")
    assert manifest["network"] == [64, 24, 16]
    check_replay(*load_golden(tmp_path / "vdib"), "reference")
    manifest = regen.regenerate_comsa_digits(tmp_path / "comsa")
    assert manifest["network"] == [64, 16, 64]
    check_replay(*load_golden(tmp_path / "comsa"), "reference")
    manifest = regen.regenerate_vdib_blobs_delays(tmp_path / "delays")
    assert manifest["network"] == [20, 10] and manifest["delay_range"] == [0, 3]
    check_replay(*load_golden(tmp_path / "delays"), "reference")

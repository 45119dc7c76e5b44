"""CI replays the committed exports: reference engine and Lava simulator must reproduce the
golden spikes exactly. How the files were made: netx_exports/regenerate.py (and the slow test
at the end of this file, which runs it)."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from spikecodec.deploy.backends import run
from spikecodec.deploy.hdf5 import read_hdf5

from conftest import REPO

EXPORT_DIR = REPO / "netx_exports" / "roy_ae_digits"


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


def test_manifest_matches_the_files():
    from importlib.util import module_from_spec

    manifest = json.loads((EXPORT_DIR / "manifest.json").read_text())
    spec = importlib.util.spec_from_file_location("regen", REPO / "netx_exports" / "regenerate.py")
    regen = module_from_spec(spec)
    spec.loader.exec_module(regen)
    for name, digest in manifest["sha256"].items():
        assert regen.sha256(EXPORT_DIR / name) == digest, f"{name} changed since regeneration"


def test_reference_engine_replays_golden_spikes():
    check_replay(*load_golden(), "reference")


@pytest.mark.lava
def test_lava_simulator_replays_golden_spikes():
    check_replay(*load_golden(), "lava-sim")


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

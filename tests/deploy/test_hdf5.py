"""The export format: write/read round trips, validation, atomic writes, damaged files."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from spikecodec.deploy import hdf5
from spikecodec.deploy.hdf5 import read_hdf5, write_hdf5
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import CubaNeuron, DenseLayer
from spikecodec.errors import ConfigError, ExportError

from conftest import edit_export, unsealed_copy


def make_net(seed: int = 0, bias: bool = True) -> FixedPointNetwork:
    rng = np.random.default_rng(seed)
    w0 = rng.integers(-128, 127, size=(5, 12)) * 2
    w1 = rng.integers(-128, 127, size=(3, 5)) * 2
    b0 = rng.integers(-20, 20, size=5) if bias else None
    layers = (DenseLayer("hidden", w0, CubaNeuron(1024, 128, 300, 1), b0),
              DenseLayer("out", w1, CubaNeuron(4096, 410, 256)))
    spec = InputSpec("poisson_rate", 15, (3, 4), {"max_rate": 0.5})
    return FixedPointNetwork(layers, spec, decoder={"kind": "rate", "scale": 2.0,
                                                    "table": np.arange(6.0).reshape(2, 3)},
                             metadata={"model_kind": "test", "seed": 3, "config": "a = 1\n"})


def test_round_trip(tmp_path):
    net = make_net()
    back = read_hdf5(write_hdf5(net, tmp_path / "net.h5"))
    assert back.input == net.input
    assert back.metadata == net.metadata
    assert back.decoder.kind == "rate" and back.decoder.config["scale"] == 2.0
    np.testing.assert_array_equal(back.decoder.arrays["table"], net.decoder.arrays["table"])
    for a, b in zip(net.layers, back.layers, strict=True):
        assert (a.name, a.neuron) == (b.name, b.neuron)
        np.testing.assert_array_equal(a.weight, b.weight)
        if a.bias is None:
            assert b.bias is None
        else:
            np.testing.assert_array_equal(a.bias, b.bias)


def test_layers_are_written_as_lava_dl_writes_them(tmp_path):
    path = write_hdf5(make_net(), tmp_path / "net.h5")
    with h5py.File(path, "r") as f:
        g = f["layer/0"]
        assert g["type"][0] == b"dense"
        assert list(g["shape"][()]) == [5]
        assert (g["inFeatures"][()], g["outFeatures"][()]) == (12, 5)
        assert g["weight"].shape == (5, 12)
        n = g["neuron"]
        assert n["type"][()] == b"CUBA"
        assert (n["iDecay"][()], n["vDecay"][()], n["vThMant"][()]) == (1024, 128, 300)
        assert sorted(f.keys()) == ["layer", "spikecodec"]


def test_failed_write_leaves_previous_file(tmp_path, monkeypatch):
    path = write_hdf5(make_net(seed=1), tmp_path / "net.h5")
    before = path.read_bytes()

    def broken(f, net):
        f.create_group("layer/0")
        raise RuntimeError("disk full")

    monkeypatch.setattr(hdf5, "_write", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_hdf5(make_net(seed=2), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.h5"]  # no temporary left behind


@pytest.mark.parametrize("field,value,match", [
    ("weight", np.full((5, 12), 300), r"hidden: weight must lie in \[-256, 254\]"),
    ("weight", np.full((5, 12), np.nan), "hidden: weight contains non-finite"),
    ("weight", np.full((5, 12), 0.5), "hidden: weight must hold integers"),
    ("weight", np.zeros((5, 11)), "hidden: expects 11 inputs but the previous stage has 12"),
    ("bias", np.full(5, 5000), r"hidden: bias must lie in \[-4096, 4095\]"),
    ("neuron", CubaNeuron(5000, 0, 10), r"hidden: neuron.i_decay must be in \[0, 4096\]"),
    ("neuron", CubaNeuron(4096, 0, 0), r"hidden: neuron.v_th_mant must be in"),
    ("neuron", CubaNeuron(4096, 0, 2**17), r"hidden: neuron.v_th_mant must be in"),
])
def test_invalid_values_are_refused_with_layer_and_field(field, value, match):
    net = make_net()
    first = net.layers[0]
    bad = DenseLayer(first.name, value if field == "weight" else first.weight,
                     value if field == "neuron" else first.neuron,
                     value if field == "bias" else first.bias)
    with pytest.raises(ConfigError, match=match):
        FixedPointNetwork((bad, net.layers[1]), net.input)


def test_unknown_layer_object_is_refused():
    net = make_net()
    with pytest.raises(ConfigError, match="unknown layer type"):
        FixedPointNetwork((object(),), net.input)


def test_missing_and_non_hdf5_files(tmp_path):
    with pytest.raises(ExportError, match="no export at"):
        read_hdf5(tmp_path / "absent.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not hdf5" * 10)
    with pytest.raises(ExportError, match="not a readable HDF5 file"):
        read_hdf5(junk)


def test_truncated_file(tmp_path):
    path = write_hdf5(make_net(), tmp_path / "net.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ExportError):
        read_hdf5(path)


def test_foreign_hdf5(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.zeros(3))
    with pytest.raises(ExportError, match="no /layer group"):
        read_hdf5(path)


def test_values_edited_out_of_range_name_layer_and_field(tmp_path):
    path = write_hdf5(make_net(), tmp_path / "net.h5")
    with edit_export(path) as f:
        f["layer/1/neuron/vDecay"][()] = 9000
    with pytest.raises(ExportError, match=r"out: neuron.v_decay must be in \[0, 4096\]"):
        read_hdf5(path)


def test_missing_field_is_named(tmp_path):
    path = write_hdf5(make_net(), tmp_path / "net.h5")
    with edit_export(path) as f:
        del f["layer/1/neuron/vThMant"]
    with pytest.raises(ExportError, match="layer 'out'.*missing dataset 'vThMant'"):
        read_hdf5(path)


@pytest.mark.parametrize("kind", ["pool", "ALIF", "conv"])
def test_layer_types_we_cannot_hold_are_named(tmp_path, kind):
    path = write_hdf5(make_net(), tmp_path / "net.h5")
    with edit_export(path) as f:
        del f["layer/1/type"]
        f["layer/1"].create_dataset("type", (1,), "S10", [kind.encode()])
    with pytest.raises(ExportError, match=f"unsupported type '{kind}'"):
        read_hdf5(path)


def test_newer_format_version_is_refused(tmp_path):
    path = write_hdf5(make_net(), tmp_path / "net.h5")
    with edit_export(path) as f:
        f["spikecodec"].attrs["format_version"] = 99
    with pytest.raises(ExportError, match="format version 99"):
        read_hdf5(path)


def test_netx_only_file_loads_as_raw_spike_network(tmp_path):
    path = write_hdf5(make_net(bias=False), tmp_path / "net.h5")
    net = read_hdf5(unsealed_copy(path, tmp_path / "netx.h5", drop=("spikecodec",)))
    assert net.input.encoding == "spikes" and net.in_features == 12
    assert [layer.name for layer in net.layers] == ["layer0", "layer1"]

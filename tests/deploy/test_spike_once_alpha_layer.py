"""The spike-once alpha layer kind on bad input: typed errors naming the layer and the field, for
values built in code and for damaged exports; pulse-free layers; the Loihi 2 mapping notes."""
import numpy as np
import pytest

from spikecodec.deploy.check import loihi2_report
from spikecodec.deploy.hdf5 import read_hdf5, write_hdf5
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import SpikeOnceAlphaLayer
from spikecodec.errors import ConfigError, ExportError

from conftest import edit_export


def _layer(**changes):
    fields = dict(name="alpha", weight=np.full((4, 3), 2), decay=512, v_th_mant=300,
                  pulse_steps=np.array([1, 4]), pulse_weight=np.full((4, 2), 20), pulse_exp=2)
    fields.update(changes)
    return SpikeOnceAlphaLayer(**fields)


def _net(layer, steps=12):
    return FixedPointNetwork([layer], InputSpec("spikes", steps, (3,)))


@pytest.mark.parametrize("changes, match", [
    ({"pulse_steps": np.array([1, 12])}, r"alpha: pulse_steps must lie in \[0, 11\].*got 12"),
    ({"pulse_steps": np.array([-1, 3])}, r"alpha: pulse_steps must lie in \[0,"),
    ({"decay": 0}, r"alpha: decay must be in \[1, 4096\]"),
    ({"decay": 4097}, r"alpha: decay must be in \[1, 4096\]"),
    ({"v_th_mant": 0}, r"alpha: v_th_mant must be in \[1, 131071\]"),
    ({"weight": np.full((4, 3), 300)}, r"alpha: weight must lie in \[-256, 254\]"),
    ({"pulse_weight": np.full((4, 3), 2)}, r"alpha: pulse_weight must have shape \(4, 2\)"),
    ({"pulse_weight": np.full((4, 2), -300)}, r"alpha: pulse_weight must lie in"),
    ({"pulse_exp": 8}, r"alpha: pulse_exp must be in \[0, 7\]"),
    ({"pulse_steps": np.array([[1, 2]])}, r"alpha: pulse_steps must be 1-D"),
    ({"decay": 2.0}, r"alpha: decay must be an integer"),
])
def test_bad_values_are_refused_naming_layer_and_field(changes, match):
    with pytest.raises(ConfigError, match=match):
        _net(_layer(**changes))


def test_a_layer_without_pulses_round_trips_and_runs(tmp_path):
    from spikecodec.deploy.backends import run

    net = _net(_layer(pulse_steps=np.zeros(0, np.int64), pulse_weight=np.zeros((4, 0)),
                      v_th_mant=30))
    back = read_hdf5(write_hdf5(net, tmp_path / "net.h5"))
    assert back.layers[0].num_pulses == 0 and back.layers[0].pulse_weight.shape == (4, 0)
    x = np.ones((2, 3, 12), dtype=np.uint8)
    out = run(back, x, backend="reference").spikes
    assert out.sum() == 2 * 4 and out.sum(axis=2).max() == 1  # every neuron fires once


@pytest.mark.parametrize("damage, match", [
    (lambda g: g.__delitem__("pulse_steps"), r"layer 'alpha'.*missing dataset 'pulse_steps'"),
    (lambda g: g.attrs.__setitem__("decay", 2.5), r"layer 'alpha'.*attribute 'decay' must be "
                                                   r"an integer"),
    (lambda g: g.attrs.__delitem__("v_th_mant"), r"layer 'alpha'.*missing attribute 'v_th_mant'"),
    (lambda g: (g.__delitem__("pulse_steps"), g.create_dataset("pulse_steps", data=[1, 40])),
     r"alpha: pulse_steps must lie in \[0, 11\]"),
    (lambda g: (g.__delitem__("pulse_weight"), g.create_dataset("pulse_weight", data=[[1]])),
     r"alpha: pulse_weight must have shape \(4, 2\)"),
])
def test_damaged_exports_are_refused_naming_layer_and_field(damage, match, tmp_path):
    path = write_hdf5(_net(_layer()), tmp_path / "net.h5")
    with edit_export(path) as f:
        damage(f["spikecodec/layers/0"])
    with pytest.raises(ExportError, match=match):
        read_hdf5(path)


def test_loihi2_check_costs_the_mappings_honestly():
    short, long = (loihi2_report(_net(_layer(), steps)) for steps in (12, 100))
    row = short["layers"][0]
    assert row["standard"] is False and short["ok"]
    assert row["bits"]["vThMant"] == (9, 17) and row["bits"]["iDecay"] == (9, 12)
    notes = " ".join(row["notes"])
    assert "T = 12: possible" in notes and "host-injected" in notes and "microcoded" in notes
    assert "T = 100: NOT possible" in " ".join(long["layers"][0]["notes"])
    wide = loihi2_report(_net(_layer(pulse_weight=np.full((4, 2), 254), pulse_exp=7)))
    assert wide["layers"][0]["bits"]["pulseWeightExp"][0] <= 4

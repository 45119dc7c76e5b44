"""Loihi 2 compatibility report: bit widths, wrap warnings, problems, core estimate."""
from __future__ import annotations

import numpy as np
import pytest

from spikecodec.deploy.check import format_report, loihi2_report, signed_bits
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import CubaNeuron, DenseLayer


@pytest.mark.parametrize("values, bits", [
    ([0], 1), ([1], 1), ([254], 7), ([-256, 254], 8), ([-2, 2], 2), ([3, -3], 3),
    ([127], 7), ([-128, 127], 8), ([255], 8), ([4, 8], 2),
])
def test_signed_bits(values, bits):
    assert signed_bits(np.array(values)) == bits


ROY_NEURON = CubaNeuron(4096, 410, 256)


def net_with(weight, neuron=ROY_NEURON, bias=None):
    layer = DenseLayer("l0", np.asarray(weight), neuron, bias)
    return FixedPointNetwork((layer,), InputSpec("spikes", 4, (np.shape(weight)[1],)))


def test_small_roy_layer_fits():
    rng = np.random.default_rng(0)
    report = loihi2_report(net_with(rng.integers(-64, 64, size=(32, 64)) * 2))
    row = report["layers"][0]
    assert report["ok"] and not row["problems"] and not row["warnings"]
    assert row["neurons"] == 32 and row["cores"] == 1
    assert row["bits"]["weight"][0] <= 8
    assert "fits Loihi 2" in format_report(report)


def test_voltage_decay_4096_does_not_fit_12_bits():
    report = loihi2_report(net_with(np.ones((2, 3), int) * 2, CubaNeuron(4096, 4096, 10)))
    assert not report["ok"]
    assert any("vDecay needs 13 bits > 12" in p for p in report["layers"][0]["problems"])
    assert "does NOT fit" in format_report(report)


def test_wide_fan_in_warns_about_current_wrap():
    report = loihi2_report(net_with(np.full((1, 600), 254)))
    warnings = report["layers"][0]["warnings"]
    assert report["ok"] and warnings and "can wrap" in warnings[0]


def test_core_estimate_grows_with_neurons_and_synapses():
    small = loihi2_report(net_with(np.zeros((100, 10), int)))["cores"]
    many_neurons = loihi2_report(net_with(np.zeros((20000, 2), int)))["cores"]
    many_synapses = loihi2_report(net_with(np.zeros((1000, 2000), int)))["cores"]
    assert small == 1 and many_neurons == 3 and many_synapses == 16  # 2M x 8 bit / 128 KiB


def test_all_non_positive_weights_are_flagged_as_altered_by_netx():
    report = loihi2_report(net_with(np.array([[-255, 0, -3], [-1, -3, 0]])))
    assert any("change these weights" in w for w in report["layers"][0]["warnings"])
    mixed = loihi2_report(net_with(np.array([[-254, 2, -4], [-2, -2, 0]])))
    assert not mixed["layers"][0]["warnings"]


def readout_net(*, k=2, n=10, n_in=32, steps=25, i_decay=(1024, 2048), v_decay=(256, 512),
                fb=-30, w_max=20, lut=None):
    """A hidden dense layer and a VDIB readout (k basis responses, n neurons)."""
    from spikecodec.deploy.layers import StochasticReadoutLayer
    from spikecodec.lava_procs.stochastic_readout.dynamics import sigmoid_lut

    rng = np.random.default_rng(0)
    table, shift, offset = sigmoid_lut(state_scale=4096)
    readout = StochasticReadoutLayer(
        "readout", 2 * rng.integers(-w_max, w_max + 1, (k * n, n_in)), i_decay, v_decay, 1024,
        np.full(n, fb), np.zeros(n, int), np.asarray(table if lut is None else lut), shift,
        offset, 7)
    hidden = DenseLayer("h", 2 * rng.integers(-20, 20, (n_in, 64)), ROY_NEURON)
    return FixedPointNetwork((hidden, readout), InputSpec("spikes", steps, (64,)))


def test_valid_readout_fits_through_a_non_standard_mapping():
    report = loihi2_report(readout_net())
    row = report["layers"][1]
    assert report["ok"] and not row["problems"] and not row["warnings"]
    assert row["kind"] == "stochastic_readout" and row["neurons"] == 10
    assert row["compartments"] == 20 and row["cores"] == 1
    assert row["host_bytes_per_step"] == 10 * 2 * 3
    assert row["host_bytes_per_sample"] == report["host_bytes_per_sample"] == 25 * 10 * 2 * 3
    bits = row["bits"]
    assert bits["lut"] == (16, 17) and bits["fbWeight"] == (5, 13) and bits["weight"][0] <= 8
    assert bits["iDecay"] == (11, 12) and bits["vDecay"] == (10, 12) and bits["fbDecay"][1] == 12
    notes = " ".join(row["notes"])
    assert "microcode" in notes and "only in distribution" in notes and "lava-loihi" in notes
    assert "bit-exact" in notes and "1500 B per sample" in notes and "no round trip" in notes
    text = format_report(report)
    assert "1500 B per sample" in text and "non-standard mapping" in text
    assert "fits Loihi 2 only through" in text and "does NOT fit" not in text


def test_readout_without_feedback_says_so():
    notes = " ".join(loihi2_report(readout_net(fb=0))["layers"][1]["notes"])
    assert "no feedback" in notes


def test_a_basis_that_forgets_its_voltage_is_read_by_its_current():
    """vDecay 4096 (v = u every step; the delay basis's plain taps) needs 13 bits as a CUBA
    voltage decay, but mapping (b) then reads the current, which equals v."""
    report = loihi2_report(readout_net(v_decay=(4096, 512)))
    row = report["layers"][1]
    assert report["ok"] and not row["problems"]
    assert row["bits"]["vDecay"] == (10, 12)  # the other basis's 512
    assert any("basis 0: vDecay = 4096" in n and "state probe" in n for n in row["notes"])
    assert not any("vDecay = 4096" in n for n in
                   loihi2_report(readout_net())["layers"][1]["notes"])


@pytest.mark.parametrize("kwargs, problem", [
    ({"i_decay": (0, 2048)}, "iDecay = 0"),
])
def test_readout_fields_that_do_not_fit(kwargs, problem):
    report = loihi2_report(readout_net(**kwargs))
    assert not report["ok"]
    assert any(problem in p for p in report["layers"][1]["problems"])
    assert "does NOT fit" in format_report(report)


def test_readout_potentials_that_can_wrap_or_spike_warn():
    report = loihi2_report(readout_net(n_in=600, w_max=127, i_decay=(64, 4096),
                                       v_decay=(64, 2048)))
    warnings = report["layers"][1]["warnings"]
    assert report["ok"]
    assert any("saturates it, a CUBA compartment (mapping (b)) wraps it" in w for w in warnings)
    assert any("would spike and reset" in w for w in warnings)


def test_delay_readout_reports_delay_bits_usage_and_synapse_cost(tmp_path, capsys):
    """`check --target loihi2` on delay taps: delay bits of Loihi 2's 6, synapses per delay,
    the synapse cost; an export with a delay Loihi 2 / NetX cannot hold is refused by name."""
    import dataclasses

    from spikecodec.cli import main
    from spikecodec.deploy.hdf5 import write_hdf5
    from spikecodec.deploy.layers import DelayReadoutLayer
    from spikecodec.errors import ConfigError

    base = readout_net(k=1, n=4, n_in=8, i_decay=(1024,), v_decay=(256,))
    plain = base.layers[1]
    fields = {f.name: getattr(plain, f.name) for f in dataclasses.fields(plain)}
    fields["weight"] = np.tile(plain.weight, (3, 1))  # three taps
    layer = DelayReadoutLayer(**fields, delay=np.repeat([0, 1, 5], 4))
    net = FixedPointNetwork((base.layers[0], layer), base.input)
    row = loihi2_report(net)["layers"][1]
    assert row["kind"] == "delay_readout" and row["taps"] == 3 and row["max_delay"] == 5
    assert row["bits"]["delay"] == (3, 6) and row["delays"] == {0: 32, 1: 32, 5: 32}
    assert row["compartments"] == 4 and row["synapses"] == np.count_nonzero(layer.weight)
    assert "96 synapses (3x the plain readout's)" in row["notes"][0]
    assert "gap of >= 5 steps" in row["notes"][1]
    path = write_hdf5(net, tmp_path / "delay.h5")
    assert main(["check", str(path), "--target", "loihi2"]) == 0
    out = capsys.readouterr().out
    assert "delay 3/6" in out and "synapses per delay (steps): 0: 32, 1: 32, 5: 32" in out
    bad = dataclasses.replace(layer, delay=np.repeat([0, 1, 63], 4))
    with pytest.raises(ConfigError, match="readout: delay must lie in \\[0, 62\\]"):
        FixedPointNetwork((base.layers[0], bad), base.input)

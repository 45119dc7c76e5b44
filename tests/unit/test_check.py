"""Loihi 2 compatibility report: bit widths, wrap warnings, problems, core estimate."""
from __future__ import annotations

import numpy as np
import pytest

from spikecodec.deploy.check import format_report, loihi2_report, signed_bits
from spikecodec.deploy.network import CubaNeuron, DenseLayer, FixedPointNetwork, InputSpec


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

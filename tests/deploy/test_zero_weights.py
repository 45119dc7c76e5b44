"""A layer whose weights are all zero (a pruned or dead layer) is a valid network: the reference
engine, the Lava simulator, ``check`` and ``check --target loihi2`` run it without a traceback."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from spikecodec.cli import main
from spikecodec.deploy.hdf5 import write_hdf5

from conftest import random_network, random_spikes, run_both


def _zero_first_layer():
    net = random_network(["dense", "dense"], seed=0)
    first = net.layers[0]
    zero = dataclasses.replace(first, weight=np.zeros_like(first.weight))
    return dataclasses.replace(net, layers=(zero, *net.layers[1:]))


@pytest.mark.lava
def test_zero_weight_layer_runs_the_same_on_both_engines():
    net = _zero_first_layer()
    ref, lava = run_both(net, random_spikes(3, net.in_features, net.num_steps))
    for a, b in zip(ref.layers, lava.layers, strict=True):
        np.testing.assert_array_equal(a, b)


def test_zero_weight_layer_in_the_loihi2_check(tmp_path, capsys):
    path = write_hdf5(_zero_first_layer(), tmp_path / "zero.h5")
    assert main(["check", str(path), "--target", "loihi2"]) == 0  # it fits; NetX is the issue
    assert "every weight is zero: netx.hdf5.Network cannot load" in capsys.readouterr().out

"""What NetX accepts, we accept: decays 0..4096 for the current and the voltage, including a
current that never decays (iDecay = 0), which lava-dl's SLAYER writes for ``current_decay=0``."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from spikecodec.deploy.hdf5 import read_hdf5, write_hdf5
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import CubaNeuron, DenseLayer

from conftest import random_spikes, run_both


def zero_decay_net(i_decay: int = 0, v_decay: int = 0) -> FixedPointNetwork:
    rng = np.random.default_rng(5)
    layers = (DenseLayer("hidden", 2 * rng.integers(-20, 31, (9, 14)),
                         CubaNeuron(i_decay, v_decay, 400), rng.integers(-10, 11, 9)),
              DenseLayer("out", 2 * rng.integers(-30, 41, (6, 9)), CubaNeuron(4096, 1024, 90)))
    return FixedPointNetwork(layers, InputSpec("spikes", 10, (14,)))


@pytest.mark.parametrize("i_decay,v_decay", [(0, 0), (0, 4096), (4096, 0), (1, 1)])
def test_every_decay_netx_accepts_round_trips(tmp_path, i_decay, v_decay):
    back = read_hdf5(write_hdf5(zero_decay_net(i_decay, v_decay), tmp_path / "net.h5"))
    assert (back.layers[0].neuron.i_decay, back.layers[0].neuron.v_decay) == (i_decay, v_decay)


@pytest.mark.lava
def test_reference_and_lava_agree_on_a_current_that_never_decays(no_leftover_children):
    net = zero_decay_net()
    ref, lava = run_both(net, random_spikes(5, 14, 10, seed=3))
    assert ref.layers[0].sum() > 0 and ref.spikes.sum() > 0
    for layer, a, b in zip(net.layers, ref.layers, lava.layers, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=layer.name)


@pytest.mark.lava
def test_lava_dl_export_with_current_decay_zero_loads_and_runs(tmp_path, no_leftover_children):
    import torch
    from lava.lib.dl import netx, slayer

    params = {"threshold": 0.5, "current_decay": 0.0, "voltage_decay": 0.1}
    blocks = [slayer.block.cuba.Dense(params, 8, 5, weight_scale=2),
              slayer.block.cuba.Dense(params, 5, 4, weight_scale=2)]
    with torch.no_grad():
        blocks[1](blocks[0](torch.zeros(1, 8, 2)))
    path = tmp_path / "slayer.h5"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(layer.create_group(f"{i}"))
    with h5py.File(path, "r") as f:
        assert int(f["layer/0/neuron/iDecay"][()]) == 0
    netx.hdf5.Network(net_config=str(path))  # NetX builds it
    net = read_hdf5(path)
    assert [layer.neuron.i_decay for layer in net.layers] == [0, 0]
    ref, lava = run_both(net, random_spikes(4, 8, 12, rate=0.5, seed=1))
    for a, b in zip(ref.layers, lava.layers, strict=True):
        np.testing.assert_array_equal(a, b)

"""Our exports load in lava-dl's NetX unchanged, and lava-dl's exports load in spikecodec."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from spikecodec.deploy.hdf5 import read_hdf5, write_hdf5
from spikecodec.deploy.ir import InputSpec
from spikecodec.train.families.roy.family import RoyFamily
from spikecodec.train.families.roy.model import RoyAE, RoyAEModelConfig

pytestmark = pytest.mark.lava


def roy_net(seed=0):
    model = RoyAE(20, RoyAEModelConfig(hidden=7, scale=64, init_scale=3.0), seed=seed)
    spec = InputSpec("poisson_rate", 12, (4, 5), {"max_rate": 1.0})
    return model, RoyFamily().to_network(model, spec)


def test_netx_loads_our_export(tmp_path):
    from lava.lib.dl import netx

    _, net = roy_net()
    path = write_hdf5(net, tmp_path / "roy.h5")
    loaded = netx.hdf5.Network(net_config=str(path), reset_interval=14)
    assert len(loaded.layers) == 2
    assert loaded.inp.shape == (20,) and loaded.out.shape == (20,)
    dense = loaded.layers[0].synapse
    assert dense.weights.shape == (7, 20)
    neuron = loaded.layers[0].neuron
    assert neuron.du.get() == 4095 and neuron.dv.get() == 410  # iDecay - 1, as netx loads it


def test_lava_dl_export_loads_in_spikecodec(tmp_path):
    from lava.lib.dl import slayer

    params = {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.03}
    blocks = [slayer.block.cuba.Dense(params, 6, 4, weight_scale=2),
              slayer.block.cuba.Dense(params, 4, 3, weight_scale=2)]
    with torch.no_grad():  # SLAYER learns the neuron shape from the first forward pass
        blocks[1](blocks[0](torch.zeros(1, 6, 2)))
    path = tmp_path / "slayer.h5"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(layer.create_group(f"{i}"))
    net = read_hdf5(path)
    assert [(layer.in_features, layer.out_features) for layer in net.layers] == [(6, 4), (4, 3)]
    for block, layer in zip(blocks, net.layers, strict=True):
        device = block.neuron.device_params
        assert layer.neuron.i_decay == device["iDecay"]
        assert layer.neuron.v_decay == device["vDecay"]
        assert layer.neuron.v_th_mant == device["vThMant"]
        w = block.synapse.pre_hook_fx(block.synapse.weight, descale=True)
        np.testing.assert_array_equal(layer.weight, w.reshape(w.shape[:2]).detach().numpy())


def test_float_model_rebuilt_from_export_is_the_trained_one(tmp_path):
    model, net = roy_net(seed=4)
    rebuilt = RoyFamily().rebuild(read_hdf5(write_hdf5(net, tmp_path / "roy.h5")))
    x = (torch.rand(5, 20, 12, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    with torch.no_grad():
        a, b = model(x), rebuilt(x)
    assert a.spikes.sum() > 0
    assert torch.equal(a.hidden, b.hidden) and torch.equal(a.spikes, b.spikes)

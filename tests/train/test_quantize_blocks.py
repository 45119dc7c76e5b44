"""User networks: any feed-forward chain of CubaDense or lava-dl cuba.Dense blocks quantizes,
exports and runs like the paper models."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikecodec.deploy.backends import run
from spikecodec.deploy.hdf5 import read_hdf5, write_hdf5
from spikecodec.errors import ConfigError
from spikecodec.train.blocks import CubaConfig, CubaDense
from spikecodec.train.quantize import quantize_blocks

from conftest import random_spikes, run_both


def chain(model: torch.nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    outs = []
    for block in model:
        x = block(x)
        outs.append(x)
    return outs


@pytest.mark.parametrize("decays", [((0.0, 0.1), (1.0, 0.0), (0.25, 1.0)),
                                    ((1.0, 0.05), (0.5, 0.5), (0.0, 0.0))])
def test_cubadense_chain_of_any_decays_equals_its_export(tmp_path, decays):
    torch.manual_seed(0)
    sizes = [40, 30, 20, 10]
    model = torch.nn.Sequential(*[
        CubaDense(sizes[i], sizes[i + 1], CubaConfig(current_decay=cu, voltage_decay=vo,
                                                     threshold=1.0, scale=64),
                  weight_scale=3.0) for i, (cu, vo) in enumerate(decays)])
    net = quantize_blocks(model, num_steps=25, names=["a", "b", "c"])
    assert [(layer.neuron.i_decay, layer.neuron.v_decay) for layer in net.layers] == [
        (round(cu * 4096), round(vo * 4096)) for cu, vo in decays]
    path = write_hdf5(net, tmp_path / "user.h5")
    back = read_hdf5(path)
    x = random_spikes(6, 40, 25)
    with torch.no_grad():
        ours = chain(model, torch.as_tensor(x).float())
    result = run(back, x, probe=True)
    assert back.metadata.source == "user" and back.metadata.model_kind is None
    for a, b in zip(ours, result.layers, strict=True):
        assert np.array_equal(a.numpy().astype(np.uint8), b)
    assert result.spikes.sum() > 0 or ours[-1].sum() == 0


def test_lava_dl_slayer_blocks_export_and_run_as_slayer_simulates_them():
    slayer = pytest.importorskip("lava.lib.dl.slayer")
    torch.manual_seed(1)
    params = [{"threshold": 1.0, "current_decay": cd, "voltage_decay": vd, "scale": 64}
              for cd, vd in ((0.0, 0.1), (1.0, 0.03))]  # decays 0 and 4096 included
    model = torch.nn.Sequential(slayer.block.cuba.Dense(params[0], 30, 24, weight_scale=4,
                                                        delay_shift=False),
                                slayer.block.cuba.Dense(params[1], 24, 12, weight_scale=4,
                                                        delay_shift=False))
    net = quantize_blocks(model, num_steps=20)
    assert [(layer.neuron.i_decay, layer.neuron.v_decay) for layer in net.layers] == [
        (0, 410), (4096, 123)]
    x = random_spikes(5, 30, 20, rate=0.4)
    with torch.no_grad():
        theirs = chain(model, torch.as_tensor(x).float())
    result = run(net, x, probe=True)
    assert all(np.array_equal(a.numpy().astype(np.uint8), b)
               for a, b in zip(theirs, result.layers, strict=True))
    assert result.spikes.sum() > 0


@pytest.mark.lava
def test_a_user_network_runs_identically_on_lava(no_leftover_children):
    torch.manual_seed(2)
    model = [CubaDense(16, 12, CubaConfig(current_decay=0.5, voltage_decay=0.2),
                       weight_scale=3.0),
             CubaDense(12, 8, CubaConfig(current_decay=0.0, voltage_decay=0.0),
                       weight_scale=3.0)]
    net = quantize_blocks(model, num_steps=15)
    reference, lava = run_both(net, random_spikes(4, 16, 15, rate=0.4))
    assert all(np.array_equal(a, b) for a, b in zip(reference.layers, lava.layers, strict=True))


def test_other_blocks_are_refused_by_name():
    with pytest.raises(ConfigError, match=r"block 1 \(layer1\): a torch.nn.modules.linear."
                                          r"Linear is not a CUBA dense block"):
        quantize_blocks([CubaDense(4, 3), torch.nn.Linear(3, 2)], num_steps=5)
    with pytest.raises(ConfigError, match="expects 3 inputs but the previous stage has 2"):
        quantize_blocks([CubaDense(4, 2), CubaDense(3, 2)], num_steps=5)
    with pytest.raises(ConfigError, match="at least one block"):
        quantize_blocks([], num_steps=5)
    slayer = pytest.importorskip("lava.lib.dl.slayer")
    params = {"threshold": 1.0, "current_decay": 0.5, "voltage_decay": 0.5}
    with pytest.raises(ConfigError, match="block 'layer0' .*learnable axonal delays"):
        quantize_blocks([slayer.block.cuba.Dense(params, 4, 3, delay=True)], num_steps=5)

"""RoyAE: shapes, encode/decode consistency, input validation, and CUDA == CPU (gpu marker)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikecodec.errors import ConfigError, InputError, InputTypeError
from spikecodec.train.families.roy.model import RoyAE, RoyAEModelConfig


def spikes(batch=3, n=20, steps=9, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, n, steps, generator=gen) < 0.3).float()


def test_shapes_and_encode_decode():
    model = RoyAE(20, RoyAEModelConfig(hidden=7, init_scale=4.0))
    x = spikes()
    out = model(x)
    assert out.hidden.shape == (3, 7, 9) and out.spikes.shape == out.voltage.shape == (3, 20, 9)
    assert torch.equal(model.decode(model.encode(x)).spikes, out.spikes)


@pytest.mark.parametrize("bad, error", [
    (np.zeros((3, 20, 9)), InputTypeError),
    (torch.zeros(3, 21, 9), InputError),
    (torch.zeros(20, 9), InputError),
    (torch.full((3, 20, 9), 0.5), InputError),
    (torch.full((3, 20, 9), float("nan")), InputError),
])
def test_bad_input(bad, error):
    with pytest.raises(error):
        RoyAE(20, RoyAEModelConfig(hidden=7))(bad)


def test_bad_config():
    with pytest.raises(ConfigError, match="model.hidden"):
        RoyAEModelConfig(hidden=0)


@pytest.mark.gpu
def test_cuda_training_step_matches_cpu():
    cpu = RoyAE(20, RoyAEModelConfig(hidden=7, init_scale=4.0))
    gpu = RoyAE(20, RoyAEModelConfig(hidden=7, init_scale=4.0)).cuda()
    x = spikes()
    out_cpu, out_gpu = cpu(x), gpu(x.cuda())
    assert torch.equal(out_cpu.spikes, out_gpu.spikes.cpu())
    out_cpu.voltage.sum().backward()
    out_gpu.voltage.sum().backward()
    assert torch.allclose(cpu.encoder.weight.grad, gpu.encoder.weight.grad.cpu(), atol=1e-4)

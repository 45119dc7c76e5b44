"""Lava CPU simulator (fixed_pt) vs our CUBA block: two trained-shape layers, spike for spike.

RingBuffer -> Dense -> LIF -> Dense -> LIF -> RingBuffer on Loihi2SimCfg(select_tag="fixed_pt"),
with the weight mantissas and neuron parameters of a ``RoyAE``. Lava adds one step of latency per
Dense, so its output is ours shifted by the number of layers. The runtime is always stopped.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikecodec.train.families.roy.model import RoyAE, RoyAEModelConfig

pytestmark = pytest.mark.lava


def run_lava(model: RoyAE, spikes: np.ndarray) -> np.ndarray:
    """``spikes (neurons, time)`` -> Lava's output spikes ``(neurons, time)``."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF

    steps = spikes.shape[1]
    source = Source(data=spikes)
    previous = source.s_out
    for block in (model.encoder, model.decoder):
        p = block.neuron.fixed_point()
        dense = Dense(weights=block.weight_mantissa().numpy(), num_message_bits=0)
        lif = LIF(shape=(block.out_neurons,), du=p.du - 1, dv=p.dv, vth=block.neuron.v_th_mant,
                  bias_mant=0, bias_exp=6)
        previous.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        previous = lif.s_out
    sink = Sink(shape=(model.in_neurons,), buffer=steps)
    previous.connect(sink.a_in)
    try:
        source.run(condition=RunSteps(num_steps=steps),
                   run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        return sink.data.get()
    finally:
        source.stop()


def test_lava_fixed_pt_equals_training_forward():
    model = RoyAE(24, RoyAEModelConfig(hidden=10, scale=64, init_scale=4.0), seed=2)
    gen = torch.Generator().manual_seed(5)
    steps, latency = 16, 2
    x = (torch.rand(1, 24, steps, generator=gen) < 0.3).float()
    x[..., steps - latency:] = 0  # let the last input drain through both layers
    with torch.no_grad():
        ours = model(x)
    assert ours.hidden.sum() > 0 and ours.spikes.sum() > 0
    lava = run_lava(model, x[0].numpy())
    assert np.array_equal(lava[:, latency:], ours.spikes[0, :, :steps - latency].numpy())
    assert not lava[:, :latency].any()

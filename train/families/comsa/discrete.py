"""The deployed Comsa autoencoder in torch: the discrete fixed-point forward, spike for spike.

Each layer is a :class:`~spikecodec.deploy.layers.SpikeOnceAlphaLayer` (quantize.py makes them):
per step, the input spikes through Lava's Dense (the mantissas and exponent Lava really uses,
:func:`spikecodec.deploy.weights.lava_weights`, as one exact float64 GEMM and Lava's floor shift),
plus the pulses' input (the layer's own ``pulse_input``), into
:func:`spikecodec.lava_procs.spike_once.spike_once_step` -- the step function the reference
engine and the Lava process run. So :class:`DiscreteComsaAE` gives the reference engine's spikes
exactly (tests/train/families/test_registry.py holds it to that), which makes it the model that
deployment-aware fine-tuning evaluates (training.py, ``train.deploy_aware``).

Shapes: spikes ``(batch, neurons, time)``.
"""
from __future__ import annotations

import numpy as np
import torch

from spikecodec.deploy.weights import lava_weights
from spikecodec.lava_procs.spec import STATE_EXP
from spikecodec.lava_procs.spike_once import SpikeOnceState, spike_once_params, spike_once_step

CHUNK = 1000  # samples per pass: (B, in) float64 per step stays small


class DiscreteComsaAE(torch.nn.Module):
    """The deployed layers as a torch module: ``forward(spikes (B, in, T))`` -> every layer's
    spikes ``[(B, n_l, T) uint8]``."""

    def __init__(self, layers, num_steps: int):
        super().__init__()
        self.layers = tuple(layers)
        self.num_steps = int(num_steps)
        self._synapses = []
        for layer in self.layers:
            mantissa, exponent = lava_weights(layer.weight)
            self._synapses.append((torch.from_numpy(mantissa.T.astype(np.float64)), exponent,
                                   torch.from_numpy(layer.pulse_input(self.num_steps)),
                                   spike_once_params(layer.decay,
                                                     layer.v_th_mant << STATE_EXP)))

    @torch.no_grad()
    def forward(self, spikes: torch.Tensor) -> list[torch.Tensor]:
        parts = [self._chunk(spikes[lo:lo + CHUNK]) for lo in range(0, len(spikes), CHUNK)]
        return [torch.cat([p[i] for p in parts]) for i in range(len(self.layers))]

    def _chunk(self, x: torch.Tensor) -> list[torch.Tensor]:
        batch, _, steps = x.shape
        outs = [torch.zeros((batch, layer.out_features, steps), dtype=torch.uint8)
                for layer in self.layers]
        states = []
        for layer in self.layers:
            zeros = torch.zeros((batch, layer.out_features), dtype=torch.int64)
            states.append(SpikeOnceState(zeros, zeros, zeros.bool()))
        for t in range(steps):
            s = x[:, :, t]
            for i, (weight_t, exponent, pulses, params) in enumerate(self._synapses):
                z = s.double() @ weight_t  # exact: integer sums far below 2^53
                if exponent < 0:
                    z = torch.floor(z * 2.0 ** exponent)  # Lava's floor shift
                else:
                    z = z * 2.0 ** exponent
                a = (z.long() << STATE_EXP) + pulses[t]
                states[i], s = spike_once_step(states[i], a, params)
                outs[i][:, :, t] = s.to(torch.uint8)
        return outs

"""The temporal-coding autoencoder of Comsa et al. 2021: ``in -> hidden -> out`` spike times.

Every neuron is the alpha-synapse neuron of :mod:`spikecodec.train.families.comsa.spiketime`
(it spikes at most once; its spike time is exact, by the Lambert W function). Each layer also
receives ``pulses`` synchronisation pulses: spike sources at learned times shared by all its
neurons, each with its own learned weight per neuron (section 2.2). They enter the layer as
extra input columns, so their times get exact gradients like any input.

Initialisation (section 2.5 and the C++ code): weights ~ Normal(mu, sigma) with
``sigma = sqrt(2 / (fan_in + fan_out + pulses))`` and ``mu = multiplier * sigma``, one
multiplier for regular inputs and one for pulses; pulse ``i`` (1-based) starts at
``i / (pulses + 1)``, evenly over the input interval [0, 1].

Shapes: times ``(batch, neurons)``, ``+inf`` for no spike.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from spikecodec.errors import InputError
from spikecodec.train.families.comsa.config import ComsaModelConfig
from spikecodec.train.families.comsa.quantize import WeightGrid
from spikecodec.train.families.comsa.spiketime import spike_times


class ComsaLayer(torch.nn.Module):
    """``n_out`` spike-once alpha neurons fed by ``n_in`` inputs and the layer's pulses."""

    def __init__(self, n_in: int, n_out: int, cfg: ComsaModelConfig, *,
                 generator: torch.Generator | None = None, dtype=torch.float64):
        super().__init__()
        self.cfg = cfg
        p = cfg.pulses
        sigma = math.sqrt(2.0 / (n_in + n_out + p))
        normal = lambda shape, mean: torch.randn(shape, generator=generator,  # noqa: E731
                                                 dtype=torch.float64) * sigma + mean * sigma
        self.weight = torch.nn.Parameter(normal((n_out, n_in), cfg.weight_mean).to(dtype))
        self.pulse_weight = torch.nn.Parameter(
            normal((n_out, p), cfg.pulse_weight_mean).to(dtype))
        self.pulse_times = torch.nn.Parameter(
            torch.arange(1, p + 1, dtype=dtype) / (p + 1))  # evenly over [0, 1]
        self.weight_grid: WeightGrid | None = None  # train.weight_bits (ComsaAE sets it)
        self.name = "layer"

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight, pulse_weight)`` as the forward uses them: on the deployed weight grid
        when training on it (straight through), else the parameters."""
        if self.weight_grid is None:
            return self.weight, self.pulse_weight
        return self.weight_grid.apply(self.weight, self.pulse_weight, name=self.name)

    def forward(self, t_in: torch.Tensor, *, clip: float | None = None,
                penalty: float = 0.0) -> torch.Tensor:
        """Input times ``(B, n_in)`` -> spike times ``(B, n_out)`` (``+inf``: silent)."""
        batch = t_in.shape[0]
        times = torch.cat([t_in, self.pulse_times.expand(batch, -1)], dim=1)
        weight = torch.cat(self.weights(), dim=1)
        return spike_times(times, weight, decay=self.cfg.decay, threshold=self.cfg.threshold,
                           clip=clip, penalty=penalty)

    @torch.no_grad()
    def clamp_pulses(self) -> None:
        """Pulse times stay >= 0 (after every optimiser step, as the C++ code does)."""
        self.pulse_times.clamp_(min=0.0)


class ComsaOutput(NamedTuple):
    hidden: torch.Tensor  # (B, h) embedding spike times
    output: torch.Tensor  # (B, pixels) reconstruction spike times


class ComsaAE(torch.nn.Module):
    """``pixels -> hidden -> pixels``; ``forward(t_in (B, pixels))``."""

    def __init__(self, pixels: int, cfg: ComsaModelConfig, *,
                 generator: torch.Generator | None = None, dtype=torch.float64,
                 weight_grid: WeightGrid | None = None):
        super().__init__()
        self.cfg = cfg
        self.encoder = ComsaLayer(pixels, cfg.hidden, cfg, generator=generator, dtype=dtype)
        self.decoder = ComsaLayer(cfg.hidden, pixels, cfg, generator=generator, dtype=dtype)
        self.set_weight_grid(weight_grid)

    def set_weight_grid(self, grid: WeightGrid | None) -> None:
        """Run (and train) on the deployed weight grid ``grid``, or on float weights (None)."""
        for name, layer in (("encoder", self.encoder), ("decoder", self.decoder)):
            layer.weight_grid, layer.name = grid, name

    @property
    def pixels(self) -> int:
        return self.encoder.weight.shape[1]

    def forward(self, t_in: torch.Tensor, *, clip: float | None = None,
                penalty: float = 0.0) -> ComsaOutput:
        if t_in.dim() != 2 or t_in.shape[1] != self.pixels:
            raise InputError(f"Comsa autoencoder expects spike times (batch, {self.pixels}), "
                             f"got {tuple(t_in.shape)}")
        hidden = self.encoder(t_in, clip=clip, penalty=penalty)
        return ComsaOutput(hidden, self.decoder(hidden, clip=clip, penalty=penalty))

    def decode(self, hidden: torch.Tensor) -> torch.Tensor:
        """Embedding spike times ``(B, h)`` -> output spike times (interpolation, Fig. 6)."""
        return self.decoder(hidden)

    def clamp_pulses(self) -> None:
        self.encoder.clamp_pulses()
        self.decoder.clamp_pulses()

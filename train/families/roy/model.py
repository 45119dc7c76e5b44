"""AE-SNN of Roy, Panda & Roy 2019: ``in -> hidden -> in`` CUBA LIF layers.

With current decay 1 each layer is the paper's LIF ``V[t] = (1-alpha) V[t-1] + Z[t]``, reset to 0
after a spike (see :mod:`spikecodec.lava_procs.cuba`). The hidden spike map is the code that the
paper's audio-to-image synthesis shares between modalities (``encode`` / ``decode``).

Training uses no inter-layer delay: output step ``t`` answers input step ``t`` as in the paper.
Loihi adds one step per layer; deployment runs ``T + num_layers`` steps and reads the output
shifted by ``num_layers``, which is the same computation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from spikecodec.errors import ConfigError, InputError, InputTypeError
from spikecodec.train.blocks import CubaConfig, CubaDense, check_binary_spikes


@dataclass(frozen=True)
class RoyAEModelConfig:
    """Network shape and neuron of the AE-SNN."""

    hidden: int = 196  # paper: 196 for MNIST, 512 / 1024 for Fashion-MNIST
    threshold: float = 1.0  # Vth
    leak: float = 0.1  # alpha (paper's best: 0.1)
    scale: int = 256  # weight mantissa = weight * scale; 256 gives 1/128 weight steps
    surrogate_slope: float = 1.0  # sigmoid surrogate steepness (paper: 1)
    init_scale: float = 1.0  # initial weights U(-1, 1) * init_scale / sqrt(fan_in)
    bf16_grads: bool = True  # gradient GEMMs in bfloat16 where the CPU has native bf16

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise ConfigError(f"model.hidden must be >= 1, got {self.hidden}")
        if not 0.0 <= self.leak <= 1.0:
            raise ConfigError(f"model.leak must be in [0, 1], got {self.leak}")
        if not self.init_scale > 0:
            raise ConfigError(f"model.init_scale must be > 0, got {self.init_scale}")
        self.neuron()  # validates threshold, scale, slope

    def neuron(self) -> CubaConfig:
        return CubaConfig(threshold=self.threshold, current_decay=1.0, voltage_decay=self.leak,
                          scale=self.scale, surrogate_slope=self.surrogate_slope,
                          bf16_grads=self.bf16_grads)


class RoyAEOutput(NamedTuple):
    """All ``(batch, neurons, time)``."""

    hidden: torch.Tensor  # hidden spike map (the code)
    spikes: torch.Tensor  # output spikes
    voltage: torch.Tensor  # output membrane potential before reset


class RoyAE(torch.nn.Module):
    """Two CUBA dense layers; ``forward(x)`` on ``(batch, in_neurons, time)`` input spikes."""

    def __init__(self, in_neurons: int, cfg: RoyAEModelConfig = RoyAEModelConfig(), *,
                 seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.cfg = cfg
        neuron = cfg.neuron()
        self.encoder = CubaDense(in_neurons, cfg.hidden, neuron, weight_scale=cfg.init_scale,
                                 generator=gen)
        self.decoder = CubaDense(cfg.hidden, in_neurons, neuron, weight_scale=cfg.init_scale,
                                 generator=gen)

    @property
    def in_neurons(self) -> int:
        return self.encoder.in_neurons

    def _check(self, x: torch.Tensor, n: int, what: str) -> torch.Tensor:
        """Validate binary spikes ``(batch, n, time)``; return them time-major."""
        if not isinstance(x, torch.Tensor):
            raise InputTypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 3 or x.shape[1] != n:
            raise InputError(f"{what} must be spikes (batch, {n}, time), got {tuple(x.shape)}")
        check_binary_spikes(x, what)
        return x.permute(2, 0, 1).to(self.encoder.weight.dtype)

    def forward(self, x: torch.Tensor) -> RoyAEOutput:
        xt = self._check(x, self.in_neurons, "RoyAE input")
        hidden, _ = self.encoder.forward_tm(xt)
        spikes, voltage = self.decoder.forward_tm(hidden)
        return RoyAEOutput(*(y.permute(1, 2, 0) for y in (hidden, spikes, voltage)))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Input spikes -> hidden spike map, ``(batch, hidden, time)``."""
        return self.forward(x).hidden

    def decode(self, hidden: torch.Tensor) -> RoyAEOutput:
        """Hidden spike map -> output (``hidden`` echoes the input)."""
        ht = self._check(hidden, self.cfg.hidden, "RoyAE hidden map")
        spikes, voltage = self.decoder.forward_tm(ht)
        return RoyAEOutput(hidden, spikes.permute(1, 2, 0), voltage.permute(1, 2, 0))

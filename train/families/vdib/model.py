"""The VDIB hybrid variational autoencoder: SNN encoder (SRM hidden + stochastic readout) and
ANN decoder (Skatchkovsky, Simeone & Jang 2021; ../shared/papers/vdib_equations.md).

Encoder ``q_phi(y || x)``: hidden layers of deterministic SRM neurons -- alpha synaptic filter,
exponential feedback, bias, ``s = Theta(u)`` -- run as Loihi CUBA neurons
(:class:`~spikecodec.train.blocks.CubaDense`, whose forward pass is the integer neuron that
deploys): the current and voltage decays give the alpha filter exactly; Loihi's reset to zero
stands in for the exponential feedback (a feedback that removes the whole potential at once);
the bias is the fixed threshold (``u = v - threshold``), not trained per neuron. The readout
is :class:`~spikecodec.train.families.vdib.readout.StochasticReadout`.
Decoder ``p_theta(r | y)``: :class:`~spikecodec.train.families.vdib.decoders.ANNDecoder` on a
window of readout spikes (or their counts: rate decoding).

Shapes: input spikes ``(batch, in, T)``; readout spikes ``(batch, N, T)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from spikecodec.errors import ConfigError, InputError
from spikecodec.train.blocks import CubaConfig, CubaDense, check_binary_spikes
from spikecodec.train.families.vdib.readout import ReadoutConfig, ReadoutOutput, StochasticReadout


@dataclass(frozen=True)
class VDIBModelConfig:
    """Encoder shape and neurons. Decays are fractions per step."""

    hidden: tuple[int, ...] = (600,)  # SRM hidden layers (kclip/VDIB: one of 600); () = none
    threshold: float = 1.0
    current_decay: float = 0.5  # alpha synaptic filter of the hidden neurons
    voltage_decay: float = 0.25
    # initial hidden weights U(-1, 1) * this / sqrt(fan_in): large enough that a sparse
    # latency-coded input (~30 spikes per digits image) drives the hidden layer (~9% of steps;
    # 3.0 leaves it at 1.5%); dense Poisson inputs fire it at ~14% with 3.0
    hidden_weight_scale: float = 8.0
    scale: int = 64  # weight mantissa = weight * scale
    surrogate_slope: float = 5.0  # sigmoid surrogate steepness (e-prop's pseudo-derivative)
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)

    def __post_init__(self) -> None:
        if any(int(h) < 1 for h in self.hidden):
            raise ConfigError(f"model.hidden sizes must be >= 1, got {self.hidden!r}")
        self.neuron()

    def neuron(self) -> CubaConfig:
        return CubaConfig(threshold=self.threshold, current_decay=self.current_decay,
                          voltage_decay=self.voltage_decay, scale=self.scale,
                          surrogate_slope=self.surrogate_slope, bf16_grads=False)


class EncoderOutput(NamedTuple):
    """What one encoder pass returns (time-major lists for the learning rule)."""

    readout: ReadoutOutput  # readout spikes, probabilities, membrane (batch, N, T)
    inputs: list[torch.Tensor]  # each hidden layer's input spikes (T, B, in)
    hidden: list[torch.Tensor]  # each hidden layer's spikes (T, B, n)
    voltages: list[torch.Tensor]  # each hidden layer's pre-reset voltage (T, B, n)


class VDIBEncoder(torch.nn.Module):
    """``in -> hidden... -> readout``; ``forward(x (batch, in, T))``."""

    def __init__(self, in_neurons: int, cfg: VDIBModelConfig, *,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        sizes = [in_neurons, *cfg.hidden]
        self.hidden = torch.nn.ModuleList(
            CubaDense(a, b, cfg.neuron(), weight_scale=cfg.hidden_weight_scale,
                      generator=generator) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.readout = StochasticReadout(sizes[-1], cfg.readout, generator=generator)

    @property
    def in_neurons(self) -> int:
        return self.hidden[0].in_neurons if len(self.hidden) else self.readout.in_neurons

    def forward(self, x: torch.Tensor, *, mode: str = "float", bptt: bool = False,
                generator: torch.Generator | None = None, first_sample: int = 0,
                seed: int | None = None) -> EncoderOutput:
        """Input spikes ``(batch, in, T)``.

        ``bptt``: keep the hidden layers in the autograd graph (surrogate-gradient BPTT); by
        default they are detached and trained by e-prop
        (:mod:`spikecodec.train.families.vdib.learning`).
        ``mode``: "float" (training) or "quantized" (bit-exact with the deployed network).
        """
        if x.dim() != 3 or x.shape[1] != self.in_neurons:
            raise InputError(f"VDIB encoder expects spikes (batch, {self.in_neurons}, time), "
                             f"got {tuple(x.shape)}")
        check_binary_spikes(x, "VDIB encoder input")
        s = x.permute(2, 0, 1).contiguous()
        inputs, hidden, voltages = [], [], []
        grad = bptt and mode == "float"
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            for block in self.hidden:
                inputs.append(s)
                s, v = block.forward_tm(s)
                hidden.append(s)
                voltages.append(v)
        if not grad:
            s = s.detach()
        out = self.readout.forward_tm(s, mode=mode, generator=generator,
                                      first_sample=first_sample, seed=seed)
        return EncoderOutput(out, inputs, hidden, voltages)


class VDIB(torch.nn.Module):
    """Encoder and decoder; the decoder reads the readout spikes."""

    def __init__(self, encoder: VDIBEncoder, decoder: torch.nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

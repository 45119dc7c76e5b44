"""Roy et al.'s audio-to-image synthesis model: a spiking audiocoder and the AE-SNN's decoder.

``audio spikes -> hidden -> code -> image``: the first two are the audiocoder (trained with the
membrane-potential loss to emit the AE's hidden spike map), the last is the AE-SNN's decoder
layer ``W2`` (frozen: it was trained with the autoencoder). All three are
:class:`~spikecodec.train.blocks.CubaDense` blocks, so the forward pass is the deployed
fixed-point network's (see :mod:`spikecodec.train.families.roy.model` for the neuron and the
inter-layer delay Loihi adds).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from spikecodec.errors import InputError, InputTypeError
from spikecodec.train.blocks import CubaConfig, CubaDense, check_binary_spikes
from spikecodec.train.families.roy.model import RoyAEModelConfig
from spikecodec.train.families.roy_audio.config import ModelConfig


@dataclass(frozen=True)
class SynthesisShape:
    """Sizes and neurons of the whole chain (stored in the export as ``model_config``)."""

    audio: int  # input neurons, n_mels * frames
    model: ModelConfig  # the audiocoder
    ae: RoyAEModelConfig  # the AE-SNN whose decoder closes the chain
    image: int  # output neurons (pixels)


class SynthesisOutput(NamedTuple):
    """All ``(batch, neurons, time)``; ``image`` is None when the decoder was not run."""

    hidden: torch.Tensor  # audiocoder hidden layer spikes
    code: torch.Tensor  # audiocoder output spikes: the AE's hidden map
    code_voltage: torch.Tensor  # its membrane potential before reset (the loss reads it)
    image: torch.Tensor | None  # decoder output spikes


def _neuron(m: ModelConfig | RoyAEModelConfig) -> CubaConfig:
    return CubaConfig(threshold=m.threshold, current_decay=1.0, voltage_decay=m.leak,
                      scale=m.scale, surrogate_slope=m.surrogate_slope, bf16_grads=m.bf16_grads)


class AudioToImage(torch.nn.Module):
    """``audio (batch, audio, time)`` spikes -> :class:`SynthesisOutput`."""

    def __init__(self, shape: SynthesisShape, *, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.shape = shape
        m, neuron = shape.model, _neuron(shape.model)
        self.hidden = CubaDense(shape.audio, m.hidden, neuron, weight_scale=m.init_scale,
                                generator=gen)
        self.code = CubaDense(m.hidden, shape.ae.hidden, neuron, weight_scale=m.init_scale,
                              generator=gen)
        self.decoder = CubaDense(shape.ae.hidden, shape.image, _neuron(shape.ae))
        self.decoder.weight.requires_grad_(False)  # W2 of the AE-SNN: trained with the AE

    def audiocoder_parameters(self) -> list[torch.nn.Parameter]:
        return [self.hidden.weight, self.code.weight]

    def forward(self, x: torch.Tensor, *, decode: bool = True) -> SynthesisOutput:
        if not isinstance(x, torch.Tensor):
            raise InputTypeError(f"audio spikes must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 3 or x.shape[1] != self.shape.audio:
            raise InputError(f"audio spikes must be (batch, {self.shape.audio}, time), got "
                             f"{tuple(x.shape)}")
        check_binary_spikes(x, "audio spikes")
        xt = x.permute(2, 0, 1).to(self.hidden.weight.dtype)  # time-major through the chain
        hidden, _ = self.hidden.forward_tm(xt)
        code, voltage = self.code.forward_tm(hidden)
        image = self.decoder.forward_tm(code)[0].permute(1, 2, 0) if decode else None
        return SynthesisOutput(hidden.permute(1, 2, 0), code.permute(1, 2, 0),
                               voltage.permute(1, 2, 0), image)

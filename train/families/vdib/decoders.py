"""Trainable ANN decoders of readout spikes; their forward is
:func:`spikecodec.deploy.decoders.decoder_logits`, the function the host runs after deployment.

Build one from a configuration dict (keys documented in :mod:`spikecodec.deploy.decoders`) with
:func:`make_decoder`; :meth:`ANNDecoder.export` returns the dict with its float32 arrays, which
the export stores and :func:`spikecodec.deploy.decoders.decode` runs.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from spikecodec.deploy.decoders import activate, check_decoder, decoder_logits, head_sizes
from spikecodec.deploy.info import HostDecoder


class ANNDecoder(torch.nn.Module):
    """Logistic/softmax regression, MLP or 1-D conv decoder; ``forward(spikes (B, N, T))``
    returns logits ``(B, *out_shape)`` or ``(B, T, *out_shape)`` (``at = "every"``)."""

    def __init__(self, cfg: dict[str, Any], *, num_steps: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = dict(check_decoder(dict(cfg, kind="ann"), num_steps=num_steps))
        self.params = torch.nn.ParameterDict()
        if self.cfg["arch"] == "conv1d":
            c, n, k = int(self.cfg["channels"]), int(self.cfg["neurons"]), int(self.cfg["kernel"])
            self.params["conv_w"] = _uniform((c, n, k), n * k, generator)
            self.params["conv_b"] = torch.nn.Parameter(torch.zeros(c))
        sizes = head_sizes(self.cfg)
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            self.params[f"w{i}"] = _uniform((b, a), a, generator)
            self.params[f"b{i}"] = torch.nn.Parameter(torch.zeros(b))

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        return decoder_logits(self.cfg, dict(self.params), spikes)

    def estimate(self, spikes: torch.Tensor) -> torch.Tensor:
        """Decoded signal (sigmoid pixels, softmax positions, ...)."""
        return activate(self.cfg, self(spikes))

    @classmethod
    def from_export(cls, decoder: dict[str, Any]) -> "ANNDecoder":
        """Rebuild a decoder from an export's decoder (config plus arrays)."""
        if isinstance(decoder, HostDecoder):
            decoder = decoder.as_dict()
        model = cls({k: v for k, v in decoder.items() if not isinstance(v, np.ndarray)})
        with torch.no_grad():
            for name, p in model.params.items():
                p.copy_(torch.as_tensor(np.asarray(decoder[name], dtype=np.float32)))
        return model

    def export(self) -> dict[str, Any]:
        """The decoder as stored in an export: config plus float32 numpy arrays."""
        out: dict[str, Any] = dict(self.cfg)
        for name, p in self.params.items():
            out[name] = p.detach().cpu().numpy().astype(np.float32)
        return out


def _uniform(shape: tuple[int, ...], fan_in: int, generator) -> torch.nn.Parameter:
    bound = 1.0 / math.sqrt(fan_in)
    return torch.nn.Parameter((torch.rand(shape, generator=generator) * 2 - 1) * bound)


def make_decoder(*, arch: str, input: str, window: int, at: str, output: str,
                 out_shape: tuple[int, ...], neurons: int, hidden: tuple[int, ...] = (),
                 channels: int = 32, kernel: int = 5, num_steps: int | None = None,
                 generator: torch.Generator | None = None) -> ANNDecoder:
    """An :class:`ANNDecoder` from keyword arguments (see :mod:`spikecodec.deploy.decoders`)."""
    cfg = {"kind": "ann", "arch": arch, "input": input, "window": int(window), "at": at,
           "output": output, "out_shape": [int(s) for s in out_shape], "neurons": int(neurons),
           "hidden": [int(h) for h in hidden]}
    if arch == "conv1d":
        cfg.update(channels=int(channels), kernel=int(min(kernel, window)))
    return ANNDecoder(cfg, num_steps=num_steps, generator=generator)

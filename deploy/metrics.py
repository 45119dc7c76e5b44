"""Reconstruction metrics of Roy et al. 2019, section 3.1.

Both maps are z-normalised *per sample* (zero mean, unit variance over the pixels of one image)
before the mean squared error, so the metric ignores the overall firing rate and compares shapes:

* **Spike-MSE**: input spike map vs output spike map, each summed over the whole duration.
* **MSE**: input image (pixel values) vs output spike map summed over the duration.

The paper does not say whether the normalisation is per sample or over the test set; per sample is
the reading under which an all-silent output scores 1.0 (its normalised map is all zeros) rather
than being undefined. A constant map normalises to all zeros.
"""
from __future__ import annotations

import torch

from spikecodec.errors import InputError

EPS = 1e-8


def znorm(maps: torch.Tensor) -> torch.Tensor:
    """Per-sample z-normalisation of ``(batch, pixels)`` maps (float64 for stable sums)."""
    if maps.dim() != 2:
        raise InputError(f"maps must be (batch, pixels), got shape {tuple(maps.shape)}")
    x = maps.double()
    mean = x.mean(dim=1, keepdim=True)
    std = x.std(dim=1, unbiased=False, keepdim=True)
    return (x - mean) / std.clamp_min(EPS) * (std > EPS)


def znorm_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample MSE between z-normalised ``(batch, pixels)`` maps, shape ``(batch,)``."""
    if a.shape != b.shape:
        raise InputError(f"maps differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise InputError("maps contain non-finite values")
    return ((znorm(a) - znorm(b)) ** 2).mean(dim=1)


def spike_mse(input_spikes: torch.Tensor, output_spikes: torch.Tensor) -> torch.Tensor:
    """Spike-MSE per sample from ``(batch, neurons, time)`` spike tensors."""
    return znorm_mse(input_spikes.sum(-1), output_spikes.sum(-1))


def image_mse(images: torch.Tensor, output_spikes: torch.Tensor) -> torch.Tensor:
    """MSE per sample between ``(batch, pixels)`` images and ``(batch, pixels, time)`` spikes."""
    return znorm_mse(images, output_spikes.sum(-1))

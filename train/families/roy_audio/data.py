"""The multimodal datasets of Roy et al. §3.2.1 and their test protocol.

* **A** (one image per class): the ten images are chosen deterministically as, for each digit,
  the training image of the AE's dataset nearest (squared pixel distance) to that digit's mean
  training image -- a typical, clean exemplar instead of the paper's manual pick.
* **B** (one image per recording): each training recording is paired with a training image of
  its digit drawn uniformly at random (``torch.Generator`` seeded ``seed + PAIRING_SEED``).

Both use the same test recordings. Protocol (paper §3.2.3): output spike counts and images are
z-normalised per sample (:mod:`spikecodec.deploy.metrics`); **A** scores a test recording
against its class image, **B** against every training image of the dataset (the images paired
with the training recordings), keeping the lowest MSE.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from spikecodec.deploy.metrics import znorm, znorm_mse
from spikecodec.errors import DataError

PAIRING_SEED = 7  # offset of the pairing draw from the run seed (B only)


class Pairing(NamedTuple):
    """Images for the recordings of a run."""

    bank: torch.Tensor  # (m, pixels) the dataset's distinct images (A: 10, B: one per recording)
    train_index: torch.Tensor  # (n_train,) row of ``bank`` paired with each training recording
    class_images: torch.Tensor  # (10, pixels) A's images (B: the same exemplars, for figures)
    bank_labels: torch.Tensor  # (m,) the digit of each bank image


def class_exemplars(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(10, pixels)``: per digit, the image nearest to the digit's mean image."""
    rows = []
    for digit in range(10):
        members = images[labels == digit]
        if len(members) == 0:
            raise DataError(f"the image set has no image of digit {digit}")
        dist = ((members - members.mean(0)) ** 2).sum(1)
        rows.append(members[int(torch.argmin(dist))])
    return torch.stack(rows)


def pair(pairing: str, audio_labels: torch.Tensor, images: torch.Tensor, labels: torch.Tensor,
         *, seed: int) -> Pairing:
    """Dataset A or B for training recordings of digits ``audio_labels``."""
    exemplars = class_exemplars(images, labels)
    if pairing == "A":
        return Pairing(exemplars, audio_labels.clone(), exemplars, torch.arange(10))
    gen = torch.Generator().manual_seed(seed + PAIRING_SEED)
    by_digit = [torch.nonzero(labels == d).flatten() for d in range(10)]
    picks = torch.empty(len(audio_labels), dtype=torch.int64)
    for i, digit in enumerate(audio_labels.tolist()):
        pool = by_digit[digit]
        picks[i] = pool[int(torch.randint(len(pool), (1,), generator=gen))]
    return Pairing(images[picks], torch.arange(len(audio_labels)), exemplars, labels[picks])


def tile_targets(maps: torch.Tensor, num_steps: int) -> torch.Tensor:
    """Hidden maps ``(n, code, T_h)`` shown repeatedly over ``num_steps`` steps."""
    reps = -(-num_steps // maps.shape[-1])
    return maps.repeat(1, 1, reps)[..., :num_steps]


def protocol_mse(pairing: str, counts: torch.Tensor, labels: torch.Tensor,
                 bank: torch.Tensor) -> torch.Tensor:
    """Per test recording MSE of its output spike counts ``(n, pixels)`` (module docstring):
    A against ``bank[label]``, B the minimum over every image of ``bank``."""
    if pairing == "A":
        return znorm_mse(bank[labels], counts)
    return nearest_mse(counts, bank).values


def protocol_scores(pairing: str, counts: torch.Tensor, labels: torch.Tensor,
                    bank: torch.Tensor, bank_labels: torch.Tensor) -> dict[str, float]:
    """``mse`` (:func:`protocol_mse`, mean over recordings) and ``class_accuracy``: how often
    the bank image nearest to the output (z-normalised MSE) shows the recording's digit -- B's
    lowest-MSE protocol alone rewards any plausible digit, the right one or not."""
    nearest = nearest_mse(counts, bank).indices
    return {"mse": protocol_mse(pairing, counts, labels, bank).mean().item(),
            "class_accuracy": (bank_labels[nearest] == labels).double().mean().item()}


def nearest_mse(counts: torch.Tensor, bank: torch.Tensor):
    """``(values, indices)`` of the lowest z-normalised MSE of each row of ``counts`` over the
    rows of ``bank``: ``|a - b|^2 / P = (|a|^2 + |b|^2 - 2 a.b) / P`` in float64."""
    a, b = znorm(counts.double()), znorm(bank.double())
    d = (a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1) - 2 * a @ b.t()) / a.shape[1]
    return d.clamp_min(0).min(dim=1)

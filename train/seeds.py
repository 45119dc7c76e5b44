"""Every random draw of a run derives from its one seed through a named stream.

A stream is a pure function of ``(seed, name)``, and the batch order and per-batch draws are pure
functions of ``(seed, epoch, batch)``; so a run resumed mid-epoch replays exactly the order and
the Poisson (or other) draws an uninterrupted run would have made, and evaluating an export
later feeds it exactly the spikes the training run scored.

The streams (offsets from the run seed; these are the values every committed export and
published figure was made with, so they stay):

============  ======  ==========================================================================
stream        offset  draws
============  ======  ==========================================================================
init          0       initial weights (and the decoder's)
sampling      0       the stochastic readout's spikes while training (a torch generator)
eval          1       evaluation of the float model: Roy's Poisson test inputs, VDIB's readout
eval_inputs   2       VDIB's evaluation inputs, per batch (``batch_seed(stream, 0, first)``)
feedback      3       VDIB's fixed random e-prop feedback matrices
noise         4       Comsa et al.'s input noise, drawn once at load
targets       5       the audio-to-image family's Poisson draws of the paired images
subsets       6       Comsa's per-epoch training subsets (``train.epoch_samples``)
raw_inputs    7       VDIB's raw-input decoder baseline: its weights and batch order
============  ======  ==========================================================================
"""
from __future__ import annotations

import torch

from spikecodec.errors import ConfigError

STREAMS = {"init": 0, "sampling": 0, "eval": 1, "eval_inputs": 2, "feedback": 3, "noise": 4,
           "targets": 5, "subsets": 6, "raw_inputs": 7}


def stream_seed(seed: int, name: str) -> int:
    """The seed of stream ``name`` of a run seeded with ``seed`` (table above)."""
    if name not in STREAMS:
        raise ConfigError(f"unknown seed stream {name!r}; known: {', '.join(STREAMS)}")
    return seed + STREAMS[name]


def generator(seed: int, name: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator seeded with stream ``name``."""
    return torch.Generator(device=device).manual_seed(stream_seed(seed, name))


def batch_seed(seed: int, epoch: int, batch: int) -> int:
    """The seed of batch ``batch`` of ``epoch`` (random input encodings draw from it)."""
    return (seed * 1_000_003 + epoch * 10_007 + batch) % (2**63)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of ``n`` training samples in ``epoch``."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))

"""What every training loop shares: a reproducible batch order and reproducible random draws.

Both are pure functions of the run's seed, the epoch and the batch index, so a resumed run
replays exactly the order and the Poisson (or other) draws an uninterrupted run would have made.
"""
from __future__ import annotations

import torch


def batch_seed(seed: int, epoch: int, batch: int) -> int:
    """The seed of batch ``batch`` of ``epoch`` (random input encodings draw from it)."""
    return (seed * 1_000_003 + epoch * 10_007 + batch) % (2**63)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of ``n`` training samples in ``epoch``."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))

"""AE-ANN baseline of Roy et al. 2019: same size as the AE-SNN, sigmoid units, squared-error loss.

The paper trains it for one epoch, batch 100, with plain SGD (lr 0.1) and with Adam.
"""
from __future__ import annotations

import torch


class AnnAE(torch.nn.Module):
    """``in -> hidden -> in`` with sigmoid activations; ``forward(images (batch, in))``."""

    def __init__(self, in_features: int, hidden: int, *, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.encoder = torch.nn.Linear(in_features, hidden)
        self.decoder = torch.nn.Linear(hidden, in_features)
        for layer in (self.encoder, self.decoder):
            bound = 1.0 / layer.in_features ** 0.5
            with torch.no_grad():
                layer.weight.copy_((torch.rand(layer.weight.shape, generator=gen) * 2 - 1) * bound)
                layer.bias.copy_((torch.rand(layer.bias.shape, generator=gen) * 2 - 1) * bound)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(torch.sigmoid(self.encoder(images))))

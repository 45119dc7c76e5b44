"""The paper's ANN baseline (section 3.4): same sizes, a ReLU encoder and a sigmoid decoder,
the same optimiser (Adam, ``train.lr``), batch size and epochs, model selection on validation.

Two versions, as in the paper: on *inverted* images (exactly the SNN's noisy input times, a
silent input read as 1.0) and on *plain* images (``clamp(x + eta r', 0, 1)`` with the same
normal draws as the SNN's noise but mean 0, ``r' = r - 1``), both reconstructing the clean
image. Scores are pixel-space MSE on the test split, comparable with the SNN's ``mse`` (its
error ``o - y`` is in inverted space, where the squared error is the same).
"""
from __future__ import annotations

import copy
from typing import Any

import torch

from spikecodec.train.families.comsa import data as data_mod
from spikecodec.train.families.comsa.config import ComsaConfig
from spikecodec.train.progress import progress
from spikecodec.train.seeds import epoch_order, generator


class AnnAE(torch.nn.Module):
    def __init__(self, pixels: int, hidden: int, *, generator: torch.Generator):
        super().__init__()
        self.encoder = torch.nn.Linear(pixels, hidden)
        self.decoder = torch.nn.Linear(hidden, pixels)
        for layer in (self.encoder, self.decoder):  # PyTorch's default ranges, seeded
            bound = 1.0 / layer.in_features ** 0.5
            with torch.no_grad():
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(torch.relu(self.encoder(x))))


def _views(data: data_mod.ComsaData, cfg: ComsaConfig, inverted: bool
           ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``split -> (inputs, targets)`` in the space the baseline works in, float32."""
    out = {}
    gen = generator(cfg.train.seed, "noise")  # the SNN's draw r, here with mean 0 (r - 1)
    for split in data_mod.SPLITS:
        clean = 1.0 - data.targets[split]  # intensities x
        if inverted:  # the SNN's input times, silent read as 1.0
            t = data.inputs[split]
            x, y = torch.where(torch.isinf(t), torch.ones_like(t), t), data.targets[split]
        else:
            noise = cfg.data.noise * torch.randn(clean.shape, generator=gen, dtype=clean.dtype)
            x, y = (clean + noise).clamp(0.0, 1.0), clean
        out[split] = (x.float(), y.float())
    return out


def train_ann(data: data_mod.ComsaData, cfg: ComsaConfig, *, inverted: bool,
              show_progress: bool = False) -> dict[str, Any]:
    """Train one baseline; return its test MSE at the epoch validation chose."""
    views = _views(data, cfg, inverted)
    t = cfg.train
    model = AnnAE(data.pixels, cfg.model.hidden, generator=generator(t.seed, "init"))
    opt = torch.optim.Adam(model.parameters(), lr=t.lr)
    x, y = views["train"]
    best = (float("inf"), 0, None)
    for epoch in progress(range(t.epochs), desc=f"ANN ({'inverted' if inverted else 'plain'})",
                          enabled=show_progress):
        order = epoch_order(len(x), t.seed, epoch)
        for lo in range(0, len(x), t.batch_size):
            idx = order[lo:lo + t.batch_size]
            loss = 0.5 * ((model(x[idx]) - y[idx]) ** 2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            vx, vy = views["validation"]
            val = float(((model(vx) - vy) ** 2).mean())
        if val < best[0]:
            best = (val, epoch + 1, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    with torch.no_grad():
        tx, ty = views["test"]
        test = float(((model(tx) - ty) ** 2).mean())
    return {"mse": test, "validation_mse": best[0], "best_epoch": best[1]}


def train_ann_baselines(data: data_mod.ComsaData, cfg: ComsaConfig, *,
                        show_progress: bool = False) -> dict[str, dict[str, Any]]:
    """``{"ann_plain": ..., "ann_inverted": ...}``."""
    return {f"ann_{name}": train_ann(data, cfg, inverted=name == "inverted",
                                     show_progress=show_progress)
            for name in ("plain", "inverted")}

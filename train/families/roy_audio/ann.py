"""ANN baselines of Roy et al. §3.2.3 (Fig. 7b-c): AC-ANN + the AE-ANN's decoder.

The AE-ANN (:class:`~spikecodec.train.families.roy.ann.AnnAE`, trained by the Roy family's
baseline code) turns each paired image into its sigmoid hidden vector, quantized to ``2**bits``
levels (``bits=0``: kept as is); the AC-ANN (``audio -> hidden -> code``, sigmoid units, the
audiocoder's sizes) learns it from the spectrogram with the loss ``1/2 |y - h|^2`` (summed,
batch mean, as the SNN's). The synthesised image ``sigmoid(W2 y)`` is scored with the SNN's
protocol. The AC-ANN trained with plain SGD is paired with the AE-ANN trained with SGD, Adam
with Adam (paper).
"""
from __future__ import annotations

import torch

from spikecodec.train.families.roy.ann import AnnAE
from spikecodec.train.families.roy_audio.data import Pairing, protocol_scores
from spikecodec.train.progress import progress
from spikecodec.train.seeds import epoch_order


def quantize_levels(h: torch.Tensor, bits: int) -> torch.Tensor:
    """Values in [0, 1] rounded to ``2**bits`` evenly spaced levels (``bits=0``: unchanged)."""
    if bits == 0:
        return h
    top = 2 ** bits - 1
    return torch.round(h * top) / top


def audiocoder_ann(in_features: int, hidden: int, code: int, seed: int) -> torch.nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(in_features, hidden), torch.nn.Sigmoid(),
                              torch.nn.Linear(hidden, code), torch.nn.Sigmoid())
    with torch.no_grad():
        for layer in (net[0], net[2]):
            bound = 1.0 / layer.in_features ** 0.5
            layer.weight.copy_((torch.rand(layer.weight.shape, generator=gen) * 2 - 1) * bound)
            layer.bias.copy_((torch.rand(layer.bias.shape, generator=gen) * 2 - 1) * bound)
    return net


def ann_synthesis_mse(ae: AnnAE, train_features: torch.Tensor, pairing: Pairing,
                      test_features: torch.Tensor, test_labels: torch.Tensor, *, kind: str,
                      hidden: int, bits: int, optimizer: str, lr: float, weight_decay: float,
                      epochs: int, batch_size: int, seed: int,
                      show_progress: bool = False) -> dict[str, float]:
    """Train an AC-ANN onto ``ae``'s quantized hidden vectors; test MSE of the synthesis."""
    with torch.no_grad():
        codes = quantize_levels(torch.sigmoid(ae.encoder(pairing.bank)), bits)
    targets = codes[pairing.train_index]
    net = audiocoder_ann(train_features.shape[1], hidden, codes.shape[1], seed)
    opt_type = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
    opt = opt_type(net.parameters(), lr=lr, weight_decay=weight_decay)
    n = len(train_features)
    steps = [(e, s) for e in range(epochs) for s in range(0, n, batch_size)]
    order = None
    for epoch, start in progress(steps, desc=f"AC-ANN ({optimizer}, {bits} bits)",
                                 enabled=show_progress):
        if start == 0:
            order = epoch_order(n, seed, epoch)
        index = order[start:start + batch_size]
        loss = 0.5 * ((net(train_features[index]) - targets[index]) ** 2).sum() / len(index)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        images = torch.sigmoid(ae.decoder(net(test_features)))
        scores = protocol_scores(kind, images, test_labels, pairing.bank, pairing.bank_labels)
    return {**scores, "final_loss": loss.item()}

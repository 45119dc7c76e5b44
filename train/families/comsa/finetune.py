"""Deployment-aware training of the Comsa autoencoder: the deployed model forward, the exact
spike-time gradient backward (``train.deploy_aware``).

Forward: the model is quantized onto its grid (quantize.py) and run as the discrete fixed-point
model (discrete.py, the reference engine's arithmetic); its hidden and output spike steps, read
as times (quantize.py: step ``n`` of layer ``l`` is ``(n + (l + 1) / 2) dt``), are the values
the loss sees. Backward: the continuous layers' exact spike-time gradients (spiketime.py),
evaluated where the discrete model is -- the output layer gets the discrete hidden times as its
inputs -- and passed straight through the rounding: ``t = t_c + (t_d - t_c).detach()``. Where
either model is silent the value is the discrete one and no gradient passes (the no-spike
penalty of the continuous layer still applies). As Göltz et al. trained with an integrator
forward and the exact backward, the deployed network is then the evaluated one.
"""
from __future__ import annotations

from typing import Any

import torch

from spikecodec.train.families.comsa.discrete import DiscreteComsaAE
from spikecodec.train.families.comsa.model import ComsaAE, ComsaOutput
from spikecodec.train.families.comsa.quantize import (
    Grid,
    grid_for,
    input_spikes,
    output_times,
    quantize,
)


def straight_through(continuous: torch.Tensor, discrete: torch.Tensor) -> torch.Tensor:
    """The discrete values with the continuous gradient where both spike (else no gradient)."""
    both = torch.isfinite(continuous) & torch.isfinite(discrete)
    delta = torch.where(both, discrete - continuous, torch.zeros_like(continuous)).detach()
    return torch.where(both, continuous + delta, discrete)


@torch.no_grad()
def discrete_times(model: ComsaAE, x: torch.Tensor, cfg: Any) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
    """Hidden and output spike times ``(B, n)`` of the deployed model of ``model`` for input
    times ``x (B, pixels)`` (float64, ``+inf`` silent)."""
    layers, _ = quantize(model, cfg)
    return discrete_model_times(layers, x, grid_for(cfg, layers=len(layers)))


@torch.no_grad()
def discrete_model_times(layers, x: torch.Tensor, grid: Grid, *, chunk: int = 250
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden and output spike times of the deployed ``layers`` for input times ``x``,
    ``chunk`` samples at a time (the spikes of a chunk are ``(chunk, pixels, T)`` bytes)."""
    model = DiscreteComsaAE(layers, grid.num_steps)
    hidden, output = [], []
    for lo in range(0, len(x), chunk):
        h, o = model(input_spikes(x[lo:lo + chunk].cpu(), grid))
        hidden.append(output_times(h, Grid(grid.dt, grid.num_steps, 1)))
        output.append(output_times(o, grid))
    return torch.cat(hidden), torch.cat(output)


def deploy_aware_forward(model: ComsaAE, x: torch.Tensor, cfg: Any, *,
                         clip: float | None = None, penalty: float = 0.0) -> ComsaOutput:
    """The module docstring's forward for input times ``x (B, pixels)``."""
    t_hidden, t_out = (t.to(x.device, x.dtype) for t in discrete_times(model, x, cfg))
    hidden = straight_through(model.encoder(x, clip=clip, penalty=penalty), t_hidden)
    output = straight_through(model.decoder(hidden, clip=clip, penalty=penalty), t_out)
    return ComsaOutput(hidden, output)

"""Membrane-potential loss of Roy et al. 2019 (section 2.3, eqs. 5-8).

At every step the desired output membrane potential is ``O[t] = Vth * x_spike[t]``; the error
``E[t] = mask[t] * (O[t] - V[t])`` is kept only where the output spike disagrees with the input
spike, ``mask[t] = XOR(x_spike[t], A_out[t])``; the loss is ``1/2 |E|^2``. Neurons that should
fire but stay below threshold are pulled up to Vth; neurons that fire wrongly are pushed to 0;
correct neurons are left alone (the paper found the mask essential).

Reduction: summed over neurons and time, averaged over the batch.
"""
from __future__ import annotations

import torch

from spikecodec.errors import InputError


class MembranePotentialLoss(torch.nn.Module):
    """``loss(voltage, output_spikes, target_spikes)`` on ``(batch, neurons, time)`` tensors.

    ``voltage`` is the output layer's membrane potential before reset (real units, threshold
    ``threshold``); the spike tensors are 0/1. ``xor_mask=False`` gives the unmasked variant the
    paper compares against.
    """

    def __init__(self, threshold: float = 1.0, *, xor_mask: bool = True):
        super().__init__()
        self.threshold = threshold
        self.xor_mask = xor_mask

    def forward(self, voltage: torch.Tensor, output_spikes: torch.Tensor,
                target_spikes: torch.Tensor) -> torch.Tensor:
        if not voltage.shape == output_spikes.shape == target_spikes.shape:
            raise InputError(
                "voltage, output_spikes and target_spikes must share (batch, neurons, time); "
                f"got {tuple(voltage.shape)}, {tuple(output_spikes.shape)}, "
                f"{tuple(target_spikes.shape)}"
            )
        return _MaskedSquare.apply(voltage, output_spikes.detach(), target_spikes.detach(),
                                   float(self.threshold), self.xor_mask)


class _MaskedSquare(torch.autograd.Function):
    """``1/(2B) sum E^2`` with ``E = mask * (Vth x - V)`` in a few passes over the tensors, and
    its gradient ``dL/dV = -E / B`` in one (autograd over the same expression takes about ten;
    the loss is summed over every neuron and step of the output layer, the largest tensor of a
    training step). The gradient is the same expression autograd derives: ``E`` is linear in
    ``V`` with coefficient ``-mask``, and ``mask^2 = mask`` for 0/1 masks; spikes and targets
    get no gradient (as before, where the mask was detached and the target is input).

    Every pass runs over tensors of one memory layout: a target laid out differently from the
    voltage (a ``(B, n, T)`` input beside a model's time-major voltage) is copied into the
    voltage's layout once, instead of being read across its strides by every pass. The XOR
    mask of 0/1 spikes is ``|x - A|`` as a float, multiplied in: float arithmetic throughout
    (on this CPU torch's bool-producing comparisons and ``masked_fill_`` take several times
    longer than a float pass). A masked entry becomes a zero of either sign (the same value);
    a non-finite voltage would give a non-finite loss even where masked."""

    @staticmethod
    def forward(ctx, voltage, output_spikes, target_spikes, threshold: float, xor_mask: bool):
        # E in the voltage's memory layout (a model's time-major tensor seen as (B, n, T)), so
        # its gradient reaches the model without a transposing copy
        error = torch.empty_like(voltage)
        target = _like(target_spikes, error)
        if threshold == 1.0:  # O = x: one pass
            torch.sub(target, voltage, out=error)
        else:
            torch.mul(target, threshold, out=error).sub_(voltage)  # O[t] - V[t], O = Vth x
        if xor_mask:
            xor = torch.sub(target, _like(output_spikes, error)).abs_()  # XOR(x, A_out), 0/1
            error.mul_(xor)
        ctx.save_for_backward(error)
        flat = _memory_order(error).reshape(-1)  # a view: empty_like is dense
        return torch.linalg.vecdot(flat, flat) * (0.5 / voltage.shape[0])

    @staticmethod
    def backward(ctx, grad):
        (error,) = ctx.saved_tensors
        return error * (-grad / error.shape[0]), None, None, None, None


def _like(x: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
    """``x`` itself when it is laid out as ``layout`` (same strides and dtype), else a copy of
    ``x`` in ``layout``'s memory layout and dtype (one pass; exact for 0/1 spikes)."""
    if x.stride() == layout.stride() and x.dtype == layout.dtype:
        return x
    return torch.empty_like(layout).copy_(x)


def _memory_order(x: torch.Tensor) -> torch.Tensor:
    """``x`` permuted so that its dimensions run in memory order (a contiguous view when ``x``
    is dense, as ``empty_like`` makes it)."""
    return x.permute(*sorted(range(x.dim()), key=lambda d: -x.stride(d)))

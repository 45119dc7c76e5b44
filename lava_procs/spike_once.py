"""Spike-once alpha neuron in fixed point (Comsa et al. 2021 on Loihi 2): the one source of truth.

A Loihi CUBA neuron (:func:`spikecodec.lava_procs.cuba.cuba_step`, whose equations hold) with
**equal** current and voltage decays ``du = dv = d`` that **fires at most once** per sample::

    (u, v), s = cuba_step((u, v), a, du=d, dv=d, vth)     # decay, integrate, threshold, reset v
    s'        = s & ~fired                                # only the first spike leaves
    fired     = fired | s'                                # silent until the sample's reset

Why this is the alpha neuron on a grid: with ``q = 1 - d / 4096`` (up to the rounding of
``rstz``), one input ``a`` at step ``s`` leaves ``u[s + j] = q^j a`` and
``v[s + j] = (j + 1) q^j a``; the continuous alpha potential ``w (t - t_i) exp(-K (t - t_i))``
of an input at ``t_i = s dt`` sampled at ``t = (s + j + 1) dt`` is ``(j + 1) dt q_K^(j+1) w``
with ``q_K = exp(-K dt)``. So ``a = S dt q_K w`` (``S`` the state units per unit of potential)
makes ``v[n]`` the continuous potential one grid step later, exactly while ``q = q_K``: the
one-step delay of Lava's Dense (every layer's synapse) is that step.

The state after the first spike no longer matters (no spike can leave), so the neuron keeps
integrating as a plain CUBA neuron; Lava's fixed_pt LIF alone would fire again while ``u > 0``,
which is why this neuron is its own process
(:mod:`spikecodec.lava_procs.spike_once_alpha`). numpy or torch arrays alike (the operators are
shared): the reference engine, the Lava process models and the quantized torch forward of the
Comsa family all call :func:`spike_once_step`.
"""
from __future__ import annotations

from typing import NamedTuple

from spikecodec.lava_procs.cuba import CubaParams, CubaState, cuba_step, cuba_step_hits


class SpikeOnceState(NamedTuple):
    """Integer ``u``, ``v`` (state units) and boolean ``fired``, each shaped like the
    population (e.g. ``(batch, neurons)``)."""

    u: object
    v: object
    fired: object


def spike_once_params(decay: int, vth: int) -> CubaParams:
    """The CUBA parameters of a spike-once alpha neuron: both decays ``decay`` (4096 scale),
    threshold ``vth`` in state units (``v_th_mant << 6``)."""
    return CubaParams(du=decay, dv=decay, vth=vth)


def spike_once_step(state: SpikeOnceState, a_in, p: CubaParams, *, bounded: bool = True,
                    hits: bool = False):
    """Advance one step: ``(new_state, spikes)`` with at most one spike per neuron and sample.

    ``bounded`` (default): Lava's int32 / 24-bit current wrap and voltage saturation, as a CUBA
    compartment on Loihi 2 would apply them (:mod:`spikecodec.lava_procs.cuba`); needs int64
    state. ``hits`` (bounded only) also returns where those bounds changed the state:
    ``(new_state, spikes, BoundHits)``.
    """
    cuba = CubaState(state.u, state.v)
    if hits:
        cuba, _, spikes, bits = cuba_step_hits(cuba, a_in, p)
    else:
        cuba, _, spikes = cuba_step(cuba, a_in, p, bounded=bounded, voltage=False)
    first = spikes & ~state.fired  # fire at most once
    new = SpikeOnceState(cuba.u, cuba.v, state.fired | first)  # then stay silent
    return (new, first, bits) if hits else (new, first)

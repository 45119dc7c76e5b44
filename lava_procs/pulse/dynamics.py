"""Pulse sources: ``P`` spike sources that fire at fixed steps of every sample window.

Pulse ``p`` fires on step ``steps[p]`` of each sample (0-based, within the sample's ``T``
steps) and at no other step::

    s[p] = (t == steps[p])

numpy or torch alike; the reference engine, the Lava process model and the quantized torch
forward of the Comsa family call :func:`pulse_spikes`. imports nothing.
"""
from __future__ import annotations


def pulse_spikes(steps, t: int):
    """Boolean spikes ``(P,)`` of the pulses with fire steps ``steps (P,)`` at step ``t``."""
    return steps == t

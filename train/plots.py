"""PNG figures for runs: reconstruction grids and training curves.

Figures are matplotlib ``Figure`` objects drawn on the Agg canvas directly: no pyplot, no global
backend, nothing left open, so plotting from a library call changes nothing in the caller's
process (a notebook keeps its inline backend).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from spikecodec.atomic import atomic_path


def new_figure(**kwargs):
    """A ``Figure`` on its own Agg canvas (``fig.subplots`` works as ``plt.subplots``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    return Path(path)


def reconstruction_grid(rows: Sequence[tuple[str, np.ndarray]], shape: tuple[int, int],
                        path: str | os.PathLike, *, title: str = "") -> Path:
    """One row per ``(label, maps)``; ``maps`` is ``(n, H*W)``, each image scaled on its own."""
    n = min(len(maps) for _, maps in rows)
    fig = new_figure(figsize=(1.1 * n, 1.2 * len(rows) + 0.4))
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (label, maps) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(np.asarray(maps[c]).reshape(shape), cmap="gray", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def training_curve(curves: dict[str, Sequence[float]], path: str | os.PathLike, *,
                   xlabel: str = "batch", ylabel: str = "loss") -> Path:
    """Line plot of named curves (e.g. the training loss per batch)."""
    fig = new_figure(figsize=(5, 3.2))
    ax = fig.subplots()
    for name, ys in curves.items():
        ax.plot(np.arange(len(ys)), ys, label=name, lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def raster(panels: Sequence[tuple[str, np.ndarray]], path: str | os.PathLike, *,
           title: str = "") -> Path:
    """Spike rasters, one panel per ``(label, spikes (neurons, time))``, sharing the time axis."""
    fig = new_figure(figsize=(6, 1.6 + 1.4 * len(panels)))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)
    for ax, (label, spikes) in zip(axes[:, 0], panels, strict=True):
        neurons, steps = np.nonzero(np.asarray(spikes))
        ax.scatter(steps, neurons, marker="|", s=30, lw=1, color="k")
        ax.set_ylabel(f"{label}\nneuron", fontsize=8)
        ax.set_ylim(-1, np.shape(spikes)[0])
        ax.grid(alpha=0.2)
    axes[-1, 0].set_xlabel("time step")
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)

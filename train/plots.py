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

RASTER_ROWS = 48  # more neurons than this: the raster is drawn as an image


def positions(truth: np.ndarray, estimate: np.ndarray, path: str | os.PathLike, *,
              title: str = "") -> Path:
    """True vs decoded positions over time: ``(T, items, positions)`` one-hot truth and
    probability estimates; the estimate as an image per item, the true position as dots."""
    items = truth.shape[1]
    fig = new_figure(figsize=(7, 1.2 + 1.8 * items))
    axes = fig.subplots(items, 1, sharex=True, squeeze=False)[:, 0]
    for i, ax in enumerate(axes):
        ax.imshow(estimate[:, i].T, aspect="auto", origin="lower", cmap="viridis",
                  interpolation="nearest", vmin=0, vmax=1)
        ax.plot(np.arange(truth.shape[0]), truth[:, i].argmax(-1), "w.", ms=4, label="true")
        ax.set_ylabel(f"item {i}\nposition", fontsize=8)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel("time step")
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


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
                   xlabel: str = "batch", log: Sequence[str] | None = None) -> Path:
    """Named curves (e.g. per batch), each on its own axes with its name and unit as the label
    (``{"decoder NLL (nats)": ..., "readout spikes per sample": ...}``), sharing the x axis;
    ``log`` names the curves drawn on a log scale (default: all whose values are positive)."""
    fig = new_figure(figsize=(5.5, 1.2 + 1.8 * len(curves)))
    axes = fig.subplots(len(curves), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, ys) in zip(axes, curves.items(), strict=True):
        ys = np.asarray(ys, dtype=float)
        ax.plot(np.arange(len(ys)), ys, lw=1)
        ax.set_ylabel(name, fontsize=8)
        positive = ys.size and np.all(ys[np.isfinite(ys)] > 0)
        if (name in log) if log is not None else positive:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(xlabel)
    return save_figure(fig, path)


def raster(panels: Sequence[tuple[str, np.ndarray]], path: str | os.PathLike, *,
           title: str = "") -> Path:
    """Spike rasters, one panel per ``(label, spikes (neurons, time))``, sharing the time axis.

    Up to ``RASTER_ROWS`` neurons a panel marks each spike; more neurons are drawn as a
    time x neuron image (black: spike), which stays readable where hundreds of rows of tick
    marks merge into one black block."""
    fig = new_figure(figsize=(6, 1.6 + 1.4 * len(panels)))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)
    for ax, (label, spikes) in zip(axes[:, 0], panels, strict=True):
        spikes = np.asarray(spikes)
        if spikes.shape[0] > RASTER_ROWS:
            ax.imshow(spikes, aspect="auto", cmap="Greys", interpolation="nearest",
                      origin="lower", vmin=0, vmax=1)
        else:
            neurons, steps = np.nonzero(spikes)
            ax.scatter(steps, neurons, marker="|", s=30, lw=1, color="k")
            ax.set_ylim(-1, spikes.shape[0])
            ax.grid(alpha=0.2)
        ax.set_ylabel(f"{label}\nneuron", fontsize=8)
    axes[-1, 0].set_xlabel("time step")
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)

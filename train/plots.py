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
    panels = [(f"item {i}", estimate[:, i], truth[:, i],
               np.eye(truth.shape[2])[estimate[:, i].argmax(-1)]) for i in range(truth.shape[1])]
    return save_figure(tracks_figure(panels, title=title), path)


def tracks_figure(panels: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], *,
                  title: str = "", steps: int | None = None):
    """One panel per ``(label, probability (T, N), truth (T, N) 0/1, decoded (T, N) 0/1)``:
    the decoder's probability that each of the N positions is occupied as a time x position
    image (colour bar 0..1), the true positions as white circles and the decoded ones as red
    crosses; ``steps`` draws only the first steps (dots stay apart)."""
    fig = new_figure(figsize=(8, 0.9 + 1.9 * len(panels)))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    image = None
    for ax, (label, prob, truth, decoded) in zip(axes, panels, strict=True):
        prob, truth, decoded = (np.asarray(a)[:steps] for a in (prob, truth, decoded))
        image = ax.imshow(prob.T, aspect="auto", origin="lower", cmap="viridis",
                          interpolation="nearest", vmin=0, vmax=1)
        t, n = np.nonzero(truth)
        ax.scatter(t, n, s=22, facecolors="none", edgecolors="white", lw=1.0, label="true")
        t, n = np.nonzero(decoded)
        ax.scatter(t, n, s=14, marker="x", color="red", lw=1.0, label="decoded")
        ax.set_ylabel(f"{label}\nposition (input neuron)", fontsize=8)
    axes[0].legend(fontsize=7, loc="upper right", ncol=2, framealpha=0.8)
    axes[-1].set_xlabel("time step")
    fig.colorbar(image, ax=list(axes), label="decoded probability", fraction=0.03, pad=0.01)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def tracks(panels: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
           path: str | os.PathLike, *, title: str = "", steps: int | None = None) -> Path:
    """:func:`tracks_figure` saved as a PNG at ``path``."""
    return save_figure(tracks_figure(panels, title=title, steps=steps), path)


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


def training_curve_figure(curves: dict[str, Sequence[float]], *, xlabel: str = "batch",
                          log: Sequence[str] | None = None, smooth: int = 0):
    """Named curves (e.g. per batch), each on its own axes with its name and unit as the label
    (``{"decoder NLL (nats)": ..., "readout spikes per sample": ...}``), sharing the x axis;
    ``log`` names the curves drawn on a log scale (default: all whose values are positive);
    ``smooth > 1`` draws the raw values faintly and their running mean over ``smooth`` points."""
    fig = new_figure(figsize=(6, 0.9 + 1.6 * len(curves)))
    axes = fig.subplots(len(curves), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, ys) in zip(axes, curves.items(), strict=True):
        ys = np.asarray(ys, dtype=float)
        xs = np.arange(len(ys))
        if smooth > 1 and len(ys) > smooth:
            ax.plot(xs, ys, lw=0.6, alpha=0.3, color="C0")
            kernel = np.ones(smooth) / smooth
            ax.plot(xs[smooth - 1:], np.convolve(ys, kernel, mode="valid"), lw=1.2, color="C0")
        else:
            ax.plot(xs, ys, lw=1, color="C0")
        ax.set_ylabel(name, fontsize=8)
        positive = ys.size and np.all(ys[np.isfinite(ys)] > 0)
        if (name in log) if log is not None else positive:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(xlabel)
    fig.align_ylabels(axes)
    return fig


def training_curve(curves: dict[str, Sequence[float]], path: str | os.PathLike, *,
                   xlabel: str = "batch", log: Sequence[str] | None = None,
                   smooth: int = 0) -> Path:
    """:func:`training_curve_figure` saved as a PNG at ``path``."""
    return save_figure(training_curve_figure(curves, xlabel=xlabel, log=log, smooth=smooth),
                       path)


def raster_figure(panels: Sequence[tuple[str, np.ndarray]], *, title: str = "",
                  image: bool | None = None):
    """Spike rasters, one panel per ``(label, spikes (neurons, time))``, sharing the time axis.

    Up to ``RASTER_ROWS`` neurons a panel marks each spike; more neurons are drawn as a
    time x neuron image (black: spike), which stays readable where hundreds of rows of tick
    marks merge into one black block. ``image`` True / False forces one or the other."""
    fig = new_figure(figsize=(6, 1.6 + 1.4 * len(panels)))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)
    for ax, (label, spikes) in zip(axes[:, 0], panels, strict=True):
        spikes = np.asarray(spikes)
        if (spikes.shape[0] > RASTER_ROWS) if image is None else image:
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
    return fig


def raster(panels: Sequence[tuple[str, np.ndarray]], path: str | os.PathLike, *,
           title: str = "", image: bool | None = None) -> Path:
    """:func:`raster_figure` saved as a PNG at ``path``."""
    return save_figure(raster_figure(panels, title=title, image=image), path)

"""Spike files: a user's own spikes into ``run``, ``eval`` and ``check`` (``--input FILE``).

A spike file is a ``.npy`` array or a ``.npz`` archive of one (or of several: the key
``input``, then ``spikes``, is taken, so a ``run --out`` file feeds straight back in) shaped
``(batch, neurons, time)`` and holding only 0 and 1 (bool, any integer type, or floats that are
exactly 0.0/1.0). ``eval`` also takes ``--target FILE`` of the same form for the output layer
and scores the outputs with a ``--metric``:

* ``spike_mse`` (default) -- Roy et al.'s Spike-MSE: per-sample z-normalised spike counts of
  output vs target (:func:`spikecodec.deploy.metrics.spike_mse`);
* ``agreement`` -- fraction of equal ``(sample, neuron, step)`` entries (1.0 is identical);
* ``count_mse`` -- mean squared difference of the spike counts per neuron and sample.

Without ``--target`` the target is the input itself (an autoencoder reconstructs it), which
needs as many outputs as inputs. Every failure is an :class:`~spikecodec.errors.InputError`
naming the file (and the key) and what is wrong; nothing is written before the inputs pass.
Exports that name no model family (a lava-dl file, a NIR import) run with ``--input``; an
export of a family keeps its float row in ``check``.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.errors import InputError
from spikecodec.train.families import ExportInputs

METRICS = ("spike_mse", "agreement", "count_mse")
_KEYS = ("input", "spikes")  # what an .npz is searched for, in order


def read_spike_file(path: str | Path, *, what: str = "input") -> np.ndarray:
    """The binary ``(batch, neurons, time)`` array in ``path`` as uint8; :class:`InputError`
    naming the file (and key) for a missing or unreadable file, a wrong shape or dtype, or a
    value other than 0/1. ``what`` names the option in messages (``input``, ``target``)."""
    path = Path(path)
    where = f"{what} file {path}"
    if not path.is_file():
        raise InputError(f"{where}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise InputError(f"{where}: not a readable .npy/.npz file ({err})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            keys = list(loaded.files)
            key = next((k for k in _KEYS if k in keys), keys[0] if len(keys) == 1 else None)
            if key is None:
                raise InputError(f"{where}: an .npz needs one array, or one named "
                                 f"{' or '.join(_KEYS)}; it has {keys or 'none'}")
            try:
                array = loaded[key]
            except ValueError as err:  # object arrays need pickle
                raise InputError(f"{where}: array {key!r} cannot be read without pickle "
                                 f"({err})") from None
            where = f"{where} (array {key!r})"
    else:
        array = loaded
    return check_spikes(array, where)


def check_spikes(array: Any, where: str) -> np.ndarray:
    """``array`` as uint8 if it is binary ``(batch, neurons, time)``, else :class:`InputError`
    naming ``where``."""
    array = np.asarray(array)
    if array.ndim != 3 or 0 in array.shape:
        raise InputError(f"{where}: spikes must be a (batch, neurons, time) array with every "
                         f"size >= 1, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise InputError(f"{where}: spikes must be bool, integer or float 0/1, got dtype "
                         f"{array.dtype}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InputError(f"{where}: spikes contain non-finite values")
    bad = ~np.isin(array, (0, 1))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{where}: spikes must be 0 or 1; found {array[idx]!r} at (sample, "
                         f"neuron, step) {idx} ({int(bad.sum())} such values)")
    return array.astype(np.uint8)


def file_inputs(net: FixedPointNetwork, path: str | Path, *, target: str | Path | None = None,
                samples: int | None = None) -> ExportInputs:
    """:class:`ExportInputs` of a spike file for ``net`` (the first ``samples``); the target is
    the ``target`` file, or the input spikes themselves when none is given."""
    import torch

    spikes = read_spike_file(path)
    if spikes.shape[1] != net.in_features:
        raise InputError(f"input file {path}: {spikes.shape[1]} neurons, but the export takes "
                         f"{net.in_features} inputs (spikes are (batch, neurons, time))")
    if samples is not None:
        spikes = spikes[:samples]
    if target is not None:
        goal = read_spike_file(target, what="target")
        if samples is not None:
            goal = goal[:samples]
        expected = (len(spikes), net.out_features, spikes.shape[2])
        if goal.shape != expected:
            raise InputError(f"target file {target}: shape {goal.shape}, expected {expected} "
                             f"(samples, the export's {net.out_features} outputs, the input's "
                             f"steps)")
    else:
        goal = spikes
    return ExportInputs(spikes=torch.from_numpy(spikes), labels=None, target=goal,
                        context=None, description=f"file {Path(path).name}")


def score_spikes(output: np.ndarray, target: np.ndarray, metric: str) -> float:
    """One of :data:`METRICS` for output spikes against target spikes (same shapes)."""
    import torch

    from spikecodec.deploy.metrics import spike_mse

    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    output, target = np.asarray(output), np.asarray(target)
    if output.shape != target.shape:
        raise InputError(f"the target has shape {target.shape} but the network's output is "
                         f"{output.shape}; give --target spikes of the output layer's shape")
    if metric == "agreement":
        return float((output == target).mean())
    if metric == "count_mse":
        diff = output.sum(-1).astype(np.float64) - target.sum(-1).astype(np.float64)
        return float((diff ** 2).mean())
    return float(spike_mse(torch.from_numpy(target.astype(np.float32)),
                           torch.from_numpy(output.astype(np.float32))).mean())


def evaluate_file(net: FixedPointNetwork, inputs: ExportInputs, *, metric: str = "spike_mse",
                  backend: str = "reference", show_progress: bool = False,
                  backend_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run a spike file's inputs on ``backend`` and score the outputs against its target:
    ``metric``, spikes per sample of every layer, seconds and samples/s."""
    import time

    from spikecodec.deploy.backends import run

    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    n = len(inputs.spikes)
    expected = (n, net.out_features, int(inputs.spikes.shape[2]))
    if tuple(np.shape(inputs.target)) != expected:
        raise InputError(f"the target has shape {tuple(np.shape(inputs.target))} but the "
                         f"network's output is {expected}; give --target spikes of the output "
                         f"layer's shape")
    tic = time.perf_counter()
    result = run(net, inputs.spikes, backend=backend, probe=True, show_progress=show_progress,
                 **(backend_options or {}))
    seconds = time.perf_counter() - tic
    return {"backend": backend, "data": inputs.description, "samples": n, "metric": metric,
            metric: score_spikes(result.spikes, inputs.target, metric),
            "spikes_per_sample": {layer.name: float(s.sum()) / n
                                  for layer, s in zip(net.layers, result.layers, strict=True)},
            "seconds": seconds, "samples_per_second": n / seconds}


def probe_indices(net: FixedPointNetwork, names: list[str] | None) -> list[int]:
    """Indices of the layers called ``names`` (``--probe``); :class:`InputError` listing the
    export's layers for an unknown name."""
    known = [layer.name for layer in net.layers]
    out = []
    for name in names or []:
        if name not in known:
            raise InputError(f"--probe {name}: no such layer; this export's layers are "
                             f"{', '.join(known)}")
        out.append(known.index(name))
    return out

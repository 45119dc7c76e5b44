"""The public Python API: what the ``spikecodec`` command does, as functions.

Everything here is also importable from the package itself (``spikecodec.train_model``,
``spikecodec.quantize``, ...; ``spikecodec.train`` is the training subpackage), loaded lazily
on first use so that ``import spikecodec`` stays cheap (no torch, no Lava). A typical session::

    import spikecodec as sc

    run = sc.train_model("roy-ae", overrides=["train.epochs=2"], out="runs/mine")  # paper model
    net = sc.read_export(run.export)                 # a FixedPointNetwork
    spikes = sc.run(net, my_spikes)                  # (batch, neurons, time) -> RunResult
    metrics = sc.evaluate(net, samples=100)          # the family's metrics on its test split
    report = sc.check(net)                           # Loihi 2 bits, cores, mapping

    net = sc.quantize([block1, block2], num_steps=20)   # your own CubaDense / lava-dl blocks
    sc.write_export(net, "mine.h5")
    sc.write_nir(net, "mine.nir")                    # to snnTorch, Norse, ...
    imported = sc.import_nir("theirs.nir", "theirs.h5")  # from them, quantized
    sc.bundle("mine.h5", "inrc-kit")                 # for a Loihi 2 machine

Every function raises the typed errors of :mod:`spikecodec.errors` on bad input.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


def train_model(family: str, *, config: str | Path | None = None, overrides: list[str] = (),
          out: str | Path | None = None, resume: str | Path | None = None,
          show_progress: bool = False):
    """Train model family ``family`` (``roy-ae``, ``vdib``, ``comsa``) as ``spikecodec train``
    does: ``config`` a TOML file, ``overrides`` ``"table.key=value"`` strings, ``out`` the run
    folder, ``resume`` a run folder to continue. Returns ``TrainedRun(results, net, export)``."""
    from spikecodec.train.families import get_family
    from spikecodec.workflows.training import start_run, train_run

    fam = get_family(family)
    plan = start_run(fam, config=None if config is None else str(config),
                     overrides=list(overrides), out=None if out is None else str(out),
                     resume=None if resume is None else str(resume), log=_quiet)
    return train_run(fam, plan, show_progress=show_progress, log=_quiet)


def _quiet(message: str) -> None:
    return None


def quantize(blocks: Any, *, num_steps: int, input_shape: tuple[int, ...] | None = None,
             names: list[str] | None = None):
    """Your own feed-forward CUBA network (``CubaDense`` and/or lava-dl ``cuba.Dense``
    blocks) as a ``FixedPointNetwork`` (:func:`spikecodec.train.quantize.quantize_blocks`)."""
    from spikecodec.train.quantize import quantize_blocks

    return quantize_blocks(blocks, num_steps=num_steps, input_shape=input_shape, names=names)


def export_run(run_dir: str | Path, out: str | Path | None = None):
    """Quantize a training run and write its NetX export; returns ``(net, path)``."""
    from spikecodec.workflows.exporting import export_run as _export_run

    return _export_run(run_dir, out)


def write_export(net: Any, path: str | Path) -> Path:
    """Write a ``FixedPointNetwork`` as a NetX HDF5 export (atomically)."""
    from spikecodec.deploy.hdf5 import write_hdf5

    return write_hdf5(net, Path(path))


def read_export(path: str | Path):
    """Read an export (ours or lava-dl's) as a ``FixedPointNetwork``."""
    from spikecodec.deploy.hdf5 import read_hdf5

    return read_hdf5(path)


def run(net: Any, spikes: Any, *, backend: str = "reference", probe: bool = False,
        **options: Any):
    """Run binary ``spikes (batch, in, time)`` on ``backend`` (``reference``, ``lava-sim``,
    ``loihi2``); returns ``RunResult(spikes, layers, stats)``, outputs aligned to the input."""
    from spikecodec.deploy.backends import run as _run

    return _run(net, spikes, backend=backend, probe=probe, **options)


def evaluate(net: Any, *, backend: str = "reference", samples: int | None = None,
             split: str = "test", data_dir: str | None = None) -> dict[str, Any]:
    """The metrics of an export of a model family on its own dataset split (as ``spikecodec
    eval``); for your own spikes use :func:`evaluate_spikes`."""
    from spikecodec.workflows.evaluate import evaluate_export

    return evaluate_export(net, backend=backend, samples=samples, split=split,
                           data_dir=data_dir).metrics


def evaluate_spikes(net: Any, spikes: Any, target: Any = None, *, metric: str = "spike_mse",
                    backend: str = "reference") -> dict[str, Any]:
    """Score ``net``'s outputs for ``spikes`` against ``target`` spikes (default: the input
    itself) with ``metric`` (``spike_mse``, ``agreement``, ``count_mse``)."""
    import numpy as np
    import torch

    from spikecodec.train.families import ExportInputs
    from spikecodec.workflows.spikefiles import check_spikes, evaluate_file

    x = check_spikes(spikes, "spikes")
    goal = x if target is None else check_spikes(target, "target")
    inputs = ExportInputs(torch.from_numpy(x), None, np.asarray(goal), None, "arrays")
    return evaluate_file(net, inputs, metric=metric, backend=backend)


def check(net: Any) -> dict[str, Any]:
    """The Loihi 2 report of ``net`` (bits per register, cores, mapping, problems)."""
    from spikecodec.deploy.check import loihi2_report

    return loihi2_report(net)


def parity(net: Any, spikes: Any) -> dict[str, Any]:
    """Float model (where the export names a family), reference engine and Lava simulator on
    the same ``spikes``, layer by layer (as ``spikecodec check --input``)."""
    from spikecodec.workflows.parity import parity_report

    return parity_report(net, spikes, metric=("spikes/sample",
                                              lambda s: float(s.sum()) / len(s)))


def read_spikes(path: str | Path):
    """Binary ``(batch, neurons, time)`` spikes from an ``.npy`` / ``.npz`` file (uint8)."""
    from spikecodec.workflows.spikefiles import read_spike_file

    return read_spike_file(path)


def to_nir(net: Any, *, dt: float = 1e-4):
    """``net`` as a ``nir.NIRGraph`` (dense CUBA layers -> Linear + CubaLIF)."""
    from spikecodec.deploy.nirgraph import to_nir as _to_nir

    return _to_nir(net, dt=dt)


def write_nir(net: Any, path: str | Path, *, dt: float = 1e-4) -> Path:
    """Write ``net`` as a NIR file (atomically)."""
    from spikecodec.deploy.nirgraph import write_graph

    return write_graph(to_nir(net, dt=dt), path)


def import_nir(graph: Any, out: str | Path | None = None, **options: Any):
    """Quantize a NIR graph (or file) to Loihi 2; returns ``NIRImport(net, report, path)``
    (:func:`spikecodec.workflows.interop.import_nir` lists the options)."""
    from spikecodec.workflows.interop import import_nir as _import_nir

    return _import_nir(graph, out, **options)


def bundle(export: str | Path, folder: str | Path, *, input_spikes: Any = None) -> Path:
    """Write the Loihi 2 (INRC) kit of an export into the new ``folder``."""
    from spikecodec.workflows.bundle import make_bundle

    return make_bundle(export, folder, input_spikes=input_spikes)


def default_config(family: str) -> str:
    """The full default config of ``family`` as commented TOML (``spikecodec config``)."""
    from spikecodec.workflows.configs import default_config_toml

    return default_config_toml(family)


__all__ = ["bundle", "check", "default_config", "evaluate", "evaluate_spikes", "export_run",
           "import_nir", "parity", "quantize", "read_export", "read_spikes", "run", "to_nir",
           "train_model", "write_export", "write_nir"]

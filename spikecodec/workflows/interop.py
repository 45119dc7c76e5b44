"""NIR export and import (``spikecodec export --format nir``, ``spikecodec import-nir``).

The conversions themselves are :mod:`spikecodec.deploy.nirgraph` (and each layer kind's
``to_nir`` / ``from_nir`` hooks); this module reads and writes the files and measures what an
import's rounding changed: every layer of the quantized network on the reference engine
against the NIR graph's float simulation, on the same input spikes (a spike file, or Bernoulli
spikes drawn from a seed).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.nirgraph import DT, check_stable, parse_graph, read_graph, simulate, to_nir
from spikecodec.errors import ConfigError


class NIRImport(NamedTuple):
    net: FixedPointNetwork
    report: dict[str, Any]  # per layer: rounding and spike agreement with the float graph
    path: Path | None  # the export written, if any


def load_network(source: str | Path) -> FixedPointNetwork:
    """An export (``.h5``) or a run directory (quantized by its family, as ``export`` does)."""
    from spikecodec.deploy.hdf5 import read_hdf5

    source = Path(source)
    if source.is_dir():
        from spikecodec.train.checkpoint import load_checkpoint
        from spikecodec.train.families import FAMILIES

        if not (source / "config.toml").is_file():
            raise ConfigError(f"{source} is not a run directory (no config.toml)")
        ckpt = load_checkpoint(source / "checkpoint.pt", model_kind=tuple(FAMILIES))
        return FAMILIES[ckpt["model_kind"]].export(source, ckpt)
    return read_hdf5(source)


def export_nir(source: str | Path, out: str | Path | None = None, *, dt: float = DT
               ) -> tuple[Any, Path]:
    """Write the NIR graph of an export or run directory (default: beside it, ``.nir``)."""
    from spikecodec.deploy.nirgraph import write_graph

    source = Path(source)
    graph = to_nir(load_network(source), dt=dt)
    if out is None:
        out = source / "export.nir" if source.is_dir() else source.with_suffix(".nir")
    return graph, write_graph(graph, out)


def import_nir(graph: Any, out: str | Path | None = None, *, dt: float | None = None,
               num_steps: int | None = None, spikes: np.ndarray | None = None,
               samples: int = 100, rate: float = 0.2, seed: int = 0) -> NIRImport:
    """Quantize a NIR graph (a ``nir.NIRGraph`` or a file) to a Loihi 2 fixed-point network,
    report per layer what rounding changed and how many spikes still agree with the graph's
    float simulation (on ``spikes``, or ``samples`` Bernoulli(``rate``) inputs of
    ``num_steps`` steps drawn from ``seed``), and write it as a NetX export to ``out``.
    ``dt`` and ``num_steps`` default to the graph's metadata (graphs spikecodec writes carry
    both), else 1e-4 (:data:`~spikecodec.deploy.nirgraph.DT`) and 32."""
    from spikecodec.deploy.backends import run
    from spikecodec.deploy.hdf5 import write_hdf5
    from spikecodec.deploy.layers import LAYER_KINDS

    source = None
    if isinstance(graph, (str, Path)):
        source = str(graph)
        if out is not None:
            from spikecodec.atomic import check_target

            check_target(out)  # before the work
        graph = read_graph(graph)
    meta = getattr(graph, "metadata", None) or {}
    if dt is None:
        dt = float(meta["dt"]) if isinstance(meta.get("dt"), (int, float)) else DT
    if num_steps is None:
        stored = meta.get("num_steps")
        num_steps = int(stored) if isinstance(stored, (int, np.integer)) and stored > 0 else 32
    layers = parse_graph(graph, dt=dt)
    check_stable(layers, dt)
    quantized, rounding = zip(*(LAYER_KINDS["dense"].from_nir(spec) for spec in layers),
                              strict=True)
    if spikes is None:
        if not 0 < rate < 1:
            raise ConfigError(f"rate must be in (0, 1), got {rate}")
        rng = np.random.default_rng(seed)
        spikes = (rng.random((samples, layers[0].in_features, num_steps)) < rate).astype(np.uint8)
        drawn = f"{samples} samples of Bernoulli({rate}) spikes, seed {seed}"
    else:
        from spikecodec.errors import InputError
        from spikecodec.workflows.spikefiles import check_spikes

        spikes = check_spikes(spikes, "input spikes")
        if spikes.shape[1] != layers[0].in_features:
            raise InputError(f"input spikes: {spikes.shape[1]} neurons, but the NIR graph "
                             f"takes {layers[0].in_features}")
        drawn = f"{len(spikes)} samples from a spike file"
        num_steps = int(spikes.shape[2])
    report = {"source": source, "dt": dt, "inputs": drawn, "layers": list(rounding)}
    net = FixedPointNetwork(
        layers=quantized, input=InputSpec("spikes", num_steps, (layers[0].in_features,)),
        metadata={"source": "nir", "extra": {"nir_file": source, "nir_dt": dt,
                                             "nir_rounding": _jsonable(rounding)}})
    floats = simulate(layers, spikes)
    result = run(net, spikes, backend="reference", probe=True)
    for row, ref, flo in zip(report["layers"], result.layers, floats, strict=True):
        row["spike_agreement"] = float((ref == flo).mean())
        row["samples_equal"] = int((ref == flo).reshape(len(ref), -1).all(axis=1).sum())
        row["spikes_float"] = int(flo.sum())
        row["spikes_fixed"] = int(ref.sum())
    path = write_hdf5(net, out) if out is not None else None
    return NIRImport(net, report, path)


def _jsonable(rows) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items()} for row in rows]


def format_import(report: dict[str, Any]) -> str:
    """The rounding report of :func:`import_nir` as a table."""
    lines = [f"NIR import (dt = {report['dt']:g}); agreement with the graph's float simulation "
             f"on {report['inputs']}",
             f"{'layer':<14} {'iDecay':>14} {'vDecay':>14} {'vThMant':>8} {'w changed':>9} "
             f"{'max w err':>9} {'clipped':>7} {'agreement':>10} {'equal':>7}"]
    for row in report["layers"]:
        dec = {k: f"{row[k]['exact']:.2f}->{row[k]['used']}" for k in ("i_decay", "v_decay")}
        lines.append(f"{row['layer']:<14} {dec['i_decay']:>14} {dec['v_decay']:>14} "
                     f"{row['v_th_mant']:>8} {row['weights_changed']:>9.1%} "
                     f"{row['weight_max_error']:>9.2g} {row['clipped']:>7} "
                     f"{row['spike_agreement']:>10.3%} {row['samples_equal']:>7}")
    lines.append("(weights in units of the threshold; 'equal': samples whose every spike "
                 "agrees)")
    return "\n".join(lines)

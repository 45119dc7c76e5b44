"""An export on a backend: its family's inputs, the backend's spikes, the family's score.

One path for every family: :meth:`Family.inputs` draws the split as the training run's
evaluation did (same seeds), :func:`spikecodec.deploy.backends.run` runs it, and
:meth:`Family.score` turns the output spikes into the family's metrics (host decoding
included). On the reference engine -- and on Lava, spike for spike -- a family whose training
forward is the deployed arithmetic therefore reproduces its training-time metrics exactly.
"""
from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np

from spikecodec.deploy.backends import RunResult, run
from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.train.families import ExportInputs
from spikecodec.workflows.exporting import family_of


class Evaluation(NamedTuple):
    metrics: dict[str, Any]
    result: RunResult  # every layer's spikes (probe=True)
    inputs: ExportInputs


def export_inputs(net: FixedPointNetwork, args: Any) -> tuple[Any, ExportInputs]:
    """The family of ``net`` and the inputs the command line's data options (``split``,
    ``samples``, ``dataset``, ``data_dir``, ``download``) ask for."""
    family = family_of(net)
    return family, family.inputs(net, split=args.split, samples=args.samples,
                                 dataset=args.dataset, data_dir=args.data_dir,
                                 download=args.download)


def worker_options(args: Any) -> dict[str, Any]:
    """The lava-sim options of the command line's ``--workers`` and ``--lava-timeout``."""
    options = {"workers": args.workers} if args.workers else {}
    if getattr(args, "lava_timeout", None) is not None:
        options["timeout"] = args.lava_timeout
    return options


def synaptic_ops(net: FixedPointNetwork, inputs: np.ndarray, layers: list[np.ndarray]
                 ) -> float:
    """Synaptic events per sample: every spike into a layer reaches all its neurons."""
    sources = [inputs] + list(layers[:-1])
    total = sum(float(np.asarray(s).sum()) * layer.out_features
                for s, layer in zip(sources, net.layers, strict=True))
    return total / len(inputs)


def slice_inputs(inputs: ExportInputs, n: int) -> ExportInputs:
    """The first ``n`` samples of ``inputs``."""
    labels = None if inputs.labels is None else inputs.labels[:n]
    return inputs._replace(spikes=inputs.spikes[:n], labels=labels, target=inputs.target[:n])


def evaluate_export(net: FixedPointNetwork, *, backend: str = "reference",
                    samples: int | None = None, split: str = "test", dataset: str | None = None,
                    data_dir: str | None = None, download: bool = False,
                    inputs: ExportInputs | None = None, show_progress: bool = False,
                    backend_options: dict[str, Any] | None = None) -> Evaluation:
    """Run the first ``samples`` of ``split`` (or the given ``inputs``) on ``backend`` (with
    its ``backend_options``, e.g. ``{"workers": 2}`` for lava-sim) and score them. Metrics: the
    family's (``mse`` first), spikes per sample of every layer, synaptic operations per sample,
    backend seconds and samples/s, scoring seconds."""
    family = family_of(net)
    family.require_scorable(net)
    if inputs is None:
        inputs = family.inputs(net, split=split, samples=samples, dataset=dataset,
                               data_dir=data_dir, download=download)
    n = len(inputs.spikes)
    tic = time.perf_counter()
    result = run(net, inputs.spikes, backend=backend, probe=True, show_progress=show_progress,
                 **(backend_options or {}))
    seconds = time.perf_counter() - tic
    tic = time.perf_counter()
    scores = family.score(net, inputs, result.spikes)
    x = np.asarray(inputs.spikes, dtype=np.uint8)
    metrics: dict[str, Any] = {"backend": backend, "data": inputs.description, "samples": n,
                               **scores}
    metrics.update({
        "spikes_per_sample": {layer.name: float(s.sum()) / n
                              for layer, s in zip(net.layers, result.layers, strict=True)},
        "synops_per_sample": synaptic_ops(net, x, result.layers),
        "seconds": seconds,
        "samples_per_second": n / seconds,
        "score_seconds": time.perf_counter() - tic,
    })
    for key in ("u_wraps", "v_clips"):
        if key in result.stats:
            metrics[key] = result.stats[key]
    return Evaluation(metrics, result, inputs)


def run_export(net: FixedPointNetwork, family, inputs: ExportInputs, *,
               backend: str = "reference", show_progress: bool = False,
               backend_options: dict[str, Any] | None = None,
               probe: tuple[int, ...] | list[int] = ()
               ) -> tuple[dict[str, np.ndarray], str]:
    """Run ``inputs`` on ``backend`` (with its ``backend_options``); return the arrays worth
    saving (input and output spikes, ``probe/<layer>`` spikes of the layers at the indices
    ``probe``, the host's estimates and their reference where the family decodes, labels) and
    a report. An export without its host decoder still gives its spikes (the report says why
    no estimates); ``family=None`` (inputs from a spike file) decodes nothing."""
    from spikecodec.errors import ExportError

    n = len(inputs.spikes)
    tic = time.perf_counter()
    result = run(net, inputs.spikes, backend=backend, show_progress=show_progress,
                 probe=bool(probe), **(backend_options or {}))
    seconds = time.perf_counter() - tic
    lines = [f"{backend}: {n} {inputs.description} samples x {net.num_steps} steps in "
             f"{seconds:.2f} s ({n / seconds:.1f} samples/s); output spikes per sample "
             f"{result.spikes.sum() / n:.1f}"]
    arrays = {"input": np.asarray(inputs.spikes, dtype=np.uint8), "output": result.spikes}
    for i in probe:
        name = net.layers[i].name
        arrays[f"probe/{name}"] = result.layers[i]
        lines.append(f"probe {name}: {result.layers[i].sum() / n:.1f} spikes per sample")
    decoded = None
    try:
        if family is not None:
            decoded = family.decode(net, inputs, result.spikes)
    except ExportError as err:
        lines.append(f"no decoder: {err}")
    if decoded is not None:
        scores = family.score(net, inputs, result.spikes)
        lines.append(f"decoded on the host: {len(decoded)} estimates of shape "
                     f"{decoded.shape[1:]}; " + ", ".join(f"{k} {v:.4f}"
                                                          for k, v in scores.items()))
        arrays.update(decoded=decoded, reference=np.asarray(inputs.target))
    if inputs.labels is not None:
        arrays["labels"] = np.asarray(inputs.labels)
    return arrays, "\n".join(lines)

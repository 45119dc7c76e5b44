"""From a training run to an export, and from an export to deployed results.

These functions compose the two halves (train -> deploy; deploy never imports train) and are
what the ``spikecodec export / run / eval / check / quickstart`` commands call:

* :func:`export_run` -- run directory (``config.toml`` + ``checkpoint.pt``) -> NetX HDF5 export,
  for every model kind in ``EXPORTERS`` (the checkpoint's ``model_kind`` picks one);
* :func:`encode` -- images -> input spikes exactly as the export's ``InputSpec`` says, with a
  seed, so every backend sees the same spikes;
* :func:`evaluate_export` -- a dataset split through a backend: reconstruction metrics, spikes
  and synaptic operations per sample, throughput (Roy AE; a VDIB export is evaluated by
  :func:`spikecodec.train.vdib.deployment.evaluate_vdib_export`).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikecodec.deploy.backends import RunResult, run
from spikecodec.deploy.hdf5 import write_hdf5
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.metrics import image_mse, spike_mse
from spikecodec.errors import CheckpointError, ConfigError
from spikecodec.train import config as config_io
from spikecodec.train import encoding
from spikecodec.train.checkpoint import load_checkpoint
from spikecodec.train.datasets import ImageSplit
from spikecodec.train.quantize import quantize

IMAGE_SHAPES = {"digits": (8, 8), "mnist": (28, 28), "fashion-mnist": (28, 28)}
EXPORT_NAME = "export.h5"


def _time_to_first_spike(images: torch.Tensor, num_steps: int, *, seed: int | None = None,
                         **params: Any) -> torch.Tensor:
    """Latency code; deterministic, so ``seed`` is accepted (every encoder takes one) and unused."""
    return encoding.time_to_first_spike(images, num_steps, **params)


ENCODERS = {"poisson_rate": encoding.poisson_rate, "time_to_first_spike": _time_to_first_spike}


def _load_run_checkpoint(path: Path) -> dict[str, Any]:
    """A run's checkpoint, of any model kind this module can export."""
    return load_checkpoint(path, model_kind=tuple(EXPORTERS))


def _results(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "results.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _export_roy_ae(run_dir: Path, ckpt: dict[str, Any]) -> FixedPointNetwork:
    from spikecodec.train.models.roy_ae import RoyAE
    from spikecodec.train.roy_training import RoyAEConfig

    cfg = config_io.load(RoyAEConfig, run_dir / "config.toml")
    model = RoyAE(ckpt["in_neurons"], cfg.model)
    model.load_state_dict(ckpt["model"])
    spec = InputSpec("poisson_rate", cfg.data.num_steps, IMAGE_SHAPES[cfg.data.dataset],
                     {"max_rate": cfg.data.max_rate})
    metadata: dict[str, Any] = {"dataset": cfg.data.dataset, "seed": cfg.train.seed,
                                "eval_seed": cfg.train.seed + 1,
                                "config_toml": config_io.dumps(cfg),
                                "trained_epochs": ckpt["epoch"]}
    results = _results(run_dir)
    if results is not None:
        metadata["float_metrics"] = results["metrics"]["snn"]
    return quantize(model, spec, metadata=metadata)


def _export_vdib(run_dir: Path, ckpt: dict[str, Any]) -> FixedPointNetwork:
    """VDIB: the encoder quantized, the ANN decoder carried along; no dataset is loaded."""
    from spikecodec.train.vdib.decoders import ANNDecoder
    from spikecodec.train.vdib.model import VDIB, VDIBEncoder
    from spikecodec.train.vdib.training import VDIBConfig

    cfg = config_io.load(VDIBConfig, run_dir / "config.toml")
    in_neurons = int(ckpt["in_neurons"])
    model = VDIB(VDIBEncoder(in_neurons, cfg.model), ANNDecoder(ckpt["decoder_config"]))
    model.load_state_dict(ckpt["model"])
    d = cfg.data
    if d.task == "images":  # the task encodes images; the export says how
        shape = IMAGE_SHAPES.get(d.dataset, (in_neurons,))
        params = {"max_rate": d.max_rate} if d.encoding == "poisson_rate" else {}
        spec = InputSpec(d.encoding, d.num_steps, shape if np.prod(shape) == in_neurons
                         else (in_neurons,), params)
    else:  # blobs and events are spikes already
        spec = InputSpec("spikes", d.num_steps, (in_neurons,), {})
    metadata: dict[str, Any] = {"task": d.task, "dataset": d.dataset, "seed": cfg.train.seed,
                                "eval_seed": cfg.train.seed + 2,
                                "eval_batch_size": cfg.train.eval_batch_size,
                                "config_toml": config_io.dumps(cfg),
                                "trained_epochs": ckpt["epoch"]}
    results = _results(run_dir)
    if results is not None:
        metadata["float_metrics"] = results["metrics"]["float"]
        metadata["quantized_metrics"] = results["metrics"]["quantized"]
    return quantize(model, spec, metadata=metadata)


# checkpoint model_kind -> (run directory, checkpoint) -> export
EXPORTERS: dict[str, Callable[[Path, dict[str, Any]], FixedPointNetwork]] = {
    "roy-ae": _export_roy_ae, "vdib": _export_vdib}


def export_run(run_dir: str | Path, out: str | Path | None = None
               ) -> tuple[FixedPointNetwork, Path]:
    """Quantize the trained model of ``run_dir`` and write it (default ``run_dir/export.h5``)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").is_file():
        raise CheckpointError(f"{run_dir} is not a run directory (no config.toml)")
    ckpt = _load_run_checkpoint(run_dir / "checkpoint.pt")
    net = EXPORTERS[ckpt["model_kind"]](run_dir, ckpt)
    path = write_hdf5(net, Path(out) if out else run_dir / EXPORT_NAME)
    return net, path


def encode(net: FixedPointNetwork, images: torch.Tensor, *, seed: int) -> torch.Tensor:
    """``(n, pixels)`` images -> ``(n, pixels, T)`` spikes, as the export's input spec says."""
    spec = net.input
    if spec.encoding not in ENCODERS:
        raise ConfigError(f"the export's input encoding {spec.encoding!r} cannot be generated "
                          f"here; known: {', '.join(ENCODERS)} (pass spikes instead)")
    if images.shape[1] != net.in_features:
        raise ConfigError(f"images have {images.shape[1]} pixels but the export expects "
                          f"{net.in_features} inputs ({spec.shape})")
    return ENCODERS[spec.encoding](images, spec.num_steps, seed=seed, **spec.params)


def synaptic_ops(net: FixedPointNetwork, inputs: np.ndarray, layers: list[np.ndarray]
                 ) -> float:
    """Synaptic events per sample: every spike into a dense layer reaches all its outputs."""
    sources = [inputs] + layers[:-1]
    total = sum(float(s.sum()) * layer.out_features
                for s, layer in zip(sources, net.layers, strict=True))
    return total / len(inputs)


def evaluate_export(net: FixedPointNetwork, split: ImageSplit, *, backend: str = "reference",
                    samples: int | None = None, seed: int | None = None,
                    show_progress: bool = False) -> tuple[dict[str, Any], RunResult, torch.Tensor]:
    """Encode ``split`` (first ``samples``), run it on ``backend``, score the reconstruction.

    Returns ``(metrics, run result, input spikes)``; metrics hold the paper's MSE and Spike-MSE,
    spikes per sample per layer, synaptic operations per sample and samples/s.
    """
    if seed is None:
        seed = int(net.metadata.get("eval_seed", 0))
    images = split.images[:samples] if samples else split.images
    x = encode(net, images, seed=seed)
    tic = time.perf_counter()
    result = run(net, x, backend=backend, probe=True, show_progress=show_progress)
    seconds = time.perf_counter() - tic
    out = torch.from_numpy(result.spikes.astype(np.float32))
    x_np = x.numpy().astype(np.uint8)
    metrics = {
        "backend": backend,
        "samples": len(images),
        "mse": image_mse(images, out).mean().item(),
        "spike_mse": spike_mse(x, out).mean().item(),
        "spikes_per_sample": {layer.name: float(s.sum()) / len(images)
                              for layer, s in zip(net.layers, result.layers, strict=True)},
        "synops_per_sample": synaptic_ops(net, x_np, result.layers),
        "seconds": seconds,
        "samples_per_second": len(images) / seconds,
    }
    for key in ("u_wraps", "v_clips"):
        if key in result.stats:
            metrics[key] = result.stats[key]
    return metrics, result, x

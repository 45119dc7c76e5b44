"""From a training run to an export, and from an export to deployed results.

These functions compose the two halves (train -> deploy; deploy never imports train) and are
what the ``spikecodec export / run / eval / check / quickstart`` commands call:

* :func:`export_run` -- run directory (``config.toml`` + ``checkpoint.pt``) -> NetX HDF5 export;
* :func:`encode` -- images -> input spikes exactly as the export's ``InputSpec`` says, with a
  seed, so every backend sees the same spikes;
* :func:`evaluate_export` -- a dataset split through a backend: reconstruction metrics, spikes
  and synaptic operations per sample, throughput.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikecodec.deploy.backends import RunResult, run
from spikecodec.deploy.hdf5 import write_hdf5
from spikecodec.deploy.metrics import image_mse, spike_mse
from spikecodec.deploy.network import FixedPointNetwork, InputSpec
from spikecodec.errors import CheckpointError, ConfigError
from spikecodec.train import config as config_io
from spikecodec.train import encoding
from spikecodec.train.checkpoint import load_checkpoint
from spikecodec.train.datasets import ImageSplit
from spikecodec.train.quantize import quantize

IMAGE_SHAPES = {"digits": (8, 8), "mnist": (28, 28), "fashion-mnist": (28, 28)}
ENCODERS = {"poisson_rate": encoding.poisson_rate}
EXPORT_NAME = "export.h5"


def export_run(run_dir: str | Path, out: str | Path | None = None
               ) -> tuple[FixedPointNetwork, Path]:
    """Quantize the trained model of ``run_dir`` and write it (default ``run_dir/export.h5``)."""
    from spikecodec.train.models.roy_ae import RoyAE
    from spikecodec.train.roy_training import MODEL_KIND, RoyAEConfig

    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").is_file():
        raise CheckpointError(f"{run_dir} is not a run directory (no config.toml)")
    cfg = config_io.load(RoyAEConfig, run_dir / "config.toml")
    ckpt = load_checkpoint(run_dir / "checkpoint.pt", model_kind=MODEL_KIND)
    model = RoyAE(ckpt["in_neurons"], cfg.model)
    model.load_state_dict(ckpt["model"])
    spec = InputSpec("poisson_rate", cfg.data.num_steps, IMAGE_SHAPES[cfg.data.dataset],
                     {"max_rate": cfg.data.max_rate})
    metadata: dict[str, Any] = {"dataset": cfg.data.dataset, "seed": cfg.train.seed,
                                "eval_seed": cfg.train.seed + 1,
                                "config_toml": config_io.dumps(cfg),
                                "trained_epochs": ckpt["epoch"]}
    results = run_dir / "results.json"
    if results.is_file():
        metadata["float_metrics"] = json.loads(results.read_text())["metrics"]["snn"]
    net = quantize(model, spec, metadata=metadata)
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

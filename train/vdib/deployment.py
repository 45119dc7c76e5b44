"""A VDIB export on a backend: rebuild its task data, run the encoder, decode on the host, score.

The export carries its training config (``metadata["config_toml"]``), so the inputs are drawn
exactly as :func:`~spikecodec.train.vdib.training.evaluate` draws them in quantized mode: the
split of the task the config describes, encoded in batches of ``train.eval_batch_size`` whose
seeds are keyed by the batch start, and sample ``k`` of the split is sample ``k`` of the batch the
backend gets (the readout's PRNG keys its draws by it). On the reference engine -- and Lava,
spike for spike -- the deployed metrics therefore equal the training run's quantized metrics.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, NamedTuple

import numpy as np
import torch

from spikecodec.deploy.backends import RunResult, run
from spikecodec.deploy.decoders import decode
from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.errors import ConfigError, ExportError
from spikecodec.train import config as config_io
from spikecodec.train.vdib import tasks
from spikecodec.train.vdib.training import VDIBConfig, eval_batches, load_task


class ExportInputs(NamedTuple):
    """What a VDIB export is fed: its task, config and the split's first samples."""

    task: tasks.Task
    cfg: VDIBConfig
    spikes: torch.Tensor  # (n, in, T) float 0/1, as evaluate() feeds the encoder
    reference: torch.Tensor  # (n, ...) the decoder's targets
    labels: torch.Tensor | None  # (n,) class labels (images, events), None for blobs


def export_config(net: FixedPointNetwork) -> VDIBConfig:
    """The training config stored in a VDIB export."""
    if net.metadata.get("model_kind") != "vdib":
        raise ExportError(f"not a VDIB export (model kind {net.metadata.get('model_kind')!r})")
    text = net.metadata.get("config_toml")
    if not isinstance(text, str):
        raise ExportError("this VDIB export has no training config (metadata config_toml), so "
                          "its task data cannot be rebuilt; export it with `spikecodec export`")
    try:
        data = config_io.tomllib.loads(text)
    except config_io.tomllib.TOMLDecodeError as err:
        raise ExportError(f"the export's config_toml is not valid TOML: {err}") from err
    return config_io.from_dict(VDIBConfig, data)


def export_inputs(net: FixedPointNetwork, *, split: str = "test", samples: int | None = None,
                  dataset: str | None = None, data_dir: str | None = None,
                  download: bool = False) -> ExportInputs:
    """The first ``samples`` of ``split`` (all by default) of the export's task, encoded.

    ``dataset``, ``data_dir`` and ``download`` replace the config's (files may live elsewhere
    on the machine that deploys).
    """
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    cfg = export_config(net)
    data = {"dataset": dataset or cfg.data.dataset, "download": download or cfg.data.download,
            "data_dir": data_dir or cfg.data.data_dir}
    if split == "test":  # test data do not depend on the training split: load one sample of it
        data.update(train_limit=1, blobs_train=1)
    task = load_task(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **data)))
    if task.in_features != net.in_features or task.num_steps != net.num_steps:
        raise ConfigError(f"the {data['dataset']} {task.name} task gives inputs of "
                          f"{task.in_features} neurons x {task.num_steps} steps but the export "
                          f"takes {net.in_features} x {net.num_steps}")
    stop = task.size(split) if samples is None else min(samples, task.size(split))
    chunks = [x for _, x, _ in eval_batches(task, cfg, split, stop)]
    labels = task.labels[split]
    return ExportInputs(task, cfg, torch.cat(chunks)[:stop], task.references[split][:stop],
                        None if labels is None else labels[:stop])


def require_decoder(net: FixedPointNetwork) -> None:
    """Raise :class:`~spikecodec.errors.ExportError` (decode's message) if ``net`` carries no
    usable host decoder -- before any backend time is spent."""
    readout = net.layers[-1].out_features
    decode(net.decoder, np.zeros((1, readout, net.num_steps), np.uint8), num_steps=net.num_steps)


def decode_spikes(net: FixedPointNetwork, spikes: np.ndarray, cfg: VDIBConfig) -> np.ndarray:
    """Host decoder on readout spikes ``(n, N, T)``, in evaluate()'s batches (same floats)."""
    return decode(net.decoder, spikes, num_steps=net.num_steps,
                  batch_size=cfg.train.eval_batch_size)


def evaluate_vdib_export(net: FixedPointNetwork, *, backend: str = "reference",
                         samples: int | None = None, split: str = "test",
                         dataset: str | None = None, data_dir: str | None = None,
                         download: bool = False, show_progress: bool = False
                         ) -> tuple[dict[str, Any], RunResult]:
    """Run the export's task data (first ``samples`` of ``split``) on ``backend``, decode on the
    host and score; returns ``(metrics, run result)``.

    Metrics: the task's (``mse``; blobs also ``position_accuracy``), readout spikes per sample,
    spikes per sample of every layer, backend seconds and samples/s, host decoding seconds.
    """
    require_decoder(net)
    inputs = export_inputs(net, split=split, samples=samples, dataset=dataset,
                           data_dir=data_dir, download=download)
    n = len(inputs.spikes)
    tic = time.perf_counter()
    result = run(net, inputs.spikes, backend=backend, probe=True, show_progress=show_progress)
    seconds = time.perf_counter() - tic
    tic = time.perf_counter()
    estimates = decode_spikes(net, result.spikes, inputs.cfg)
    decode_seconds = time.perf_counter() - tic
    metrics: dict[str, Any] = {"backend": backend, "task": inputs.task.name,
                               "dataset": inputs.cfg.data.dataset, "split": split}
    metrics.update(tasks.score(inputs.task, torch.from_numpy(estimates), inputs.reference))
    metrics.update({
        "readout_spikes_per_sample": float(result.spikes.sum()) / n,
        "samples": n,
        "spikes_per_sample": {layer.name: float(s.sum()) / n
                              for layer, s in zip(net.layers, result.layers, strict=True)},
        "seconds": seconds,
        "samples_per_second": n / seconds,
        "decode_seconds": decode_seconds,
    })
    return metrics, result

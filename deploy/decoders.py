"""Host-side ANN decoders of readout spikes (VDIB): one functional forward for training and deploy.

An export stores its decoder as a :class:`~spikecodec.deploy.info.HostDecoder`
(``FixedPointNetwork.decoder``, ``/spikecodec/decoder`` in HDF5): JSON-able configuration plus
float32 weight arrays; the functions here read its flat form (``HostDecoder.as_dict()``, also
accepted as is). The torch modules of :mod:`spikecodec.train.families.vdib.decoders` hold the
same arrays as parameters and call :func:`decoder_logits` here, so the decoder that was trained
is the one the host runs on the spikes a backend returns.

Configuration (``kind = "ann"``)::

    arch      "linear" (logistic / softmax regression) | "mlp" | "conv1d"
    input     "window": the last ``window`` steps of readout spikes, ``(N, window)`` flattened
              "rate":   their sum over the window, ``(N,)`` (the rate-decoding baseline)
    window    tau_d, steps in the decoding window (1 .. T)
    at        "last": one estimate from the window ending at the last step (images)
              "every": one estimate per step t from the window ending at t, zero-padded before
              the first step (online decoding, predictive coding)
    output    "sigmoid" (pixels in [0, 1]) | "softmax" (over the last axis of out_shape) |
              "identity"
    out_shape shape of one estimate, e.g. [28, 28] or [2, 20]
    neurons   N, readout neurons the decoder reads
    hidden    MLP / conv1d head hidden sizes (ReLU), e.g. [600]
    channels, kernel   conv1d only: Conv1d(N -> channels, kernel) over time, ReLU, then the head

Arrays: ``conv_w (channels, N, kernel)``, ``conv_b (channels,)`` for conv1d; then ``w{i}``
``(out_i, in_i)`` and ``b{i}`` for the layers of the head, the last one producing
``prod(out_shape)`` logits.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from spikecodec.deploy.info import HostDecoder
from spikecodec.errors import ConfigError, ExportError, InputError
from spikecodec.validate import check_int

ARCHS = ("linear", "mlp", "conv1d")
INPUTS = ("window", "rate")
AT = ("last", "every")
OUTPUTS = ("sigmoid", "softmax", "identity")
MAX_SIZE = 1 << 24  # any size in a decoder config (neurons, hidden, out_shape entries)


def check_decoder(cfg: dict[str, Any], *, num_steps: int | None = None) -> dict[str, Any]:
    """Validate a decoder configuration (arrays not required); return it.

    ``num_steps``: the network's T; the window must fit in it.
    """
    if not isinstance(cfg, dict):
        raise ConfigError(f"decoder must be a dict, got {type(cfg).__name__}")
    if cfg.get("kind") != "ann":
        raise ConfigError(f"not an ANN decoder: kind {cfg.get('kind')!r}")
    for key, allowed in (("arch", ARCHS), ("input", INPUTS), ("at", AT), ("output", OUTPUTS)):
        if cfg.get(key) not in allowed:
            raise ConfigError(f"decoder.{key} must be one of {allowed}, got {cfg.get(key)!r}")
    window = check_int("", "decoder.window", cfg.get("window"), 1)
    if num_steps is not None and window > num_steps:
        raise ConfigError(f"decoder.window ({window}) must be <= T ({num_steps} steps)")
    if cfg["arch"] == "conv1d":
        if cfg["input"] != "window":
            raise ConfigError("a conv1d decoder reads a window of spikes over time; use "
                              "input='window' (rate decoding has no time axis)")
        check_int("", "decoder.kernel", cfg.get("kernel"), 1, window)
    sizes = [("neurons", cfg.get("neurons"))]
    if cfg["arch"] == "conv1d":
        sizes.append(("channels", cfg.get("channels")))
    hidden = cfg.get("hidden", []) if cfg["arch"] != "linear" else []
    if not isinstance(hidden, (list, tuple)):
        raise ConfigError(f"decoder.hidden must be a list of sizes, got {hidden!r:.60}")
    sizes += [("hidden", h) for h in hidden]
    for key, value in sizes:
        check_int("", f"decoder.{key}", value, 1, MAX_SIZE)
    shape = cfg.get("out_shape")
    if not isinstance(shape, (list, tuple)) or not shape:
        raise ConfigError(f"decoder.out_shape must be a non-empty list of sizes, got {shape!r}")
    for s in shape:
        check_int("", "decoder.out_shape[]", s, 1, MAX_SIZE)
    return cfg


def check_decoder_arrays(decoder: dict[str, Any], *, num_steps: int | None = None,
                         neurons: int | None = None) -> dict[str, torch.Tensor]:
    """Validate an ANN decoder's config (:class:`ConfigError` naming the key) and arrays
    (present, numeric, finite, of the shapes the config needs; ``neurons``: the network's output
    size it must read; :class:`ExportError` naming the array); return the arrays as float32
    tensors by name."""
    cfg = check_decoder(decoder, num_steps=num_steps)
    if neurons is not None and int(cfg["neurons"]) != neurons:
        raise ExportError(f"the export's decoder reads {cfg['neurons']} neurons, the network "
                          f"has {neurons} outputs")
    sizes = head_sizes(cfg)
    expected = {f"w{i}": (b, a) for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:],
                                                               strict=True))}
    expected.update({f"b{i}": (b,) for i, b in enumerate(sizes[1:])})
    if cfg["arch"] == "conv1d":
        c, n, k = int(cfg["channels"]), int(cfg["neurons"]), int(cfg["kernel"])
        expected.update(conv_w=(c, n, k), conv_b=(c,))
    missing = [k for k in expected if k not in decoder]
    if missing:
        raise ExportError(f"the export's decoder lacks its weights {missing}: re-export it")
    params = {}
    for key, shape in expected.items():
        value = np.asarray(decoder[key])
        if value.dtype.kind not in "iuf":
            raise ExportError(f"the export's decoder array {key!r} has dtype {value.dtype}, "
                              f"expected floats")
        if value.shape != shape:
            raise ExportError(f"the export's decoder array {key!r} has shape {value.shape}, "
                              f"its config needs {shape}")
        if not np.isfinite(value).all():
            raise ExportError(f"the export's decoder array {key!r} holds non-finite values")
        params[key] = torch.as_tensor(value.astype(np.float32))
    return params


def feature_size(cfg: dict[str, Any]) -> int:
    """Inputs of the head: ``N * window`` (window), ``N`` (rate) or the conv output size."""
    n, window = int(cfg["neurons"]), int(cfg["window"])
    if cfg["arch"] == "conv1d":
        return int(cfg["channels"]) * (window - int(cfg["kernel"]) + 1)
    return n * window if cfg["input"] == "window" else n


def head_sizes(cfg: dict[str, Any]) -> list[int]:
    """Layer widths of the head, input first: ``[features, *hidden, prod(out_shape)]``."""
    hidden = [] if cfg["arch"] == "linear" else [int(h) for h in cfg.get("hidden", [])]
    return [feature_size(cfg), *hidden, math.prod(int(s) for s in cfg["out_shape"])]


def windows(spikes: torch.Tensor, window: int, at: str) -> torch.Tensor:
    """Readout spikes ``(B, N, T)`` -> windows ``(B, N, window)`` ("last") or
    ``(B, T, N, window)`` ("every"; steps before 0 are zeros)."""
    if at == "last":
        out = spikes[:, :, -window:]
        if out.shape[2] < window:
            out = torch.nn.functional.pad(out, (window - out.shape[2], 0))
        return out
    padded = torch.nn.functional.pad(spikes, (window - 1, 0))
    return padded.unfold(2, window, 1).permute(0, 2, 1, 3)  # (B, T, N, window)


def decoder_logits(cfg: dict[str, Any], params: dict[str, torch.Tensor],
                   spikes: torch.Tensor) -> torch.Tensor:
    """Logits ``(B, *out_shape)`` ("last") or ``(B, T, *out_shape)`` ("every") of readout
    spikes ``(B, N, T)`` (0/1 floats), with the weights in ``params`` (tensors by name)."""
    win = windows(spikes, int(cfg["window"]), cfg["at"])
    lead = win.shape[:-2]  # (B,) or (B, T)
    x = win.reshape(-1, *win.shape[-2:])  # (B', N, window)
    if cfg["arch"] == "conv1d":
        x = torch.relu(torch.nn.functional.conv1d(x, params["conv_w"], params["conv_b"]))
    elif cfg["input"] == "rate":
        x = x.sum(-1)
    x = x.reshape(x.shape[0], -1)
    layers = len(head_sizes(cfg)) - 1
    for i in range(layers):
        x = torch.nn.functional.linear(x, params[f"w{i}"], params[f"b{i}"])
        if i < layers - 1:
            x = torch.relu(x)
    return x.reshape(*lead, *(int(s) for s in cfg["out_shape"]))


def activate(cfg: dict[str, Any], logits: torch.Tensor) -> torch.Tensor:
    """The decoder's estimate from its logits (sigmoid pixels, softmax positions, ...)."""
    if cfg["output"] == "sigmoid":
        return torch.sigmoid(logits)
    if cfg["output"] == "softmax":
        return torch.softmax(logits, dim=-1)
    return logits


def decode(decoder: dict[str, Any], spikes: Any, *, num_steps: int | None = None,
           batch_size: int = 4096) -> np.ndarray:
    """Run an export's host decoder on readout spikes ``(B, N, T)`` -> float32 estimates.

    Raises :class:`~spikecodec.errors.ExportError` when the export carries no ANN decoder (an
    export of a rate-decoded model, or one written without its decoder).
    """
    if isinstance(decoder, HostDecoder):
        decoder = decoder.as_dict()
    if not isinstance(decoder, dict) or decoder.get("kind") != "ann":
        kind = decoder.get("kind") if isinstance(decoder, dict) else decoder
        raise ExportError(f"this export has no ANN decoder (decoder kind {kind!r}); it was "
                          "exported without one, so only its raw spikes can be read -- "
                          "re-export the VDIB run to include the decoder")
    params = check_decoder_arrays(decoder, num_steps=num_steps)
    cfg = decoder
    x = torch.as_tensor(np.asarray(spikes), dtype=torch.float32)
    if x.ndim != 3 or x.shape[1] != int(cfg["neurons"]):
        raise InputError(f"readout spikes must be (batch, {cfg['neurons']}, time), got "
                         f"{tuple(x.shape)}")
    with torch.no_grad():
        out = [activate(cfg, decoder_logits(cfg, params, x[i:i + batch_size]))
               for i in range(0, x.shape[0], batch_size)]
    return torch.cat(out).numpy()

"""Where the deployed Comsa model departs from the continuous one: spike-step errors, spikes
gained and lost (``spikecodec check`` adds this to the parity table).

The continuous row is the exact spike-time model (:mod:`.spiketime`) with the *deployed* weights
(``W / c``, ``PW 2^e / c``: the 8-bit rounding included), the trained decay, threshold and pulse
times (the export records them: ``metadata.extra.quantization``), fed the exact input times. So
the differences it shows are the grid's: rounded input and pulse times, the decay's 12 bits, the
spike time rounded up to the next step, the horizon, and grazing crossings (the continuous
potential touches the threshold between two steps: one model spikes, the other not).

Per layer ``l``, a neuron spiking on step ``n`` in the discrete model reads as
``(n + (l + 1) / 2) dt`` (quantize.py), so its step error is ``n - (t / dt - (l + 1) / 2)``
rounded, for a continuous spike at ``t``; ``gained``: discrete spikes where the continuous neuron
is silent, ``lost``: continuous spikes inside the horizon the discrete neuron misses,
``past_horizon``: continuous spikes after it (the deployed neuron cannot see them).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.errors import ExportError
from spikecodec.train.families.comsa.config import ComsaModelConfig
from spikecodec.train.families.comsa.spiketime import spike_times

BINS = (-3, -2, -1, 0, 1, 2, 3)  # histogram of step errors; the ends collect everything beyond


def continuous_layers(net: FixedPointNetwork, times: torch.Tensor) -> list[torch.Tensor]:
    """Spike times ``(n, neurons)`` of every layer of the continuous model of the export's
    weights (module docstring) for input times ``(n, pixels)``."""
    report = net.metadata.extra.get("quantization")
    if not isinstance(report, dict) or net.metadata.model_config is None:
        raise ExportError("this Comsa export records no quantization report (metadata "
                          "extra.quantization), so its continuous model cannot be rebuilt; "
                          "re-export the run")
    cfg = ComsaModelConfig(**net.metadata.model_config)
    out, t = [], times.double()
    for layer in net.layers:
        rep = report.get(layer.name) or {}
        try:
            c = float(rep["weight_scale"])
            pulse_times = torch.tensor(rep["pulse_times"], dtype=torch.float64)
        except (KeyError, TypeError, ValueError) as err:
            raise ExportError(f"the export's quantization report of layer {layer.name!r} "
                              f"lacks {err}") from None
        if pulse_times.numel() != layer.num_pulses:
            raise ExportError(f"the export's quantization report of layer {layer.name!r} has "
                              f"{pulse_times.numel()} pulse times for {layer.num_pulses} pulses")
        w = torch.from_numpy(np.asarray(layer.weight, dtype=np.float64)) / c
        pw = torch.from_numpy(np.asarray(layer.pulse_weight, dtype=np.float64)
                              * 2.0 ** layer.pulse_exp) / c
        t_all = torch.cat([t, pulse_times.expand(len(t), -1)], dim=1)
        t = spike_times(t_all, torch.cat([w, pw], dim=1), decay=cfg.decay,
                        threshold=cfg.threshold)
        out.append(t)
    return out


def step_errors(discrete: np.ndarray, continuous: torch.Tensor, *, index: int, dt: float,
                num_steps: int) -> dict[str, Any]:
    """Compare one layer's discrete spikes ``(n, neurons, T)`` with continuous times."""
    s = np.asarray(discrete) != 0
    fires_d = s.any(axis=2)
    t = continuous.numpy()
    inside = np.isfinite(t) & (t < (num_steps + (index + 1) / 2) * dt)
    both = fires_d & inside
    err = np.round(s.argmax(axis=2)[both] - (t[both] / dt - (index + 1) / 2)).astype(int)
    err = np.clip(err, BINS[0], BINS[-1])
    return {"compared": int(both.sum()),
            "histogram": {int(b): int((err == b).sum()) for b in BINS},
            "mean_step_error": float(err.mean()) if err.size else 0.0,
            "gained": int((fires_d & ~np.isfinite(t)).sum()),
            "lost": int((inside & ~fires_d).sum()),
            "past_horizon": int((np.isfinite(t) & ~inside).sum())}


def timing_report(net: FixedPointNetwork, times: torch.Tensor, layers: list[np.ndarray], *,
                  dt: float) -> dict[str, Any]:
    """Per layer :func:`step_errors` of the discrete ``layers`` (e.g. the reference engine's)
    against the continuous model on the exact input ``times``; plus its output times."""
    cont = continuous_layers(net, times)
    rows = [{"layer": layer.name, **step_errors(d, c, index=i, dt=dt, num_steps=net.num_steps)}
            for i, (layer, d, c) in enumerate(zip(net.layers, layers, cont, strict=True))]
    return {"layers": rows, "output_times": cont[-1]}

"""A trained Comsa autoencoder on Loihi 2's grid: the discrete fixed-point model and what rounding
changed.

The grid (config ``deploy``): ``dt = 1 / steps_per_unit`` of the input interval, ``T =
ceil((l + 1 + margin) / dt)`` steps per sample. Each layer becomes a
:class:`~spikecodec.deploy.layers.SpikeOnceAlphaLayer` (its neuron:
:mod:`spikecodec.lava_procs.spike_once`, whose docstring derives the mapping):

* **decay** ``d = round(4096 (1 - e^{-K dt}))`` for both current and voltage (the alpha kernel);
  the grid's effective rate is ``K' = -ln(1 - d / 4096) / dt``. ``d`` must land in [1, 4096]:
  a ``K dt`` too small rounds to 0 (no decay) and is refused;
* **weights**: a continuous weight ``w`` adds ``w dt e^{-K dt}`` per unit of potential to the
  state the step after its input, so with ``c`` integers per unit weight the layer stores
  ``W``, the even integer nearest ``c w`` (an 8-bit signed mantissa times 2, as SLAYER writes
  weights; ``c = 254 / max |w|``, smaller when the threshold would not fit 17 bits) and the
  threshold ``v_th_mant = round(c theta / (dt e^{-K dt}))``;
* **pulses** get their own Dense: ``PW`` the even integer nearest ``c w_p / 2^e`` with the
  smallest ``e`` in [0, 7] that fits 8 bits; pulse ``p`` of layer ``i`` fires on step
  ``round(p / dt - i / 2)``; a pulse after the horizon cannot change any spike inside it and is
  left out (the report lists it);
* **times**: an input at ``t`` spikes on step ``round(t / dt)``. A neuron's voltage on step ``n``
  is its continuous potential at ``(n + 1) dt`` (in its layer's frame), so its spike on step
  ``n`` means a crossing in ``(n dt, (n + 1) dt]``, on average ``(n + 1/2) dt``: every layer's
  frame runs ``dt / 2`` behind the one before (hence the pulses' ``- i / 2``), and an output
  spike on step ``m`` reads as ``t = (m + L / 2) dt`` for ``L`` layers.

:func:`quantize` returns the layers and a report of every rounding (relative decay error,
weight rounding error, weights that became 0, pulse moves in steps, threshold error).

**Training on the weight grid** (``train.weight_bits``, :class:`WeightGrid`): the continuous model
can train with its weights and pulse weights replaced by their values on the grid this module
will choose (``W / c``, ``PW 2^e / c``: the same scale, shift and rounding, recomputed every step
from the current weights), the gradient passing straight through the rounding. The time grid
(spike steps, the 12-bit decay, the 17-bit threshold) stays continuous: that is what
deployment-aware fine-tuning adds (finetune.py).
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch

from spikecodec.deploy.layers import SpikeOnceAlphaLayer
from spikecodec.errors import ConfigError, InputError
from spikecodec.lava_procs.spec import (
    DECAY_SCALE,
    PULSE_EXP_MAX,
    V_TH_MANT_MAX,
)

LAYER_NAMES = ("encoder", "decoder")


class Grid(NamedTuple):
    """The time grid: ``dt`` (units of the input interval), ``num_steps`` per sample and the
    number of layers (an output on step ``m`` reads as ``(m + layers / 2) dt``)."""

    dt: float
    num_steps: int
    layers: int = 2

    @property
    def t0(self) -> float:
        """The time of output step 0."""
        return self.layers / 2 * self.dt


def grid_for(cfg: Any, *, layers: int = 2) -> Grid:
    """The grid of a :class:`~spikecodec.train.families.comsa.config.ComsaConfig`."""
    dt = 1.0 / cfg.deploy.steps_per_unit
    steps = math.ceil((cfg.model.latency + 1.0 + cfg.deploy.margin) / dt - 1e-9)
    return Grid(dt, max(steps, 1), layers)


def alpha_decay(decay: float, dt: float, where: str) -> int:
    """``round(4096 (1 - e^{-K dt}))``; refuses a ``K dt`` the 12-bit decay cannot express."""
    exact = DECAY_SCALE * -math.expm1(-decay * dt)
    d = round(exact)
    if not 1 <= d <= DECAY_SCALE:
        raise ConfigError(f"{where}: decay K = {decay:g} cannot be expressed at dt = {dt:g}: "
                          f"4096 (1 - e^(-K dt)) = {exact:.3f} rounds to {d} (needs 1..4096); "
                          f"use fewer deploy.steps_per_unit")
    return d


def alpha_gain(decay: float, dt: float) -> float:
    """``dt e^{-K dt}``: the potential one unit of weight adds, per state unit, the step after
    its input (module docstring)."""
    return dt * math.exp(-decay * dt)


def mantissa_max(bits: int) -> int:
    """The largest even integer of a ``bits``-bit signed mantissa scaled by 2 (254 at 8 bits)."""
    return 2 ** bits - 2


def weight_scale(weight_max: float, threshold: float, gain: float, bits: int = 8) -> float:
    """``c``, the integers per unit weight: the largest weight ``weight_max`` uses every bit,
    unless the threshold ``c theta / gain`` would not fit its 17 bits."""
    c = mantissa_max(bits) / max(weight_max, 1e-12)
    return min(c, V_TH_MANT_MAX * gain / threshold)


def pulse_shift(pulse_max: float, c: float, bits: int = 8, *, name: str, weight_max: float
                ) -> int:
    """The smallest extra shift ``e`` in [0, 7] that fits pulse weights up to ``pulse_max``
    into the mantissa at scale ``c / 2^e``; more is refused, naming the layer."""
    need = pulse_max * c / mantissa_max(bits)
    exp = max(0, math.ceil(math.log2(need))) if need > 1 else 0
    if exp > PULSE_EXP_MAX:
        raise ConfigError(f"{name}: pulse_weight up to {pulse_max:.3g} needs a shift of {exp} > "
                          f"{PULSE_EXP_MAX} bits beside weights up to {weight_max:.3g}")
    return exp


class WeightGrid(NamedTuple):
    """The deployed weight grid of a layer, for the continuous model to train on
    (``train.weight_bits``; module docstring)."""

    bits: int
    gain: float  # alpha_gain at the config's dt
    threshold: float

    def apply(self, weight: torch.Tensor, pulse_weight: torch.Tensor, *, name: str = "layer"
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight, pulse_weight)`` on the grid :func:`quantize_layer` chooses for them now,
        with the gradient of the unrounded weights (straight through)."""
        with torch.no_grad():
            w, pw = weight.detach().double(), pulse_weight.detach().double()
            w_max = float(w.abs().max())
            c = weight_scale(w_max, self.threshold, self.gain, self.bits)
            exp = pulse_shift(float(pw.abs().max()) if pw.numel() else 0.0, c, self.bits,
                              name=name, weight_max=w_max)
            w_q = (_even_torch(c * w, self.bits) / c).to(weight.dtype)
            pw_q = (_even_torch(c * pw / 2**exp, self.bits) * 2**exp / c).to(pulse_weight.dtype)
        return weight + (w_q - weight).detach(), pulse_weight + (pw_q - pulse_weight).detach()


def weight_grid(cfg: Any) -> WeightGrid | None:
    """The :class:`WeightGrid` of a config with ``train.weight_bits`` set, else ``None``."""
    bits = cfg.train.weight_bits
    if bits is None:
        return None
    return WeightGrid(bits, alpha_gain(cfg.model.decay, 1.0 / cfg.deploy.steps_per_unit),
                      cfg.model.threshold)


def quantize_layer(weight: np.ndarray, pulse_weight: np.ndarray, pulse_times: np.ndarray, *,
                   name: str, index: int, decay: float, threshold: float, grid: Grid,
                   bits: int = 8) -> tuple[SpikeOnceAlphaLayer, dict[str, Any]]:
    """One trained layer (float arrays ``(out, in)``, ``(out, P)``, ``(P,)``) -> its deployed
    layer and the report of what rounding changed (module docstring); ``bits``: the weight
    mantissa (8, all Loihi 2 has; fewer for a network trained on a coarser grid)."""
    w = np.asarray(weight, dtype=np.float64)
    pw = np.asarray(pulse_weight, dtype=np.float64)
    d = alpha_decay(decay, grid.dt, name)
    gain = alpha_gain(decay, grid.dt)
    c = weight_scale(float(np.abs(w).max()), threshold, gain, bits)
    W = _even(c * w, bits)
    v_th = max(1, round(c * threshold / gain))
    exp = pulse_shift(float(np.abs(pw).max()) if pw.size else 0.0, c, bits,
                      name=name, weight_max=float(np.abs(w).max()))
    PW = _even(c * pw / 2**exp, bits)
    times = np.asarray(pulse_times, dtype=np.float64)
    steps_exact = times / grid.dt - index / 2
    steps = np.maximum(np.round(steps_exact), 0).astype(np.int64)
    kept = steps < grid.num_steps  # a pulse after the horizon cannot change a spike inside it
    layer = SpikeOnceAlphaLayer(name=name, weight=W, decay=d, v_th_mant=v_th,
                                pulse_steps=steps[kept], pulse_weight=PW[:, kept],
                                pulse_exp=exp)
    k_eff = -math.log1p(-d / DECAY_SCALE) / grid.dt
    report = {
        "decay": d, "decay_rel_error": k_eff / decay - 1.0,
        "weight_scale": c, "weight_rel_error": float(np.abs(W / c - w).max() / np.abs(w).max()),
        "weights_zeroed": int(((W == 0) & (w != 0)).sum()),
        "v_th_mant": v_th, "threshold_rel_error": v_th * gain / c / threshold - 1.0,
        "pulse_exp": exp,
        "pulse_weight_rel_error": float(np.abs(PW * 2**exp / c - pw).max()
                                        / max(np.abs(pw).max(), 1e-12)) if pw.size else 0.0,
        "pulse_step_error": [float(x) for x in (steps - steps_exact)[kept]],
        "pulse_times": [float(x) for x in times[kept]],  # of the pulses deployed
        "pulses_past_horizon": [float(x) for x in times[~kept]],  # dropped: no effect inside
    }
    return layer, report


@torch.no_grad()
def quantize(model: torch.nn.Module, cfg: Any, *, grid: Grid | None = None
             ) -> tuple[list[SpikeOnceAlphaLayer], dict[str, Any]]:
    """The two layers of a trained :class:`~spikecodec.train.families.comsa.model.ComsaAE` on
    ``cfg``'s grid (or ``grid``), and the report (per layer, plus the grid)."""
    grid = grid_for(cfg) if grid is None else grid
    bits = cfg.train.weight_bits or 8
    layers, report = [], {"dt": grid.dt, "num_steps": grid.num_steps, "weight_bits": bits}
    for i, (name, block) in enumerate(zip(LAYER_NAMES, (model.encoder, model.decoder),
                                          strict=True)):
        layer, rep = quantize_layer(
            block.weight.double().cpu().numpy(), block.pulse_weight.double().cpu().numpy(),
            block.pulse_times.double().cpu().numpy(), name=name, index=i,
            decay=cfg.model.decay, threshold=cfg.model.threshold, grid=grid, bits=bits)
        layers.append(layer)
        report[name] = rep
    return layers, report


def _even(x: np.ndarray, bits: int = 8) -> np.ndarray:
    """The nearest even integers in [-2^bits, 2^bits - 2] ([-256, 254] at 8 bits: an 8-bit
    signed mantissa scaled by 2, as SLAYER writes weights and a Loihi 2 synapse holds them)."""
    return np.clip(2 * np.round(x / 2), -2 ** bits, mantissa_max(bits)).astype(np.int64)


def _even_torch(x: torch.Tensor, bits: int) -> torch.Tensor:
    """:func:`_even` in torch (float64 in, float64 out; both round half to even)."""
    return torch.clamp(2 * torch.round(x / 2), -2 ** bits, mantissa_max(bits))


def input_spikes(times: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Input spike times ``(n, pixels)`` (``+inf``: silent) -> uint8 spikes ``(n, pixels, T)``:
    one spike on step ``round(t / dt)``."""
    if times.dim() != 2:
        raise InputError(f"input times must be (samples, pixels), got {tuple(times.shape)}")
    steps = torch.round(times.double() / grid.dt)
    fires = torch.isfinite(steps)
    if bool((steps[fires] < 0).any()) or bool((steps[fires] >= grid.num_steps).any()):
        raise InputError(f"input times must lie in [0, {grid.num_steps * grid.dt:g}) (the "
                         f"horizon), got [{times[fires].min():g}, {times[fires].max():g}]")
    idx = torch.where(fires, steps, torch.zeros_like(steps)).long()
    out = torch.zeros((*times.shape, grid.num_steps), dtype=torch.uint8)
    out.scatter_(2, idx.unsqueeze(2), fires.unsqueeze(2).to(torch.uint8))
    return out


def output_times(spikes: Any, grid: Grid) -> torch.Tensor:
    """Output spikes ``(n, neurons, T)`` -> times ``(n, neurons)`` float64: the first spike on
    step ``m`` reads ``(m + L / 2) dt`` (module docstring), ``+inf`` for a silent neuron."""
    s = np.asarray(spikes) != 0
    t = (s.argmax(axis=2) + grid.layers / 2) * grid.dt
    return torch.from_numpy(np.where(s.any(axis=2), t, math.inf))

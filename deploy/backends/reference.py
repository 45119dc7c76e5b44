"""The ``reference`` backend: Lava's fixed_pt arithmetic, many samples at once, in torch.

For a chunk of ``B`` samples, time step by time step, layer by layer (each sample starts from
zero state):

1. *Synapse* (shared by every layer kind: each layer's input goes through one Lava Dense): the
   layer's input spikes ``(B, in)`` times the weight mantissas that Lava's Dense really uses
   (:func:`spikecodec.deploy.weights.lava_weights`) in one GEMM, then Lava's floor shift of the
   sum by the weight exponent and ``<< 6`` into state units (:class:`Synapse`,
   :func:`synaptic_input`). The first layer's input does not depend on any state: it runs as
   one GEMM per ``TIME_BLOCK`` steps.
2. *Neurons*: the layer kind's plan (its ``reference_plan`` hook,
   :class:`~spikecodec.deploy.layers.base.ReferencePlan`) steps its state with the one step
   function of its neuron model. A dense layer runs
   :func:`spikecodec.lava_procs.cuba.cuba_step_hits`, i.e. ``cuba_step(..., bounded=True)`` --
   the equations, the int32 / 24-bit wrap of the current and the saturation of the voltage are
   written once, in :mod:`spikecodec.lava_procs.cuba` -- on int64 state, with ``bias_mant << 6``
   per neuron added to the voltage. Where bounds on ``|u|`` and ``|v|`` prove that no wrap or
   clip can happen (:func:`bounds_reachable`; every trained network so far) the plain
   ``cuba_step`` runs instead, on int32 state: the same numbers, about half the time.

Alignment: every layer runs with *no* delay from zero state, so output step ``t`` answers input
step ``t`` and layer ``l`` at step ``t`` reads layer ``l - 1`` at step ``t``. That is what the
``lava-sim`` backend returns after realigning (each Dense adds one step in Lava; NetX's
``LIFReset`` with ``reset_offset = 1`` zeroes a layer on the step it integrates a sample's first
input, see :mod:`spikecodec.deploy.backends.lava_sim`), and what the training forward computes.

Exactness: spikes are 0/1 and mantissas integers, so every partial sum of the GEMM, in any
order, lies between ``-N`` and ``P`` (the sums of the negative and positive mantissas of a
row; :func:`~spikecodec.deploy.weights.synaptic_bound`). On the CPU, mantissas that fit int8
(as they are, or shifted right by the 1 or 2 low bits they all lack) run an int8 GEMM with
int32 sums (exact below 2^31, ~8x faster than float32); otherwise a float GEMM is exact while
the bound fits its significand: float32 below 2^24 (784 inputs x 256 < 2^18), float64 below
2^53, beyond that :class:`~spikecodec.errors.ConfigError` (TF32 on a GPU is exact too: the
mantissas have at most 9 bits). Scaling by powers of two and ``floor`` are exact in float. The
neuron loop is integer arithmetic; int64 cannot overflow (``|a| < 2^59``, state ``< 2^32``).
Where the bounds are unreachable, the induction behind :func:`bounds_reachable` bounds every
intermediate of a step: ``|a|, |u| < 2^23`` and ``|rstz(v) + u|``, ``|rstz(v) + u + bias| <=
2^23 - 1``; so the synaptic input and the state are int32 (the GEMM's int32 sums, ``< 2^31``,
and their shifts included), and :func:`~spikecodec.lava_procs.cuba.rstz` decays int32 exactly.

Memory traffic, not arithmetic, bounds the neuron loop. Measured on 2 CPU cores, chunks of 512
samples beat 1024 (cache); the first layer reads the input transposed once per chunk (a strided
gather every step costs more); spikes go straight into the output arrays with strided
``[:, :, t]`` byte copies, which beat collecting ``(T, B, n)`` and transposing once.

``stats``: ``u_wraps`` / ``v_clips`` count, per layer, the steps x neurons x samples where Lava's
bounds changed the current / voltage (zero for a network whose training forward is exact),
``gemm`` the GEMM dtype per layer, ``seconds`` the wall time.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from spikecodec.deploy.backends.base import RunResult, check_input
from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.deploy.weights import lava_weights, synaptic_bound
from spikecodec.errors import ConfigError
from spikecodec.lava_procs.cuba import CubaParams
from spikecodec.lava_procs.spec import DECAY_SCALE, STATE_EXP, U_MAX, V_MAX
from spikecodec.validate import check_int

FLOAT32_EXACT = 2**24  # integers below this are exact in float32 (and their sums, while below)
FLOAT64_EXACT = 2**53
TIME_BLOCK = 16  # steps of first-layer input computed at once: (B, 16, n) int32/int64 at most


@dataclass(frozen=True)
class Synapse:
    """A layer's Lava Dense, ready for the GEMM on its device."""

    weight_t: torch.Tensor  # (in, rows) Lava's mantissas >> mant_shift, in the GEMM dtype
    mant_shift: int  # mantissa = weight_t << mant_shift (> 0 only to fit int8)
    exponent: int  # Lava's weight exponent (a floor shift of the sum)
    a_max: int  # largest |output| in state units for any binary input

    @property
    def rows(self) -> int:
        return int(self.weight_t.shape[1])

    @property
    def gemm(self) -> str:
        return str(self.weight_t.dtype).removeprefix("torch.")


def make_synapse(weight: np.ndarray, device: torch.device,
                 dtype: torch.dtype | None = None) -> Synapse:
    """Lava's Dense for the HDF5 ``weight (rows, in)``; ``dtype`` forces the GEMM dtype
    (tests), else int8 where exact on the CPU, else the narrowest exact float."""
    mantissa, exponent = lava_weights(weight)
    a_max = synaptic_bound(mantissa, exponent) << STATE_EXP
    shift = _int8_shift(mantissa) if dtype is None and device.type == "cpu" else None
    if shift is not None:  # exact int8 GEMM with int32 sums (~8x float32 on CPU)
        dtype, mantissa = torch.int8, mantissa >> shift
    elif dtype is None:
        dtype = _gemm_dtype(synaptic_bound(mantissa, 0))
    weight_t = torch.as_tensor(mantissa.T.copy(), dtype=dtype, device=device)
    return Synapse(weight_t, shift or 0, exponent, a_max)


def run_reference(net: FixedPointNetwork, spikes: np.ndarray, *, probe: bool = False,
                  show_progress: bool = False, batch_size: int = 512,
                  device: str | torch.device = "cpu") -> RunResult:
    """Run binary ``spikes (batch, in_features, T)`` through ``net``, ``batch_size`` at a time.

    Returns ``RunResult(spikes (batch, out, T) uint8, layers, stats)``; ``layers`` holds every
    layer's spikes ``(batch, n_l, T)`` when ``probe``, else ``None``. Stats: module docstring.
    """
    batch_size = check_int("", "batch_size", batch_size, 1)
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"device must name a torch device, got {device!r}") from err
    x = check_input(net, spikes)  # cheap for the uint8 array run() passes
    start = time.perf_counter()
    batch, _, steps = x.shape
    plans = [layer.reference_plan(device=device, steps=steps) for layer in net.layers]
    keep = [probe or i == len(plans) - 1 for i in range(len(plans))]
    outs = [np.empty((batch, layer.out_features, steps), dtype=np.uint8) if k else None
            for layer, k in zip(net.layers, keep, strict=True)]
    u_wraps, v_clips = [0] * len(plans), [0] * len(plans)
    bar = _progress_bar(batch) if show_progress else None
    for lo in range(0, batch, batch_size):
        hi = min(lo + batch_size, batch)
        part = x[lo:hi] if x.flags.writeable else x[lo:hi].copy()  # torch wants writable
        s = torch.from_numpy(part).to(device)  # (B, in, T)
        views = [None if out is None else torch.from_numpy(out[lo:hi]) for out in outs]
        targets = views if device.type == "cpu" else \
            [None if v is None else torch.empty_like(v, device=device) for v in views]
        wraps, clips = _run_chunk(plans, s, targets, first_sample=lo)
        for i, (view, target) in enumerate(zip(views, targets, strict=True)):
            if view is not target:
                view.copy_(target)  # from the device
            u_wraps[i] += wraps[i]
            v_clips[i] += clips[i]
        if bar is not None:
            bar.update(hi - lo)
    if bar is not None:
        bar.close()
    stats = {"u_wraps": u_wraps, "v_clips": v_clips, "gemm": [p.synapse.gemm for p in plans],
             "seconds": time.perf_counter() - start}
    return RunResult(spikes=outs[-1], layers=outs if probe else None, stats=stats)


def _progress_bar(total: int):
    """A tqdm bar, created only when asked for: a tqdm instance creates a multiprocessing lock,
    which fixes the start method, and a later ``import lava`` then fails to set ``fork``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="sample", desc="reference", dynamic_ncols=True)


def _gemm_dtype(bound: int) -> torch.dtype:
    """The narrowest float dtype whose GEMM is exact for partial sums bounded by ``bound``."""
    if bound < FLOAT32_EXACT:
        return torch.float32
    if bound < FLOAT64_EXACT:
        return torch.float64
    raise ConfigError(f"a synaptic sum can reach {bound} >= 2^53: no exact float GEMM")


def _int8_shift(mantissa: np.ndarray) -> int | None:
    """``j`` such that ``mantissa >> j`` is exact in int8 (and an int32 GEMM exact), or None."""
    for j in (0, 1, 2):
        m = mantissa >> j
        if (m << j == mantissa).all() and m.min() >= -128 and m.max() <= 127:
            return j if synaptic_bound(m, 0) < 2**31 else None
    return None


def bounds_reachable(a_max: int, p: CubaParams, bias_max: int, steps: int) -> bool:
    """Whether Lava's wrap or clip can change any CUBA state within ``steps`` steps.

    ``|a| <= a_max`` and ``|rstz(x)| <= |x| (4096 - d) / 4096`` give ``|u| <= U = min(steps a_max,
    a_max 4096 / du)``, so no wrap while ``U < U_MAX``; then ``|y| <= min(steps (U + |bias|),
    (U + |bias|) 4096 / dv)``, so no clip while that is ``<= V_MAX`` (all in state units).
    """
    u_max = min(steps * a_max, -(-a_max * DECAY_SCALE // p.du)) if p.du else steps * a_max
    drive = u_max + bias_max
    y_max = min(steps * drive, -(-drive * DECAY_SCALE // p.dv)) if p.dv else steps * drive
    return u_max >= U_MAX or y_max > V_MAX


def _run_chunk(plans: list, x: torch.Tensor, out: list[torch.Tensor | None], *,
               first_sample: int = 0):
    """Input spikes ``(B, in, T)`` uint8 -> layer ``i``'s spikes written into ``out[i]``
    ``(B, n, T)`` uint8 (skipped where None); returns the wrap and clip counts per layer.
    A layer that draws random numbers keys them by sample ``first_sample + b`` and step ``t``.

    Time is the outer loop, each step writing strided ``[:, :, t]`` views in place. The first
    layer's synaptic input needs no state: it is one GEMM per ``TIME_BLOCK`` steps, on the
    input transposed once to ``(B, steps, in)``, instead of a strided gather every step."""
    batch, _, steps = x.shape
    states = [plan.zero_state(batch) for plan in plans]
    samples = torch.arange(first_sample, first_sample + batch, device=x.device)[:, None]
    for t in range(steps):
        if t % TIME_BLOCK == 0:  # the first layer's input for the next block of steps
            block = x[:, :, t:t + TIME_BLOCK].transpose(1, 2).contiguous()  # (B, block, in)
            first = synaptic_input(plans[0].synapse, block.view(-1, block.shape[2]),
                                   plans[0].state)
            first = first.view(batch, block.shape[1], -1)
        s = None  # spikes of the layer below: 0/1 bool (B, n)
        for i, plan in enumerate(plans):
            a = first[:, t % TIME_BLOCK] if i == 0 else synaptic_input(plan.synapse, s,
                                                                       plan.state)
            states[i], s = plan.step(states[i], a, t=t, samples=samples)
            if out[i] is not None:
                out[i][:, :, t] = s.view(torch.uint8)  # a plain byte copy: faster than a cast
    counts = [plan.counts(state) for plan, state in zip(plans, states, strict=True)]
    return [c[0] for c in counts], [c[1] for c in counts]


def synaptic_input(synapse: Synapse, s: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Contiguous spikes ``(B, in)`` (0/1, one byte each) -> Lava's Dense output in state units
    ``(B, rows)`` of ``dtype`` (the layer's state dtype), exactly: the GEMM sums are exact
    integers, and scaling by powers of two and ``floor`` are exact (in int32 too: ``|a| < 2^23``
    where the state is int32)."""
    shift = synapse.mant_shift + synapse.exponent  # sum of mantissas = GEMM sum << mant_shift
    if synapse.weight_t.dtype == torch.int8:
        z = torch._int_mm(s.view(torch.int8), synapse.weight_t).to(dtype)  # int32 sums
        if shift < 0:
            z >>= -shift  # Lava's floor shift of the sum
        z <<= max(shift, 0) + STATE_EXP
        return z
    z = s.to(synapse.weight_t.dtype) @ synapse.weight_t
    if shift < 0:
        z = torch.floor_(z.mul_(2.0 ** shift))  # Lava's floor shift of the sum
    return z.mul_(2.0 ** (max(shift, 0) + STATE_EXP)).to(dtype)

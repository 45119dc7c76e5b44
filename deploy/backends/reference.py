"""The ``reference`` backend: Lava's fixed_pt arithmetic, many samples at once, in torch.

For a chunk of ``B`` samples, time step by time step, layer by layer (each sample starts from
zero state):

1. *Synapse*: the layer's input spikes ``(B, in)`` times the weight mantissas that Lava's Dense
   really uses (:func:`spikecodec.deploy.weights.lava_weights`) in one GEMM, then Lava's floor
   shift of the sum by the weight exponent and ``<< 6`` into state units. The first layer's
   input does not depend on any state: it runs as one GEMM per ``TIME_BLOCK`` steps.
2. *Neurons*: :func:`spikecodec.lava_procs.cuba.cuba_step_hits`, i.e. ``cuba_step(...,
   bounded=True)`` -- the equations, the int32 / 24-bit wrap of the current and the saturation
   of the voltage are written once, in :mod:`spikecodec.lava_procs.cuba` -- on int64 state, with
   ``bias_mant << 6`` per neuron added to the voltage. Where bounds on ``|u|`` and ``|v|`` prove
   that no wrap or clip can happen (:func:`_bounds_reachable`; every trained network so far) the
   plain ``cuba_step`` runs instead, on int32 state: the same numbers, about half the time.

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
Where the bounds are unreachable, the induction behind :func:`_bounds_reachable` bounds every
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
from dataclasses import dataclass, replace

import numpy as np
import torch

from spikecodec.deploy.backends import RunResult, check_input
from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.deploy.layers import DenseLayer, StochasticReadoutLayer
from spikecodec.deploy.weights import lava_weights, synaptic_bound
from spikecodec.errors import ConfigError
from spikecodec.lava_procs.cuba import (
    DECAY_SCALE,
    STATE_EXP,
    U_MAX,
    V_MAX,
    CubaParams,
    CubaState,
    cuba_step,
    cuba_step_hits,
)
from spikecodec.lava_procs.stochastic_readout.dynamics import (
    ReadoutParams,
    neuron_step_key,
    readout_step,
    sample_key,
    zero_state,
)

FLOAT32_EXACT = 2**24  # integers below this are exact in float32 (and their sums, while below)
FLOAT64_EXACT = 2**53
TIME_BLOCK = 16  # steps of first-layer input computed at once: (B, 16, n) int32/int64 at most


@dataclass(frozen=True)
class _LayerPlan:
    """One dense layer, ready to run on ``device``."""

    weight_t: torch.Tensor  # (in, out) Lava's mantissas >> mant_shift, in the GEMM dtype
    mant_shift: int  # mantissa = weight_t << mant_shift (> 0 only to fit int8)
    exponent: int  # Lava's weight exponent (a floor shift of the sum)
    params: CubaParams | ReadoutParams  # neuron, in state units (bias: a tensor or 0)
    bounded: bool  # Lava's wrap / clip can be reached (else the plain step is the same)
    state: torch.dtype  # int32 where |u|, |v| < 2^24 is proven (module docstring), else int64

    @property
    def stochastic(self) -> bool:
        """A VDIB stochastic readout (its own step function and random keys)."""
        return isinstance(self.params, ReadoutParams)

    @property
    def gemm(self) -> str:
        return str(self.weight_t.dtype).removeprefix("torch.")


def run_reference(net: FixedPointNetwork, spikes: np.ndarray, *, probe: bool = False,
                  show_progress: bool = False, batch_size: int = 512,
                  device: str | torch.device = "cpu") -> RunResult:
    """Run binary ``spikes (batch, in_features, T)`` through ``net``, ``batch_size`` at a time.

    Returns ``RunResult(spikes (batch, out, T) uint8, layers, stats)``; ``layers`` holds every
    layer's spikes ``(batch, n_l, T)`` when ``probe``, else ``None``. Stats: module docstring.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"device must name a torch device, got {device!r}") from err
    x = check_input(net, spikes)  # cheap for the uint8 array run() passes
    start = time.perf_counter()
    batch, _, steps = x.shape
    plans = [_plan(layer, device, steps) for layer in net.layers]
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
    stats = {"u_wraps": u_wraps, "v_clips": v_clips, "gemm": [p.gemm for p in plans],
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


def _bounds_reachable(a_max: int, p: CubaParams, bias_max: int, steps: int) -> bool:
    """Whether Lava's wrap or clip can change any state within ``steps`` steps.

    ``|a| <= a_max`` and ``|rstz(x)| <= |x| (4096 - d) / 4096`` give ``|u| <= U = min(steps a_max,
    a_max 4096 / du)``, so no wrap while ``U < U_MAX``; then ``|y| <= min(steps (U + |bias|),
    (U + |bias|) 4096 / dv)``, so no clip while that is ``<= V_MAX`` (all in state units).
    """
    u_max = min(steps * a_max, -(-a_max * DECAY_SCALE // p.du)) if p.du else steps * a_max
    drive = u_max + bias_max
    y_max = min(steps * drive, -(-drive * DECAY_SCALE // p.dv)) if p.dv else steps * drive
    return u_max >= U_MAX or y_max > V_MAX


def _synapse(layer, device: torch.device, dtype: torch.dtype | None
             ) -> tuple[np.ndarray, int, int, torch.dtype]:
    """Lava's ``(mantissa >> shift, shift, exponent, GEMM dtype)`` of a layer's weights."""
    mantissa, exponent = lava_weights(layer.weight)
    shift = _int8_shift(mantissa) if dtype is None and device.type == "cpu" else None
    if shift is not None:  # exact int8 GEMM with int32 sums (~8x float32 on CPU)
        dtype, mantissa = torch.int8, mantissa >> shift
    elif dtype is None:
        dtype = _gemm_dtype(synaptic_bound(mantissa, 0))
    return mantissa, shift or 0, exponent, dtype


def _plan(layer: DenseLayer | StochasticReadoutLayer, device: torch.device, steps: int, *,
          dtype: torch.dtype | None = None, bounded: bool | None = None) -> _LayerPlan:
    """``dtype`` / ``bounded`` force the GEMM dtype and the bounded step (tests)."""
    if isinstance(layer, StochasticReadoutLayer):
        mantissa, shift, exponent, dtype = _synapse(layer, device, dtype)
        weight_t = torch.as_tensor(mantissa.T.copy(), dtype=dtype, device=device)
        params = layer.params(lambda a: torch.tensor(a, dtype=torch.int64, device=device))
        return _LayerPlan(weight_t, shift, exponent, params, False, torch.int64)
    if not isinstance(layer, DenseLayer):
        raise ConfigError(f"{layer.name}: the reference backend has no engine for layer kind "
                          f"{layer.kind!r}")
    mantissa, shift, exponent, dtype = _synapse(layer, device, dtype)
    n = layer.neuron
    bias_np = np.asarray(0 if layer.bias is None else layer.bias, dtype=np.int64) << STATE_EXP
    params = CubaParams(du=n.i_decay, dv=n.v_decay, vth=n.v_th_mant << STATE_EXP)
    a_max = synaptic_bound(mantissa << shift, exponent) << STATE_EXP
    reachable = _bounds_reachable(a_max, params, int(np.abs(bias_np).max()), steps)
    bounded = reachable if bounded is None else bounded
    state = torch.int64 if bounded or reachable else torch.int32
    if np.any(bias_np):
        params = replace(params, bias=torch.as_tensor(bias_np, dtype=state, device=device))
    weight_t = torch.as_tensor(mantissa.T.copy(), dtype=dtype, device=device)
    return _LayerPlan(weight_t, shift, exponent, params, bounded, state)


def _run_chunk(plans: list[_LayerPlan], x: torch.Tensor, out: list[torch.Tensor | None], *,
               first_sample: int = 0):
    """Input spikes ``(B, in, T)`` uint8 -> layer ``i``'s spikes written into ``out[i]``
    ``(B, n, T)`` uint8 (skipped where None); returns the wrap and clip counts per layer.
    A stochastic readout keys its draws by sample ``first_sample + b`` and the step ``t``.

    Time is the outer loop, each step writing strided ``[:, :, t]`` views in place. The first
    layer's synaptic input needs no state: it is one GEMM per ``TIME_BLOCK`` steps, on the
    input transposed once to ``(B, steps, in)``, instead of a strided gather every step."""
    batch, _, steps = x.shape
    states, wraps, clips = [], [], []
    samples = torch.arange(first_sample, first_sample + batch, device=x.device)[:, None]
    for plan in plans:
        n_out = plan.weight_t.shape[1] // (plan.params.num_basis if plan.stochastic else 1)
        zeros = torch.zeros((batch, n_out), dtype=plan.state, device=x.device)
        states.append(zero_state(zeros, plan.params.num_basis) if plan.stochastic
                      else CubaState(zeros, zeros))
        wraps.append(torch.zeros_like(zeros, dtype=torch.int32) if plan.bounded else None)
        clips.append(torch.zeros_like(zeros, dtype=torch.int32) if plan.bounded else None)
    for t in range(steps):
        if t % TIME_BLOCK == 0:  # the first layer's input for the next block of steps
            block = x[:, :, t:t + TIME_BLOCK].transpose(1, 2).contiguous()  # (B, block, in)
            first = _synaptic_input(plans[0], block.view(-1, block.shape[2]))
            first = first.view(batch, block.shape[1], -1)
        s = None  # spikes of the layer below: 0/1 bool (B, n)
        for i, plan in enumerate(plans):
            a = first[:, t % TIME_BLOCK] if i == 0 else _synaptic_input(plan, s)
            if plan.stochastic:
                neurons = torch.arange(states[i].g.shape[1], device=x.device)
                keys = (sample_key(plan.params.seed, samples), neuron_step_key(neurons, t))
                states[i], _, s = readout_step(states[i], a, plan.params, keys=keys)
            elif plan.bounded:
                states[i], _, s, hits = cuba_step_hits(states[i], a, plan.params)
                wraps[i] += hits.u_wrapped
                clips[i] += hits.v_clipped
            else:
                states[i], _, s = cuba_step(states[i], a, plan.params, voltage=False)
            if out[i] is not None:
                out[i][:, :, t] = s.view(torch.uint8)  # a plain byte copy: faster than a cast
    counts = [[0 if c is None else int(c.sum()) for c in cs] for cs in (wraps, clips)]
    return counts[0], counts[1]


def _synaptic_input(plan: _LayerPlan, s: torch.Tensor) -> torch.Tensor:
    """Contiguous spikes ``(B, in)`` (0/1, one byte each) -> Lava's Dense output in state units
    ``(B, out)`` of dtype ``plan.state``, exactly: the GEMM sums are exact integers, and scaling
    by powers of two and ``floor`` are exact (in int32 too: ``|a| < 2^23`` where it is int32)."""
    shift = plan.mant_shift + plan.exponent  # sum of mantissas = GEMM sum << mant_shift
    if plan.weight_t.dtype == torch.int8:
        z = torch._int_mm(s.view(torch.int8), plan.weight_t).to(plan.state)  # int32 sums
        if shift < 0:
            z >>= -shift  # Lava's floor shift of the sum
        z <<= max(shift, 0) + STATE_EXP
        return z
    z = s.to(plan.weight_t.dtype) @ plan.weight_t
    if shift < 0:
        z = torch.floor_(z.mul_(2.0 ** shift))  # Lava's floor shift of the sum
    return z.mul_(2.0 ** (max(shift, 0) + STATE_EXP)).to(plan.state)

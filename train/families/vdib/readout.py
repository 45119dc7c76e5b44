"""VDIB stochastic readout layer in torch: float training mode and bit-exact quantized mode.

The neuron is written once, in :mod:`spikecodec.lava_procs.stochastic_readout.dynamics` (read
its docstring for the equations). Here:

* ``mode="float"`` (training): the same equations in real numbers. Because the basis responses
  are linear filters without reset, ``m[t] = sum_k W_k @ trace_k[t] + g[t] + bias`` where
  ``trace_k`` is the k-th alpha filter of the input spikes, per input neuron: one GEMM over all
  steps, and ``trace_k`` is exactly the eligibility trace of the VDIB/e-prop readout gradient
  ``d log q / d W_k = (y - sigmoid(m)) trace_k``. The sigmoid is exact and spikes are drawn with
  a ``torch.Generator``; ``m`` keeps its autograd graph (weights, bias and feedback weight).
* ``mode="quantized"`` (deployment check): the integer dynamics, the sigmoid table and the
  counter-based PRNG keyed by ``(seed, neuron, step, first_sample + b)``: the same spikes as the
  reference engine and the Lava process (tests/train/families/test_vdib_model.py,
  tests/deploy/backends/test_lava_readout.py, the golden export netx_exports/vdib_digits/).

With ``delays = D > 0`` (``model.readout.delays``, the paper's encoding window ``tau_e`` as a
window of separately weighted past steps) every synapse has ``D`` taps, its trace delayed by
``0 .. D-1`` steps (:class:`StochasticReadout`); the quantized mode delays the synaptic input of
each tap as Lava's ``DelayDense`` does and adds the taps with the shared
:func:`~spikecodec.lava_procs.stochastic_readout.dynamics.tap_sum`.

Weights, bias and feedback weight are quantized in every forward pass with a straight-through
estimator (even 8-bit weight mantissas like :class:`~spikecodec.train.blocks.CubaDense`, bias
and feedback mantissas on the same ``1/scale`` grid), so both modes use the deployed values.
Shapes: input spikes time-major ``(T, B, in)``, outputs ``(B, N, T)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from spikecodec.deploy.weights import lava_weights
from spikecodec.errors import ConfigError
from spikecodec.lava_procs.cuba import DECAY_SCALE, STATE_EXP
from spikecodec.lava_procs.spec import BIAS_MAX, BIAS_MIN, SYNAPSE_DELAY_MAX
from spikecodec.lava_procs.stochastic_readout.dynamics import (
    ReadoutParams,
    check_seed,
    neuron_step_key,
    readout_step,
    sample_key,
    sigmoid_lut,
    tap_sum,
    zero_state,
)
from spikecodec.train.blocks import quantize_weight
from spikecodec.train.config import OMIT_DEFAULT
from spikecodec.train.parallel import RowDraws, bernoulli


@dataclass(frozen=True)
class ReadoutConfig:
    """Stochastic readout neurons. Decays are fractions per step (rounded to the 1/4096 grid)."""

    neurons: int = 256  # N_Y
    current_decay: tuple[float, ...] = (0.5,)  # one per synaptic basis response (K = len)
    voltage_decay: tuple[float, ...] = (0.25,)
    feedback_decay: float = 0.5  # exponential feedback filter of the neuron's own spikes
    feedback_init: float = -1.0  # initial feedback weight (negative: refractory-like)
    bias_init: float = -1.0  # initial bias (real units): sigmoid(-1) = 0.27 before any input
    weight_scale: float = 6.0  # initial weights U(-1, 1) * weight_scale / sqrt(in * K * taps)
    scale: int = 64  # weight mantissa = weight * scale (state scale = scale << 6)
    seed: int = 0  # seed of the deployed PRNG (stored in the export)
    # tau_e as a window of delay-basis synapses (paper eq. 34 with delta-delay bases): D > 0
    # gives every synapse D weights, on its input delayed by 0..D-1 steps (a learnable FIR
    # filter over the last D steps, deployed on Loihi 2 synaptic delays); 0 = no delays (the
    # plain readout, whose only memory is the exponential filters above)
    delays: int = field(default=0, metadata=OMIT_DEFAULT)  # (not written while 0)

    def __post_init__(self) -> None:
        if self.neurons < 1:
            raise ConfigError(f"readout.neurons must be >= 1, got {self.neurons}")
        if not self.current_decay or len(self.current_decay) != len(self.voltage_decay):
            raise ConfigError("readout.current_decay and readout.voltage_decay need one value "
                              f"per basis response, got {self.current_decay!r} and "
                              f"{self.voltage_decay!r}")
        for d in (*self.current_decay, *self.voltage_decay, self.feedback_decay):
            if not 0.0 <= d <= 1.0:
                raise ConfigError(f"readout decays must be in [0, 1], got {d!r}")
        if self.scale < 1 or self.scale & (self.scale - 1):
            raise ConfigError(f"readout.scale must be a power of two, got {self.scale}")
        for name in ("feedback_init", "bias_init", "weight_scale"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"readout.{name} must be finite, got {getattr(self, name)!r}")
        if not self.weight_scale > 0:
            raise ConfigError(f"readout.weight_scale must be > 0, got {self.weight_scale!r}")
        try:
            check_seed(self.seed)
        except ConfigError as err:
            raise ConfigError(f"readout.seed: {err}") from err
        if isinstance(self.delays, bool) or not isinstance(self.delays, int) \
                or not 0 <= self.delays <= SYNAPSE_DELAY_MAX + 1:
            raise ConfigError(f"readout.delays must be an integer in [0, "
                              f"{SYNAPSE_DELAY_MAX + 1}] (taps 0..D-1 on Loihi 2's synaptic "
                              f"delays of at most {SYNAPSE_DELAY_MAX} steps), got "
                              f"{self.delays!r}")

    @property
    def num_basis(self) -> int:
        return len(self.current_decay)

    @property
    def num_taps(self) -> int:
        """Weights per synapse and basis: ``delays``, or 1 without delays."""
        return max(self.delays, 1)

    @property
    def state_scale(self) -> int:
        return self.scale << STATE_EXP


def _grid(decay: float) -> int:
    return int(round(decay * DECAY_SCALE))


def delayed(x: torch.Tensor, d: int) -> torch.Tensor:
    """Time-major ``x (T, ...)`` delayed by ``d`` steps: ``out[t] = x[t - d]``, zeros for
    ``t < d`` (a sample starts with nothing in flight)."""
    if d == 0:
        return x
    pad = torch.zeros_like(x[:min(d, x.shape[0])])
    return torch.cat([pad, x[:max(x.shape[0] - d, 0)]])


def alpha_traces(x: torch.Tensor, current_decay: float, voltage_decay: float) -> torch.Tensor:
    """The alpha (two cascaded exponential) filter of spikes ``x (T, B, n)``, per input.

    ``c[t] = (1 - du) c[t-1] + x[t]``, ``e[t] = (1 - dv) e[t-1] + c[t]`` with the decays on the
    1/4096 grid: the real-valued CUBA current and voltage a unit weight would give.
    Differentiable in ``x`` (BPTT through the hidden layer uses it).
    """
    keep_c = 1.0 - _grid(current_decay) / DECAY_SCALE
    keep_e = 1.0 - _grid(voltage_decay) / DECAY_SCALE
    c = torch.zeros_like(x[0])
    e = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        c = keep_c * c + x[t]
        e = keep_e * e + c
        out.append(e)
    return torch.stack(out)


class ReadoutOutput(NamedTuple):
    """``(B, N, T)`` each; ``traces`` the per-basis input traces ``(K, T, B, in)`` (float)."""

    spikes: torch.Tensor  # 0/1 float
    prob: torch.Tensor | None  # sigmoid(m), with autograd (float mode); None when quantized
    membrane: torch.Tensor  # m in real units
    traces: torch.Tensor | None


class StochasticReadout(torch.nn.Module):
    """Dense synapses ``(C * K * N, in)`` into ``N`` neurons that spike with P = sigmoid(m).

    ``C = cfg.num_taps``: with ``cfg.delays = D > 0`` row ``c * K * N + k * N + i`` weighs the
    basis-``k`` trace of input ``j`` delayed by ``c`` steps, ``m_i[t] = sum_{c,k,j} w[c, k, i,
    j] trace_k,j[t - c]`` (an FIR filter over the last ``D`` steps per synapse and basis), and
    the readout deploys on Loihi 2 synaptic delays (:mod:`spikecodec.deploy.layers.
    delay_readout`); the readout gradient is then exactly ``(y - sigmoid(m)) trace[t - c]``.
    """

    def __init__(self, in_neurons: int, cfg: ReadoutConfig, *,
                 generator: torch.Generator | None = None):
        super().__init__()
        if in_neurons < 1:
            raise ConfigError(f"readout input size must be >= 1, got {in_neurons}")
        self.cfg = cfg
        k, n, c = cfg.num_basis, cfg.neurons, cfg.num_taps
        bound = cfg.weight_scale / math.sqrt(in_neurons * k * c)
        w = (torch.rand(c * k * n, in_neurons, generator=generator) * 2 - 1) * bound
        self.weight = torch.nn.Parameter(w)
        self.bias = torch.nn.Parameter(torch.full((n,), cfg.bias_init))
        self.feedback = torch.nn.Parameter(torch.full((n,), cfg.feedback_init))

    @property
    def in_neurons(self) -> int:
        return self.weight.shape[1]

    def row_delay(self) -> torch.Tensor:
        """The synaptic delay of each weight row ``(C * K * N,)``: tap ``c`` waits ``c`` steps."""
        rows = self.cfg.num_basis * self.cfg.neurons
        return torch.arange(self.cfg.num_taps, device=self.weight.device).repeat_interleave(rows)

    # ---------------------------------------------------------------- quantized values
    def quantized_weight(self) -> torch.Tensor:
        return quantize_weight(self.weight, self.cfg.scale)

    def _quantized_vector(self, p: torch.Tensor) -> torch.Tensor:
        s = self.cfg.scale
        q = p + (torch.round(p * s) / s - p).detach()
        return q.clamp(BIAS_MIN / s, BIAS_MAX / s)

    def quantized_bias(self) -> torch.Tensor:
        return self._quantized_vector(self.bias)

    def quantized_feedback(self) -> torch.Tensor:
        return self._quantized_vector(self.feedback)

    def mantissas(self) -> dict[str, torch.Tensor]:
        """Integer weight ``(K * N, in)``, bias ``(N,)`` and feedback ``(N,)`` mantissas."""
        s = self.cfg.scale
        with torch.no_grad():
            return {"weight": torch.round(self.quantized_weight() * s).long(),
                    "bias": torch.round(self.quantized_bias() * s).long(),
                    "feedback": torch.round(self.quantized_feedback() * s).long()}

    def fixed_point(self, seed: int | None = None) -> ReadoutParams:
        """The integer parameters (torch int64 on the weights' device)."""
        cfg = self.cfg
        lut, shift, offset = sigmoid_lut(state_scale=cfg.state_scale)
        m = self.mantissas()
        return ReadoutParams(
            du=tuple(_grid(d) for d in cfg.current_decay),
            dv=tuple(_grid(d) for d in cfg.voltage_decay), dg=_grid(cfg.feedback_decay),
            w_fb=m["feedback"] << STATE_EXP, bias=m["bias"] << STATE_EXP,
            lut=torch.tensor(lut, dtype=torch.int64, device=self.weight.device),
            lut_shift=shift, lut_offset=offset, seed=cfg.seed if seed is None else seed)

    # ---------------------------------------------------------------- forward
    def forward_tm(self, x: torch.Tensor, *, mode: str = "float",
                   generator: torch.Generator | None = None, first_sample: int = 0,
                   seed: int | None = None) -> ReadoutOutput:
        """Input spikes ``x (T, B, in)`` -> :class:`ReadoutOutput`."""
        if mode == "float":
            return self._float(x, generator)
        if mode == "quantized":
            return self._quantized(x, first_sample, seed)
        raise ConfigError(f"mode must be 'float' or 'quantized', got {mode!r}")

    def _float(self, x: torch.Tensor, generator: torch.Generator | RowDraws | None
               ) -> ReadoutOutput:
        cfg = self.cfg
        k, n = cfg.num_basis, cfg.neurons
        traces = torch.stack([alpha_traces(x, du, dv) for du, dv in
                              zip(cfg.current_decay, cfg.voltage_decay, strict=True)])
        steps, batch, n_in = x.shape
        c = cfg.num_taps
        w = self.quantized_weight().view(c * k, n, n_in)  # row (c K + k) N + i -> (c K + k, i)
        # tap c reads the traces c steps late: (C * K, T, B, in)
        taps = torch.cat([delayed(traces.transpose(0, 1), d).transpose(0, 1)
                          for d in range(c)]) if c > 1 else traces
        # m_syn[t, b, i] = sum_{c,k} sum_j w[c, k, i, j] traces[k, t - c, b, j]: one GEMM
        lhs = taps.permute(1, 2, 0, 3).reshape(steps * batch, c * k * n_in)
        m_syn = (lhs @ w.permute(1, 0, 2).reshape(n, c * k * n_in).t()).view(steps, batch, n)
        keep_g = 1.0 - _grid(cfg.feedback_decay) / DECAY_SCALE
        w_fb, bias = self.quantized_feedback(), self.quantized_bias()
        g = torch.zeros_like(m_syn[0])
        y = torch.zeros_like(m_syn[0])
        ms, ys = [], []
        for t in range(steps):
            g = keep_g * g + w_fb * y  # filtered own past spikes (y sampled: no gradient)
            m = m_syn[t] + g + bias
            y = bernoulli(torch.sigmoid(m.detach()), generator)  # RowDraws: torchrun
            ms.append(m)
            ys.append(y)
        m = torch.stack(ms).permute(1, 2, 0)
        return ReadoutOutput(torch.stack(ys).permute(1, 2, 0), torch.sigmoid(m), m, traces)

    @torch.no_grad()
    def _quantized(self, x: torch.Tensor, first_sample: int, seed: int | None) -> ReadoutOutput:
        p = self.fixed_point(seed)
        steps, batch, _ = x.shape
        # the mantissas and exponent Lava's Dense really uses (lossless unless all <= 0)
        mant, exponent = lava_weights(self.mantissas()["weight"].cpu().numpy())
        w = torch.as_tensor(mant, dtype=torch.float64, device=x.device)
        a_all = x.reshape(-1, x.shape[2]).to(torch.float64) @ w.t()  # exact: |sum| < 2^53
        a_all = torch.floor(a_all * 2.0 ** exponent)  # Lava's floor shift of the sum
        a_all = (a_all.long() << STATE_EXP).view(steps, batch, -1)
        row_delay, taps = self.row_delay(), self.cfg.num_taps
        if taps > 1:  # what the DelayDense delivers: row r at step t carries step t - delay_r
            rows = a_all.shape[2] // taps
            a_all = torch.cat([delayed(a_all[..., d * rows:(d + 1) * rows], d)
                               for d in range(taps)], dim=2)
        n = self.cfg.neurons
        state = zero_state(torch.zeros(batch, n, dtype=torch.int64, device=x.device),
                           p.num_basis)
        samples = torch.arange(first_sample, first_sample + batch, device=x.device)[:, None]
        s_key = sample_key(p.seed, samples)
        neurons = torch.arange(n, device=x.device)
        ms, ys = [], []
        for t in range(steps):
            a = tap_sum(a_all[t], row_delay, t, taps)  # the taps meet in each basis row
            state, m, s = readout_step(state, a, p, keys=(s_key, neuron_step_key(neurons, t)))
            ms.append(m)
            ys.append(s)
        m = torch.stack(ms).permute(1, 2, 0).to(torch.float32) / self.cfg.state_scale
        return ReadoutOutput(torch.stack(ys).permute(1, 2, 0).float(), None, m, None)

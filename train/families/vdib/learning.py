"""The VDIB learning rule: directed-information-bottleneck loss, REINFORCE, e-prop with DFA.

Loss (an upper bound on the negative directed information bottleneck; paper eq. 11,
../shared/papers/vdib_equations.md), per sample::

    l = -log p_theta(r | y) + beta * sum_{t,i} log( q_phi(y_{i,t} | .) / prior(y_{i,t}) )
    q_phi(y_{i,t} = 1 | .) = sigmoid(m_{i,t}),   prior = Bernoulli(p) i.i.d.

``-log p_theta`` is the decoder's negative log-likelihood of the reference, summed over its
elements (Bernoulli pixels for ``sigmoid`` outputs, one categorical per group for ``softmax``,
unit Gaussian for ``identity``), and over steps when the decoder estimates at every step; the
encoder term is summed over readout neurons and steps (kclip/VDIB averages both instead; with
sums, ``beta`` weighs nats against nats).

Gradients (paper section 4-5):

* decoder ``theta``: backpropagation of ``-log p_theta(r | y)`` with the sampled spikes fixed;
* encoder ``phi``, REINFORCE with the common learning signal ``l`` and a running-mean baseline
  ``b``: ``grad = E[(l - b) grad log q] + beta E[grad log q]``, where for every readout
  potential ``d log q / d m_{i,t} = y_{i,t} - sigmoid(m_{i,t})``. :func:`encoder_objective`
  returns the scalar whose autograd gradient is this estimate: readout weights get
  ``(y - sigma(m)) * trace`` exactly (the readout is linear in its weights given the traces);
* hidden neurons, e-prop with direct feedback alignment (default): a fixed random matrix ``B``
  broadcasts the readout errors into per-neuron learning signals ``L_{k,t} = sum_i B_{k,i}
  (y_{i,t} - sigma(m_{i,t}))``; the eligibility trace of synapse ``k <- j`` is
  ``psi(v_{k,t}) * alpha_trace_j[t]`` (``psi``: the sigmoid surrogate derivative at the
  threshold, ``alpha_trace``: the neuron's synaptic filter of the presynaptic spikes); the
  update is ``sum_t c * L_{k,t} * psi * trace``, ``c = (l - b) + beta``. :class:`EPropDFA` adds a
  term whose autograd gradient is exactly that;
* ``bptt=True`` instead back-propagates ``grad log q`` through the hidden layers with the
  surrogate gradient (the readout stays REINFORCE).
"""
from __future__ import annotations

import math

import torch

from spikecodec.errors import ConfigError
from spikecodec.train.families.vdib.readout import alpha_traces
from spikecodec.train.parallel import batch_mean


def check_probability(name: str, p: float) -> float:
    """Probabilities of Bernoulli priors live strictly inside (0, 1)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < p < 1.0:
        raise ConfigError(f"{name} must be a probability in (0, 1), got {p!r}")
    return float(p)


def check_beta(beta: float, name: str = "beta") -> float:
    """The bottleneck weight is a finite number >= 0 (0: no information penalty)."""
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta >= 0 \
            or not math.isfinite(beta):
        raise ConfigError(f"{name} must be a finite number >= 0, got {beta!r}")
    return float(beta)


def decoder_nll(output: str, logits: torch.Tensor, reference: torch.Tensor, *,
                per_step: bool = False) -> torch.Tensor:
    """``-log p_theta(r | y)`` per sample ``(B,)``: logits and reference shaped alike; with
    ``per_step`` (estimates at every step, ``(B, T, ...)``) per sample and step ``(B, T)``."""
    if logits.shape != reference.shape:
        raise ConfigError(f"decoder output {tuple(logits.shape)} and reference "
                          f"{tuple(reference.shape)} differ in shape")
    if output == "sigmoid":
        nll = torch.nn.functional.binary_cross_entropy_with_logits(logits, reference,
                                                                   reduction="none")
    elif output == "softmax":
        nll = -(reference * torch.log_softmax(logits, dim=-1))
    else:
        nll = 0.5 * (logits - reference) ** 2
    if per_step:
        return nll.reshape(nll.shape[0], nll.shape[1], -1).sum(2)
    return nll.reshape(nll.shape[0], -1).sum(1)


def log_q_steps(spikes: torch.Tensor, membrane: torch.Tensor) -> torch.Tensor:
    """``log q_phi(y_t | .)`` per sample and step ``(B, T)`` from the readout potentials
    ``m (B, N, T)`` (``P(spike) = sigmoid(m)``): computed from the logits, so saturated neurons
    keep their exact gradient ``y - sigmoid(m)``."""
    nll = torch.nn.functional.binary_cross_entropy_with_logits(membrane, spikes,
                                                               reduction="none")
    return -nll.sum(1)


def log_q(spikes: torch.Tensor, membrane: torch.Tensor) -> torch.Tensor:
    """``log q_phi(y || x)`` per sample ``(B,)`` for spikes and potentials ``(B, N, T)``."""
    return log_q_steps(spikes, membrane).sum(1)


def log_prior_steps(spikes: torch.Tensor, p: float) -> torch.Tensor:
    """``log r(y_t)`` per sample and step ``(B, T)`` for the i.i.d. Bernoulli(p) prior."""
    k = spikes.sum(1)
    return k * math.log(p) + (spikes.shape[1] - k) * math.log1p(-p)


def log_prior(spikes: torch.Tensor, p: float) -> torch.Tensor:
    """``log r(y)`` per sample for the i.i.d. Bernoulli(p) prior."""
    return log_prior_steps(spikes, p).sum(1)


class Baseline:
    """Running mean of the learning signal (exponential, ``momentum`` per batch): one number
    for per-sample signals ``(B,)``, one per step for per-step signals ``(B, T)`` (the steps
    near ``T`` see fewer future estimates and have smaller signals)."""

    def __init__(self, momentum: float = 0.9):
        if not 0.0 <= momentum < 1.0:
            raise ConfigError(f"baseline momentum must be in [0, 1), got {momentum!r}")
        self.momentum = momentum
        self.value: torch.Tensor | None = None

    def update(self, signal: torch.Tensor) -> torch.Tensor:
        """Return the baseline for this batch (the running mean of the batches before, or this
        batch's mean for the first one), then fold this batch's mean in."""
        mean = batch_mean(signal.detach())  # () or (T,); the whole batch's under torchrun
        if self.value is not None and self.value.shape != mean.shape:
            self.value = None  # the signal's layout changed: start again
        current = mean if self.value is None else self.value
        self.value = mean if self.value is None else \
            self.momentum * self.value + (1 - self.momentum) * mean
        return current


def encoder_objective(spikes: torch.Tensor, membrane: torch.Tensor, nll: torch.Tensor, *,
                      beta: float, prior: float, baseline: Baseline, window: int | None = None,
                      discount: float = 1.0
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(objective, learning signal l, coefficient c)``.

    ``objective``'s gradient is the REINFORCE estimate of ``grad E[l]`` (module docstring);
    ``c = (l - b) + beta`` multiplies ``y - sigma(m)`` in every encoder gradient.

    ``nll (B,)``: one learning signal per sample, ``l`` and ``c`` are ``(B,)``. ``nll (B, T)``
    (a decoder estimating at every step from a ``window`` of spikes): step ``s`` gets its own
    signal ``l_s = sum_{t=s}^{s+window-1} nll_t + beta log(q_s / r_s)`` -- the estimates whose
    decoding window holds the spikes of step ``s`` -- and ``l``, ``c`` are ``(B, T)``. This is
    the online rule's per-step learning signal, and a truncation: the spikes of step ``s`` also
    reach later steps through the readout's own feedback (``w_fb``), whose effect it drops, as
    e-prop drops the hidden layers' recurrence; with ``w_fb = 0`` it is exact (terms outside
    the window have zero expectation). It trades that bias for much less variance than one
    signal for the whole sequence (T = 100 steps of blobs: one scalar for 1,000 Bernoulli draws).
    ``discount`` (``train.credit_discount``) weighs the estimate ``k`` steps later by
    ``discount^k``: 1 is the sum above; 0 keeps the step's own estimate, a biased signal with
    ``window`` times fewer terms, which helps once the encoder itself reaches back to the lag
    and hurts while only the decoder's window does (measured: README, predictive coding).
    """
    spikes_lq = log_q_steps(spikes, membrane)  # (B, T)
    kl = spikes_lq.detach() - log_prior_steps(spikes, prior)
    if nll.dim() == 1:
        lq = spikes_lq.sum(1)
        signal = nll.detach() + beta * kl.sum(1)
    else:
        if window is None or window < 1:
            raise ConfigError("a per-step decoder loss needs the decoding window")
        lq = spikes_lq
        ahead = torch.nn.functional.pad(nll.detach(), (0, window - 1)).unfold(1, window, 1)
        if discount != 1.0:
            ahead = ahead * discount ** torch.arange(window, dtype=ahead.dtype,
                                                     device=ahead.device)
        signal = ahead.sum(-1) + beta * kl
    coeff = (signal - baseline.update(signal)) + beta
    return (coeff * lq).sum(-1).mean() if lq.dim() == 2 else (coeff * lq).mean(), signal, coeff


class EPropDFA(torch.nn.Module):
    """Fixed random feedback ``B (hidden, readout)`` per hidden layer and the e-prop term."""

    def __init__(self, hidden_sizes: list[int], readout: int, *,
                 generator: torch.Generator | None = None):
        super().__init__()
        for i, h in enumerate(hidden_sizes):
            b = torch.randn(h, readout, generator=generator) / math.sqrt(readout)
            self.register_buffer(f"feedback{i}", b)

    def objective(self, encoder, enc_out, coeff: torch.Tensor) -> torch.Tensor:
        """Scalar whose gradient w.r.t. the hidden weights is the e-prop/DFA update."""
        ro = enc_out.readout
        error = (ro.spikes - ro.prob.detach()).permute(2, 0, 1)  # (T, B, N)
        total = torch.zeros((), device=error.device)
        c = coeff.detach()  # (B,) or (B, T)
        c = c[None, :, None] if c.dim() == 1 else c.t()[:, :, None]
        for i, block in enumerate(encoder.hidden):
            signal = error @ getattr(self, f"feedback{i}").t()  # L_{k,t}: (T, B, H)
            cfg = block.neuron
            th = cfg.v_th_mant / cfg.scale
            sig = torch.sigmoid(cfg.surrogate_slope * (enc_out.voltages[i] - th))
            psi = cfg.surrogate_slope * sig * (1 - sig)  # pseudo-derivative
            trace = alpha_traces(enc_out.inputs[i], cfg.current_decay, cfg.voltage_decay)
            v_lin = trace @ block.quantized_weight().t()  # linear in W: grad = trace
            total = total + ((c * signal * psi).detach() * v_lin).sum(2).sum(0).mean()
        return total

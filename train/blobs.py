"""Drifting Gaussian blobs: the predictive-coding task of VDIB (Skatchkovsky et al. 2021, sec. 6.1).

``N = num_inputs`` input neurons sit on a ring; ``B = num_blobs`` independent blobs move around it.
Positions are in neurons (neuron ``n`` sits at ``n``), wrapped to ``[0, N)``; times are in steps.
Each blob ``b`` has a random start ``c_b ~ U[0, N)`` and an unwrapped displacement ``d`` that
follows an AR(2) process driven by white Gaussian noise::

    d[t] = a1 * d[t-1] + a2 * d[t-2] + noise_std * eta[t],   eta[t] ~ N(0, 1),  d = 0 before start
    x[t] = (c_b + d[t]) mod N

The process runs ``burn_in`` steps before step 0 (discarded) so that the velocity is stationary
from the first returned step on. Each input neuron ``n`` spikes independently at every step with
probability (``dist`` = distance around the ring, ``min(|n - x| mod N, N - |n - x| mod N)``)::

    p[n, t] = min(1, background + p_max * sum_b exp(-dist(n, x_b[t])^2 / (2 sigma^2)))

The reference at step ``t`` is the one-hot position of every blob ``delta`` steps earlier,
``onehot(round(x_b[t - delta]) mod N)`` with ``round`` = round half up; for ``t < delta`` the
position comes from the burn-in, so every reference column holds exactly one 1 per blob
(``delta <= burn_in`` is required).

That is ``emission = "profile"``. ``emission = "single"`` is the authors' protocol (kclip/VDIB
``make_blob``, the paper's Fig. 2 left): every blob emits exactly **one** spike per step, at the
neuron nearest a jittered position ``z_b[t] = x_b[t] + sigma * xi[t]`` (``xi ~ N(0, 1)``,
wrapped, ``round`` as above); the inputs are the union of the blobs' spikes (one spike when both
hit the same neuron), ``p_max`` and ``background`` are not used, and the reference at ``t`` is
the one-hot of the neuron each blob drove at ``t - delta``: the input itself, ``delta`` steps
ago. That is why the paper's error drops once the encoder sees ``delta`` steps back (Fig. 4:
"the system is fed the signal to reconstruct").

Constants. The paper's values were lost in our copy of the text. The authors' code (kclip/VDIB,
``make_blob``, after Chalk et al. 2018) moves a blob on a ring of ``2 pi`` with a velocity that
follows ``v[t] = 0.9 v[t-1] + 0.14 eta[t]`` (radians per step) and a position ``x[t] = x[t-1] +
v[t-1]``. That is exactly the AR(2) above with ``a1 = 1 + 0.9 = 1.9`` and ``a2 = -0.9``: a unit
root in the position (it wanders around the whole ring instead of returning to a rest point)
and a stationary, smoothly correlated velocity (correlation time ``1 / (1 - 0.9) = 10`` steps).
``0.14`` rad on a 20-neuron ring is ``0.14 * 20 / (2 pi) = 0.45`` neurons, so
``noise_std = 0.45`` and the stationary speed is ``0.45 / sqrt(1 - 0.81) = 1.0`` neuron per step
(rms). Their per-step position jitter of 0.45 rad (1.4 neurons) becomes the width ``sigma``, and
``p_max = 0.3`` gives about one spike per blob per step (``p_max * sigma * sqrt(2 pi) = 1.05``),
matching their one spike per blob per step. Their slowly varying amplitude factor is dropped.

Any ``(a1, a2)`` whose velocity is stable is accepted: ``|a2| < 1``, ``a2 - a1 < 1`` and
``a1 + a2 <= 1`` (``= 1`` gives a drifting position, ``< 1`` a position that oscillates about
``c_b``); other values raise :class:`~spikecodec.errors.ConfigError`.
"""

import math
from dataclasses import dataclass, fields
from numbers import Integral

import numpy as np
import torch

from spikecodec.errors import ConfigError, InputError, InputTypeError

__all__ = ["EMISSIONS", "BlobsConfig", "BlobsSample", "drifting_blobs", "spike_probabilities"]

EMISSIONS = ("profile", "single")
_UNIT_ROOT_TOL = 1e-9  # a1 + a2 may exceed 1 by float rounding (1.9 + -0.9)


@dataclass(frozen=True)
class BlobsConfig:
    num_inputs: int = 20  # N_X, neurons on the ring (paper: 20)
    num_blobs: int = 2  # independent blobs (paper: 2)
    sigma: float = 1.4  # blob width: std of the Gaussian profile, in neurons
    p_max: float = 0.3  # spike probability per step at a blob's centre
    background: float = 0.0  # spike probability per step everywhere, in [0, 1)
    a1: float = 1.9  # AR(2) coefficients of the position; velocity v[t] = 0.9 v[t-1] + noise
    a2: float = -0.9
    noise_std: float = 0.45  # std of the AR(2) innovation, in neurons per step
    delta: int = 0  # reference lag in steps: reference[t] = onehot(position[t - delta])
    num_steps: int = 100  # T, steps per sample (paper: 100 for training)
    burn_in: int = 50  # steps run and discarded before step 0; >= delta, holds the lagged past
    emission: str = "profile"  # profile: Bernoulli Gaussian profile | single: one spike per blob

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "emission":
                continue
            if f.type in (int, "int"):
                if isinstance(value, bool) or not isinstance(value, Integral):
                    raise ConfigError(f"blobs.{f.name} must be an int; got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"blobs.{f.name} must be a number; got {value!r}")
            elif not math.isfinite(value):
                raise ConfigError(f"blobs.{f.name} must be finite; got {value!r}")
        if self.emission not in EMISSIONS:
            raise ConfigError(f"blobs.emission must be one of {EMISSIONS}; got {self.emission!r}")
        if self.num_inputs < 2:
            raise ConfigError(f"blobs.num_inputs must be >= 2; got {self.num_inputs}")
        for name in ("num_blobs", "num_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"blobs.{name} must be >= 1; got {getattr(self, name)}")
        if not self.sigma > 0:
            raise ConfigError(f"blobs.sigma must be > 0 (neurons); got {self.sigma}")
        if not 0 < self.p_max <= 1:
            raise ConfigError(f"blobs.p_max must be in (0, 1]; got {self.p_max}")
        if not 0 <= self.background < 1:
            raise ConfigError(f"blobs.background must be in [0, 1); got {self.background}")
        if self.noise_std < 0:
            raise ConfigError(f"blobs.noise_std must be >= 0; got {self.noise_std}")
        if self.delta < 0:
            raise ConfigError(f"blobs.delta must be >= 0; got {self.delta}")
        if not 0 <= self.delta <= self.burn_in:
            raise ConfigError(
                f"blobs.burn_in must be >= delta (the lagged reference reads the burn-in); "
                f"got burn_in={self.burn_in}, delta={self.delta}"
            )
        if not (abs(self.a2) < 1 and self.a2 - self.a1 < 1
                and self.a1 + self.a2 <= 1 + _UNIT_ROOT_TOL):
            raise ConfigError(
                f"blobs.a1, blobs.a2 = {self.a1}, {self.a2} give an unstable velocity; need "
                "|a2| < 1, a2 - a1 < 1 and a1 + a2 <= 1 (e.g. a1=1.9, a2=-0.9)"
            )


@dataclass(frozen=True)
class BlobsSample:
    """One batch of the task; ``B = num_blobs``, ``N = num_inputs``, ``T = num_steps``."""

    spikes: torch.Tensor  # (batch, N, T) float32 0/1 input spikes
    positions: torch.Tensor  # (batch, B, T) float64 blob centres in neurons, in [0, N)
    reference: torch.Tensor  # (batch, B, N, T) float32 one-hot of round(positions[t - delta])
    # (emission "single": of the neuron each blob drove at t - delta)


def spike_probabilities(positions: torch.Tensor, cfg: BlobsConfig) -> torch.Tensor:
    """Per-step spike probability of every input: ``(batch, B, T) -> (batch, N, T)`` float64.

    ``positions`` are blob centres in neurons; the profile is in the module docstring.
    """
    if not isinstance(cfg, BlobsConfig):
        raise InputTypeError(f"cfg must be a BlobsConfig; got {type(cfg).__name__}")
    if not isinstance(positions, torch.Tensor):
        raise InputTypeError(f"positions must be a torch.Tensor; got {type(positions).__name__}")
    if positions.dim() != 3 or positions.shape[1] != cfg.num_blobs:
        raise InputError(
            f"positions must be (batch, {cfg.num_blobs}, time); found {tuple(positions.shape)}"
        )
    n = cfg.num_inputs
    neurons = torch.arange(n, dtype=torch.float64).view(1, 1, n, 1)
    gap = torch.remainder(neurons - positions.to(torch.float64).unsqueeze(2), n)
    dist = torch.minimum(gap, n - gap)  # (batch, B, N, T) distance around the ring
    profile = torch.exp(-dist.square() / (2.0 * cfg.sigma**2)).sum(1)
    return (cfg.background + cfg.p_max * profile).clamp_(max=1.0)


def drifting_blobs(cfg: BlobsConfig, batch: int, *, seed: int) -> BlobsSample:
    """Draw ``batch`` independent samples of the task; the same seed gives the same sample.

    The random stream does not depend on ``delta``: two configs that differ only in ``delta``
    give the same spikes and positions, and references shifted by the difference in lag.
    """
    if not isinstance(cfg, BlobsConfig):
        raise InputTypeError(f"cfg must be a BlobsConfig; got {type(cfg).__name__}")
    if isinstance(batch, bool) or not isinstance(batch, Integral):
        raise InputTypeError(f"batch must be an int; got {type(batch).__name__}")
    if batch < 1:
        raise InputError(f"batch must be >= 1; got {batch}")
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise InputTypeError(f"seed must be an int; got {type(seed).__name__}")
    if seed < 0:
        raise InputError(f"seed must be >= 0; got {seed}")
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    n, blobs, steps = cfg.num_inputs, cfg.num_blobs, cfg.num_steps
    total = cfg.burn_in + steps

    start = rng.uniform(0.0, n, size=(batch, blobs))
    eta = rng.standard_normal(size=(batch, blobs, total))
    disp = np.zeros((batch, blobs, total))
    prev, prev2 = np.zeros((batch, blobs)), np.zeros((batch, blobs))
    for t in range(total):
        disp[..., t] = cfg.a1 * prev + cfg.a2 * prev2 + cfg.noise_std * eta[..., t]  # AR(2)
        prev, prev2 = disp[..., t], prev
    path = np.mod(start[..., None] + disp, n)  # wrap onto the ring; (batch, B, burn_in + T)
    path[path >= n] = 0.0  # np.mod(-1e-17, n) rounds to n

    positions = torch.from_numpy(path[..., cfg.burn_in:].copy())
    if cfg.emission == "single":  # one spike per blob at its jittered position's neuron
        jitter = cfg.sigma * rng.standard_normal(size=(batch, blobs, total))
        driven = np.mod(np.floor(path + jitter + 0.5), n).astype(np.int64)  # (batch, B, total)
        now = torch.from_numpy(driven[..., cfg.burn_in:].copy())
        spikes = torch.zeros(batch, blobs, n, steps, dtype=torch.float32)
        spikes.scatter_(2, now.unsqueeze(2), 1.0)
        spikes = spikes.amax(1)  # both blobs on one neuron: one spike
        index = torch.from_numpy(driven[..., cfg.burn_in - cfg.delta : total - cfg.delta].copy())
    else:
        probs = spike_probabilities(positions, cfg)
        draws = torch.from_numpy(rng.random(size=(batch, n, steps)))
        spikes = (draws < probs).to(torch.float32)
        lagged = path[..., cfg.burn_in - cfg.delta : total - cfg.delta]  # x[t - delta]
        index = torch.from_numpy(np.mod(np.floor(lagged + 0.5), n).astype(np.int64))
    reference = torch.zeros(batch, blobs, n, steps, dtype=torch.float32)
    reference.scatter_(2, index.unsqueeze(2), 1.0)
    return BlobsSample(spikes=spikes, positions=positions, reference=reference)

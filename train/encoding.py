"""Spike encoders: images ``(batch, neurons)`` in [0, 1] -> spikes ``(batch, neurons, time)``.

Every encoder is a pure function returning float32 0/1 spikes on the images' device. ``x`` is a
pixel in [0, 1], ``T = num_steps`` and steps run ``t = 0 .. T-1``; times are in steps.
``round(v)`` means round half up, ``floor(v + 1/2)``; times are computed in float64.

Poisson rate code (Roy, Panda & Roy 2019), ``r = max_rate`` in (0, 1]::

    s[t] ~ Bernoulli(r * x), independently for every neuron and step
    E[sum_t s[t]] = T * r * x

Time to first spike (VDIB latency code; deterministic), ``0 <= t_min <= t_max < T``::

    t_spike = round(t_min + (1 - x) * (t_max - t_min))    if x > threshold, else no spike

Brightness-inverted latency with noise (Comsa et al. 2021, sec. 2.3 and eq. 6). The paper codes
a pixel in the window [0, 1] as ``tau = 1 - x`` (brighter = earlier), adds noise
``tau <- max(0, min(tau + eta * r, 1))`` with ``r ~ N(1, 1)`` for inverted images ("the mean of
the noise variable r is 1 in the case where the image brightness is inverted"; 0 otherwise), and
lets pixels with ``tau = 1`` (black before inversion) stay silent. In steps, with the window
mapped to ``[0, t_max]``, ``sigma = noise_std = eta * t_max`` and ``mu = noise_mean``::

    t_cont  = clip((1 - x) * t_max + sigma * r, 0, t_max),  r ~ N(mu, 1)
    t_spike = round(t_cont)                                 once per neuron
    silent  where t_cont == t_max                           if silent_at_t_max

``noise_mean=0, silent_at_t_max=False`` gives the plain N(0, sigma^2) jitter in which every
neuron spikes exactly once.

Random encoders take exactly one of ``seed`` (an int: a fresh ``torch.Generator`` on the
images' device) or ``generator`` (to continue a stream); the same seed gives the same spikes.
"""

import math
from numbers import Integral, Real

import torch

from spikecodec.errors import InputError, InputTypeError

__all__ = ["latency_with_noise", "poisson_rate", "spike_counts", "time_to_first_spike"]


def poisson_rate(
    images: torch.Tensor,
    num_steps: int,
    *,
    max_rate: float = 1.0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Poisson (Bernoulli per step) rate code; equations in the module docstring."""
    _check_images(images)
    _check_steps(num_steps)
    rate = _check_real("max_rate", max_rate)
    if not 0.0 < rate <= 1.0:
        raise InputError(f"max_rate must be in (0, 1]; got {max_rate!r}")
    gen = _generator(images, seed, generator)
    batch, neurons = images.shape
    draws = torch.rand(batch, neurons, num_steps, generator=gen, device=images.device)
    return (draws < rate * images.detach().unsqueeze(-1)).to(torch.float32)


def time_to_first_spike(
    images: torch.Tensor,
    num_steps: int,
    *,
    t_min: int = 0,
    t_max: int | None = None,
    threshold: float = 0.0,
) -> torch.Tensor:
    """Deterministic single-spike latency code; equations in the module docstring."""
    _check_images(images)
    _check_steps(num_steps)
    t_max = num_steps - 1 if t_max is None else t_max
    _check_int("t_min", t_min)
    _check_int("t_max", t_max)
    if not 0 <= t_min <= t_max < num_steps:
        raise InputError(
            f"need 0 <= t_min <= t_max < num_steps; got t_min={t_min}, t_max={t_max}, "
            f"num_steps={num_steps}"
        )
    cut = _check_real("threshold", threshold)
    if not 0.0 <= cut <= 1.0:
        raise InputError(f"threshold must be in [0, 1]; got {threshold!r}")
    x = images.detach().to(torch.float64)
    times = _round(t_min + (1.0 - x) * (t_max - t_min))
    return _one_spike(times, images.detach() > cut, num_steps)  # compare in the images' dtype


def latency_with_noise(
    images: torch.Tensor,
    num_steps: int,
    *,
    t_max: int | None = None,
    noise_std: float = 0.0,
    noise_mean: float = 1.0,
    silent_at_t_max: bool = True,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Comsa et al. (2021) inverted latency code with eq. 6 noise; see the module docstring.

    ``noise_std`` is ``sigma`` in steps (the paper's ``eta`` times ``t_max``), ``noise_mean`` the
    mean of ``r`` (1 in the paper for inverted images). ``noise_std == 0`` needs no seed.
    """
    _check_images(images)
    _check_steps(num_steps)
    t_max = num_steps - 1 if t_max is None else t_max
    _check_int("t_max", t_max)
    if not 1 <= t_max < num_steps:
        raise InputError(f"need 1 <= t_max < num_steps; got t_max={t_max}, num_steps={num_steps}")
    sigma = _check_real("noise_std", noise_std)
    if sigma < 0.0:
        raise InputError(f"noise_std must be >= 0; got {noise_std!r}")
    mu = _check_real("noise_mean", noise_mean)
    if not isinstance(silent_at_t_max, bool):
        raise InputTypeError(f"silent_at_t_max must be a bool; got {type(silent_at_t_max)}")
    x = images.detach().to(torch.float64)
    t_cont = (1.0 - x) * t_max  # invert brightness, map [0, 1] onto [0, t_max]
    if sigma > 0.0:
        gen = _generator(images, seed, generator)
        r = torch.randn(x.shape, generator=gen, device=x.device, dtype=torch.float64) + mu
        t_cont = (t_cont + sigma * r).clamp(0.0, float(t_max))  # eq. 6
    elif seed is not None or generator is not None:
        _generator(images, seed, generator)  # validate even when unused
    fires = t_cont < t_max if silent_at_t_max else torch.ones_like(x, dtype=torch.bool)
    return _one_spike(_round(t_cont), fires, num_steps)


def spike_counts(spikes: torch.Tensor) -> torch.Tensor:
    """Spikes per neuron: ``(batch, neurons, time) -> (batch, neurons)``, summed over time."""
    if not isinstance(spikes, torch.Tensor):
        raise InputTypeError(f"spikes must be a torch.Tensor; got {type(spikes).__name__}")
    if spikes.dim() != 3:
        raise InputError(f"spikes must be 3-D (batch, neurons, time); found {tuple(spikes.shape)}")
    return spikes.sum(-1)


def _one_spike(times: torch.Tensor, fires: torch.Tensor, num_steps: int) -> torch.Tensor:
    """Place one spike per neuron at integer step ``times`` where ``fires``; none elsewhere."""
    spikes = torch.zeros(*times.shape, num_steps, dtype=torch.float32, device=times.device)
    index = times.clamp(0, num_steps - 1).long().unsqueeze(-1)
    return spikes.scatter_(-1, index, fires.to(torch.float32).unsqueeze(-1))


def _round(values: torch.Tensor) -> torch.Tensor:
    """Round half up (``torch.round`` rounds half to even, which is harder to state)."""
    return torch.floor(values + 0.5)


def _check_images(images: object) -> None:
    if not isinstance(images, torch.Tensor):
        raise InputTypeError(f"images must be a torch.Tensor; got {type(images).__name__}")
    if not images.is_floating_point():
        raise InputError(f"images must have a floating dtype; found {images.dtype}")
    if images.dim() != 2:
        raise InputError(f"images must be 2-D (batch, neurons); found shape {tuple(images.shape)}")
    if images.numel() == 0:
        return
    if not bool(torch.isfinite(images).all()):
        raise InputError("images must be finite; found NaN or inf")
    low, high = float(images.min()), float(images.max())
    if low < 0.0:
        raise InputError(f"images must be in [0, 1]; found min {low:g}")
    if high > 1.0:
        raise InputError(f"images must be in [0, 1]; found max {high:g}")


def _check_steps(num_steps: object) -> None:
    if isinstance(num_steps, bool) or not isinstance(num_steps, Integral) or num_steps < 1:
        raise InputError(f"num_steps must be a positive int; got {num_steps!r}")


def _check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InputError(f"{name} must be an int; got {value!r}")


def _check_real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InputTypeError(f"{name} must be a real number; got {type(value).__name__}")
    if not math.isfinite(value):
        raise InputError(f"{name} must be finite; got {value!r}")
    return float(value)


def _generator(images: torch.Tensor, seed: object, generator: object) -> torch.Generator:
    """Exactly one of ``seed`` (int) or ``generator`` (on the images' device)."""
    if seed is not None and generator is not None:
        raise InputError("give either seed or generator, not both")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise InputTypeError(
                f"generator must be a torch.Generator; got {type(generator).__name__}"
            )
        if generator.device.type != images.device.type:
            raise InputError(
                f"generator is on {generator.device}, images on {images.device}; they must match"
            )
        return generator
    if seed is None:
        raise InputError("a random encoder needs seed=<int> or generator=<torch.Generator>")
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise InputTypeError(f"seed must be an int; got {type(seed).__name__}")
    if not -(2**63) <= seed < 2**64:
        raise InputError(f"seed must fit in 64 bits; got {seed}")
    gen = torch.Generator(device=images.device)
    gen.manual_seed(int(seed))
    return gen


def _latency(images: torch.Tensor, num_steps: int, *, seed: int | None = None,
             **params) -> torch.Tensor:
    """Latency code; deterministic, so ``seed`` is accepted (every encoder takes one) and unused."""
    return time_to_first_spike(images, num_steps, **params)


# Image encoders an export can name in its InputSpec: name -> f(images, T, *, seed, **params).
ENCODERS = {"poisson_rate": poisson_rate, "time_to_first_spike": _latency}


def encode_images(images: torch.Tensor, name: str, num_steps: int, params: dict, *,
                  seed: int) -> torch.Tensor:
    """Images ``(n, pixels)`` in [0, 1] -> spikes ``(n, pixels, T)`` with encoder ``name``."""
    from spikecodec.errors import ConfigError

    if name not in ENCODERS:
        raise ConfigError(f"unknown image encoding {name!r}; known: {', '.join(ENCODERS)}")
    return ENCODERS[name](images, num_steps, seed=seed, **params)


def encode_input(spec, images: torch.Tensor, *, seed: int) -> torch.Tensor:
    """``(n, pixels)`` images -> ``(n, pixels, T)`` spikes as an export's ``InputSpec`` says."""
    from spikecodec.errors import ConfigError

    if spec.encoding not in ENCODERS:
        raise ConfigError(f"the export's input encoding {spec.encoding!r} cannot be generated "
                          f"here; known: {', '.join(ENCODERS)} (pass spikes instead)")
    if images.shape[1] != spec.size:
        raise ConfigError(f"images have {images.shape[1]} pixels but the export expects "
                          f"{spec.size} inputs ({spec.shape})")
    try:
        return encode_images(images, spec.encoding, spec.num_steps, dict(spec.params),
                             seed=seed)
    except (TypeError, ValueError) as err:  # unknown names, values out of range
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"/spikecodec/input: the {spec.encoding} encoder refuses the "
                          f"export's params {spec.params!r:.120}: {err}") from None

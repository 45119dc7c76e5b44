"""Spike encoders: shapes, exact latency times, Poisson statistics, seeding, typed errors."""

import math

import pytest
import torch

from spikecodec.errors import InputError, InputTypeError
from spikecodec.train.encoding import (
    latency_with_noise,
    poisson_rate,
    spike_counts,
    time_to_first_spike,
)

PIXELS = torch.tensor([[0.0, 0.1, 0.5, 0.9, 1.0]])

ENCODERS = {
    "poisson": lambda x, t: poisson_rate(x, t, seed=0),
    "ttfs": lambda x, t: time_to_first_spike(x, t),
    "latency": lambda x, t: latency_with_noise(x, t, noise_std=2.0, seed=0),
}


def spike_times(spikes: torch.Tensor) -> list[int | None]:
    """Step of the single spike of each neuron of sample 0, None where silent."""
    counts = spikes[0].sum(-1)
    assert bool((counts <= 1).all()), "latency codes spike at most once"
    return [int(row.argmax()) if row.any() else None for row in spikes[0]]


@pytest.mark.parametrize("name", ENCODERS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_binary(name, dtype):
    images = torch.rand(4, 7, generator=torch.Generator().manual_seed(1)).to(dtype)
    spikes = ENCODERS[name](images, 12)
    assert spikes.shape == (4, 7, 12)
    assert spikes.dtype == torch.float32
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}


def test_poisson_rate_matches_max_rate_times_pixel():
    batch, steps, max_rate = 4000, 25, 0.8
    spikes = poisson_rate(PIXELS.expand(batch, -1), steps, max_rate=max_rate, seed=3)
    trials = batch * steps
    rate = spikes.sum(dim=(0, 2)) / trials
    for pixel, observed in zip(PIXELS[0].tolist(), rate.tolist(), strict=False):
        p = max_rate * pixel
        sigma = math.sqrt(p * (1 - p) / trials)
        assert abs(observed - p) <= 4 * sigma + 1e-6, (pixel, observed, p)
    assert rate[0] == 0.0  # black never spikes


def test_poisson_full_rate_always_spikes():
    spikes = poisson_rate(torch.ones(3, 2), 10, max_rate=1.0, seed=0)
    assert bool((spikes == 1).all())


def test_poisson_seeds_reproduce_and_differ():
    images = torch.full((8, 50), 0.5)
    first = poisson_rate(images, 20, seed=7)
    assert torch.equal(first, poisson_rate(images, 20, seed=7))
    assert not torch.equal(first, poisson_rate(images, 20, seed=8))


def test_poisson_generator_continues_stream():
    images = torch.full((4, 30), 0.5)
    gen = torch.Generator().manual_seed(11)
    first, second = poisson_rate(images, 10, generator=gen), poisson_rate(images, 10, generator=gen)
    assert torch.equal(first, poisson_rate(images, 10, seed=11))
    assert not torch.equal(first, second)
    replay = torch.Generator().manual_seed(11)
    poisson_rate(images, 10, generator=replay)
    assert torch.equal(second, poisson_rate(images, 10, generator=replay))


def test_ttfs_exact_times():
    images = torch.tensor([[1.0, 0.0, 0.5, 0.25, 0.75]])
    assert spike_times(time_to_first_spike(images, 11)) == [0, None, 5, 8, 3]  # 7.5 rounds up
    assert spike_times(time_to_first_spike(images, 11, t_min=2, t_max=6)) == [2, None, 4, 5, 3]


def test_ttfs_threshold_silences_dim_pixels():
    images = torch.tensor([[0.2, 0.3, 0.31, 1.0]])
    assert spike_times(time_to_first_spike(images, 11, threshold=0.3)) == [None, None, 7, 0]


def test_latency_without_noise_is_deterministic():
    images = torch.tensor([[1.0, 0.5, 0.0, 0.2]])
    assert spike_times(latency_with_noise(images, 11)) == [0, 5, None, 8]  # black is silent
    every = latency_with_noise(images, 11, silent_at_t_max=False)
    assert spike_times(every) == [0, 5, 10, 8]
    assert spike_times(latency_with_noise(images, 21, t_max=10)) == [0, 5, None, 8]


def test_latency_noise_spread_matches_std():
    n, t_max, std = 20000, 100, 5.0
    images = torch.full((n, 1), 0.5)
    kwargs = dict(t_max=t_max, noise_std=std, seed=4, silent_at_t_max=False)
    times = latency_with_noise(images, t_max + 1, noise_mean=0.0, **kwargs).argmax(-1).double()
    assert abs(times.mean().item() - 50.0) < 4 * std / math.sqrt(n) + 0.05
    assert times.std().item() == pytest.approx(math.sqrt(std**2 + 1 / 12), rel=0.05)
    # the paper's r ~ N(1, 1) for inverted images shifts every time later by noise_std
    shifted = latency_with_noise(images, t_max + 1, **kwargs).argmax(-1).double()
    assert abs(shifted.mean().item() - 55.0) < 4 * std / math.sqrt(n) + 0.05


def test_latency_noise_clips_and_spikes_at_most_once():
    images = torch.rand(200, 30, generator=torch.Generator().manual_seed(2))
    spikes = latency_with_noise(images, 16, noise_std=6.0, seed=1)
    assert bool((spikes.sum(-1) <= 1).all())
    every = latency_with_noise(images, 16, noise_std=6.0, seed=1, silent_at_t_max=False)
    assert bool((every.sum(-1) == 1).all())
    assert every[..., 15].sum() > 0 and every[..., 0].sum() > 0  # clipped at both ends


def test_latency_seeds_reproduce_and_differ():
    images = torch.rand(6, 40, generator=torch.Generator().manual_seed(0))
    first = latency_with_noise(images, 20, noise_std=2.0, seed=3)
    assert torch.equal(first, latency_with_noise(images, 20, noise_std=2.0, seed=3))
    assert not torch.equal(first, latency_with_noise(images, 20, noise_std=2.0, seed=4))


def test_spike_counts():
    spikes = poisson_rate(torch.rand(3, 5, generator=torch.Generator().manual_seed(0)), 9, seed=0)
    assert torch.equal(spike_counts(spikes), spikes.sum(-1))
    assert spike_counts(time_to_first_spike(torch.ones(2, 4), 5)).eq(1).all()


GOOD = torch.full((2, 3), 0.5)

BAD_CALLS = [
    (lambda: poisson_rate([[0.5]], 5, seed=0), InputTypeError, "torch.Tensor"),
    (lambda: poisson_rate(torch.ones(2, 3, dtype=torch.int64), 5, seed=0), InputError, "dtype"),
    (lambda: poisson_rate(torch.ones(6), 5, seed=0), InputError, "2-D"),
    (lambda: poisson_rate(torch.ones(1, 2, 3), 5, seed=0), InputError, "2-D"),
    (lambda: poisson_rate(torch.tensor([[0.5, math.nan]]), 5, seed=0), InputError, "finite"),
    (lambda: poisson_rate(torch.tensor([[0.5, math.inf]]), 5, seed=0), InputError, "finite"),
    (lambda: poisson_rate(torch.tensor([[-0.2, 0.5]]), 5, seed=0), InputError, "found min -0.2"),
    (lambda: poisson_rate(torch.tensor([[1.5]]), 5, seed=0), InputError, "found max 1.5"),
    (lambda: poisson_rate(GOOD, 0, seed=0), InputError, "num_steps"),
    (lambda: poisson_rate(GOOD, -3, seed=0), InputError, "num_steps"),
    (lambda: poisson_rate(GOOD, 2.5, seed=0), InputError, "num_steps"),
    (lambda: poisson_rate(GOOD, True, seed=0), InputError, "num_steps"),
    (lambda: poisson_rate(GOOD, 5, max_rate=0.0, seed=0), InputError, "max_rate"),
    (lambda: poisson_rate(GOOD, 5, max_rate=1.5, seed=0), InputError, "max_rate"),
    (lambda: poisson_rate(GOOD, 5, max_rate=math.nan, seed=0), InputError, "max_rate"),
    (lambda: poisson_rate(GOOD, 5, max_rate="1", seed=0), InputTypeError, "max_rate"),
    (lambda: poisson_rate(GOOD, 5), InputError, "seed"),
    (lambda: poisson_rate(GOOD, 5, seed=1.5), InputTypeError, "seed"),
    (lambda: poisson_rate(GOOD, 5, seed="1"), InputTypeError, "seed"),
    (lambda: poisson_rate(GOOD, 5, seed=True), InputTypeError, "seed"),
    (lambda: poisson_rate(GOOD, 5, seed=2**64), InputError, "64 bits"),
    (lambda: poisson_rate(GOOD, 5, seed=0, generator=torch.Generator()), InputError, "not both"),
    (lambda: poisson_rate(GOOD, 5, generator=0), InputTypeError, "generator"),
    (lambda: time_to_first_spike(GOOD, 0), InputError, "num_steps"),
    (lambda: time_to_first_spike(GOOD, 5, t_min=3, t_max=2), InputError, "t_min"),
    (lambda: time_to_first_spike(GOOD, 5, t_min=-1), InputError, "t_min"),
    (lambda: time_to_first_spike(GOOD, 5, t_max=5), InputError, "t_max"),
    (lambda: time_to_first_spike(GOOD, 5, t_min=1.0), InputError, "t_min"),
    (lambda: time_to_first_spike(GOOD, 5, threshold=1.5), InputError, "threshold"),
    (lambda: time_to_first_spike(GOOD, 5, threshold=None), InputTypeError, "threshold"),
    (lambda: time_to_first_spike(torch.tensor([[2.0]]), 5), InputError, "[0, 1]"),
    (lambda: latency_with_noise(GOOD, 5, t_max=5), InputError, "t_max"),
    (lambda: latency_with_noise(GOOD, 5, t_max=0), InputError, "t_max"),
    (lambda: latency_with_noise(GOOD, 5, noise_std=-1.0), InputError, "noise_std"),
    (lambda: latency_with_noise(GOOD, 5, noise_std=1.0), InputError, "seed"),
    (lambda: latency_with_noise(GOOD, 5, noise_mean=math.inf), InputError, "noise_mean"),
    (lambda: latency_with_noise(GOOD, 5, seed="x"), InputTypeError, "seed"),
    (lambda: latency_with_noise(GOOD, 5, silent_at_t_max=1), InputTypeError, "silent_at_t_max"),
    (lambda: latency_with_noise(torch.ones(3), 5), InputError, "2-D"),
    (lambda: spike_counts(torch.ones(2, 3)), InputError, "3-D"),
    (lambda: spike_counts([[[1.0]]]), InputTypeError, "torch.Tensor"),
]


@pytest.mark.parametrize("call, error, words", BAD_CALLS)
def test_bad_input_raises_typed_error(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)


@pytest.mark.parametrize("params, words", [({"bogus": 1}, "unexpected keyword"),
                                           ({"max_rate": 7.0}, "max_rate")])
def test_an_exports_params_the_encoder_refuses_are_a_config_error(params, words):
    from spikecodec.deploy.ir import InputSpec
    from spikecodec.errors import ConfigError
    from spikecodec.train.encoding import encode_input

    spec = InputSpec("poisson_rate", 5, (2, 2), params)
    with pytest.raises(ConfigError, match=r"/spikecodec/input: the poisson_rate encoder refuses"):
        encode_input(spec, torch.zeros(1, 4), seed=0)

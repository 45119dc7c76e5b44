"""Drifting Gaussian blobs (VDIB predictive coding): shapes, seeding, lag, rates, bad input."""

import math

import numpy as np
import pytest
import torch

from spikecodec.errors import ConfigError, InputError, InputTypeError
from spikecodec.train.blobs import BlobsConfig, drifting_blobs, spike_probabilities


@pytest.mark.parametrize("num_inputs, num_blobs, steps", [(20, 2, 100), (12, 1, 7), (31, 3, 40)])
def test_shapes_dtypes_and_ranges(num_inputs, num_blobs, steps):
    cfg = BlobsConfig(num_inputs=num_inputs, num_blobs=num_blobs, num_steps=steps)
    sample = drifting_blobs(cfg, 5, seed=1)
    assert sample.spikes.shape == (5, num_inputs, steps) and sample.spikes.dtype == torch.float32
    assert sample.positions.shape == (5, num_blobs, steps)
    assert sample.positions.dtype == torch.float64
    assert sample.reference.shape == (5, num_blobs, num_inputs, steps)
    assert sample.reference.dtype == torch.float32
    assert set(sample.spikes.unique().tolist()) <= {0.0, 1.0}
    assert set(sample.reference.unique().tolist()) == {0.0, 1.0}
    assert 0.0 <= sample.positions.min() and sample.positions.max() < num_inputs


def test_same_seed_same_sample_other_seed_differs():
    cfg = BlobsConfig()
    a, b, c = (drifting_blobs(cfg, 4, seed=s) for s in (7, 7, 8))
    for name in ("spikes", "positions", "reference"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.spikes, c.spikes)
    assert not torch.equal(a.positions, c.positions)


@pytest.mark.parametrize("delta", [0, 3, 17])
def test_reference_is_one_hot_of_rounded_lagged_position(delta):
    cfg = BlobsConfig(delta=delta, num_steps=60)
    sample = drifting_blobs(cfg, 3, seed=2)
    assert torch.equal(sample.reference.sum(2), torch.ones(3, 2, 60))  # one 1 per blob and step
    nearest = torch.remainder(torch.floor(sample.positions + 0.5), cfg.num_inputs).long()
    assert torch.equal(sample.reference.argmax(2)[..., delta:], nearest[..., : 60 - delta])


@pytest.mark.parametrize("delta", [1, 5, 20])
def test_lag_shifts_the_reference_and_nothing_else(delta):
    now = drifting_blobs(BlobsConfig(), 2, seed=3)
    lagged = drifting_blobs(BlobsConfig(delta=delta), 2, seed=3)
    assert torch.equal(now.spikes, lagged.spikes)
    assert torch.equal(now.positions, lagged.positions)
    assert torch.equal(lagged.reference[..., delta:], now.reference[..., :-delta])
    assert not torch.equal(lagged.reference, now.reference)


def test_path_drifts_smoothly_with_the_documented_speed():
    sample = drifting_blobs(BlobsConfig(num_steps=400), 64, seed=4)
    step = torch.remainder(sample.positions.diff(dim=-1) + 10.0, 20.0) - 10.0  # unwrapped
    speed = step.square().mean().sqrt().item()
    assert speed == pytest.approx(0.45 / math.sqrt(1 - 0.81), rel=0.1)  # ~1 neuron per step
    lag1 = (step[..., 1:] * step[..., :-1]).mean() / step.square().mean()
    assert lag1.item() == pytest.approx(0.9, abs=0.05)  # velocity follows AR(1) with 0.9


def test_spike_rate_peaks_at_the_blobs():
    cfg = BlobsConfig(num_blobs=1, p_max=0.8, background=0.02, num_steps=200)
    sample = drifting_blobs(cfg, 32, seed=5)
    nearest = sample.reference[:, 0]  # delta = 0: the neuron under the blob, (batch, N, T)
    rate_at, rate_away = sample.spikes[nearest == 1].mean(), sample.spikes[nearest == 0].mean()
    assert rate_at > 0.6 and rate_away < 0.2
    # the farthest neuron (N/2 away) fires at the background rate only
    far = torch.roll(nearest, cfg.num_inputs // 2, dims=1)
    assert sample.spikes[far == 1].mean().item() == pytest.approx(0.02, abs=0.01)


def test_spike_probabilities_profile():
    cfg = BlobsConfig(num_inputs=10, sigma=1.0, p_max=0.5, background=0.1)
    probs = spike_probabilities(torch.tensor([[[3.0], [9.5]]]), cfg)[0, :, 0]
    expected = [0.1 + 0.5 * sum(math.exp(-min(abs(n - x) % 10, 10 - abs(n - x) % 10) ** 2 / 2)
                                for x in (3.0, 9.5)) for n in range(10)]
    np.testing.assert_allclose(probs.numpy(), expected, rtol=1e-12)
    assert probs.argmax().item() == 3
    one = spike_probabilities(torch.tensor([[[9.5]]]), BlobsConfig(num_inputs=10, num_blobs=1))
    assert one[0, 0, 0] == pytest.approx(one[0, 9, 0].item())  # wrapped: 9.5 is 0.5 from 0 and 9
    full = spike_probabilities(torch.zeros(1, 2, 1), BlobsConfig(p_max=1.0, background=0.5))
    assert full.max().item() == 1.0  # clipped


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"sigma": 0.0}, "sigma"),
        ({"p_max": 0.0}, "p_max"),
        ({"p_max": 1.5}, "p_max"),
        ({"background": 1.0}, "background"),
        ({"noise_std": -0.1}, "noise_std"),
        ({"num_inputs": 1}, "num_inputs"),
        ({"num_inputs": 20.0}, "num_inputs"),
        ({"num_steps": 0}, "num_steps"),
        ({"num_blobs": True}, "num_blobs"),
        ({"delta": -1}, "delta"),
        ({"delta": 2.0}, "delta"),
        ({"delta": 60}, "burn_in"),
        ({"a1": 2.0, "a2": -0.9}, "unstable"),
        ({"a1": 0.0, "a2": 1.0}, "unstable"),
        ({"a1": -1.5, "a2": 0.0}, "unstable"),
        ({"sigma": float("nan")}, "finite"),
        ({"p_max": "0.5"}, "number"),
        ({"emission": "gaussian"}, "emission"),
    ],
)
def test_bad_config_raises_config_error(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        BlobsConfig(**kwargs)


def test_stationary_position_is_accepted():
    sample = drifting_blobs(BlobsConfig(a1=0.5, a2=-0.3), 2, seed=0)
    assert sample.spikes.shape == (2, 20, 100)


@pytest.mark.parametrize(
    "cfg, batch, seed, error",
    [
        (BlobsConfig(), 2, 1.0, InputTypeError),
        (BlobsConfig(), 2, "1", InputTypeError),
        (BlobsConfig(), 2, None, InputTypeError),
        (BlobsConfig(), 2, True, InputTypeError),
        (BlobsConfig(), 2, -1, InputError),
        (BlobsConfig(), 0, 1, InputError),
        (BlobsConfig(), 2.0, 1, InputTypeError),
        ({"num_inputs": 20}, 2, 1, InputTypeError),
    ],
)
def test_bad_arguments_raise_typed_errors(cfg, batch, seed, error):
    with pytest.raises(error):
        drifting_blobs(cfg, batch, seed=seed)


def test_numpy_integer_seed_matches_int_seed():
    a = drifting_blobs(BlobsConfig(), 2, seed=np.int64(11))
    assert torch.equal(a.spikes, drifting_blobs(BlobsConfig(), 2, seed=11).spikes)


@pytest.mark.parametrize("delta", [0, 4])
def test_single_emission_is_one_spike_per_blob_and_the_reference_is_the_lagged_input(delta):
    """The authors' protocol: each blob drives one neuron per step near its path; the reference
    at t is the input the blobs drove at t - delta."""
    cfg = BlobsConfig(emission="single", delta=delta, num_steps=80)
    sample = drifting_blobs(cfg, 6, seed=5)
    per_step = sample.spikes.sum(1)  # 1 (both blobs on one neuron) or 2
    assert set(per_step.unique().tolist()) <= {1.0, 2.0} and (per_step == 2).float().mean() > 0.8
    assert torch.equal(sample.reference.sum(2), torch.ones(6, 2, 80))
    union = sample.reference.amax(1)  # (batch, N, T)
    assert torch.equal(union[..., delta:], sample.spikes[..., : 80 - delta])
    # the driven neuron sits near the blob's path (jitter sigma = 1.4 neurons)
    driven = sample.reference.argmax(2)[..., delta:].double()
    gap = torch.remainder(driven - sample.positions[..., : 80 - delta], 20.0)
    dist = torch.minimum(gap, 20.0 - gap)
    assert dist.square().mean().sqrt().item() == pytest.approx(1.45, rel=0.15)


def test_single_emission_does_not_change_the_profile_stream():
    profile = drifting_blobs(BlobsConfig(), 3, seed=9)
    single = drifting_blobs(BlobsConfig(emission="single"), 3, seed=9)
    assert torch.equal(profile.positions, single.positions)
    assert not torch.equal(profile.spikes, single.spikes)

"""lava_weights: the mantissas and exponent Lava's Dense uses for an HDF5 weight matrix."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from spikecodec.deploy.weights import lava_weights, synaptic_bound
from spikecodec.errors import ConfigError


def netx_then_lava(weight: np.ndarray) -> tuple[np.ndarray, int]:
    """What NetX's create_dense hands Lava's Dense, and what its fixed_pt model then holds."""
    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    with np.errstate(divide="ignore"):  # NetX divides by a zero max weight (max == 0 < -min)
        shifted, num_weight_bits, exponent, _ = optimize_weight_bits(weight)
    sign_mode = determine_sign_mode(shifted)  # Dense decides again: NetX does not pass its own
    clipped = clip_weights(shifted, sign_mode, num_bits=8)
    return truncate_weights(clipped, sign_mode, num_weight_bits), exponent


def random_matrices(n: int = 60):
    """Mixed, all positive, all negative, odd, tiny, zero rows, -256 and 254, (n, m) shapes."""
    rng = np.random.default_rng(7)
    kinds = ("mixed", "positive", "negative", "odd", "tiny", "zero_rows", "extremes", "even4",
             "nonpositive", "nonnegative")
    for i, kind in zip(range(n), itertools.cycle(kinds), strict=False):
        shape = (int(rng.integers(1, 9)), int(rng.integers(1, 12)))
        if kind == "mixed":
            w = rng.integers(-256, 255, shape)
        elif kind == "positive":
            w = rng.integers(1, 255, shape)
        elif kind == "negative":
            w = -rng.integers(1, 257, shape)
        elif kind == "odd":
            w = rng.integers(-60, 60, shape) * 2 + 1
        elif kind == "tiny":
            w = rng.integers(-3, 4, shape)
        elif kind == "zero_rows":
            w = rng.integers(-100, 100, shape)
            w[rng.random(shape[0]) < 0.5] = 0
        elif kind == "extremes":
            w = rng.choice([-256, 254, 0, 2], shape)
        elif kind == "even4":
            w = rng.integers(-16, 16, shape) * 4
        elif kind == "nonpositive":
            w = -rng.integers(0, 257 if i % 3 else 4, shape)
        else:
            w = rng.integers(0, 255 if i % 3 else 3, shape)
        if not w.any():
            w.flat[0] = 1 + (i % 5)
        yield kind, w


@pytest.mark.lava
@pytest.mark.parametrize("kind,weight", list(random_matrices()),
                         ids=[f"{k}{i}" for i, (k, _) in enumerate(random_matrices())])
def test_equals_netx_then_lava_dense(kind, weight):
    ours, exponent = lava_weights(weight)
    theirs, their_exponent = netx_then_lava(weight)
    assert exponent == their_exponent
    assert ours.dtype == np.int64 and ours.shape == weight.shape
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.lava
@pytest.mark.parametrize("weight", [[[-255, 0, -3]], [[-256, 0, -4]], [[-256, -2, 0]],
                                    [[-2, 0, -2]], [[-256, -255]], [[255, 0, 1]], [[-3, 0, -1]],
                                    [[-256, 254]], [[1]], [[-1]], [[0, 0], [0, 5]],
                                    [[-3, 255]], [[255, 255]]])
def test_edge_cases_equal_netx_then_lava_dense(weight):
    weight = np.array(weight)
    ours, exponent = lava_weights(weight)
    theirs, their_exponent = netx_then_lava(weight)
    assert exponent == their_exponent
    np.testing.assert_array_equal(ours, theirs)


def test_mixed_sign_is_lossless():
    rng = np.random.default_rng(0)
    for _ in range(20):
        w = rng.integers(-128, 128, (5, 9)) * 2
        w[0, :2] = (-8, 6)  # both signs present
        mantissa, exponent = lava_weights(w)
        assert exponent <= 0
        np.testing.assert_array_equal(mantissa, w << -exponent)


def test_non_positive_matrices_lose_weight():
    """Surprises worth knowing (checked against Lava above): every weight <= 0 is not lossless."""
    assert lava_weights(np.array([[-255, 0, -3]]))[0].tolist() == [[0, 0, 0]]
    mantissa, exponent = lava_weights(np.array([[-2, 0, -2]]))
    assert (mantissa.tolist(), exponent) == ([[-128, 0, -128]], -7)  # -1, not -2, per spike
    assert lava_weights(np.array([[-256, -255]]))[0].tolist() == [[-255, -255]]


def test_all_zero_matrix_maps_to_zero():
    mantissa, exponent = lava_weights(np.zeros((3, 4)))
    assert exponent == 0 and not mantissa.any()


@pytest.mark.parametrize("bad", [np.zeros((3,)), np.zeros((0, 2)), np.full((2, 2), 256),
                                 np.full((2, 2), -257), np.full((1, 1), 0.5),
                                 np.array([["a"]])])
def test_rejects_bad_weights(bad):
    with pytest.raises(ConfigError):
        lava_weights(bad)


def test_synaptic_bound():
    m = np.array([[3, -5, 7], [-2, -2, 1], [10, 0, 0]])
    assert synaptic_bound(m) == 10  # row 0: [-5, 10]; row 1: [-4, 1]; row 2: [0, 10]
    assert synaptic_bound(m, 2) == 40
    assert synaptic_bound(np.array([[-5, 1]]), -1) == 3  # floor(-5 / 2) = -3
    assert synaptic_bound(np.array([[5, -1]]), -1) == 2  # floor(5 / 2) = 2
    # the bound is reached by some binary input, for every exponent
    rng = np.random.default_rng(1)
    for exponent in (-3, 0, 1):
        m = rng.integers(-256, 255, (4, 6))
        sums = [(m @ np.array(s)) for s in itertools.product((0, 1), repeat=6)]
        shifted = [s << exponent if exponent >= 0 else s >> -exponent for s in sums]
        assert np.abs(np.array(shifted)).max() == synaptic_bound(m, exponent)

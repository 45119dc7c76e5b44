"""lambertw0 against scipy over its whole domain, float32 and float64.

Tolerance: W0's own conditioning. Rounding x once moves W0 by |W / (1 + W)| * eps, and the
iteration leaves ~eps * |W|, so each value must lie within 4 * eps * (|W| + |W / (1 + W)|) of
scipy's (at the branch point the second term grows like 1 / sqrt(x + 1/e); elsewhere this is a
few ulps). Measured worst case: 1.0 (float64) and 0.7 (float32) of eps * (...).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import torch

from spikecodec.errors import InputError, InputTypeError
from spikecodec.train.families.comsa.lambertw import _lambertw0_nonpositive, lambertw0

DTYPES = [torch.float32, torch.float64]


def _domain_points() -> np.ndarray:
    return np.concatenate([
        -1 / math.e + 10.0 ** -np.arange(1.0, 16.0),  # approaching the branch point
        np.linspace(-0.3678, 3.0, 20001),  # around 0, both guesses' seams (-1/4, 1/4)
        -np.logspace(-300, math.log10(0.3678), 2000),  # tiny negatives
        np.logspace(-300, 6, 3000),  # tiny positives up to 1e6
        [0.0, -0.0, 1e-8, -1e-8, 2e-4, 1e10, 1e30],
    ])


def _check_close(x: torch.Tensor, w: torch.Tensor, factor: float = 4.0) -> None:
    xd = x.double().numpy()
    ref = scipy.special.lambertw(xd, 0).real
    eps = torch.finfo(x.dtype).eps
    tol = factor * eps * (np.abs(ref) + np.abs(ref / np.maximum(1 + ref, 1e-300))) + 1e-300
    err = np.abs(w.double().numpy() - ref)
    worst = int(np.argmax(err / tol))
    assert np.all(err <= tol), f"x={xd[worst]!r}: W={w[worst].item()!r}, scipy {ref[worst]!r}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_scipy_on_the_domain(dtype):
    x = torch.tensor(_domain_points(), dtype=dtype)
    x = x[x.double() >= -1 / math.e]  # float32 may round a point below the branch point
    w = lambertw0(x)
    assert w.dtype == dtype and w.shape == x.shape
    _check_close(x, w)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fast_path_equals_the_public_function_on_nonpositive_x(dtype):
    x = torch.tensor(_domain_points(), dtype=dtype)
    x = x[(x <= 0) & (x.double() >= -1 / math.e)]
    torch.testing.assert_close(_lambertw0_nonpositive(x), lambertw0(x), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_known_values(dtype):
    x = torch.tensor([0.0, math.e, -1 / math.e, 2 * math.exp(2), -0.5 * math.exp(-0.5)],
                     dtype=dtype)
    w = lambertw0(x)
    expected = torch.tensor([0.0, 1.0, -1.0, 2.0, -0.5], dtype=dtype)
    # -1/e rounds (down, in both dtypes) just outside the domain: taken as the branch point
    torch.testing.assert_close(w, expected, rtol=4 * torch.finfo(dtype).eps, atol=1e-6)
    assert w[0].item() == 0.0 and w[2].item() == -1.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_outside_the_domain(dtype):
    below = -float(torch.tensor(1 / math.e, dtype=dtype)) * (1 + 4 * torch.finfo(dtype).eps)
    x = torch.tensor([below, -0.5, -1.0, -1e30, math.inf, -math.inf, math.nan, 1.0], dtype=dtype)
    w = lambertw0(x)
    assert torch.isnan(w[:-1]).all()
    assert not torch.isnan(w[-1])


def test_shape_and_device_are_kept_and_no_loops_over_data():
    x = torch.rand(3, 4, 5, dtype=torch.float64) * 10 - 0.3
    w = lambertw0(x)
    assert w.shape == x.shape
    torch.testing.assert_close(w * torch.exp(w), x, rtol=1e-13, atol=1e-15)
    assert lambertw0(torch.empty(0)).shape == (0,)


def test_fewer_iterations_are_less_accurate():
    x = torch.linspace(-0.36, 3.0, 1001, dtype=torch.float64)
    ref = torch.from_numpy(scipy.special.lambertw(x.numpy(), 0).real)
    errors = [(lambertw0(x, iterations=n) - ref).abs().max().item() for n in (0, 1, 2)]
    assert errors[0] > 1e-3 > errors[1] > 1e-12 > errors[2]


def test_typed_errors():
    with pytest.raises(InputTypeError, match="x"):
        lambertw0([0.5])
    with pytest.raises(InputError, match="float32 or float64"):
        lambertw0(torch.tensor([1, 2]))
    with pytest.raises(InputError, match="iterations"):
        lambertw0(torch.tensor([0.5]), iterations=-1)

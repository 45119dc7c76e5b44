"""The principal branch W0 of the Lambert W function, elementwise in torch.

W0(x) is the solution w >= -1 of ``w * exp(w) = x``, defined for x >= -1/e. It is what solves the
spike time of an alpha neuron (see :mod:`.spiketime`). This module works in the input's dtype
(float32 or float64) on any device, without scipy and without data-dependent loops:

1. a guarded initial guess, chosen elementwise by region (relative error < 6 % in each),

   * branch point, x < -1/4: the series in p = sqrt(2 (1 + e x)),
     ``-1 + p - p^2/3 + 11/72 p^3`` (Corless et al. 1996, eq. 4.22; error ~ 0.08 p^4);
   * around 0, |x| <= 1/4: the Taylor series ``x - x^2 + 3/2 x^3`` (error ~ 8/3 x^4);
   * x > 1/4: Winitzki's ``L (1 - log1p(L) / (2 + L))`` with L = log1p(x) (< 2 % up to 1e308);

2. a fixed number of Fritsch iterations (Fritsch, Shafer & Crowley 1973; the step the reference
   C++ code takes), each of fourth order:

   ``z = ln(x / w) - w``, ``q = 2 (1 + w) (1 + w + 2 z / 3)``,
   ``w <- w (1 + z / (1 + w) * (q - z) / (q - 2 z))``;

3. the guess kept as the answer where it is already exact to float64 rounding and the iteration
   is ill-posed: |x| < 1e-8 (x = 0 included) and p < 2e-4 (the iteration divides by 1 + w ~ p).

Two iterations reach the dtype's rounding everywhere (a 6 % guess becomes ~1e-5, then ~1e-20;
the tests check this against scipy). Near the branch point the distance to it, x + 1/e, is formed
with 1/e split into a rounded part and its remainder, so p carries no cancellation error beyond
the rounding of x itself; what remains is W0's own conditioning, dW = W / (1 + W) * dx / x.

Domain: x below -1/e or non-finite gives NaN. An x that lies below -1/e only by the rounding of
1/e in the dtype (the one value ``-float(1/e)`` in that dtype) is taken as the branch point, -1.
Not differentiable on purpose: the spike-time backward in :mod:`.spiketime` is analytic.
"""
from __future__ import annotations

import math
from fractions import Fraction

import torch

from spikecodec.errors import InputError, InputTypeError

_INV_E = Fraction(
    "0.36787944117144232159552377016146086744581113103176783450783680169746149574489980335714727434"
)  # 1/e to 95 digits
_SMALL_X = 1e-8  # |x| below this: the Taylor guess is exact to float64 rounding (x = 0 too)
_SMALL_P = 2e-4  # p below this: the branch-point guess is exact to float64 rounding
_NEAR_BRANCH = 0.25  # the guess is the branch series below -1/4, Taylor's on [-1/4, 1/4]


def _branch_distance(x: torch.Tensor) -> torch.Tensor:
    """``x + 1/e`` with 1/e split in two parts of ``x``'s dtype (the first sum is exact)."""
    hi = float(torch.tensor(float(_INV_E), dtype=x.dtype))  # 1/e rounded to the dtype
    lo = float(_INV_E - Fraction(hi))  # what that rounding dropped
    return (x + hi) + lo


def _iterate(x: torch.Tensor, w: torch.Tensor, p: torch.Tensor, iterations: int) -> torch.Tensor:
    """Fritsch steps from the guess ``w``, keeping the guess where it is already exact."""
    exact = (x.abs() < _SMALL_X) | (p < _SMALL_P)
    guess = w
    for _ in range(iterations):  # x / w > 0 wherever the result is used: same sign, not 0
        z = torch.log(x / w).sub_(w)
        one_w = 1.0 + w
        q = torch.add(one_w, z, alpha=2.0 / 3.0).mul_(one_w).mul_(2.0)
        step = torch.div(z, one_w).mul_(q - z).div_(q.sub_(z, alpha=2.0))
        w = torch.addcmul(w, w, step)
    return torch.where(exact, guess, w)


def _nonpositive_guess(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """The guess on [-1/e, 1/4]: branch-point series below -1/4, Taylor's series above."""
    branch = p * (11.0 / 72.0) - 1.0 / 3.0
    branch = branch.mul_(p).add_(1.0).mul_(p).sub_(1.0)
    taylor = (x * 1.5 - 1.0).mul_(x).add_(1.0).mul_(x)
    return torch.where(x < -_NEAR_BRANCH, branch, taylor)


def _branch_p(x: torch.Tensor) -> torch.Tensor:
    """p = sqrt(2 e (x + 1/e)), 0 at and below the branch point."""
    return torch.sqrt(torch.clamp(_branch_distance(x), min=0.0).mul_(2.0 * math.e))


def _lambertw0_nonpositive(z: torch.Tensor, *, iterations: int = 2) -> torch.Tensor:
    """W0 for ``z`` already known to lie in [-1/e, 0] (no checks): the spike-time fast path.

    The same guess, iterations and accuracy as :func:`lambertw0` on that range, without the
    domain checks and the x > 1/4 guess (fewer passes over the tensor).
    """
    p = _branch_p(z)
    return _iterate(z, _nonpositive_guess(z, p), p, iterations)


def lambertw0(x: torch.Tensor, *, iterations: int = 2) -> torch.Tensor:
    """W0(x) elementwise: same shape, dtype and device as ``x`` (float32 or float64).

    ``iterations`` Fritsch steps follow the guess (see the module docstring); 2 reach the dtype's
    rounding. Entries below -1/e, NaN and +-inf give NaN.
    """
    if not isinstance(x, torch.Tensor):
        raise InputTypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
    if x.dtype not in (torch.float32, torch.float64):
        raise InputError(f"x must be float32 or float64; got {x.dtype}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise InputError(f"iterations must be an int >= 0; got {iterations!r}")
    hi = float(torch.tensor(float(_INV_E), dtype=x.dtype))
    inside = torch.isfinite(x) & (x >= -hi)  # -hi itself is the branch point (rounding of 1/e)
    xs = torch.where(inside, x, 0.0)  # keep NaN and inf out of the arithmetic below
    p = _branch_p(xs)
    log1p = torch.log1p(torch.clamp(xs, min=0.0))
    winitzki = log1p * (1.0 - torch.log1p(log1p) / (2.0 + log1p))
    w = torch.where(xs > _NEAR_BRANCH, winitzki, _nonpositive_guess(xs, p))
    return torch.where(inside, _iterate(xs, w, p, iterations), math.nan)

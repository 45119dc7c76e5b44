"""MembranePotentialLoss (Roy et al. eqs. 5-8) on a case worked by hand."""
from __future__ import annotations

import pytest
import torch

from spikecodec.errors import InputError
from spikecodec.train.losses import MembranePotentialLoss


def test_xor_masked_loss_and_gradient_by_hand():
    # one sample, two neurons, two steps; Vth = 1
    target = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    output = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    voltage = torch.tensor([[[0.4, -0.3], [1.5, 2.0]]], requires_grad=True)
    loss = MembranePotentialLoss(1.0)(voltage, output, target)
    # mask = XOR: [[1, 0], [1, 0]] -> errors (1 - 0.4) and (0 - 1.5)
    # L = 0.5 * (0.6^2 + 1.5^2) = 0.5 * (0.36 + 2.25) = 1.305
    assert loss.item() == pytest.approx(1.305)
    loss.backward()
    # dL/dV = -mask * (O - V): [[-0.6, 0], [1.5, 0]]
    assert voltage.grad.flatten().tolist() == pytest.approx([-0.6, 0.0, 1.5, 0.0])


def test_unmasked_variant_and_threshold_scaling():
    target = torch.tensor([[[1.0, 0.0]]])
    output = torch.tensor([[[1.0, 0.0]]])
    voltage = torch.tensor([[[1.5, 0.5]]])
    assert MembranePotentialLoss(2.0, xor_mask=True)(voltage, output, target).item() == 0.0
    # unmasked: O = 2 * x -> errors 0.5 and -0.5 -> 0.5 * 0.5 = 0.25
    unmasked = MembranePotentialLoss(2.0, xor_mask=False)(voltage, output, target)
    assert unmasked.item() == pytest.approx(0.25)


def test_batch_mean():
    target = torch.ones(4, 1, 1)
    loss = MembranePotentialLoss()(torch.zeros(4, 1, 1), torch.zeros(4, 1, 1), target)
    assert loss.item() == pytest.approx(0.5)


def test_shape_mismatch():
    with pytest.raises(InputError, match="share"):
        MembranePotentialLoss()(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.zeros(1, 3, 2))


@pytest.mark.parametrize("xor_mask", [True, False])
@pytest.mark.parametrize("layout", ["time-major", "batch-major"])
def test_fused_loss_equals_the_autograd_expression(xor_mask, layout):
    """The fused forward/backward equals autograd over ``1/(2B) sum (mask (Vth x - V))^2``:
    the same gradient bit for bit, the same value up to summation order; time-major views as
    the models pass them (the target is copied into their layout) and plain ``(B, n, T)``
    tensors as SLAYER passes them (nothing copied)."""
    g = torch.Generator().manual_seed(3)
    base = torch.randn(15, 8, 30, generator=g, dtype=torch.float64) * 2
    target = (torch.rand(8, 30, 15, generator=g) < 0.3).double()
    output = (torch.rand(15, 8, 30, generator=g) < 0.3).double().permute(1, 2, 0)
    if layout == "batch-major":
        base, output = base.permute(1, 2, 0).contiguous(), output.contiguous()
    grads, values = [], []
    for fused in (True, False):
        v = base.clone().requires_grad_(True)
        voltage = v.permute(1, 2, 0) if layout == "time-major" else v
        if fused:
            loss = MembranePotentialLoss(1.5, xor_mask=xor_mask)(voltage, output, target)
        else:
            error = 1.5 * target - voltage
            if xor_mask:
                error = error * (target != output)
            loss = error.square().sum() * (0.5 / 8)
        loss.backward()
        grads.append(v.grad)
        values.append(loss.item())
    assert torch.equal(grads[0], grads[1])
    assert values[0] == pytest.approx(values[1], rel=1e-12)
    assert grads[0].stride() == v.stride()  # the gradient in the voltage's own layout
    if xor_mask:  # where output and target agree, no gradient
        agree = (target == output).permute(2, 0, 1) if layout == "time-major" else \
            (target == output)
        assert grads[0][agree].abs().max() == 0 and grads[0][~agree].abs().min() > 0

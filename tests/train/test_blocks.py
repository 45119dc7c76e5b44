"""CubaDense: integer dynamics vs a hand-written loop, vs lava-dl SLAYER, and its BPTT gradient."""
from __future__ import annotations

import pytest
import torch

from spikecodec.errors import ConfigError, InputError
from spikecodec.lava_procs.cuba import STATE_EXP
from spikecodec.train.blocks import CubaConfig, CubaDense, check_binary_spikes, quantize_weight


def hand_lif(weight_mant: list[list[int]], spikes: list[list[int]], *, leak: float,
             vth_mant: int) -> tuple[list[list[int]], list[list[int]]]:
    """Roy et al.'s LIF V[t] = (1-a)V[t-1] + Z[t] on Python ints, one neuron at a time.

    Units: state = mantissa << 6; the decay rounds towards zero after the 12-bit multiply."""
    keep = 4096 - round(leak * 4096)
    n_out, steps = len(weight_mant), len(spikes[0])
    out = [[0] * steps for _ in range(n_out)]
    volt = [[0] * steps for _ in range(n_out)]
    for j in range(n_out):
        v = 0
        for t in range(steps):
            z = sum(weight_mant[j][i] * spikes[i][t] for i in range(len(spikes))) << 6
            decayed = (abs(v) * keep) >> 12
            v = (decayed if v >= 0 else -decayed) + z
            volt[j][t] = v
            if v > vth_mant << 6:
                out[j][t] = 1
                v = 0
    return out, volt


@pytest.mark.parametrize("leak", [0.0, 0.1, 0.37])
@pytest.mark.parametrize("scale", [64, 256])
def test_matches_hand_written_loop(leak, scale):
    gen = torch.Generator().manual_seed(1)
    block = CubaDense(12, 5, CubaConfig(voltage_decay=leak, scale=scale), weight_scale=4.0,
                      generator=gen)
    x = (torch.rand(1, 12, 20, generator=gen) < 0.4).float()
    s, v = block.forward_tm(x.permute(2, 0, 1))
    expected_s, expected_v = hand_lif(block.weight_mantissa().tolist(), x[0].long().tolist(),
                                      leak=leak, vth_mant=block.neuron.v_th_mant)
    assert s[:, 0].t().long().tolist() == expected_s
    assert (v[:, 0].t() * block.neuron.state_scale).round().long().tolist() == expected_v
    assert s.sum() > 0


def test_worked_example():
    """Two inputs, weights 0.5 and 0.75 (threshold 1, leak 0.5): spikes worked by hand."""
    block = CubaDense(2, 1, CubaConfig(voltage_decay=0.5, scale=64))
    with torch.no_grad():
        block.weight.copy_(torch.tensor([[0.5, 0.75]]))
    x = torch.tensor([[[1, 1, 0, 1], [0, 0, 1, 1]]], dtype=torch.float32)
    s, v = block.forward_tm(x.permute(2, 0, 1))
    # t0: v=0.5; t1: 0.25+0.5=0.75; t2: 0.375+0.75=1.125 > 1 spike, reset; t3: 0+1.25 spike
    assert v[:, 0, 0].tolist() == [0.5, 0.75, 1.125, 1.25]
    assert s[:, 0, 0].tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("scale", [64, 256])
def test_equals_lava_dl_slayer_block(scale):
    slayer = pytest.importorskip("lava.lib.dl.slayer")
    torch.manual_seed(0)
    ours = CubaDense(50, 30, CubaConfig(voltage_decay=0.1, current_decay=0.25, scale=scale),
                     weight_scale=3.0)
    params = {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.1, "scale": scale}
    theirs = slayer.block.cuba.Dense(params, 50, 30, delay_shift=False)
    with torch.no_grad():
        theirs.synapse.weight.copy_(ours.weight.reshape(theirs.synapse.weight.shape))
    x = (torch.rand(8, 50, 25) < 0.3).float()
    ours_s, theirs_s = ours(x), theirs(x)
    assert ours_s.sum() > 0
    assert torch.equal(ours_s, theirs_s)
    # and the hardware mantissas are what lava-dl would export
    exported = theirs.synapse.pre_hook_fx(theirs.synapse.weight, descale=True)
    assert torch.equal(ours.weight_mantissa(), exported.reshape(30, 50).round().long())
    # and the neuron parameters are what lava-dl would export (iDecay, vDecay, vThMant)
    device = theirs.neuron.device_params
    fixed = ours.neuron.fixed_point()
    assert (device["iDecay"], device["vDecay"]) == (fixed.du, fixed.dv)
    assert device["vThMant"] == ours.neuron.v_th_mant
    # with SLAYER's default inter-layer delay the output is ours shifted by one step
    delayed = slayer.block.cuba.Dense(params, 50, 30, delay_shift=True)
    delayed.load_state_dict(theirs.state_dict())
    assert torch.equal(delayed(x)[..., 1:], ours_s[..., :-1])


def reference_bptt(z: torch.Tensor, cfg: CubaConfig):
    """Autograd through a float loop of the same equations (exact when the leak is 0)."""
    th, k = cfg.threshold, cfg.surrogate_slope

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return (v > th).to(v.dtype)

        @staticmethod
        def backward(ctx, g):
            (v,) = ctx.saved_tensors
            sig = torch.sigmoid(k * (v - th))
            return g * k * sig * (1 - sig)

    keep_u, keep_v = 1 - cfg.current_decay, 1 - cfg.voltage_decay
    u = v = s = torch.zeros_like(z[0])
    spikes, volts = [], []
    for t in range(z.shape[0]):
        u = keep_u * u + z[t]
        v = keep_v * v * (1 - s.detach()) + u
        s = Spike.apply(v)
        spikes.append(s)
        volts.append(v)
    return torch.stack(spikes), torch.stack(volts)


@pytest.mark.parametrize("current_decay", [1.0, 0.5])
def test_bptt_gradient_matches_autograd(current_decay):
    cfg = CubaConfig(voltage_decay=0.0, current_decay=current_decay, scale=64,
                     surrogate_slope=2.0, bf16_grads=False)
    gen = torch.Generator().manual_seed(3)
    block = CubaDense(10, 4, cfg, weight_scale=2.0, generator=gen)
    x = (torch.rand(12, 3, 10, generator=gen) < 0.5).float()  # (time, batch, in)
    gs, gv = torch.randn(12, 3, 4, generator=gen), torch.randn(12, 3, 4, generator=gen)

    s, v = block.forward_tm(x)
    ((s * gs).sum() + (v * gv).sum()).backward()
    ours = block.weight.grad.clone()

    block.weight.grad = None
    z = torch.matmul(x, block.quantized_weight().t())
    s_ref, v_ref = reference_bptt(z, cfg)
    assert torch.equal(s_ref, s.detach())
    assert torch.allclose(v_ref, v.detach(), atol=1e-3)
    ((s_ref * gs).sum() + (v_ref * gv).sum()).backward()
    assert torch.allclose(ours, block.weight.grad, atol=1e-5, rtol=1e-4)
    assert ours.abs().sum() > 0


def test_quantize_weight_is_straight_through_and_clamped():
    w = torch.tensor([0.0, 0.011, 0.02, 5.0, -5.0], requires_grad=True)
    q = quantize_weight(w, 64)
    assert q.tolist() == pytest.approx([0.0, 0.0, 2 / 64, 254 / 64, -256 / 64])
    q.sum().backward()
    assert w.grad.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize("scale", [64, 256])
def test_quantize_weight_equals_autograd_over_its_expression(scale):
    """The fused straight-through function gives autograd's values and gradients: weights
    inside, on and beyond the clamp bounds."""
    g = torch.Generator().manual_seed(2)
    w = torch.randn(40, 30, generator=g) * (300 / scale)
    w[0, :4] = torch.tensor([-256, 254, -257, 255]) / scale  # on and just beyond the bounds
    w[1, :2] = torch.tensor([-256.9, 254.9]) / scale  # rounded onto the bounds
    w[2, :2] = torch.tensor([-254, 252]) / scale  # one step inside
    grad = torch.randn(40, 30, generator=g)
    results = []
    for fused in (True, False):
        leaf = w.clone().requires_grad_(True)
        if fused:
            q = quantize_weight(leaf, scale)
        else:
            step = 2.0 / scale
            rounded = leaf + (torch.round(leaf / step) * step - leaf).detach()
            q = rounded.clamp(-256 / scale, 254 / scale)
        q.backward(grad)
        results.append((q.detach(), leaf.grad))
    (q1, g1), (q2, g2) = results
    assert torch.equal(q1, q2) and torch.equal(g1, g2)
    assert 0 < (g1 == 0).sum() < g1.numel()  # some weights clamped, most not
    # torch's clamp passes no gradient at a bound, only strictly inside
    assert g1[0, :4].tolist() == [0.0] * 4 and g1[1, :2].tolist() == [0.0, 0.0]
    assert g1[2, :2].tolist() == grad[2, :2].tolist()


@pytest.mark.parametrize("kwargs", [{"threshold": 0}, {"voltage_decay": 1.5},
                                    {"current_decay": -0.1}, {"scale": 48},
                                    {"surrogate_slope": 0}, {"threshold": 0.001}])
def test_bad_config(kwargs):
    with pytest.raises(ConfigError):
        CubaConfig(**kwargs)


def test_bad_input_shape():
    block = CubaDense(4, 2)
    with pytest.raises(InputError, match=r"\(batch, 4, time\)"):
        block(torch.zeros(2, 5, 3))
    with pytest.raises(InputError, match="binary"):
        block(torch.full((2, 4, 3), 0.5))


@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0, 1e-40, 1 - 2**-24, 1 + 2**-23, float("nan"),
                                 float("inf"), -float("inf"), -1e-45])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_binary_check_refuses_every_non_binary_float(bad, dtype):
    x = (torch.rand(3, 4, 5, generator=torch.Generator().manual_seed(0)) < 0.5).to(dtype)
    x[1, 2, 3] = bad
    if x[1, 2, 3].item() in (0.0, 1.0):  # the value did not survive the dtype (float16)
        return check_binary_spikes(x, "x")
    with pytest.raises(InputError, match="binary"):
        check_binary_spikes(x, "x")
    with pytest.raises(InputError, match="binary"):  # any layout, also a permuted view
        check_binary_spikes(x.permute(2, 0, 1), "x")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16,
                                   torch.uint8, torch.int8, torch.int64, torch.bool,
                                   torch.complex64])
def test_binary_check_accepts_spikes_of_any_dtype(dtype):
    x = (torch.rand(2, 3, 4, generator=torch.Generator().manual_seed(1)) < 0.5).to(dtype)
    check_binary_spikes(x, "x")
    check_binary_spikes(torch.zeros(0, 3, dtype=dtype), "x")
    if dtype.is_floating_point:
        check_binary_spikes(torch.tensor([-0.0, 1.0], dtype=dtype), "x")  # -0 == 0
    if dtype not in (torch.bool, torch.uint8):
        with pytest.raises(InputError, match="binary"):
            check_binary_spikes(torch.tensor([0, 1, -1], dtype=dtype), "x")
    if dtype != torch.bool:
        with pytest.raises(InputError, match="binary"):
            check_binary_spikes(torch.tensor([0, 1, 2], dtype=dtype), "x")


def test_bf16_gradients_stay_close_to_float32():
    gen = torch.Generator().manual_seed(4)
    x = (torch.rand(15, 50, 200, generator=gen) < 0.2).float()
    grads = []
    for bf16 in (False, True):
        block = CubaDense(200, 60, CubaConfig(bf16_grads=bf16), weight_scale=3.0,
                          generator=torch.Generator().manual_seed(0))
        s, v = block.forward_tm(x)
        (v.square().sum() + s.sum()).backward()
        grads.append(block.weight.grad)
    exact, fast = grads
    assert exact.abs().sum() > 0
    assert (fast - exact).norm() / exact.norm() < 0.02


@pytest.mark.parametrize("current_decay, voltage_decay", [(1.0, 0.1), (1.0, 0.0), (1.0, 1.0),
                                                          (0.25, 0.05), (0.0, 0.3), (0.6, 1.0)])
def test_int32_training_loop_equals_the_shared_step(current_decay, voltage_decay):
    """The training forward's int32 loop (:func:`_lif_forward_int32`) gives what the shared
    :func:`cuba_step` gives on int64 state, step by step: inputs of both signs, many on and
    next to the threshold, others as large as the int32 bound allows."""
    from spikecodec.lava_procs.cuba import CubaState, cuba_step
    from spikecodec.train.blocks import _lif_forward, state_fits_int32

    cfg = CubaConfig(threshold=1.0, current_decay=current_decay, voltage_decay=voltage_decay,
                     scale=64)
    p = cfg.fixed_point()
    g = torch.Generator().manual_seed(7)
    steps, shape = 12, (5, 40)
    a = torch.randint(-3 * p.vth, 3 * p.vth, (steps, *shape), generator=g)
    a[:, 0] = p.vth + torch.randint(-2, 3, (steps, shape[1]), generator=g)  # at the threshold
    big = torch.randint(-2**28, 2**28, (steps, shape[1]), generator=g)
    while not state_fits_int32(float(big.abs().max()), p, steps):  # as large as provably fits
        big >>= 1
    a[:, 1] = big
    assert big.abs().max() > 2**20 and state_fits_int32(float(a.abs().max()), p, steps)
    a32 = a.to(torch.int32)
    s, v = _lif_forward(a32, cfg, torch.float64)
    assert torch.equal(a32, a.to(torch.int32))  # the input is left alone unless overwritten
    state = CubaState(torch.zeros(shape, dtype=torch.int64), torch.zeros(shape, dtype=torch.int64))
    for t in range(steps):
        state, v_ref, s_ref = cuba_step(state, a[t], p)
        assert torch.equal(s[t], s_ref.double()), t
        assert torch.equal(v[t] * cfg.state_scale, v_ref.double()), t
    assert 0 < s.sum() < s.numel()
    s2, v2 = _lif_forward(a32, cfg, torch.float32, overwrite=True)
    assert torch.equal(s2, s.float()) and torch.equal(v2, v.float())


def test_int32_state_gives_the_int64_results_and_is_used_only_when_proven():
    """The training forward keeps its state in int32 where ``state_fits_int32`` proves no value
    reaches 2^31: spikes and voltages equal the int64 run's; a bound it cannot prove keeps
    int64."""
    from spikecodec.lava_procs.cuba import CubaParams
    from spikecodec.train.blocks import _lif_forward, state_fits_int32

    cfg = CubaConfig(threshold=1.0, current_decay=0.25, voltage_decay=0.05, scale=64)
    g = torch.Generator().manual_seed(5)
    a = torch.randint(-40, 60, (20, 6, 9), generator=g) << (STATE_EXP + 1)  # state units
    assert state_fits_int32(float(a.abs().max()), cfg.fixed_point(), 20)
    s32, v32 = _lif_forward(a.to(torch.int32), cfg, torch.float32)
    s64, v64 = _lif_forward(a.to(torch.int64), cfg, torch.float32)
    assert torch.equal(s32, s64) and torch.equal(v32, v64) and s32.sum() > 0
    p = CubaParams(du=1, dv=1, vth=64)
    assert state_fits_int32(2**10, p, 100)  # |u| <= 100 * 2^10, |v| <= 100 |u| < 2^24
    assert not state_fits_int32(2**10, p, 100_000)  # slow decays over a long window
    assert not state_fits_int32(2**31, CubaParams(du=4096, dv=4096, vth=64), 1)

"""The reference backend: equals the training forward, a worked example, an explicit numpy
loop of cuba_step (wraps, clips, biases, weight exponents), chunking, GEMM paths and errors."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from spikecodec.deploy.backends import run
from spikecodec.deploy.backends.reference import (
    TIME_BLOCK,
    _gemm_dtype,
    _run_chunk,
    run_reference,
)
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import CubaNeuron, DenseLayer
from spikecodec.deploy.weights import lava_weights
from spikecodec.errors import ConfigError, InputError, InputTypeError
from spikecodec.lava_procs.cuba import CubaParams, CubaState, cuba_step
from spikecodec.train.families.roy.family import RoyFamily
from spikecodec.train.families.roy.model import RoyAE, RoyAEModelConfig

T = 15


def roy(scale: int = 256, leak: float = 0.1, seed: int = 1):
    model = RoyAE(64, RoyAEModelConfig(hidden=24, scale=scale, leak=leak, init_scale=4.0),
                  seed=seed)
    return model, RoyFamily().to_network(model, InputSpec("poisson_rate", T, (8, 8)))


def spikes(batch: int, n: int, steps: int = T, rate: float = 0.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((batch, n, steps)) < rate).astype(np.uint8)


def numpy_loop(net: FixedPointNetwork, x: np.ndarray) -> list[np.ndarray]:
    """Each layer's spikes ``(batch, n, T)``: numpy, one sample and step at a time."""
    outs = []
    s = x.astype(np.int64)
    for layer in net.layers:
        mantissa, exponent = lava_weights(layer.weight)
        bias = 0 if layer.bias is None else layer.bias.astype(np.int64) << 6
        n = layer.neuron
        p = CubaParams(du=n.i_decay, dv=n.v_decay, vth=n.v_th_mant << 6, bias=bias)
        out = np.zeros((x.shape[0], layer.out_features, x.shape[2]), dtype=np.int64)
        for b in range(x.shape[0]):
            state = CubaState(np.zeros(layer.out_features, np.int64),
                              np.zeros(layer.out_features, np.int64))
            for t in range(x.shape[2]):
                total = mantissa @ s[b, :, t]
                a = total << exponent if exponent >= 0 else total >> -exponent
                state, _, fired = cuba_step(state, a << 6, p, bounded=True)
                out[b, :, t] = fired
        outs.append(out.astype(np.uint8))
        s = out
    return outs


@pytest.mark.parametrize("scale,leak", [(256, 0.1), (64, 0.1), (256, 0.0), (64, 0.5)])
def test_equals_training_forward(scale, leak):
    model, net = roy(scale, leak)
    x = spikes(40, 64)
    result = run(net, x, backend="reference", probe=True)
    with torch.no_grad():
        expected = model(torch.from_numpy(x).float())
    assert expected.spikes.sum() > 0 and expected.hidden.sum() > 0
    np.testing.assert_array_equal(result.spikes, expected.spikes.numpy().astype(np.uint8))
    np.testing.assert_array_equal(result.layers[0], expected.hidden.numpy().astype(np.uint8))
    assert result.stats["u_wraps"] == [0, 0] and result.stats["v_clips"] == [0, 0]


def test_worked_example():
    """Two inputs, one neuron; iDecay = vDecay = 2048 (both halve), vThMant 10, weights 6, 4.

    State units (mantissa << 6): vth = 640, bias 1 -> 64, inputs 6 -> 384, 4 -> 256.
    t0: u = 384,            v = 384 + 64 = 448
    t1: u = 192 + 256 = 448, v = 224 + 448 + 64 = 736 > 640: spike, v = 0
    t2: u = 224,            v = 0 + 224 + 64 = 288
    t3: u = 112 + 640 = 752, v = 144 + 752 + 64 = 960 > 640: spike, v = 0
    t4: u = 376,            v = 376 + 64 = 440
    t5: u = 188,            v = 220 + 188 + 64 = 472
    Without the bias t1 gives v = 192 + 448 = 640, not above 640: the only spike is at t3.
    """
    x = np.array([[[1, 0, 0, 1, 0, 0], [0, 1, 0, 1, 0, 0]]], dtype=np.uint8)
    assert lava_weights(np.array([[6, 4]]))[1] == -5  # runs through Lava's exponent path
    for bias, expected in (([1], [0, 1, 0, 1, 0, 0]), (None, [0, 0, 0, 1, 0, 0])):
        layer = DenseLayer("l", np.array([[6, 4]]), CubaNeuron(2048, 2048, 10), bias=bias)
        net = FixedPointNetwork((layer,), InputSpec("spikes", 6, (2,)))
        assert run_reference(net, x).spikes[0, 0].tolist() == expected


def random_net(seed: int, *, sizes=(40, 30, 20), weight_max: int = 254,
               weight_min: int | None = None, bias: bool = True, i_decay: int = 1024,
               v_decay: int = 128, v_th: int = 200) -> FixedPointNetwork:
    rng = np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        low = -weight_max if weight_min is None else weight_min
        w = rng.integers(low, weight_max + 1, (n_out, n_in))
        b = rng.integers(-50, 50, n_out) * (rng.random(n_out) < 0.5) if bias else None
        layers.append(DenseLayer(f"l{i}", w, CubaNeuron(i_decay, v_decay, v_th), bias=b))
    return FixedPointNetwork(tuple(layers), InputSpec("spikes", 12, (sizes[0],)))


@pytest.mark.parametrize("case", ["plain", "odd_small", "wraps", "clips"])
def test_equals_an_explicit_numpy_loop(case):
    net = {"plain": lambda: random_net(0),
           "odd_small": lambda: random_net(1, weight_max=3, i_decay=4096, v_decay=410, v_th=2),
           "wraps": lambda: random_net(2, sizes=(300, 20), weight_min=0, i_decay=1,
                                       v_th=2**17 - 1, bias=False),
           "clips": lambda: random_net(3, sizes=(300, 20), weight_min=0, i_decay=4096,
                                       v_decay=0, v_th=2**17 - 1)}[case]()
    x = spikes(6, net.in_features, 12, rate=0.5 if case in ("wraps", "clips") else 0.3)
    result = run_reference(net, x, probe=True)
    for ours, theirs in zip(result.layers, numpy_loop(net, x), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert result.spikes.sum() > 0
    if case == "wraps":
        assert result.stats["u_wraps"][0] > 0
    if case == "clips":
        assert result.stats["v_clips"][0] > 0


def test_probe_shapes_and_dtypes():
    _, net = roy()
    x = spikes(5, 64)
    result = run_reference(net, x, probe=True)
    assert [a.shape for a in result.layers] == [(5, 24, T), (5, 64, T)]
    assert all(a.dtype == np.uint8 for a in result.layers)
    assert result.layers[-1] is result.spikes
    assert run_reference(net, x).layers is None
    assert set(result.stats) >= {"u_wraps", "v_clips", "gemm", "seconds"}


def test_chunking_gives_the_same_spikes_and_counts():
    net = random_net(4, sizes=(300, 20), weight_min=0, i_decay=1, v_th=2**17 - 1, bias=False)
    x = spikes(10, 300, 12, rate=0.5)
    small = run_reference(net, x, batch_size=3, probe=True)
    large = run_reference(net, x, batch_size=1024, probe=True)
    for a, b in zip(small.layers, large.layers, strict=True):
        np.testing.assert_array_equal(a, b)
    assert small.stats["u_wraps"] == large.stats["u_wraps"] and large.stats["u_wraps"][0] > 0


def test_gemm_dtype_follows_the_bound():
    assert _gemm_dtype(2**24 - 1) == torch.float32
    assert _gemm_dtype(2**24) == torch.float64
    assert _gemm_dtype(2**53 - 1) == torch.float64
    with pytest.raises(ConfigError, match="2\\^53"):
        _gemm_dtype(2**53)


def chunk(plans, x: torch.Tensor):
    """Every layer's spikes ``(B, n, T)`` uint8, wrap counts and clip counts."""
    out = [torch.empty((x.shape[0], p.synapse.rows, x.shape[2]), dtype=torch.uint8)
           for p in plans]
    wraps, clips = _run_chunk(plans, x, out)
    return out, wraps, clips


@pytest.mark.parametrize("net", [roy()[1], random_net(5), random_net(6, weight_max=3)])
def test_every_gemm_path_and_the_bounded_step_agree(net):
    x = torch.from_numpy(spikes(7, net.in_features, 12))
    cpu = torch.device("cpu")
    auto = [layer.reference_plan(device=cpu, steps=12) for layer in net.layers]
    assert {p.synapse.gemm for p in auto} <= {"int8", "float32"}
    expected, _, _ = chunk(auto, x)
    for dtype in (torch.float32, torch.float64):
        for bounded in (False, True):
            plans = [layer.reference_plan(device=cpu, steps=12, dtype=dtype, bounded=bounded)
                     for layer in net.layers]
            assert [p.synapse.gemm for p in plans] == [str(dtype)[6:]] * len(plans)
            got, wraps, clips = chunk(plans, x)
            assert wraps == clips == [0] * len(plans)
            for a, b in zip(got, expected, strict=True):
                assert torch.equal(a, b)


def test_roy_network_skips_the_bounds():
    _, net = roy()
    cpu = torch.device("cpu")
    plans = [layer.reference_plan(device=cpu, steps=T) for layer in net.layers]
    assert not any(plan.bounded for plan in plans)
    assert all(plan.state == torch.int32 for plan in plans)
    wrapping = random_net(2, sizes=(300, 20), weight_min=0, i_decay=1, v_th=2**17 - 1)
    plan = wrapping.layers[0].reference_plan(device=cpu, steps=12)
    assert plan.bounded and plan.state == torch.int64
    forced = wrapping.layers[0].reference_plan(device=cpu, steps=12, bounded=False)
    # reachable: int32 is not proven
    assert not forced.bounded and forced.state == torch.int64


@pytest.mark.parametrize("case", ["int32", "bounded"])
def test_more_steps_than_a_time_block(case):
    """The first layer's input is computed TIME_BLOCK steps at a time: a ragged last block."""
    steps = 2 * TIME_BLOCK + 3
    net = random_net(8, weight_max=3, i_decay=4096, v_decay=410, v_th=2) if case == "int32" \
        else random_net(2, sizes=(300, 20), weight_min=0, i_decay=1, v_th=2**17 - 1, bias=False)
    net = FixedPointNetwork(net.layers, InputSpec("spikes", steps, (net.in_features,)))
    plans = [layer.reference_plan(device=torch.device("cpu"), steps=steps)
             for layer in net.layers]
    assert plans[0].state == (torch.int32 if case == "int32" else torch.int64)
    x = spikes(3, net.in_features, steps, rate=0.5)
    result = run_reference(net, x, probe=True, batch_size=2)
    for ours, theirs in zip(result.layers, numpy_loop(net, x), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert result.spikes[:, :, TIME_BLOCK:].sum() > 0


@pytest.mark.parametrize("bad,error", [
    (np.zeros((2, 64)), InputError),  # no time axis
    (np.zeros((2, 63, T)), InputError),  # wrong in_features
    (np.full((2, 64, T), 2), InputError),  # not binary
    (np.zeros((0, 64, T)), InputError),  # empty batch
    ([[[0]]], InputTypeError),  # not an array
])
def test_typed_errors_through_run(bad, error):
    _, net = roy()
    with pytest.raises(error):
        run(net, bad, backend="reference")


def test_direct_call_checks_input_and_options():
    _, net = roy()
    with pytest.raises(InputError, match="binary"):
        run_reference(net, np.full((1, 64, T), 3, dtype=np.uint8))
    with pytest.raises(InputError, match="shape"):
        run_reference(net, np.zeros((1, 5, T), dtype=np.uint8))
    with pytest.raises(ConfigError, match="batch_size"):
        run_reference(net, spikes(1, 64), batch_size=0)
    with pytest.raises(ConfigError, match="device"):
        run_reference(net, spikes(1, 64), device="no-such-device")
    # bool and torch input are accepted and converted
    x = spikes(3, 64)
    expected = run_reference(net, x).spikes
    np.testing.assert_array_equal(run_reference(net, x.astype(bool)).spikes, expected)
    np.testing.assert_array_equal(run_reference(net, torch.from_numpy(x)).spikes, expected)
    x.setflags(write=False)  # e.g. a memory map: no torch warning about non-writable arrays
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(run_reference(net, x).spikes, expected)


@pytest.mark.gpu
def test_cuda_equals_cpu():
    _, net = roy()
    x = spikes(50, 64)
    cpu = run_reference(net, x, probe=True)
    gpu = run_reference(net, x, probe=True, device="cuda")
    assert gpu.stats["gemm"] == ["float32", "float32"]
    for a, b in zip(cpu.layers, gpu.layers, strict=True):
        np.testing.assert_array_equal(a, b)


def test_progress_bar_counts_samples(monkeypatch):
    updates = []

    class Bar:
        def update(self, n):
            updates.append(n)

        def close(self):
            updates.append("closed")

    import spikecodec.deploy.backends.reference as reference

    monkeypatch.setattr(reference, "_progress_bar", lambda total: Bar())
    _, net = roy()
    run_reference(net, spikes(7, 64), batch_size=3, show_progress=True)
    assert updates == [3, 3, 1, "closed"]

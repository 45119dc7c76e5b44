"""The reference backend equals Lava's fixed_pt simulator spike for spike, every layer.

Random FixedPointNetworks are written with ``write_hdf5``, loaded by NetX with a reset every
``P = T + gap`` steps, and fed several samples laid end to end by a RingBuffer (sample ``k`` at
source columns ``k P .. k P + T - 1``, zeros in the gaps); a RingBuffer sink per layer records
everything. Layer ``i`` (0-based) answers sample ``k``, step ``t`` at sink column
``k P + t + i + 1`` (each Dense delays by one step; :func:`test_stream_alignment` pins it down).
With NetX's ``reset_offset = 1`` each layer resets on the step it integrates a sample's first
input, which is the reference's "zero state, no delay" (the ``lava-sim`` backend runs so); with
the default ``reset_offset = 0`` it resets one step early and a bias acts once before the sample
(:func:`test_default_reset_offset_runs_one_step_early`). The runtime is always stopped.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from spikecodec.deploy.backends.reference import run_reference
from spikecodec.deploy.hdf5 import write_hdf5
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import CubaNeuron, DenseLayer

pytestmark = [pytest.mark.lava,  # NetX divides by a zero max weight for the "nonpositive" case
              pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")]

GAP = 2


def run_lava(net: FixedPointNetwork, x: np.ndarray, path, *, gap: int = GAP,
             reset_offset: int = 1) -> list[np.ndarray]:
    """``x (n, in, T)`` through NetX on Loihi2SimCfg(fixed_pt): each layer's ``(n, out, T)``."""
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    n, n_in, steps = x.shape
    period = steps + gap
    total = n * period + net.latency
    stream = np.zeros((n_in, total))
    for k in range(n):
        stream[:, k * period:k * period + steps] = x[k]
    network = netx.hdf5.Network(net_config=str(write_hdf5(net, path)), reset_interval=period,
                                reset_offset=reset_offset)
    source = Source(data=stream)
    source.s_out.connect(network.inp)
    sinks = []
    for layer in network.layers:
        sinks.append(Sink(shape=layer.out.shape, buffer=total))
        layer.out.connect(sinks[-1].a_in)
    try:
        network.run(condition=RunSteps(num_steps=total),
                    run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        recorded = [sink.data.get() for sink in sinks]
    finally:
        network.stop()
    columns = np.arange(n)[:, None] * period + np.arange(steps)[None, :]  # (n, T)
    return [rec[:, columns + i + 1].transpose(1, 0, 2).astype(np.uint8)
            for i, rec in enumerate(recorded)]


def dense(rng, name: str, n_in: int, n_out: int, *, weights=(-254, 254), i_decay=4096,
          v_decay=410, v_th=200, bias=None) -> DenseLayer:
    w = rng.integers(weights[0], weights[1] + 1, (n_out, n_in))
    if bias is not None:
        bias = rng.integers(bias[0], bias[1] + 1, n_out) * (rng.random(n_out) < 0.5)
    return DenseLayer(name, w, CubaNeuron(i_decay, v_decay, v_th), bias=bias)


def make_case(name: str) -> tuple[FixedPointNetwork, float]:
    """A network and the input spike rate of each parametrized case."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if name == "roy":  # Roy et al.'s LIF: current forgets each step, 10% leak
        layers = (dense(rng, "enc", 30, 12, weights=(-60, 60)),
                  dense(rng, "dec", 12, 30, weights=(-120, 120), v_th=100))
        return FixedPointNetwork(layers, InputSpec("spikes", 10, (30,))), 0.3
    if name == "persistent_bias":  # current keeps 3/4, voltage 31/32, biases on half
        layers = (dense(rng, "l0", 20, 16, weights=(-40, 60), i_decay=1024, v_decay=128,
                        v_th=300, bias=(-40, 60)),
                  dense(rng, "l1", 16, 8, i_decay=1024, v_decay=128, v_th=400, bias=(-60, 80)))
        return FixedPointNetwork(layers, InputSpec("spikes", 10, (20,))), 0.3
    if name == "u_wrap":  # 300 x 254-ish inputs into a barely decaying current
        layers = (dense(rng, "l0", 300, 6, weights=(200, 254), i_decay=1, v_decay=4096,
                        v_th=2**16),)
        return FixedPointNetwork(layers, InputSpec("spikes", 14, (300,))), 0.5
    if name == "int32":  # 16000 inputs: the current outgrows 24 bits, then int32
        layers = (dense(rng, "l0", 16000, 3, weights=(250, 254), i_decay=1, v_decay=4096,
                        v_th=2**16),)
        return FixedPointNetwork(layers, InputSpec("spikes", 14, (16000,))), 0.95
    if name == "v_clip":  # no voltage decay, strong drive, threshold near 2^23
        layers = (dense(rng, "l0", 300, 6, weights=(0, 254), i_decay=4096, v_decay=0,
                        v_th=2**17 - 1),)
        return FixedPointNetwork(layers, InputSpec("spikes", 12, (300,))), 0.5
    if name == "three_layers":
        layers = (dense(rng, "l0", 24, 20, weights=(-80, 100), v_th=150),
                  dense(rng, "l1", 20, 16, weights=(-100, 140), i_decay=2048, v_th=150,
                        bias=(-20, 40)),
                  dense(rng, "l2", 16, 10, weights=(-100, 160), v_decay=1000, v_th=120))
        return FixedPointNetwork(layers, InputSpec("spikes", 10, (24,))), 0.35
    if name == "small_odd":  # weights in [-3, 3]: NetX shifts them by 6, the Dense shifts back
        layers = (dense(rng, "l0", 30, 10, weights=(-3, 3), v_th=2),
                  dense(rng, "l1", 10, 6, weights=(0, 3), i_decay=512, v_th=3))
        return FixedPointNetwork(layers, InputSpec("spikes", 10, (30,))), 0.4
    if name == "nonpositive":  # weights {-2, 0}: Lava's Dense halves them (weights.py)
        w = -2 * (rng.random((6, 10)) < 0.5)
        layers = (DenseLayer("l0", w, CubaNeuron(4096, 0, 100), bias=np.full(6, 30)),)
        return FixedPointNetwork(layers, InputSpec("spikes", 10, (10,))), 0.5
    raise KeyError(name)


CASES = ["roy", "persistent_bias", "u_wrap", "int32", "v_clip", "three_layers", "small_odd",
         "nonpositive"]


@pytest.mark.parametrize("name", CASES)
def test_reference_equals_lava(name, tmp_path, monkeypatch):
    net, rate = make_case(name)
    rng = np.random.default_rng(11)
    x = (rng.random((3, net.in_features, net.num_steps)) < rate).astype(np.uint8)
    ours = run_reference(net, x, probe=True)
    theirs = run_lava(net, x, tmp_path / "net.h5")
    for i, (a, b) in enumerate(zip(ours.layers, theirs, strict=True)):
        assert a.sum() > 0, f"layer {i} is silent: the case tests nothing"
        np.testing.assert_array_equal(a, b, err_msg=f"{name}: layer {i}")
    stats = ours.stats
    if name in ("u_wrap", "int32"):
        assert stats["u_wraps"][0] > 0
    elif name == "v_clip":
        assert stats["v_clips"][0] > 0
    else:
        assert stats["u_wraps"] == stats["v_clips"] == [0] * net.latency
    if name == "int32":  # the int32 wrap mattered
        from spikecodec.lava_procs import cuba

        monkeypatch.setattr(cuba, "wrap_int32", lambda x: x)
        assert not np.array_equal(run_reference(net, x).spikes, ours.spikes)


def test_stream_alignment(tmp_path):
    """One spike in, one spike out per layer: input (k, t) appears at column k P + t + i + 1."""
    relay = CubaNeuron(4096, 4096, 10)  # fires exactly when its one input fires
    layers = tuple(DenseLayer(f"l{i}", np.array([[100]]), relay) for i in range(3))
    net = FixedPointNetwork(layers, InputSpec("spikes", 5, (1,)))
    x = np.zeros((3, 1, 5), dtype=np.uint8)
    x[0, 0, 0] = x[1, 0, 2] = x[2, 0, 4] = 1
    for layer in run_lava(net, x, tmp_path / "net.h5"):
        np.testing.assert_array_equal(layer, x)


def test_default_reset_offset_runs_one_step_early(tmp_path):
    """With NetX's default reset_offset = 0 every layer first runs one input-free step (only its
    bias, and the previous layer's output of that step): the reference on the input with a zero
    step in front, minus that step's output. Without biases nothing differs."""
    net, _ = make_case("persistent_bias")
    rng = np.random.default_rng(3)
    x = (rng.random((3, net.in_features, net.num_steps)) < 0.3).astype(np.uint8)
    theirs = run_lava(net, x, tmp_path / "net.h5", reset_offset=0)
    padded = np.concatenate([np.zeros_like(x[..., :1]), x], axis=-1)
    early = run_reference(net, padded, probe=True).layers
    for a, b in zip(early, theirs, strict=True):
        np.testing.assert_array_equal(a[..., 1:], b)
    ours = run_reference(net, x, probe=True).layers
    assert any(not np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))

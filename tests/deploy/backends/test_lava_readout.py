"""The VDIB stochastic readout as a Lava process, alone and at the end of the lava-sim backend.

A pure-numpy replay of the readout (``readout_step`` over time with the same keys, the synapse
as :func:`~spikecodec.deploy.weights.lava_weights`' mantissas floor-shifted by the exponent,
``<< 6``; hidden CUBA layers by ``cuba_step_hits``) must equal Lava spike for spike: every layer,
streamed samples, chunks, gaps, a readout-only network, both process tags. Also the stream
alignment of the custom layer, the seed, the firing rate against the table, the loihi2 target,
argument validation, and a runtime that is stopped after a failure.
"""
from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

import spikecodec.deploy.backends.lava_sim as lava_sim
from spikecodec.deploy.backends.lava_sim import run_lava
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import CubaNeuron, DenseLayer, StochasticReadoutLayer
from spikecodec.deploy.weights import lava_weights
from spikecodec.errors import BackendUnavailableError
from spikecodec.lava_procs.cuba import STATE_EXP, CubaParams, CubaState, cuba_step_hits
from spikecodec.lava_procs.stochastic_readout.dynamics import (
    PROB_ONE,
    neuron_step_key,
    readout_step,
    sample_key,
    sigmoid_lut,
    zero_state,
)

pytestmark = pytest.mark.lava

T = 12
STATE_SCALE = 2**12  # membrane real unit for the test tables: sigmoid(m / 4096)


# --------------------------------------------------------------------------- numpy replay

def synapse(weight: np.ndarray, spikes: np.ndarray) -> np.ndarray:
    """Lava's Dense output in state units for spikes ``(B, in)``: ``(B, out)`` int64."""
    mantissa, exponent = lava_weights(weight)
    acc = spikes.astype(np.int64) @ mantissa.T
    acc = acc << exponent if exponent > 0 else acc >> -exponent  # floor shift
    return acc << STATE_EXP


def dense_reference(layer: DenseLayer, x: np.ndarray) -> np.ndarray:
    """CUBA layer from zero state per sample, no delay: ``(B, in, T)`` -> ``(B, out, T)``."""
    n = layer.neuron
    bias = 0 if layer.bias is None else layer.bias << STATE_EXP
    p = CubaParams(du=n.i_decay, dv=n.v_decay, vth=n.v_th_mant << STATE_EXP, bias=bias)
    zeros = np.zeros((len(x), layer.out_features), dtype=np.int64)
    state, out = CubaState(zeros, zeros), []
    for t in range(x.shape[2]):
        state, _, s, _ = cuba_step_hits(state, synapse(layer.weight, x[:, :, t]), p)
        out.append(s)
    return np.stack(out, axis=2).astype(np.uint8)


def readout_reference(layer: StochasticReadoutLayer, x: np.ndarray,
                      first_sample: int = 0) -> np.ndarray:
    """Readout from zero state per sample, sample ``first_sample + b`` for row ``b``."""
    p = layer.params(np.asarray)
    batch, n = len(x), layer.out_features
    state = zero_state(np.zeros((batch, n), dtype=np.int64), p.num_basis)
    skey = sample_key(p.seed, np.arange(first_sample, first_sample + batch)[:, None])
    out = []
    for t in range(x.shape[2]):
        keys = (skey, neuron_step_key(np.arange(n), t))
        state, _, s = readout_step(state, synapse(layer.weight, x[:, :, t]), p, keys=keys)
        out.append(s)
    return np.stack(out, axis=2).astype(np.uint8)


def network_reference(net: FixedPointNetwork, x: np.ndarray) -> list[np.ndarray]:
    """Every layer's spikes ``(B, n, T)``."""
    out = []
    for layer in net.layers:
        f = dense_reference if isinstance(layer, DenseLayer) else readout_reference
        x = f(layer, x)
        out.append(x)
    return out


# --------------------------------------------------------------------------- networks

def readout(rng, n_in: int, n: int, *, k: int = 2, w_max: int = 60, fb: int = -40,
            bias: int = 10, prng_seed: int = 1234, lut=None) -> StochasticReadoutLayer:
    """K alpha responses (decays differ per basis), feedback ``fb``, random biases."""
    table, shift, offset = sigmoid_lut(state_scale=STATE_SCALE)
    return StochasticReadoutLayer(
        name="readout", weight=2 * rng.integers(-w_max, w_max + 1, (k * n, n_in)),
        i_decay=(1024, 2048, 4096)[:k], v_decay=(256, 512, 0)[:k], fb_decay=1024,
        fb_weight=np.full(n, fb), bias=rng.integers(-bias, bias + 1, n),
        lut=table if lut is None else lut, lut_shift=shift, lut_offset=offset, seed=prng_seed)


def hidden_and_readout(seed: int = 0, **kwargs) -> FixedPointNetwork:
    rng = np.random.default_rng(seed)
    hidden = (DenseLayer("h0", 2 * rng.integers(-50, 60, (16, 20)), CubaNeuron(1024, 256, 80),
                         bias=rng.integers(-20, 40, 16)),
              DenseLayer("h1", 2 * rng.integers(-50, 60, (12, 16)), CubaNeuron(4096, 410, 60)))
    return FixedPointNetwork(hidden + (readout(rng, 12, 6, **kwargs),),
                             InputSpec("spikes", T, (20,)))


def readout_only(seed: int = 0, **kwargs) -> FixedPointNetwork:
    rng = np.random.default_rng(seed)
    return FixedPointNetwork((readout(rng, 10, 5, **kwargs),), InputSpec("spikes", T, (10,)))


def inputs(net: FixedPointNetwork, batch: int, seed: int = 7, rate: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((batch, net.in_features, T)) < rate).astype(np.uint8)


# --------------------------------------------------------------------------- exactness

def test_readout_only_network_equals_numpy(no_leftover_children):
    net = readout_only(k=2)
    x = inputs(net, batch=3)
    want = readout_reference(net.layers[0], x)
    assert 0 < want.sum() < want.size
    result = run_lava(net, x, probe=True)
    np.testing.assert_array_equal(result.spikes, want)
    np.testing.assert_array_equal(result.layers[0], want)
    assert result.stats["steps"] == 3 * T + 1


def test_hidden_layers_and_readout_equal_numpy_every_layer(no_leftover_children):
    net = hidden_and_readout()
    x = inputs(net, batch=4)
    want = network_reference(net, x)
    assert all(0 < w.sum() < w.size for w in want), "degenerate test network"
    result = run_lava(net, x, probe=True)
    assert result.stats["runs"] == 1 and result.stats["gap"] == 0
    assert result.stats["steps"] == 4 * T + net.latency
    for i, (got, w) in enumerate(zip(result.layers, want, strict=True)):
        np.testing.assert_array_equal(got, w, err_msg=f"layer {i}")
    np.testing.assert_array_equal(result.spikes, want[-1])


def test_reference_backend_equals_lava():
    from spikecodec.deploy.backends import run

    net = hidden_and_readout(seed=3)
    x = inputs(net, batch=3, seed=5)
    lava = run(net, x, backend="lava-sim", probe=True)
    ours = run(net, x, backend="reference", probe=True)
    for i, (a, b) in enumerate(zip(ours.layers, lava.layers, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"layer {i}")
    chunked = run(net, x, backend="reference", batch_size=2)
    np.testing.assert_array_equal(chunked.spikes, lava.spikes)


def test_chunks_and_gaps_draw_the_same_spikes(no_leftover_children):
    net = hidden_and_readout(seed=1)
    x = inputs(net, batch=5, seed=9)
    whole = run_lava(net, x)
    np.testing.assert_array_equal(whole.spikes, network_reference(net, x)[-1])
    parts = run_lava(net, x, chunk=2, gap=3)
    assert parts.stats["runs"] == 3
    np.testing.assert_array_equal(parts.spikes, whole.spikes)


def test_stream_alignment_of_the_readout(no_leftover_children):
    """Relay layers and a deterministic readout that remembers (no current decay; P(spike) = 1
    iff m > 0): it fires from a sample's first input spike to the sample's end, so its state
    must be zeroed exactly at each sample's step 0 -- one step early or late changes the last
    or the first step of a sample. The readout integrates sample k, step t at 0-based Lava step
    k P + t + i + 1 (i: its layer index), as lava_sim's ``offset = i + 1`` says."""
    relay = CubaNeuron(4096, 4096, 10)  # fires exactly when its one input fires
    hidden = tuple(DenseLayer(f"l{i}", np.array([[100]]), relay) for i in range(2))
    table, shift, offset = sigmoid_lut(state_scale=STATE_SCALE)
    step = (np.arange(len(table)) > offset).astype(np.int64) * PROB_ONE  # m >= 2^shift fires
    layer = StochasticReadoutLayer(
        name="latch", weight=np.array([[100]]), i_decay=(0,), v_decay=(4096,), fb_decay=0,
        fb_weight=np.array([0]), bias=np.array([0]), lut=step, lut_shift=shift,
        lut_offset=offset, seed=0)
    net = FixedPointNetwork(hidden + (layer,), InputSpec("spikes", 5, (1,)))
    x = np.zeros((4, 1, 5), dtype=np.uint8)
    x[0, 0, 0] = x[2, 0, 2] = x[3, 0, 4] = 1  # sample 1 silent: a late reset would show there
    result = run_lava(net, x, probe=True)
    for got in result.layers[:-1]:
        np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(result.spikes, np.maximum.accumulate(x, axis=2))
    np.testing.assert_array_equal(result.spikes, network_reference(net, x)[-1])


@pytest.mark.parametrize("tag", ["fixed_pt", "floating_pt"])
def test_process_under_both_tags(tag, no_leftover_children):
    """RingBuffer -> StochasticReadout -> RingBuffer: zeros before ``offset``, then samples
    ``first_sample, first_sample + 1, ...`` every ``period`` steps, each from zero state."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    from spikecodec.lava_procs.stochastic_readout.process import StochasticReadout

    n, k, period, offset, first, count = 4, 2, 7, 3, 5, 3
    total = offset + count * period
    rng = np.random.default_rng(2)
    a = rng.integers(-400, 400, (total, k * n))  # the Dense's output, one row per Lava step
    layer = readout(rng, 1, n, k=k, fb=-60, bias=30, prng_seed=99)
    p = layer.params(np.asarray)
    proc = StochasticReadout(
        shape=(n,), num_basis=k, du=p.du, dv=p.dv, fb_decay=p.dg, fb_weight=layer.fb_weight,
        bias=layer.bias, lut=p.lut, lut_shift=p.lut_shift, lut_offset=p.lut_offset,
        seed=p.seed, period=period, offset=offset, first_sample=first)
    source, sink = Source(data=a.T.astype(float)), Sink(shape=(n,), buffer=total)
    source.s_out.connect(proc.a_in)
    proc.s_out.connect(sink.a_in)
    try:
        proc.run(condition=RunSteps(num_steps=total), run_cfg=Loihi2SimCfg(select_tag=tag))
        got = sink.data.get().T
    finally:
        proc.stop()
    want = np.zeros((total, n))
    for s in range(count):
        state = zero_state(np.zeros(n, dtype=np.int64), k)
        skey = sample_key(p.seed, first + s)
        for t in range(period):
            j = offset + s * period + t
            state, _, spikes = readout_step(state, a[j] << STATE_EXP, p,
                                            keys=(skey, neuron_step_key(np.arange(n), t)))
            want[j] = spikes
    assert 0 < want.sum() < want[offset:].size
    np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- randomness

def test_same_seed_same_spikes_other_seed_other_spikes(no_leftover_children):
    x = inputs(readout_only(), batch=2, seed=4)
    first = run_lava(readout_only(prng_seed=77), x).spikes
    again = run_lava(readout_only(prng_seed=77), x).spikes
    other_net = readout_only(prng_seed=78)
    other = run_lava(other_net, x).spikes
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    np.testing.assert_array_equal(other, readout_reference(other_net.layers[0], x))


@pytest.mark.parametrize("table", ["sigmoid", "flat"])
def test_firing_rate_matches_the_table(table, no_leftover_children):
    """Zero weights and no bias/feedback: m = 0 every step, so each draw fires with probability
    lut[bin(0)] / 2^16 (about 1/2 for the sigmoid table; 0.2 for a flat one). 2 x 50 x 200
    draws: the rate must lie within 4 standard errors."""
    lut = None if table == "sigmoid" else np.full(64, round(0.2 * PROB_ONE))
    layer = readout(np.random.default_rng(0), 3, 50, k=1, w_max=0, fb=0, bias=0, lut=lut)
    net = FixedPointNetwork((layer,), InputSpec("spikes", 200, (3,)))
    x = (np.random.default_rng(1).random((2, 3, 200)) < 0.5).astype(np.uint8)
    spikes = run_lava(net, x).spikes
    index = np.clip(layer.lut_offset, 0, len(layer.lut) - 1)  # bin of m = 0
    p = layer.lut[index] / PROB_ONE
    assert 0.15 < p < 0.55
    stderr = np.sqrt(p * (1 - p) / spikes.size)
    assert abs(spikes.mean() - p) < 4 * stderr
    np.testing.assert_array_equal(spikes, readout_reference(layer, x))


# --------------------------------------------------------------------------- errors

def test_loihi2_target_refuses_the_readout(monkeypatch):
    net = readout_only()
    x = inputs(net, batch=1)
    try:
        import lava.proc.embedded_io.spike  # noqa: F401
    except ImportError:
        with pytest.raises(BackendUnavailableError, match="lava-loihi"):
            run_lava(net, x, target="loihi2")
    monkeypatch.setattr(lava_sim, "_require_loihi2", lambda: None)  # as if lava-loihi were here
    with pytest.raises(BackendUnavailableError, match="microcoded neuron") as err:
        run_lava(net, x, target="loihi2")
    assert "NcProcessModel" in str(err.value) and "lava-sim" in str(err.value)


@pytest.mark.parametrize("field, value, match", [
    ("shape", (3, 2), "shape"), ("num_basis", 0, "num_basis"), ("du", (1024,), "du"),
    ("dv", (4097, 0), "dv"), ("fb_decay", -1, "fb_decay"), ("fb_weight", [1, 2], "fb_weight"),
    ("bias", 2.5, "bias"), ("lut", [70000, 0], "lut"), ("lut", [1], "lut"),
    ("lut_shift", 32, "lut_shift"), ("seed", 2**32, "seed"), ("seed", True, "seed"),
    ("period", 0, "period"), ("offset", -1, "offset"), ("first_sample", 1.0, "first_sample"),
    ("num_taps", 0, "num_taps"), ("row_delay", 63, "row_delay"), ("row_delay", [1, 2], "row_delay"),
])
def test_process_arguments_are_validated(field, value, match):
    from spikecodec.lava_procs.stochastic_readout.process import StochasticReadout

    kwargs = dict(shape=(3,), num_basis=2, du=(1024, 4096), dv=(0, 256), fb_decay=100,
                  fb_weight=-3, bias=[1, 2, 3], lut=[0, 65536], lut_shift=6, lut_offset=1,
                  seed=5, period=10, offset=2, first_sample=0)
    StochasticReadout(**kwargs)  # valid as given
    kwargs[field] = value
    with pytest.raises(ValueError, match=match):
        StochasticReadout(**kwargs)


@pytest.mark.parametrize("make", [readout_only, hidden_and_readout])
def test_runtime_stopped_and_files_removed_on_failure(make, monkeypatch, no_leftover_children):
    """Fail after the runtime has started and run a few steps: nothing may survive the call."""
    real_advance = lava_sim._advance
    seen = {}

    def advance_then_fail(root, total, cfg, show_progress):
        real_advance(root, 3, cfg, show_progress)
        seen["children"] = len(multiprocessing.active_children())
        path = getattr(root, "filename", None) or root.proc_params["path"]
        seen["workdir"] = Path(path).parent
        raise RuntimeError("boom")

    monkeypatch.setattr(lava_sim, "_advance", advance_then_fail)
    net = make()
    with pytest.raises(RuntimeError, match="boom"):
        run_lava(net, inputs(net, batch=2))
    assert seen["children"] > 0  # the runtime was really up
    assert not seen["workdir"].exists()

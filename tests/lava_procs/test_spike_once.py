"""The spike-once alpha step (numpy == torch, the alpha kernel on the grid, one spike per sample)
and the two Lava processes against it (the pulse source's timing, per-sample resets)."""
import math

import numpy as np
import pytest
import torch

from spikecodec.lava_procs.cuba import CubaState, cuba_step
from spikecodec.lava_procs.pulse.dynamics import pulse_spikes
from spikecodec.lava_procs.spike_once import SpikeOnceState, spike_once_params, spike_once_step


def _run(a: np.ndarray, decay: int, vth: int, xp=np):
    """Step ``a (T, B, n)`` state units from zero; spikes ``(T, B, n)`` and voltages."""
    p = spike_once_params(decay, vth)
    zeros = np.zeros(a.shape[1:], dtype=np.int64) if xp is np else torch.zeros(a.shape[1:],
                                                                              dtype=torch.int64)
    state = SpikeOnceState(zeros, zeros, zeros != 0)
    spikes, volts = [], []
    for t in range(a.shape[0]):
        a_t = a[t] if xp is np else torch.as_tensor(a[t])
        state, s = spike_once_step(state, a_t, p)
        spikes.append(np.asarray(s))
        volts.append(np.asarray(state.v))
    return np.stack(spikes), np.stack(volts)


def test_one_input_draws_the_alpha_kernel_on_the_grid():
    """v[s + j] = (j + 1) q^j a with q = 1 - d / 4096: the continuous alpha potential sampled one
    grid step later (lava_procs/spike_once.py), up to the rounding of the 24-bit state."""
    decay, a0 = 64, 5000 << 6
    a = np.zeros((200, 1, 1), dtype=np.int64)
    a[3] = a0
    _, v = _run(a, decay, vth=1 << 40)  # never fires
    q = 1 - decay / 4096
    j = np.arange(197)
    expected = (j + 1) * q ** j * a0
    assert np.allclose(v[3:, 0, 0], expected, rtol=2e-3, atol=64 * 200)
    assert np.all(v[:3] == 0)
    peak = int(np.argmax(v[:, 0, 0])) - 3  # the alpha peak, at t = 1/K: j + 1 = -1 / ln q
    assert abs((peak + 1) - (-1 / math.log(q))) <= 1


def test_fires_once_where_a_cuba_neuron_first_fires_and_numpy_equals_torch():
    rng = np.random.default_rng(0)
    a = (rng.integers(-200, 400, (40, 7, 9)) << 6).astype(np.int64)
    spikes, _ = _run(a, 256, 20000 << 6)
    spikes_t, _ = _run(a, 256, 20000 << 6, xp=torch)
    assert np.array_equal(spikes, spikes_t)
    assert spikes.sum(axis=0).max() == 1 and spikes.sum() > 10  # once, and many did
    p = spike_once_params(256, 20000 << 6)
    state, cuba_spikes = CubaState(np.zeros((7, 9), np.int64), np.zeros((7, 9), np.int64)), []
    for t in range(40):
        state, _, s = cuba_step(state, a[t], p, bounded=True)
        cuba_spikes.append(s)
    cuba_spikes = np.stack(cuba_spikes)
    fired = cuba_spikes.any(axis=0)
    assert np.array_equal(spikes.any(axis=0), fired)
    assert np.array_equal(spikes.argmax(axis=0)[fired], cuba_spikes.argmax(axis=0)[fired])
    assert (cuba_spikes.sum(axis=0) > 1).any()  # the plain CUBA neuron does fire again


def test_pulses_fire_on_their_steps_only():
    steps = np.array([0, 3, 3, 7])
    fired = np.stack([pulse_spikes(steps, t) for t in range(10)])
    assert fired.sum(axis=0).tolist() == [1, 1, 1, 1]
    assert [int(np.argmax(fired[:, p])) for p in range(4)] == [0, 3, 3, 7]
    assert torch.equal(pulse_spikes(torch.as_tensor(steps), 3), torch.tensor([0, 1, 1, 0]) == 1)


@pytest.mark.lava
@pytest.mark.parametrize("gap", [0, 2])
def test_pulses_alone_drive_the_layer_in_lava_as_in_the_reference(gap, no_leftover_children):
    """No input spikes at all: every output spike comes from the pulses, in every sample of a
    stream (so the pulse source's one-step lead and the per-sample resets are right)."""
    from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
    from spikecodec.deploy.layers import SpikeOnceAlphaLayer

    from conftest import run_both

    layer = SpikeOnceAlphaLayer("alpha", np.full((4, 3), 2), 512, 300, np.array([1, 4]),
                                np.array([[100, 0], [60, 60], [-40, 120], [30, 10]]), 2)
    net = FixedPointNetwork([layer], InputSpec("spikes", 12, (3,)))
    x = np.zeros((3, 3, 12), dtype=np.uint8)
    reference, lava = run_both(net, x, gap=gap, chunk=2)
    assert np.array_equal(reference.spikes, lava.spikes)
    assert reference.spikes.sum() >= 3 * 3 and reference.spikes.sum(axis=2).max() == 1
    assert np.array_equal(reference.spikes[0], reference.spikes[2])  # same in every sample
    assert reference.spikes[:, :, :1].sum() == 0  # nothing before the first pulse
    assert reference.spikes[:, 0, 1].all()  # 100 << 2 > 300 at once: the step of the pulse


@pytest.mark.lava
@pytest.mark.parametrize("tag", ["fixed_pt", "floating_pt"])
def test_both_processes_under_both_tags(tag, no_leftover_children):
    """RingBuffer -> SpikeOnceAlpha <- PulseSource (direct, unit weight rows), RingBuffers out:
    zeros before ``offset``, then each ``period`` a sample from zero state, as the step says."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    from spikecodec.lava_procs.pulse.process import PulseSource
    from spikecodec.lava_procs.spike_once_alpha.process import SpikeOnceAlpha

    n, period, offset, count, decay, vth = 5, 9, 2, 3, 700, 400
    total = offset + count * period
    rng = np.random.default_rng(4)
    a = rng.integers(-150, 300, (total, n))  # what a Dense would send, one row per Lava step
    neuron = SpikeOnceAlpha(shape=(n,), decay=decay, vth=vth, period=period, offset=offset)
    pulses = PulseSource(steps=[0, 4, 8], period=period, offset=offset)
    source, out = Source(data=a.T.astype(float)), Sink(shape=(n,), buffer=total)
    pulse_out = Sink(shape=(3,), buffer=total)
    source.s_out.connect(neuron.a_in)
    neuron.s_out.connect(out.a_in)
    pulses.s_out.connect(pulse_out.a_in)
    try:
        cfg = Loihi2SimCfg(select_tag=tag)
        neuron.run(condition=RunSteps(num_steps=total), run_cfg=cfg)
        pulses.run(condition=RunSteps(num_steps=total), run_cfg=cfg)
        got, got_pulses = out.data.get().T, pulse_out.data.get().T
    finally:
        neuron.stop()
        pulses.stop()
    want = np.zeros((total, n))
    p = spike_once_params(decay, vth << 6)
    for s in range(count):
        zeros = np.zeros(n, dtype=np.int64)
        state = SpikeOnceState(zeros, zeros, zeros != 0)
        for t in range(period):
            state, spikes = spike_once_step(state, a[offset + s * period + t] << 6, p)
            want[offset + s * period + t] = spikes
    assert 0 < want.sum() <= count * n
    np.testing.assert_array_equal(got, want)
    want_pulses = np.zeros((total, 3))
    for s in range(count):
        for i, step in enumerate([0, 4, 8]):
            want_pulses[offset + s * period + step, i] = 1
    np.testing.assert_array_equal(got_pulses, want_pulses)

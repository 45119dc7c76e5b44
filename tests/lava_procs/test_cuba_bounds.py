"""Lava's bounds in cuba_step: the current's int32 / 24-bit wrap and the voltage saturation.

The oracle is Lava's own ``AbstractPyLifModelFixed.subthr_dynamics`` called directly (on a bare
namespace holding the attributes it reads), not a copy of its formula.
"""
from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from spikecodec.lava_procs.cuba import (
    U_MAX,
    V_MAX,
    CubaParams,
    CubaState,
    clip_voltage,
    cuba_step,
    cuba_step_hits,
    rstz,
    wrap_current,
    wrap_int32,
)

M = 2**23
EDGES = [0, 1, -1, M - 1, M, M + 1, -M + 1, -M, -M - 1, 2 * M, -2 * M, 3 * M, 3 * M + 1,
         -3 * M, -3 * M - 1, 2**31 - 2**24 - 1, -(2**31) + 2**24]


def lava_lif_step(u, v, a_in, *, du: int, dv: int, vth: int, bias):
    """One step of Lava's fixed_pt LIF (lava-nc 0.10) on int32 arrays: u, v, v before reset,
    spikes."""
    from lava.proc.lif.models import AbstractPyLifModelFixed

    model = types.SimpleNamespace(
        u=np.array(u, dtype=np.int32), v=np.array(v, dtype=np.int32), du=du - 1, dv=dv,
        ds_offset=1, dm_offset=0, decay_unity=4096, decay_shift=12, act_shift=6,
        max_uv_val=2**23, effective_bias=np.array(bias, dtype=np.int32) << 6)
    AbstractPyLifModelFixed.subthr_dynamics(model, np.array(a_in, dtype=np.int32))
    v_seen = model.v.astype(np.int64)
    spikes = model.v > (vth << 6)
    model.v[spikes] = 0
    return model.u.astype(np.int64), model.v.astype(np.int64), v_seen, spikes


def ours(u, v, a_in, *, du, dv, vth, bias, xp=np):
    """``cuba_step(bounded=True)`` on int64 arrays of library ``xp`` (numpy or torch)."""
    as_int = (lambda a: np.asarray(a, dtype=np.int64)) if xp is np else \
        (lambda a: torch.as_tensor(np.asarray(a, dtype=np.int64)))
    p = CubaParams(du=du, dv=dv, vth=vth << 6, bias=as_int(bias) << 6)
    state, v_seen, spikes = cuba_step(CubaState(as_int(u), as_int(v)), as_int(a_in) << 6, p,
                                      bounded=True)
    return [np.asarray(t) for t in (state.u, state.v, v_seen, spikes)]


def test_wrap_and_clip_by_hand():
    x = np.array([M, M + 1, -M, -M - 1, -M + 1, 3 * M + 5, -3 * M - 5, 0])
    assert wrap_current(x).tolist() == [M, -M + 1, M, M - 1, -M + 1, M + 5, -M - 5, 0]
    y = np.array([V_MAX, V_MAX + 1, -V_MAX, -V_MAX - 1, 2**31, 5])
    assert clip_voltage(y).tolist() == [V_MAX, V_MAX, -V_MAX, -V_MAX, V_MAX, 5]
    z = np.array([2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**32 + 3])
    assert wrap_int32(z).tolist() == [2**31 - 1, -(2**31), -(2**31), 2**31 - 1, 3]
    assert U_MAX == M and V_MAX == M - 1


@pytest.mark.lava
@pytest.mark.parametrize("du", [0, 1, 1024, 4096])  # 0: no decay, so u[t-1] reaches the wrap
def test_current_wrap_equals_lava_at_the_edges(du):
    u = np.repeat(EDGES, 7)
    a_in = np.tile([0, 1, -1, 2**17, -(2**17), 2**25 + 3, -(2**25) - 3], len(EDGES))
    v = np.zeros_like(u)
    expected = lava_lif_step(u, v, a_in, du=du, dv=4096, vth=2**17 - 1, bias=0)
    for got, want in zip(ours(u, v, a_in, du=du, dv=4096, vth=2**17 - 1, bias=0), expected,
                         strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.lava
@pytest.mark.parametrize("dv", [0, 5, 4096])
def test_voltage_clip_equals_lava_at_the_edges(dv):
    v = np.repeat([0, V_MAX, -V_MAX, V_MAX - 1, 1000], 9)
    u = np.tile([0, 1, -1, M, -M, 2**31 - 2**24 - 1, -(2**31) + 2**24, 64, -64], 5)
    bias = np.tile([0, 4095, -4096], 15)
    expected = lava_lif_step(u, v, 0, du=0, dv=dv, vth=2**17 - 1, bias=bias)
    for got, want in zip(ours(u, v, np.zeros_like(u), du=0, dv=dv, vth=2**17 - 1, bias=bias),
                         expected, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.lava
@pytest.mark.parametrize("seed", range(4))
def test_random_trajectories_equal_lava(seed):
    """Many steps of random drive, big enough to wrap and clip, from Lava's own step."""
    rng = np.random.default_rng(seed)
    n = 64
    du, dv = int(rng.integers(0, 4097)), int(rng.integers(0, 4097))
    vth = int(rng.integers(1, 2**17))
    bias = rng.integers(-4096, 4096, n)
    u = v = np.zeros(n, dtype=np.int64)
    ou = ov = np.zeros(n, dtype=np.int64)
    for _ in range(40):
        a_in = rng.integers(-(2**20), 2**20, n) * rng.choice([0, 1, 64], n)
        u, v, v_seen, spikes = lava_lif_step(u, v, a_in, du=du, dv=dv, vth=vth, bias=bias)
        ou, ov, our_v_seen, our_spikes = ours(ou, ov, a_in, du=du, dv=dv, vth=vth, bias=bias)
        np.testing.assert_array_equal(ou, u)
        np.testing.assert_array_equal(ov, v)
        np.testing.assert_array_equal(our_v_seen, v_seen)
        np.testing.assert_array_equal(our_spikes, spikes)


def plain_loop(a, *, du, dv, vth, bias):
    """The unbounded dynamics on Python ints (the equations of the module docstring)."""
    def rstz(x, keep):
        return (abs(x) * keep >> 12) * (1 if x >= 0 else -1)

    u = v = 0
    out = []
    for a_t in a:
        u = rstz(u, 4096 - du) + a_t
        v = rstz(v, 4096 - dv) + u + bias
        out.append((u, v, v > vth))
        if v > vth:
            v = 0
    return out


@pytest.mark.parametrize("du,dv", [(4096, 410), (1024, 128), (0, 0), (7, 4096)])
def test_unbounded_step_is_the_plain_equations(du, dv):
    rng = np.random.default_rng(du + dv)
    a = rng.integers(-(2**26), 2**26, (30, 8))  # far beyond 24 bits: nothing wraps
    bias = rng.integers(-(2**18), 2**18, 8)
    p = CubaParams(du=du, dv=dv, vth=2**22, bias=bias)
    state = CubaState(np.zeros(8, np.int64), np.zeros(8, np.int64))
    got = []
    for t in range(30):
        state, v, spikes = cuba_step(state, a[t], p)
        got.append((state.u, v, spikes))
    for j in range(8):
        want = plain_loop(a[:, j].tolist(), du=du, dv=dv, vth=2**22, bias=int(bias[j]))
        assert [(int(u[j]), int(v[j]), bool(s[j])) for u, v, s in got] == want


@pytest.mark.parametrize("bounded", [False, True])
def test_torch_equals_numpy(bounded):
    rng = np.random.default_rng(3)
    a = rng.integers(-(2**25), 2**25, (25, 4, 16))
    bias = rng.integers(-(2**18), 2**18, 16)
    runs = []
    for xp in (np, torch):
        conv = (lambda x: x) if xp is np else torch.from_numpy
        p = CubaParams(du=300, dv=20, vth=2**21, bias=conv(bias))
        state = CubaState(conv(np.zeros((4, 16), np.int64)), conv(np.zeros((4, 16), np.int64)))
        trace = []
        for t in range(25):
            state, v, spikes = cuba_step(state, conv(a[t]), p, bounded=bounded)
            trace.append([np.asarray(x) for x in (state.u, state.v, v, spikes)])
        runs.append(trace)
    for ours_np, ours_torch in zip(*runs, strict=True):
        for x, y in zip(ours_np, ours_torch, strict=True):
            np.testing.assert_array_equal(x, y)


def test_bounded_equals_unbounded_inside_the_bounds():
    rng = np.random.default_rng(4)
    p = CubaParams(du=4096, dv=410, vth=300 << 6, bias=5 << 6)
    s1 = s2 = CubaState(np.zeros(50, np.int64), np.zeros(50, np.int64))
    for _ in range(30):
        a = rng.integers(-5000, 5000, 50) << 6
        s1, v1, k1 = cuba_step(s1, a, p)
        s2, v2, k2, hits = cuba_step_hits(s2, a, p)
        assert not hits.u_wrapped.any() and not hits.v_clipped.any()
        for x, y in zip((*s1, v1, k1), (*s2, v2, k2), strict=True):
            np.testing.assert_array_equal(x, y)


def test_hits_mark_where_the_bounds_changed_the_state():
    state = CubaState(np.zeros(4, np.int64), np.array([0, V_MAX, 0, 0]))
    a = np.array([M + 64, 64, -M - 64, 2**31 + 64])
    p = CubaParams(du=4096, dv=0, vth=2**23 - 64)
    _, v, _, hits = cuba_step_hits(state, a, p)
    assert hits.u_wrapped.tolist() == [True, False, True, True]
    assert hits.v_clipped.tolist() == [False, True, False, True]
    assert v.tolist() == [-M + 64, V_MAX, M - 64, -V_MAX]


@pytest.mark.parametrize("bias", [0.5, True, np.array([1.0]), "1"])
def test_params_reject_non_integer_bias(bias):
    with pytest.raises(ValueError, match="bias"):
        CubaParams(du=1, dv=1, vth=1, bias=bias)


INT32_EDGES = [0, 1, -1, 4095, -4095, 4096, -4096, 4097, -4097, M - 1, -(M - 1), M, -M, M + 1,
               -M - 1, 2**31 - 1, -(2**31) + 1, -(2**31)]
DECAYS = [0, 1, 410, 4095, 4096]


@pytest.mark.parametrize("xp", [np, torch])
@pytest.mark.parametrize("decay", DECAYS)
def test_rstz_int32_through_float64_equals_int64(xp, decay):
    rng = np.random.default_rng(decay)
    x = np.concatenate([INT32_EDGES, rng.integers(-(2**31), 2**31, 5000),
                        rng.integers(-(2**24), 2**24, 5000)]).astype(np.int64)
    conv = (lambda a: a) if xp is np else torch.from_numpy
    exact = np.asarray(rstz(conv(x), 4096 - decay))
    fast = rstz(conv(x.astype(np.int32)), 4096 - decay)
    assert str(fast.dtype).endswith("int32")
    np.testing.assert_array_equal(np.asarray(fast).astype(np.int64), exact)
    want = [(abs(int(v)) * (4096 - decay) >> 12) * (1 if v >= 0 else -1) for v in x[:40]]
    assert exact[:40].tolist() == want  # and the int64 path is the definition


@pytest.mark.parametrize("xp", [np, torch])
@pytest.mark.parametrize("du", DECAYS)
@pytest.mark.parametrize("dv", DECAYS)
def test_int32_state_equals_int64_state(xp, du, dv):
    """Random drive up to 2^21 (so |u| passes 2^23 when the current does not decay), negative
    values and a per-neuron bias: 20 steps stay below 2^31, and int32 must equal int64."""
    rng = np.random.default_rng(100 * du + dv)
    n, steps = 64, 20
    a = rng.integers(-(2**21), 2**21, (steps, n)) * rng.choice([0, 1], (steps, n), p=[0.3, 0.7])
    bias = rng.integers(-(2**18), 2**18, n)
    traces = []
    for dtype in (np.int64, np.int32):
        conv = (lambda v, dtype=dtype: v.astype(dtype)) if xp is np else \
            (lambda v, dtype=dtype: torch.from_numpy(v.astype(dtype)))
        p = CubaParams(du=du, dv=dv, vth=2**22, bias=conv(bias))
        state = CubaState(conv(np.zeros(n)), conv(np.zeros(n)))
        trace = []
        for t in range(steps):
            state, v, spikes = cuba_step(state, conv(a[t]), p)
            trace.append([np.asarray(q).astype(np.int64) for q in (state.u, state.v, v, spikes)])
        assert str(state.v.dtype).endswith("int32") == (dtype is np.int32)
        traces.append(trace)
    for exact, fast in zip(*traces, strict=True):
        for x, y in zip(exact, fast, strict=True):
            np.testing.assert_array_equal(x, y)
    if du == 0:
        assert max(np.abs(step[0]).max() for step in traces[0]) > M  # beyond 24 bits


@pytest.mark.parametrize("xp", [np, torch])
@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_voltage_false_resets_in_place_to_the_same_state(xp, dtype):
    rng = np.random.default_rng(7)
    conv = (lambda v: v.astype(dtype)) if xp is np else \
        (lambda v: torch.from_numpy(v.astype(dtype)))
    p = CubaParams(du=1024, dv=410, vth=2**16, bias=conv(rng.integers(-999, 999, 32)))
    s1 = s2 = CubaState(conv(np.zeros(32)), conv(np.zeros(32)))
    fired = 0
    for _ in range(25):
        a = conv(rng.integers(-(2**16), 2**17, 32))
        s1, v1, k1 = cuba_step(s1, a, p)
        s2, v2, k2 = cuba_step(s2, a, p, voltage=False)
        assert v2 is None
        for x, y in zip((*s1, k1), (*s2, k2), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        fired += int(k1.sum())
    assert fired > 0


def test_bounded_step_refuses_int32_state():
    state = CubaState(np.zeros(3, np.int32), np.zeros(3, np.int32))
    with pytest.raises(TypeError, match="int64"):
        cuba_step(state, np.zeros(3, np.int32), CubaParams(du=1, dv=1, vth=1), bounded=True)

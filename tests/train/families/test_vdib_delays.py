"""VDIB delay-basis readout synapses (``model.readout.delays``): the FIR equations, the exact
readout eligibility per tap, bit-exact deployment on Lava's DelayDense, and the typed errors."""
import dataclasses

import numpy as np
import pytest
import torch

from spikecodec.deploy.backends import run
from spikecodec.deploy.hdf5 import read_hdf5, write_hdf5
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import DelayReadoutLayer, StochasticReadoutLayer
from spikecodec.errors import ConfigError
from spikecodec.train import config as config_io
from spikecodec.train.families.vdib.config import VDIBConfig
from spikecodec.train.families.vdib.decoders import make_decoder
from spikecodec.train.families.vdib.family import VDIBFamily
from spikecodec.train.families.vdib.learning import Baseline, encoder_objective
from spikecodec.train.families.vdib.model import VDIB, VDIBEncoder, VDIBModelConfig
from spikecodec.train.families.vdib.readout import ReadoutConfig, alpha_traces

T = 16


def _model(delays: int, hidden=(), neurons=5, n_in=8, basis=((0.5, 0.25),), seed=0):
    ro = ReadoutConfig(neurons=neurons, current_decay=tuple(b[0] for b in basis),
                       voltage_decay=tuple(b[1] for b in basis), feedback_init=-0.5,
                       bias_init=-0.5, seed=3, delays=delays)
    cfg = VDIBModelConfig(hidden=hidden, readout=ro, hidden_weight_scale=4.0)
    gen = torch.Generator().manual_seed(seed)
    enc = VDIBEncoder(n_in, cfg, generator=gen)
    dec = make_decoder(arch="linear", input="window", window=3, at="every", output="softmax",
                       out_shape=(2, 4), neurons=neurons, num_steps=T, generator=gen)
    return VDIB(enc, dec)


def _spikes(batch=7, n_in=8, seed=1, rate=0.3):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, n_in, T, generator=g) < rate).float()


def test_zero_and_one_delay_keep_the_plain_readout():
    """delays = 0 is today's readout; delays = 1 (one tap, delay 0) draws the same weights and
    spikes, and exports as a delay_readout whose delays are all 0."""
    x = _spikes()
    plain, one = _model(0), _model(1)
    assert torch.equal(plain.encoder.readout.weight, one.encoder.readout.weight)
    for mode in ("float", "quantized"):
        a = plain.encoder(x, mode=mode, generator=torch.Generator().manual_seed(0))
        b = one.encoder(x, mode=mode, generator=torch.Generator().manual_seed(0))
        assert torch.equal(a.readout.spikes, b.readout.spikes)
    spec = InputSpec("spikes", T, (8,))
    assert type(VDIBFamily().to_network(plain, spec).layers[-1]) is StochasticReadoutLayer
    layer = VDIBFamily().to_network(one, spec).layers[-1]
    assert isinstance(layer, DelayReadoutLayer) and not layer.delay.any()


def test_float_membrane_is_the_fir_filter_of_delayed_traces():
    """m_i[t] = sum_d sum_j w^(d)_ij trace_j[t - d] + feedback + bias, written out by hand."""
    model = _model(3, basis=((0.5, 0.25),))
    ro = model.encoder.readout
    with torch.no_grad():
        ro.feedback.zero_()  # no feedback: m is the synaptic sum plus the bias
    x = _spikes()
    out = model.encoder(x, generator=torch.Generator().manual_seed(0))
    trace = alpha_traces(x.permute(2, 0, 1), 0.5, 0.25)  # (T, B, in)
    w = ro.quantized_weight().detach().view(3, 5, 8)
    expected = torch.zeros(7, 5, T)
    for t in range(T):
        for d in range(3):
            if t >= d:
                expected[:, :, t] += trace[t - d] @ w[d].t()
    expected += ro.quantized_bias().detach()[None, :, None]
    assert torch.allclose(out.readout.membrane.detach(), expected, atol=1e-5)


def test_readout_gradient_is_the_eligibility_of_each_tap():
    """d objective / d w^(d)_ij = mean_b c_b sum_t (y_it - sigma(u_it)) trace_j(t - d)."""
    model = _model(4)
    x = _spikes(batch=5)
    out = model.encoder(x, generator=torch.Generator().manual_seed(3))
    ro = out.readout
    nll = torch.rand(5)
    obj, _, coeff = encoder_objective(ro.spikes, ro.membrane, nll, beta=0.1, prior=0.2,
                                      baseline=Baseline())
    obj.backward()
    err = (ro.spikes - ro.prob.detach()) * coeff[:, None, None]  # (B, N, T)
    trace = ro.traces[0]  # (T, B, in)
    rows = []
    for d in range(4):
        late = torch.cat([torch.zeros_like(trace[:d]), trace[:T - d]])
        rows.append(torch.einsum("bnt,tbj->nj", err, late) / 5)
    assert torch.allclose(model.encoder.readout.weight.grad, torch.cat(rows), atol=1e-5)
    assert model.encoder.readout.weight.grad[3 * 5:].abs().sum() > 0  # the last tap learns


def test_bptt_reaches_the_hidden_layer_through_the_delays():
    model = _model(3, hidden=(10,))
    out = model.encoder(_spikes(rate=0.5), bptt=True, generator=torch.Generator().manual_seed(1))
    out.readout.membrane.sum().backward()
    assert model.encoder.hidden[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("hidden", [(), (12,)])
def test_quantized_mode_equals_reference_equals_lava(hidden, tmp_path, no_leftover_children):
    """The torch model's quantized mode, the reference engine and the Lava simulator (DelayDense
    into the readout process) draw the same spikes, also across sample boundaries with delays in
    flight, chunked and with a gap."""
    from spikecodec.deploy.backends.lava_sim import run_lava

    model = _model(4, hidden=hidden, basis=((0.5, 0.25), (1.0, 0.5)))
    x = _spikes(batch=6, rate=0.4)
    net = VDIBFamily().to_network(model, InputSpec("spikes", T, (8,)))
    net = read_hdf5(write_hdf5(net, tmp_path / "delay.h5"))
    layer = net.layers[-1]
    assert layer.kind == "delay_readout" and layer.num_taps == 4 and layer.max_delay == 3
    q = model.encoder(x, mode="quantized").readout.spikes.numpy().astype(np.uint8)
    ref = run(net, x, batch_size=4).spikes
    assert np.array_equal(q, ref)
    assert 0 < ref.mean() < 1
    lava = run_lava(net, x.numpy().astype(np.uint8), chunk=4, gap=1)
    assert np.array_equal(lava.spikes, ref)
    rebuilt = VDIBFamily().rebuild(net)
    assert np.array_equal(rebuilt.encoder(x, mode="quantized").readout.spikes.numpy(), q)


def test_delays_change_the_deployed_spikes():
    """The delays are not decoration: the same weights with every delay 0 draw other spikes."""
    model = _model(4)
    x = _spikes(batch=6, rate=0.4)
    net = VDIBFamily().to_network(model, InputSpec("spikes", T, (8,)))
    layer = net.layers[-1]
    flat = dataclasses.replace(layer, delay=np.zeros_like(layer.delay))
    same = run(FixedPointNetwork([flat], net.input), x).spikes
    assert not np.array_equal(same, run(net, x).spikes)


@pytest.mark.parametrize("value", [-1, 64, 2.5, True, "3"])
def test_delays_out_of_range_are_config_errors(value):
    with pytest.raises(ConfigError, match="readout.delays must be an integer in"):
        ReadoutConfig(delays=value)


def test_the_config_key_is_model_readout_delays():
    cfg = config_io.apply_overrides(VDIBConfig(), ["model.readout.delays=6"])
    assert cfg.model.readout.delays == 6 and cfg.model.readout.num_taps == 6
    with pytest.raises(ConfigError, match="readout.delays"):
        config_io.apply_overrides(VDIBConfig(), ["model.readout.delays=100"])


def test_rebuild_refuses_delays_that_are_not_the_trained_taps(tmp_path):
    model = _model(3)
    net = VDIBFamily().to_network(model, InputSpec("spikes", T, (8,)))
    layer = net.layers[-1]
    edited = dataclasses.replace(layer, delay=layer.delay[::-1].copy())
    bad = FixedPointNetwork([edited], net.input, decoder=net.decoder, metadata=net.metadata)
    with pytest.raises(ConfigError, match="synaptic delays differ"):
        VDIBFamily().rebuild(bad)


def test_eprop_hidden_rule_is_unchanged_by_the_delays():
    """Hidden weights: sum_t c L_kt psi_kt trace_j(t), L = B (y - sigma(u)) -- the readout's
    delays enter only through the readout errors."""
    from spikecodec.train.families.vdib.learning import EPropDFA

    model = _model(3, hidden=(12,))
    x = _spikes(batch=4, rate=0.5)
    out = model.encoder(x, generator=torch.Generator().manual_seed(3))
    assert out.hidden[0].sum() > 0
    dfa = EPropDFA([12], 5, generator=torch.Generator().manual_seed(1))
    coeff = torch.tensor([1.0, -2.0, 0.5, 3.0])
    dfa.objective(model.encoder, out, coeff).backward()
    block = model.encoder.hidden[0]
    signal = (out.readout.spikes - out.readout.prob.detach()).permute(2, 0, 1) @ dfa.feedback0.t()
    sig = torch.sigmoid(block.neuron.surrogate_slope
                        * (out.voltages[0] - block.neuron.v_th_mant / block.neuron.scale))
    psi = block.neuron.surrogate_slope * sig * (1 - sig)
    trace = alpha_traces(out.inputs[0], block.neuron.current_decay, block.neuron.voltage_decay)
    expected = torch.einsum("tbh,tbj->hj", coeff[None, :, None] * signal * psi, trace) / 4
    assert expected.abs().sum() > 0
    assert torch.allclose(block.weight.grad, expected, atol=1e-5)


def test_float_and_quantized_modes_delay_the_same_taps():
    """Training (float) and deployment (quantized) apply tap d with the same delay: their
    membranes agree to the fixed-point rounding until the first spike (the draws differ), and
    would not if one of them put the delays on other taps."""
    model = _model(4, basis=((0.5, 0.25), (1.0, 0.5)))
    x = _spikes(rate=0.4)
    f = model.encoder(x, mode="float", generator=torch.Generator().manual_seed(0)).readout
    q = model.encoder(x, mode="quantized").readout
    quiet = (f.spikes.cumsum(2) == 0) & (q.spikes.cumsum(2) == 0)
    diff = (f.membrane - q.membrane).abs()[quiet]
    assert diff.numel() > 20 and diff.max() < 0.05
    with torch.no_grad():  # the same weights with the taps reversed: clearly different
        w = model.encoder.readout.weight
        w.copy_(w.view(4, -1, 8).flip(0).reshape_as(w))
    r = model.encoder(x, mode="quantized").readout
    assert (f.membrane - r.membrane).abs()[quiet].max() > 0.2

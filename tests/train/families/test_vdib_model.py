"""VDIB model: float and quantized readout, the learning rule's gradients, decoders, export."""
import h5py
import numpy as np
import pytest
import torch

from spikecodec.deploy.backends import run
from spikecodec.deploy.decoders import decode
from spikecodec.deploy.hdf5 import read_hdf5, write_hdf5
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import StochasticReadoutLayer
from spikecodec.errors import ConfigError, ExportError, InputError
from spikecodec.train import config as config_io
from spikecodec.train.families.vdib.config import VDIBConfig, VDIBTrainConfig
from spikecodec.train.families.vdib.decoders import ANNDecoder, make_decoder
from spikecodec.train.families.vdib.family import VDIBFamily
from spikecodec.train.families.vdib.learning import (
    Baseline,
    EPropDFA,
    decoder_nll,
    encoder_objective,
    log_prior,
    log_prior_steps,
    log_q,
    log_q_steps,
)
from spikecodec.train.families.vdib.model import VDIB, VDIBEncoder, VDIBModelConfig
from spikecodec.train.families.vdib.readout import ReadoutConfig

T = 20


def _model(hidden=(12,), basis=((0.5, 0.25), (1.0, 0.5)), neurons=6, n_in=10, seed=0):
    ro = ReadoutConfig(neurons=neurons, current_decay=tuple(b[0] for b in basis),
                       voltage_decay=tuple(b[1] for b in basis), feedback_init=-0.8,
                       bias_init=-0.5, seed=7)
    cfg = VDIBModelConfig(hidden=hidden, readout=ro, hidden_weight_scale=4.0)
    gen = torch.Generator().manual_seed(seed)
    enc = VDIBEncoder(n_in, cfg, generator=gen)
    dec = make_decoder(arch="mlp", input="window", window=5, at="last", output="sigmoid",
                       out_shape=(n_in,), neurons=neurons, hidden=(8,), num_steps=T,
                       generator=gen)
    return VDIB(enc, dec)


def _spikes(batch=9, n_in=10, seed=1, rate=0.3):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, n_in, T, generator=g) < rate).float()


def test_float_and_quantized_readout_are_the_same_equations():
    model = _model()
    x = _spikes()
    f = model.encoder(x, mode="float", generator=torch.Generator().manual_seed(0))
    q = model.encoder(x, mode="quantized")
    # same hidden spikes (integer CUBA in both); readout potentials equal up to the fixed-point
    # decay rounding, except where the feedback differs because the draws differ
    for a, b in zip(f.hidden, q.hidden, strict=True):
        assert torch.equal(a, b)
    no_spike_yet = (f.readout.spikes.cumsum(2) == 0) & (q.readout.spikes.cumsum(2) == 0)
    diff = (f.readout.membrane - q.readout.membrane).abs()[no_spike_yet]
    assert diff.numel() > 0 and diff.max() < 0.05


def test_quantized_mode_is_bit_exact_with_the_reference_backend(tmp_path):
    model = _model()
    x = _spikes(batch=13)
    net = VDIBFamily().to_network(model, InputSpec("spikes", T, (10,)))
    net = read_hdf5(write_hdf5(net, tmp_path / "vdib.h5"))
    assert isinstance(net.layers[-1], StochasticReadoutLayer)
    q = model.encoder(x, mode="quantized")
    ref = run(net, x, probe=True, batch_size=4)  # chunking must not change the draws
    assert np.array_equal(q.readout.spikes.numpy().astype(np.uint8), ref.spikes)
    assert np.array_equal(q.hidden[0].permute(1, 2, 0).numpy().astype(np.uint8), ref.layers[0])
    assert 0 < ref.spikes.mean() < 1
    est = model.decoder.estimate(q.readout.spikes).detach().numpy()
    assert np.allclose(decode(net.decoder, ref.spikes, num_steps=T), est, atol=1e-6)
    rebuilt = VDIBFamily().rebuild(net)
    assert torch.equal(rebuilt.encoder(x, mode="quantized").readout.spikes, q.readout.spikes)


def test_readout_seed_changes_the_draws_and_a_sample_offset_is_honoured():
    model = _model()
    x = _spikes(batch=6)
    a = model.encoder(x, mode="quantized").readout.spikes
    b = model.encoder(x, mode="quantized", seed=8).readout.spikes
    assert not torch.equal(a, b)
    tail = model.encoder(x[3:], mode="quantized", first_sample=3).readout.spikes
    assert torch.equal(tail, a[3:])


def test_readout_only_encoder_exports_and_matches():
    model = _model(hidden=())
    x = _spikes()
    net = VDIBFamily().to_network(model, InputSpec("spikes", T, (10,)))
    assert len(net.layers) == 1
    assert np.array_equal(run(net, x).spikes,
                          model.encoder(x, mode="quantized").readout.spikes.numpy())


def test_readout_reinforce_gradient_is_the_eligibility_formula():
    """Readout weights: d objective / dW_k = mean_b c_b sum_t (y - p) trace_k (paper eq.)."""
    model = _model(hidden=())
    x = _spikes(batch=5)
    out = model.encoder(x, generator=torch.Generator().manual_seed(3))
    ro = out.readout
    nll = torch.rand(5)
    obj, _, coeff = encoder_objective(ro.spikes, ro.membrane, nll, beta=0.1, prior=0.2,
                                      baseline=Baseline())
    obj.backward()
    err = (ro.spikes - ro.prob.detach()) * coeff[:, None, None]  # (B, N, T)
    k, n = 2, 6
    expected = torch.cat([torch.einsum("bnt,tbj->nj", err, ro.traces[i]) / 5 for i in range(k)])
    assert expected.shape == (k * n, 10)
    assert torch.allclose(model.encoder.readout.weight.grad, expected, atol=1e-5)


@pytest.mark.parametrize("window,discount", [(1, 1.0), (3, 1.0), (3, 0.5), (3, 0.0)])
def test_per_step_learning_signal_weighs_the_estimates_whose_window_holds_the_step(window,
                                                                                  discount):
    """``l_s = sum_{k<w} discount^k nll_{s+k} + beta log(q_s / r_s)`` (``train.credit_discount``;
    0 keeps the step's own estimate)."""
    model = _model(hidden=())
    x = _spikes(batch=4)
    ro = model.encoder(x, generator=torch.Generator().manual_seed(5)).readout
    nll = torch.rand(4, T)
    _, signal, coeff = encoder_objective(ro.spikes, ro.membrane, nll, beta=0.2, prior=0.3,
                                         baseline=Baseline(), window=window, discount=discount)
    kl = log_q_steps(ro.spikes, ro.membrane) - log_prior_steps(ro.spikes, 0.3)
    weights = torch.tensor([discount ** k for k in range(window)])
    ahead = [nll[:, s:s + window] for s in range(T)]  # shorter near T: no estimates past it
    expected = torch.stack([(a * weights[:a.shape[1]]).sum(1) for a in ahead], 1) + 0.2 * kl
    assert torch.allclose(signal, expected, atol=1e-5)
    assert torch.allclose(coeff, signal - signal.mean(0) + 0.2, atol=1e-5)  # first baseline


@pytest.mark.parametrize("tau_d,same", [(1, True), (3, False)])
def test_discounted_credit_changes_the_readout_gradient_only_with_a_window(tau_d, same):
    """With a one-step decoding window every discount is the same rule (identical gradients);
    with tau_d = 3 discount 0 drops the later estimates' terms."""
    from spikecodec.train.families.vdib.tasks import blobs_task
    from spikecodec.train.families.vdib.training import VDIBTrainer, build_model

    grads = []
    for discount in (1.0, 0.0):
        cfg = config_io.apply_overrides(VDIBConfig(), [
            "data.task=blobs", "data.num_steps=12", "model.hidden=", "model.readout.neurons=4",
            "decoder.arch=linear", f"decoder.window={tau_d}",
            f"train.credit_discount={discount}", "train.batch_size=4"])
        task = blobs_task(train=4, test=1, num_steps=12, delta=1, seed=0)
        model = build_model(cfg, task)
        trainer = VDIBTrainer(model, task, cfg, torch.device("cpu"))
        trainer.optimizer.step = lambda: None  # keep the weights: compare the gradients
        trainer.step(0, 0, torch.arange(4))
        grads.append(model.encoder.readout.weight.grad.clone())
    assert torch.equal(grads[0], grads[1]) is same


def test_eprop_gradient_is_learning_signal_times_eligibility_trace():
    model = _model(hidden=(12,), basis=((0.5, 0.25),))
    x = _spikes(batch=4, rate=0.5)
    out = model.encoder(x, generator=torch.Generator().manual_seed(3))
    assert out.hidden[0].sum() > 0
    dfa = EPropDFA([12], 6, generator=torch.Generator().manual_seed(1))
    coeff = torch.tensor([1.0, -2.0, 0.5, 3.0])
    dfa.objective(model.encoder, out, coeff).backward()
    block = model.encoder.hidden[0]
    err = (out.readout.spikes - out.readout.prob.detach()).permute(2, 0, 1)
    signal = err @ dfa.feedback0.t()  # (T, B, H)
    th = block.neuron.v_th_mant / block.neuron.scale
    sig = torch.sigmoid(block.neuron.surrogate_slope * (out.voltages[0] - th))
    psi = block.neuron.surrogate_slope * sig * (1 - sig)
    from spikecodec.train.families.vdib.readout import alpha_traces
    trace = alpha_traces(out.inputs[0], 0.5, 0.25)
    expected = torch.einsum("tbh,tbj->hj", coeff[None, :, None] * signal * psi, trace) / 4
    assert torch.allclose(block.weight.grad, expected, atol=1e-5)


def test_bptt_reaches_the_hidden_layer_and_eprop_mode_detaches_it():
    model = _model()
    x = _spikes(rate=0.5)
    for bptt in (False, True):
        model.zero_grad()
        out = model.encoder(x, bptt=bptt, generator=torch.Generator().manual_seed(0))
        ro = out.readout
        obj, _, _ = encoder_objective(ro.spikes, ro.membrane, torch.zeros(len(x)), beta=0.5,
                                      prior=0.3, baseline=Baseline())
        obj.backward()
        grad = model.encoder.hidden[0].weight.grad
        assert (grad is not None and grad.abs().sum() > 0) == bptt


def test_log_q_and_prior_are_bernoulli_log_likelihoods():
    """From logits, so a saturated neuron keeps its gradient y - sigmoid(m)."""
    m = torch.tensor([[[30.0]]], requires_grad=True)
    log_q(torch.zeros(1, 1, 1), m).backward()
    assert torch.allclose(m.grad, torch.tensor([[[-1.0]]]))
    y = torch.tensor([[[1.0, 0.0]]])
    m = torch.logit(torch.tensor([[[0.8, 0.3]]]))
    assert torch.allclose(log_q(y, m), torch.log(torch.tensor(0.8 * 0.7)))
    assert torch.allclose(log_prior(y, 0.2), torch.log(torch.tensor(0.2 * 0.8)))


def test_decoder_nll_shapes_must_match():
    with pytest.raises(ConfigError, match="shape"):
        decoder_nll("sigmoid", torch.zeros(2, 3), torch.zeros(2, 4))


@pytest.mark.parametrize("arch,inp", [("linear", "window"), ("mlp", "rate"),
                                      ("conv1d", "window")])
@pytest.mark.parametrize("at", ["last", "every"])
def test_host_decoder_equals_the_trained_module(arch, inp, at):
    dec = make_decoder(arch=arch, input=inp, window=6, at=at, output="softmax",
                       out_shape=(2, 5), neurons=7, hidden=(9,), channels=3, kernel=4,
                       num_steps=T)
    y = _spikes(batch=3, n_in=7)
    with torch.no_grad():
        want = dec.estimate(y).numpy()
    got = decode(dec.export(), y.numpy(), num_steps=T)
    assert got.shape == want.shape and np.allclose(got, want, atol=1e-6)
    again = ANNDecoder.from_export(dec.export())
    with torch.no_grad():
        assert torch.allclose(again.estimate(y), dec.estimate(y))


def test_decoder_configuration_errors():
    with pytest.raises(ConfigError, match="window"):
        make_decoder(arch="mlp", input="window", window=40, at="last", output="sigmoid",
                     out_shape=(4,), neurons=3, num_steps=T)
    with pytest.raises(ConfigError, match="conv1d"):
        make_decoder(arch="conv1d", input="rate", window=5, at="last", output="sigmoid",
                     out_shape=(4,), neurons=3)
    with pytest.raises(ConfigError, match="arch"):
        make_decoder(arch="rnn", input="rate", window=5, at="last", output="sigmoid",
                     out_shape=(4,), neurons=3)


def test_decoding_an_export_without_decoder_says_so():
    with pytest.raises(ExportError, match="no ANN decoder"):
        decode({"kind": "rate"}, np.zeros((1, 3, 4)))
    dec = make_decoder(arch="linear", input="rate", window=4, at="last", output="sigmoid",
                       out_shape=(2,), neurons=3).export()
    del dec["w0"]
    with pytest.raises(ExportError, match="lacks its weights"):
        decode(dec, np.zeros((1, 3, 4)))
    with pytest.raises(InputError, match="readout spikes"):
        decode(make_decoder(arch="linear", input="rate", window=4, at="last",
                            output="sigmoid", out_shape=(2,), neurons=3).export(),
               np.zeros((1, 5, 4)))


@pytest.mark.parametrize("override,match", [
    ("train.prior=1.0", "prior"), ("train.prior=0", "prior"), ("train.beta=-0.1", "beta"),
    ("train.rule=backprop", "rule"), ("train.credit_discount=1.5", "credit_discount"),
    ("train.credit_discount=-0.1", "credit_discount"), ("train.seed=-3", "seed"),
    ("train.seed=abc", "seed"),
    ("model.readout.current_decay=0.5,0.2", "basis"), ("data.task=speech", "task")])
def test_bad_training_configs_raise_typed_errors(override, match):
    with pytest.raises(ConfigError, match=match):
        config_io.apply_overrides(VDIBConfig(), [override])


def test_train_config_checks_seed_type():
    with pytest.raises(ConfigError, match="seed"):
        VDIBTrainConfig(seed=1.5)


def test_readout_layer_validation_names_the_field():
    model = _model()
    layer = VDIBFamily().to_network(model, InputSpec("spikes", T, (10,))).layers[-1]
    from dataclasses import replace
    for change, match in (({"seed": -1}, "seed"), ({"i_decay": (4096,)}, "one decay"),
                          ({"lut": np.array([70000, 1])}, "lut"),
                          ({"weight": np.ones((7, 12), int)}, "weight")):
        with pytest.raises(ConfigError, match=match):
            FixedPointNetwork([replace(layer, **change)], InputSpec("spikes", T, (12,)))


def test_standard_layers_may_follow_the_readout(tmp_path):
    """A dense layer after the readout is stored under /spikecodec (NetX loads only the leading
    standard layers from /layer) and reads back equal; tests/deploy/test_layer_kinds.py runs
    such networks on both engines."""
    model = _model()
    net = VDIBFamily().to_network(model, InputSpec("spikes", T, (10,)))
    hidden, readout = net.layers
    from dataclasses import replace
    bridge = replace(hidden, weight=np.zeros((12, 6), dtype=np.int64) + 2, name="after")
    mixed = FixedPointNetwork([readout.__class__(**{**readout.__dict__, "weight":
                                                    np.ones((12, 10), int) * 2}), bridge],
                              InputSpec("spikes", T, (10,)))
    assert mixed.num_netx == 0 and net.num_netx == 1
    path = write_hdf5(mixed, tmp_path / "mixed.h5")
    with h5py.File(path, "r") as f:
        assert "layer" not in f and "weight" in f["spikecodec/layers/1"]
    back = read_hdf5(path)
    assert [layer.kind for layer in back.layers] == ["stochastic_readout", "dense"]
    np.testing.assert_array_equal(back.layers[1].weight, bridge.weight)


@pytest.mark.gpu
def test_cuda_training_step_and_quantized_mode_match_the_cpu():
    """On a GPU: the quantized encoder draws the same spikes as on the CPU, and one VDIB
    training step runs (the float mode's torch RNG differs between devices by design)."""
    model = _model()
    x = _spikes(batch=5)
    cpu = model.encoder(x, mode="quantized").readout.spikes
    model = model.cuda()
    gpu = model.encoder(x.cuda(), mode="quantized").readout.spikes.cpu()
    assert torch.equal(cpu, gpu)
    out = model.encoder(x.cuda(), generator=torch.Generator(device="cuda").manual_seed(0))
    ro = out.readout
    nll = decoder_nll("sigmoid", model.decoder(ro.spikes), x.cuda()[:, :, -1])
    obj, _, coeff = encoder_objective(ro.spikes, ro.membrane, nll, beta=0.1, prior=0.3,
                                      baseline=Baseline())
    dfa = EPropDFA([12], 6).cuda()
    (nll.mean() + obj + dfa.objective(model.encoder, out, coeff)).backward()
    assert model.encoder.hidden[0].weight.grad.abs().sum() > 0


def test_damaged_decoder_arrays_raise_export_errors():
    dec = make_decoder(arch="mlp", input="window", window=4, at="last", output="sigmoid",
                       out_shape=(2,), neurons=3, hidden=(5,)).export()
    dec["w1"] = dec["w1"][:, :4]
    with pytest.raises(ExportError, match="'w1' has shape"):
        decode(dec, np.zeros((1, 3, 4)))
    bad = dict(dec)
    del bad["neurons"]
    with pytest.raises(ConfigError, match="decoder.neurons"):
        decode(bad, np.zeros((1, 3, 4)))


@pytest.mark.parametrize("override,match", [
    ("model.readout.seed=-1", "readout.seed"), ("model.readout.weight_scale=-2", "weight_scale"),
    ("model.readout.bias_init=nan", "bias_init")])
def test_readout_config_is_checked_before_training(override, match):
    with pytest.raises(ConfigError, match=match):
        config_io.apply_overrides(VDIBConfig(), [override])


def test_stratified_split_keeps_every_class_on_both_sides():
    from spikecodec.train.families.vdib.tasks import stratified_split

    labels = torch.tensor([0] * 10 + [1] * 5 + [2] * 2)
    train, test = stratified_split(labels, test_fraction=0.2, seed=0)
    assert sorted(torch.cat([train, test]).tolist()) == list(range(17))
    assert set(labels[test].tolist()) == {0, 1, 2} and set(labels[train].tolist()) == {0, 1, 2}
    again = stratified_split(labels, test_fraction=0.2, seed=0)
    assert torch.equal(again[0], train) and torch.equal(again[1], test)

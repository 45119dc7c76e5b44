"""Training and evaluating a VDIB model: the step, the evaluation, results and figures.

One Adam step per batch on ``decoder NLL + encoder objective (+ e-prop term)``
(:mod:`spikecodec.train.families.vdib.learning`); the decoder and the encoder have their own
learning rates. The loop is :func:`spikecodec.train.fit.fit` (timing, checkpoints, resume).
Evaluation runs the test split twice: ``float`` (the training model: exact sigmoid, torch RNG)
and ``quantized`` (the deployed arithmetic: sigmoid table and counter-based PRNG, spike for
spike what the reference engine and Lava produce from the export).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikecodec.atomic import write_json
from spikecodec.errors import ConfigError
from spikecodec.train import config as config_io
from spikecodec.train.families.vdib import tasks as tasks_mod
from spikecodec.train.families.vdib.config import MODEL_KIND, VDIBConfig
from spikecodec.train.families.vdib.decoders import make_decoder
from spikecodec.train.families.vdib.learning import (
    Baseline,
    EPropDFA,
    decoder_nll,
    encoder_objective,
    log_prior,
    log_q,
)
from spikecodec.train.families.vdib.model import VDIB, VDIBEncoder
from spikecodec.train.fit import FitPlan, fit, training_device
from spikecodec.train.parallel import RowDraws, local_rows
from spikecodec.train.seeds import batch_seed, generator, stream_seed


def load_task(cfg: VDIBConfig) -> tasks_mod.Task:
    d = cfg.data
    if d.task == "blobs":
        return tasks_mod.blobs_task(train=d.blobs_train, test=d.blobs_test,
                                    num_steps=d.num_steps, delta=d.delta, seed=cfg.train.seed,
                                    protocol=d.blobs_protocol or "paper")
    if d.task == "images":
        params = {"max_rate": d.max_rate} if d.encoding == "poisson_rate" else {}
        return tasks_mod.images_task(dataset=d.dataset, data_dir=d.data_dir, download=d.download,
                                     train_limit=d.train_limit, test_limit=d.test_limit,
                                     encoding_name=d.encoding, num_steps=d.num_steps,
                                     params=params)
    return tasks_mod.events_task(dataset=d.dataset, data_dir=d.data_dir,
                                 train_limit=d.train_limit, test_limit=d.test_limit,
                                 num_steps=d.num_steps, bin_us=d.bin_us,
                                 mnist_dir=d.mnist_dir or d.data_dir, scale=d.dvs_scale)


def build_model(cfg: VDIBConfig, task: tasks_mod.Task) -> VDIB:
    """Encoder and decoder for ``task`` (seeded by ``train.seed``)."""
    gen = generator(cfg.train.seed, "init")
    encoder = VDIBEncoder(task.in_features, cfg.model, generator=gen)
    dec = cfg.decoder
    window = dec.window or task.num_steps
    if window > task.num_steps:
        raise ConfigError(f"decoder.window ({window}) must be <= T ({task.num_steps})")
    decoder = make_decoder(arch=dec.arch, input=dec.input, window=window, at=task.at,
                           output=task.output, out_shape=task.out_shape,
                           neurons=cfg.model.readout.neurons, hidden=dec.hidden,
                           channels=dec.channels, kernel=dec.kernel, num_steps=task.num_steps,
                           generator=gen)
    return VDIB(encoder, decoder)


def eval_batches(task: tasks_mod.Task, cfg: VDIBConfig, split: str, stop: int | None = None):
    """``(first index, x, reference)`` for the evaluation batches of ``split`` up to ``stop``:
    the batches and Poisson seeds every evaluation uses (training, ``spikecodec eval``, the
    benchmarks), so that a deployed export sees exactly the spikes the training run scored."""
    n, bs = task.size(split), cfg.train.eval_batch_size
    stop = n if stop is None else min(stop, n)
    for lo in range(0, stop, bs):
        idx = torch.arange(lo, min(lo + bs, n))  # whole batches: the draws depend on them
        x, ref = task.batch(split, idx, seed=batch_seed(stream_seed(cfg.train.seed,
                                                                     "eval_inputs"), 0, lo))
        yield lo, x, ref


@torch.no_grad()
def evaluate(model: VDIB, task: tasks_mod.Task, cfg: VDIBConfig, *, mode: str = "float",
             split: str = "test", keep: bool = False) -> dict[str, Any]:
    """Decode ``split`` through the encoder in ``mode``; metrics (and spikes with ``keep``).

    The float mode draws from the run's ``eval`` seed stream; the quantized mode keys its PRNG
    by the export's readout seed and the sample's index in the split.
    """
    device = next(model.parameters()).device
    gen = generator(cfg.train.seed, "eval", device)
    n = task.size(split)
    estimates, spikes, refs, counts = [], [], [], 0.0
    for lo, x, ref in eval_batches(task, cfg, split):
        out = model.encoder(x.to(device), mode=mode, generator=gen, first_sample=lo)
        y = out.readout.spikes
        estimates.append(model.decoder.estimate(y).cpu())
        refs.append(ref)
        counts += float(y.sum())
        if keep:
            spikes.append(y.to(torch.uint8).cpu())
    est, ref = torch.cat(estimates), torch.cat(refs)
    metrics = tasks_mod.score(task, est, ref)
    metrics["readout_spikes_per_sample"] = counts / n
    metrics["samples"] = n
    result: dict[str, Any] = {"metrics": metrics}
    if keep:
        result.update(estimates=est, reference=ref, spikes=torch.cat(spikes))
    return result


def raw_input_baseline(task: tasks_mod.Task, cfg: VDIBConfig) -> dict[str, float]:
    """The task's metrics of a decoder of the configured kind (arch, window, input) trained on
    the raw input spikes instead of readout spikes: no encoder, no bottleneck. Same epochs,
    batch size and decoder learning rate as the run; seeded by ``train.seed``. What the inputs
    themselves let that decoder recover over the same window -- the bar a code should reach."""
    t, dec = cfg.train, cfg.decoder
    device = training_device(t.device)
    gen = generator(t.seed, "raw_inputs")
    window = dec.window or task.num_steps
    decoder = make_decoder(arch=dec.arch, input=dec.input, window=window, at=task.at,
                           output=task.output, out_shape=task.out_shape,
                           neurons=task.in_features, hidden=dec.hidden, channels=dec.channels,
                           kernel=dec.kernel, num_steps=task.num_steps, generator=gen).to(device)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=t.lr_decoder)
    per_step = task.at == "every"
    n = task.size("train")
    for epoch in range(t.epochs):
        order = torch.randperm(n, generator=gen)
        for b, lo in enumerate(range(0, n, t.batch_size)):
            index = order[lo:lo + t.batch_size]
            x, ref = task.batch("train", index, seed=batch_seed(t.seed, epoch, b))
            nll = decoder_nll(task.output, decoder(x.to(device)), ref.to(device),
                              per_step=per_step)
            loss = nll.sum(-1).mean() if per_step else nll.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    estimates, refs = [], []
    with torch.no_grad():
        for _, x, ref in eval_batches(task, cfg, "test"):
            estimates.append(decoder.estimate(x.to(device)).cpu())
            refs.append(ref)
    return tasks_mod.score(task, torch.cat(estimates), torch.cat(refs))


class VDIBTrainer:
    """One Adam step per batch: encoder (float mode, sampled readout), decoder NLL, REINFORCE
    with a running baseline for the readout, e-prop (or BPTT) for the hidden layers.

    Data-parallel under torchrun like every family: each rank draws the whole batch's inputs
    and readout spikes and keeps its rows (:class:`~spikecodec.train.parallel.RowDraws`), the
    baseline folds in the whole batch's mean learning signal, and every term of the loss is a
    mean over samples, so the averaged gradient is the one-process gradient.
    """

    def __init__(self, model: VDIB, task: tasks_mod.Task, cfg: VDIBConfig,
                 device: torch.device):
        t = cfg.train
        self.model, self.task, self.cfg, self.device = model, task, cfg, device
        self.eprop = EPropDFA(list(cfg.model.hidden), cfg.model.readout.neurons,
                              generator=generator(t.seed, "feedback")).to(device)
        self.optimizer = torch.optim.Adam([
            {"params": model.decoder.parameters(), "lr": t.lr_decoder},
            {"params": model.encoder.parameters(), "lr": t.lr_encoder}])
        self.baseline = Baseline(t.baseline_momentum)
        self.gen = generator(t.seed, "sampling", device)  # the readout's training draws
        self.per_step = model.decoder.cfg["at"] == "every"  # per-step learning signals
        self.window = int(model.decoder.cfg["window"])

    def step(self, epoch: int, batch: int, index: torch.Tensor) -> dict[str, float]:
        t, model = self.cfg.train, self.model
        x, ref = self.task.batch("train", index, seed=batch_seed(t.seed, epoch, batch))
        rows = local_rows(len(index))  # the whole batch's inputs and draws, then this rank's rows
        x, ref = x[rows].to(self.device), ref[rows].to(self.device)
        draws = RowDraws.for_batch(self.gen, len(index))
        out = model.encoder(x, bptt=t.rule == "bptt", generator=draws)
        ro = out.readout
        nll = decoder_nll(model.decoder.cfg["output"], model.decoder(ro.spikes), ref,
                          per_step=self.per_step)
        enc, signal, coeff = encoder_objective(ro.spikes, ro.membrane, nll, beta=t.beta,
                                               prior=t.prior, baseline=self.baseline,
                                               window=self.window,
                                               discount=t.credit_discount)
        loss = (nll.sum(-1).mean() if self.per_step else nll.mean()) + enc
        if t.rule == "eprop" and len(model.encoder.hidden):
            loss = loss + self.eprop.objective(model.encoder, out, coeff)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        nll = nll.detach()
        with torch.no_grad():  # the bottleneck term log q / r per sample, for the loss figure
            kl = log_q(ro.spikes, ro.membrane) - log_prior(ro.spikes, t.prior)
        return {"nll": float(nll.sum(-1).mean() if self.per_step else nll.mean()),
                "kl": float(kl.mean()),
                "spikes": float(ro.spikes.sum()) / len(x),  # readout spikes per sample
                "signal": float(signal.detach().mean())}  # the learning signal l

    def learning_rates(self) -> list[float]:
        return [self.cfg.train.lr_decoder, self.cfg.train.lr_encoder]

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.gen.get_state(), "baseline": self.baseline.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["generator"])
        self.baseline.value = state["baseline"]


def train_vdib(cfg: VDIBConfig, run_dir: str | os.PathLike, *,
               start: dict[str, Any] | None = None, show_progress: bool = True,
               log: Callable[[str], None] = print, task: tasks_mod.Task | None = None
               ) -> dict[str, Any]:
    """Train (from the checkpoint ``start`` when resuming), evaluate (float and quantized),
    write the run directory; return the results, plus the model, task and evaluations under
    ``_model``, ``_task``, ``_float`` and ``_quantized`` for callers in the same process."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_io.save(cfg, run_dir / "config.toml")
    task = task or load_task(cfg)
    device = training_device(cfg.train.device)
    model = build_model(cfg, task).to(device)
    trainer = VDIBTrainer(model, task, cfg, device)
    t = cfg.train
    plan = FitPlan(kind=MODEL_KIND, epochs=t.epochs, batch_size=t.batch_size,
                   n_train=task.size("train"), seed=t.seed, checkpoint_every=t.checkpoint_every,
                   threads=t.threads, device=t.device, lr_schedule=t.lr_schedule,
                   desc="VDIB",
                   static={"in_neurons": task.in_features, "config": config_io.to_dict(cfg),
                           "decoder_config": model.decoder.cfg})
    run = fit(trainer, plan, run_dir, start=start, show_progress=show_progress, log=log)
    float_eval = evaluate(model, task, cfg, mode="float", keep=True)
    quant_eval = evaluate(model, task, cfg, mode="quantized", keep=True)
    results: dict[str, Any] = {
        "model": MODEL_KIND, "task": cfg.data.task, "dataset": cfg.data.dataset,
        "encoding": task.encoding, "num_steps": task.num_steps,
        "network": "-".join(str(s) for s in (task.in_features, *cfg.model.hidden,
                                               cfg.model.readout.neurons)),
        "decoder": {k: v for k, v in model.decoder.cfg.items()},
        "rule": t.rule, "beta": t.beta, "prior": t.prior, "epochs": t.epochs,
        "delta": cfg.data.delta,
        "train_samples": task.size("train"), "test_samples": task.size("test"),
        "metrics": {"float": float_eval["metrics"], "quantized": quant_eval["metrics"],
                    "chance": tasks_mod.chance(task)},
        "timing": {"seconds_per_epoch": run.epoch_seconds,
                   "mean_seconds_per_epoch": float(np.mean(run.epoch_seconds)),
                   "device": str(device), "torch_threads": torch.get_num_threads()},
    }
    if task.name == "blobs":  # cheap here (20 inputs); the bar beside chance
        results["metrics"]["raw_inputs"] = raw_input_baseline(task, cfg)
    _figures(run_dir, task, run.history, float_eval, results)
    write_json(run_dir / "results.json", results)
    return {**results, "_model": model, "_task": task, "_float": float_eval,
            "_quantized": quant_eval}


READOUT_ROWS = 64  # readout neurons drawn per sample (a subset of wider readouts)
RASTER_SAMPLES = 3  # test samples in the readout raster and the blobs tracks figure


def _figures(run_dir: Path, task: tasks_mod.Task, history: dict[str, list[float]],
             evaluation: dict[str, Any], results: dict[str, Any]) -> None:
    from spikecodec.train import plots

    curves = {"decoder NLL\n(nats per sample)": history["nll"]}
    if "kl" in history:  # runs resumed from checkpoints made before the term was logged
        curves[f"log q/r, KL term\n(nats per sample;\nx beta={results['beta']:g} in loss)"] = \
            history["kl"]
    curves["readout spikes\nper sample"] = history["spikes"]
    plots.training_curve(curves, run_dir / "loss.png", log=(),
                         smooth=max(1, len(history["nll"]) // 40))
    spikes = evaluation["spikes"][:RASTER_SAMPLES].numpy()
    neurons, steps = spikes.shape[1], min(spikes.shape[2], 200)
    shown = min(neurons, READOUT_ROWS)
    which = f"neurons 0-{shown - 1} of {neurons}" if shown < neurons else f"{neurons} neurons"
    panels = []
    for i, s in enumerate(spikes):
        if task.name == "blobs":  # the input beside its code
            panels.append((f"test seq. {i}: input", task.inputs["test"][i, :, :steps].numpy()))
        panels.append((f"test {'seq.' if task.name == 'blobs' else 'sample'} {i}: readout",
                       s[:shown, :steps]))
    plots.raster(panels, run_dir / "readout_raster.png", image=True,
                 title=f"spikes (readout: {which}; black = spike; first {steps} steps)")
    if task.name == "blobs":
        plots.tracks(_blob_tracks(task, evaluation), run_dir / "positions.png", steps=60,
                     title=f"test sequences: true vs decoded positions (lag delta "
                           f"{results['delta']}); test MSE "
                           f"{results['metrics']['float']['mse']:.4f}")
    if task.image_shape is not None:
        est, ref = evaluation["estimates"][:10], evaluation["reference"][:10]
        plots.reconstruction_grid([("reference", ref.numpy()), ("VDIB decoded", est.numpy())],
                                  task.image_shape, run_dir / "reconstructions.png",
                                  title=f"VDIB {results['network']}: test MSE "
                                        f"{results['metrics']['float']['mse']:.4f}")


def _blob_tracks(task: tasks_mod.Task, evaluation: dict[str, Any]
                 ) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Per test sequence: the decoded probability that each input position is occupied
    ``(T, N)``, the true and the decoded (most likely) positions as 0/1 ``(T, N)``."""
    panels = []
    for i in range(min(RASTER_SAMPLES, len(evaluation["estimates"]))):
        est, ref = evaluation["estimates"][i], evaluation["reference"][i]
        if task.pairs is not None:  # (T, pairs): marginals through the pair table
            prob = (est @ task.pairs).clamp(max=1.0)
            truth, decoded = task.pairs[ref.argmax(-1)], task.pairs[est.argmax(-1)]
        else:  # (T, 2 blobs, N)
            prob = est.sum(1).clamp(max=1.0)
            eye = torch.eye(est.shape[-1])
            truth = eye[ref.argmax(-1)].amax(1)
            decoded = eye[est.argmax(-1)].amax(1)
        panels.append((f"test seq. {i}", prob.numpy(), truth.numpy(), decoded.numpy()))
    return panels

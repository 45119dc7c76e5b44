"""Training and evaluating a VDIB model: configs, the loop, results and figures.

One Adam step per batch on ``decoder NLL + encoder objective (+ e-prop term)``
(:mod:`spikecodec.train.vdib.learning`); the decoder and the encoder have their own learning
rates. Every epoch is timed and checkpointed atomically. Evaluation runs the test split twice:
``float`` (the training model: exact sigmoid, torch RNG) and ``quantized`` (the deployed
arithmetic: sigmoid table and counter-based PRNG, spike-for-spike what the reference engine and
Lava produce from the export).
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikecodec.atomic import write_json
from spikecodec.errors import ConfigError
from spikecodec.lava_procs.stochastic_readout.dynamics import check_seed
from spikecodec.train import config as config_io
from spikecodec.train.batching import batch_seed, epoch_order
from spikecodec.train.checkpoint import FORMAT, save_atomic
from spikecodec.train.progress import progress
from spikecodec.train.runtime import training_device
from spikecodec.train.vdib import tasks as tasks_mod
from spikecodec.train.vdib.decoders import make_decoder
from spikecodec.train.vdib.learning import (
    Baseline,
    EPropDFA,
    check_beta,
    check_probability,
    decoder_nll,
    encoder_objective,
)
from spikecodec.train.vdib.model import VDIB, VDIBEncoder, VDIBModelConfig

MODEL_KIND = "vdib"
TASKS = ("blobs", "images", "events")
RULES = ("eprop", "bptt")


@dataclass(frozen=True)
class VDIBDataConfig:
    task: str = "images"  # blobs | images | events
    dataset: str = "digits"  # images: digits, mnist, fashion-mnist; events: nmnist, mnist-dvs
    data_dir: str | None = None  # None: $SPIKECODEC_DATA or ~/.cache/spikecodec/data
    download: bool = False  # allow torchvision downloads (images only)
    train_limit: int | None = None
    test_limit: int | None = None
    encoding: str = "time_to_first_spike"  # images: time_to_first_spike | poisson_rate
    max_rate: float = 0.5  # poisson_rate: spike probability per step of a white pixel
    num_steps: int = 30  # T (kclip/VDIB: 30)
    # blobs
    blobs_train: int = 512  # training sequences
    blobs_test: int = 64
    delta: int = 0  # reference lag in steps
    # events
    bin_us: int = 10_000  # event bin (10 ms, the paper's MNIST-DVS setting)
    mnist_dir: str | None = None  # where the class reference images (MNIST) are

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"data.task must be one of {TASKS}, got {self.task!r}")
        if self.num_steps < 1:
            raise ConfigError(f"data.num_steps must be >= 1, got {self.num_steps}")
        if not 0 < self.max_rate <= 1:
            raise ConfigError(f"data.max_rate must be in (0, 1], got {self.max_rate}")
        if self.delta < 0:
            raise ConfigError(f"data.delta must be >= 0, got {self.delta}")


@dataclass(frozen=True)
class VDIBDecoderConfig:
    arch: str = "mlp"  # linear | mlp | conv1d
    input: str = "window"  # window (VDIB time decoding) | rate (the baseline)
    window: int = 0  # tau_d in steps; 0 = the whole T
    hidden: tuple[int, ...] = (600,)  # MLP / conv head
    channels: int = 32  # conv1d
    kernel: int = 5  # conv1d, steps


@dataclass(frozen=True)
class VDIBTrainConfig:
    epochs: int = 5
    batch_size: int = 64
    lr_decoder: float = 1e-3  # Adam
    lr_encoder: float = 1e-4  # Adam on the REINFORCE / e-prop estimates
    beta: float = 1e-3  # weight of the information-bottleneck (KL to the prior) term
    prior: float = 0.3  # Bernoulli prior probability of a readout spike per step
    rule: str = "eprop"  # eprop (e-prop + DFA, the paper's) | bptt (surrogate BPTT hidden)
    baseline_momentum: float = 0.9
    seed: int = 0
    eval_batch_size: int = 500
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr_decoder", "lr_encoder"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"train.{name} must be > 0, got {getattr(self, name)}")
        check_beta(self.beta, "train.beta")
        check_probability("train.prior", self.prior)
        check_seed(self.seed)
        if self.rule not in RULES:
            raise ConfigError(f"train.rule must be one of {RULES}, got {self.rule!r}")
        if self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ConfigError(f"train.device must be 'cpu' or 'cuda[:N]', got {self.device!r}")


@dataclass(frozen=True)
class VDIBConfig:
    data: VDIBDataConfig = field(default_factory=VDIBDataConfig)
    model: VDIBModelConfig = field(default_factory=VDIBModelConfig)
    decoder: VDIBDecoderConfig = field(default_factory=VDIBDecoderConfig)
    train: VDIBTrainConfig = field(default_factory=VDIBTrainConfig)


def load_task(cfg: VDIBConfig) -> tasks_mod.Task:
    d = cfg.data
    if d.task == "blobs":
        return tasks_mod.blobs_task(train=d.blobs_train, test=d.blobs_test,
                                    num_steps=d.num_steps, delta=d.delta, seed=cfg.train.seed)
    if d.task == "images":
        params = {"max_rate": d.max_rate} if d.encoding == "poisson_rate" else {}
        return tasks_mod.images_task(dataset=d.dataset, data_dir=d.data_dir, download=d.download,
                                     train_limit=d.train_limit, test_limit=d.test_limit,
                                     encoding_name=d.encoding, num_steps=d.num_steps,
                                     params=params)
    return tasks_mod.events_task(dataset=d.dataset, data_dir=d.data_dir,
                                 train_limit=d.train_limit, test_limit=d.test_limit,
                                 num_steps=d.num_steps, bin_us=d.bin_us, mnist_dir=d.mnist_dir)


def build_model(cfg: VDIBConfig, task: tasks_mod.Task) -> VDIB:
    """Encoder and decoder for ``task`` (seeded by ``train.seed``)."""
    gen = torch.Generator().manual_seed(cfg.train.seed)
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
        x, ref = task.batch(split, idx, seed=batch_seed(cfg.train.seed + 2, 0, lo))
        yield lo, x, ref


@torch.no_grad()
def evaluate(model: VDIB, task: tasks_mod.Task, cfg: VDIBConfig, *, mode: str = "float",
             split: str = "test", keep: bool = False) -> dict[str, Any]:
    """Decode ``split`` through the encoder in ``mode``; metrics (and spikes with ``keep``).

    The float mode draws with a generator seeded by ``train.seed + 1``; the quantized mode keys
    its PRNG by the export's readout seed and the sample's index in the split.
    """
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(cfg.train.seed + 1)
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


def train_vdib(cfg: VDIBConfig, run_dir: str | os.PathLike, *, show_progress: bool = True,
               log: Callable[[str], None] = print, task: tasks_mod.Task | None = None
               ) -> dict[str, Any]:
    """``log`` receives one line per epoch (seconds, mean decoder NLL, readout spikes)."""
    """Train, evaluate (float and quantized) and write the run directory; return results."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    config_io.save(cfg, run_dir / "config.toml")
    task = task or load_task(cfg)
    device = training_device(cfg.train.device)
    model = build_model(cfg, task).to(device)
    t = cfg.train
    eprop = EPropDFA(list(cfg.model.hidden), cfg.model.readout.neurons,
                     generator=torch.Generator().manual_seed(t.seed + 3)).to(device)
    opt = torch.optim.Adam([
        {"params": model.decoder.parameters(), "lr": t.lr_decoder},
        {"params": model.encoder.parameters(), "lr": t.lr_encoder}])
    baseline = Baseline(t.baseline_momentum)
    gen = torch.Generator(device=device).manual_seed(t.seed)
    output = model.decoder.cfg["output"]
    per_step = model.decoder.cfg["at"] == "every"  # per-step learning signals (learning.py)
    window = int(model.decoder.cfg["window"])
    history: dict[str, list[float]] = {"signal": [], "nll": [], "spikes": []}
    epoch_seconds = []
    n = task.size("train")
    batches = math.ceil(n / t.batch_size)
    for epoch in range(t.epochs):
        order = epoch_order(n, t.seed, epoch)
        bar = progress(range(batches), desc=f"VDIB epoch {epoch + 1}/{t.epochs}",
                       enabled=show_progress, total=batches)
        tic = time.perf_counter()
        for b in bar:
            idx = order[b * t.batch_size:(b + 1) * t.batch_size]
            x, ref = task.batch("train", idx, seed=batch_seed(t.seed, epoch, b))
            x, ref = x.to(device), ref.to(device)
            out = model.encoder(x, bptt=t.rule == "bptt", generator=gen)
            ro = out.readout
            nll = decoder_nll(output, model.decoder(ro.spikes), ref, per_step=per_step)
            enc, signal, coeff = encoder_objective(ro.spikes, ro.membrane, nll, beta=t.beta,
                                                   prior=t.prior, baseline=baseline,
                                                   window=window)
            loss = nll.sum(-1).mean() if per_step else nll.mean()
            loss = loss + enc
            if t.rule == "eprop" and len(model.encoder.hidden):
                loss = loss + eprop.objective(model.encoder, out, coeff)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history["signal"].append(float(signal.detach().mean()))  # learning signal l
            history["nll"].append(float(nll.detach().sum(-1).mean() if per_step
                                        else nll.detach().mean()))
            history["spikes"].append(float(ro.spikes.sum()) / len(idx))
            if hasattr(bar, "set_postfix") and b % 10 == 0:
                bar.set_postfix(nll=f"{history['nll'][-1]:.2f}",
                                spikes=f"{history['spikes'][-1]:.0f}")
        epoch_seconds.append(time.perf_counter() - tic)
        recent = slice(-batches, None)
        log(f"epoch {epoch + 1}/{t.epochs}: {epoch_seconds[-1]:.1f} s, decoder NLL "
            f"{np.mean(history['nll'][recent]):.3f}, readout spikes/sample "
            f"{np.mean(history['spikes'][recent]):.1f}")
        save_atomic({"format": FORMAT, "model_kind": MODEL_KIND,
                     "in_neurons": task.in_features, "config": config_io.to_dict(cfg),
                     "model": {k: v.cpu() for k, v in model.state_dict().items()},
                     "decoder_config": model.decoder.cfg, "epoch": epoch + 1,
                     "history": history}, run_dir / "checkpoint.pt")
    float_eval = evaluate(model, task, cfg, mode="float", keep=True)
    quant_eval = evaluate(model, task, cfg, mode="quantized", keep=True)
    results: dict[str, Any] = {
        "model": MODEL_KIND, "task": cfg.data.task, "dataset": cfg.data.dataset,
        "encoding": task.encoding, "num_steps": task.num_steps,
        "network": "-".join(str(s) for s in (task.in_features, *cfg.model.hidden,
                                               cfg.model.readout.neurons)),
        "decoder": {k: v for k, v in model.decoder.cfg.items()},
        "rule": t.rule, "beta": t.beta, "prior": t.prior, "epochs": t.epochs,
        "train_samples": n, "test_samples": task.size("test"),
        "metrics": {"float": float_eval["metrics"], "quantized": quant_eval["metrics"]},
        "timing": {"seconds_per_epoch": epoch_seconds,
                   "mean_seconds_per_epoch": float(np.mean(epoch_seconds)),
                   "device": str(device), "torch_threads": torch.get_num_threads()},
    }
    _figures(run_dir, task, history, float_eval, results)
    write_json(run_dir / "results.json", results)
    return {**results, "_model": model, "_task": task, "_float": float_eval,
            "_quantized": quant_eval}


def _figures(run_dir: Path, task: tasks_mod.Task, history: dict[str, list[float]],
             evaluation: dict[str, Any], results: dict[str, Any]) -> None:
    from spikecodec.train import plots

    plots.training_curve({"decoder NLL": history["nll"], "readout spikes / sample":
                          history["spikes"]}, run_dir / "loss.png")
    spikes = evaluation["spikes"][:4].numpy()
    plots.raster([(f"readout, sample {i}", s) for i, s in enumerate(spikes)],
                 run_dir / "readout_raster.png")
    if task.image_shape is not None:
        est, ref = evaluation["estimates"][:10], evaluation["reference"][:10]
        plots.reconstruction_grid([("reference", ref.numpy()), ("VDIB decoded", est.numpy())],
                                  task.image_shape, run_dir / "reconstructions.png",
                                  title=f"VDIB {results['network']}: test MSE "
                                        f"{results['metrics']['float']['mse']:.4f}")


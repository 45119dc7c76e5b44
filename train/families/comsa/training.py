"""Training and scoring the Comsa et al. 2021 autoencoder: the loss, the metrics, the loop.

Loss (eq. 2 and the C++ code): per image ``1/2 sum_k (o_k - y_k)^2`` with ``o_k = t_k - l``,
averaged over the batch, so the error reaching output ``k`` is ``delta = t_k - y_k - l`` per
example, averaged. A silent output neuron reads as ``o_k = 1.0`` (the C++ code's surrogate) and
passes no gradient; instead the no-spike penalty raises its incoming weights (both layers,
pulse weights included). Adam with its own learning rate (and state) for the pulse times, which
are clamped to ``>= 0`` after every step. The model kept is the epoch with the lowest
validation error; only it is scored on the test split.

Metrics (:func:`scores`):

* ``mse``: the C++ code's reported metric: per image ``1/784 sum_k (o_k - y_k)^2`` with ``o``
  unclipped and 1.0 for a silent output, averaged over the images;
* ``pixel_mse``: the reconstruction ``clip(1 - o, 0, 1)`` (silent: 0, background) against the
  clean image, in pixel space, to sit beside the Roy and VDIB numbers;
* ``silent_outputs``: the fraction of output neurons that never spiked;
  ``hidden_spikes_per_sample``.
"""
from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikecodec.atomic import write_json
from spikecodec.train import config as config_io
from spikecodec.train.families.comsa import data as data_mod
from spikecodec.train.families.comsa.config import MODEL_KIND, ComsaConfig
from spikecodec.train.families.comsa.finetune import deploy_aware_forward, discrete_times
from spikecodec.train.families.comsa.model import ComsaAE
from spikecodec.train.families.comsa.quantize import weight_grid
from spikecodec.train.fit import FitPlan, fit, training_device
from spikecodec.train.parallel import local_rows
from spikecodec.train.seeds import batch_seed, epoch_order, generator, stream_seed

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def observed(t_out: torch.Tensor, latency: float) -> torch.Tensor:
    """``o = t - l``, and 1.0 for a silent output (no gradient flows through that branch)."""
    silent = torch.isinf(t_out)
    return torch.where(silent, torch.ones_like(t_out), t_out - latency)


def loss_fn(t_out: torch.Tensor, y: torch.Tensor, latency: float) -> torch.Tensor:
    """``1/2 sum_k (o_k - y_k)^2``, averaged over the batch (module docstring)."""
    return 0.5 * ((observed(t_out, latency) - y) ** 2).sum(1).mean()


@torch.no_grad()
def predict(model: ComsaAE, inputs: torch.Tensor, *, batch_size: int, device: torch.device,
            dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(hidden times, output times)`` of ``inputs (n, pixels)``, float64 on the CPU."""
    hidden, output = [], []
    for lo in range(0, len(inputs), batch_size):
        out = model(inputs[lo:lo + batch_size].to(device, dtype))
        hidden.append(out.hidden.double().cpu())
        output.append(out.output.double().cpu())
    return torch.cat(hidden), torch.cat(output)


def scores(hidden: torch.Tensor, t_out: torch.Tensor, y: torch.Tensor, latency: float
           ) -> dict[str, float]:
    """The metrics of the module docstring for output times ``(n, pixels)``."""
    return {**output_scores(t_out, y, latency),
            "hidden_spikes_per_sample": float(torch.isfinite(hidden).sum(1).double().mean())}


def output_scores(t_out: torch.Tensor, y: torch.Tensor, latency: float) -> dict[str, float]:
    """``mse``, ``pixel_mse`` and ``silent_outputs`` of output times ``(n, pixels)`` (the
    deployed model's too: family.py scores backend spikes with this)."""
    o = observed(t_out, latency)
    recon = (1.0 - o).clamp(0.0, 1.0)
    return {"mse": float(((o - y) ** 2).mean(1).mean()),
            "pixel_mse": float(((recon - (1.0 - y)) ** 2).mean()),
            "silent_outputs": float(torch.isinf(t_out).double().mean())}


def evaluate(model: ComsaAE, data: data_mod.ComsaData, cfg: ComsaConfig, split: str,
             device: torch.device, *, deployed: bool = False) -> dict[str, Any]:
    """Scores of ``split`` (and the times, for figures); ``deployed``: of the discrete
    fixed-point model (finetune.py) instead of the continuous one."""
    if deployed:
        hidden, t_out = discrete_times(model, data.inputs[split], cfg)
    else:
        hidden, t_out = predict(model, data.inputs[split], batch_size=cfg.train.eval_batch_size,
                                device=device, dtype=DTYPES[cfg.train.dtype])
    return {"metrics": {**scores(hidden, t_out, data.targets[split], cfg.model.latency),
                        "samples": data.size(split)},
            "hidden": hidden, "output": t_out}


class ComsaTrainer:
    """One Adam step per batch (module docstring); validation after every epoch keeps the best
    model (its weights travel in the checkpoint, so a resumed run selects the same one)."""

    def __init__(self, model: ComsaAE, data: data_mod.ComsaData, cfg: ComsaConfig,
                 device: torch.device):
        self.model, self.data, self.cfg, self.device = model, data, cfg, device
        self.dtype = DTYPES[cfg.train.dtype]
        pulses = [model.encoder.pulse_times, model.decoder.pulse_times]
        weights = [p for p in model.parameters() if all(p is not q for q in pulses)]
        self.optimizer = torch.optim.Adam([{"params": weights, "lr": cfg.train.lr},
                                           {"params": pulses, "lr": cfg.train.lr_pulses}])
        self.best: dict[str, Any] = {"mse": float("inf"), "epoch": 0, "state": None}
        self._subset: tuple[int, torch.Tensor] | None = None

    @property
    def samples_per_epoch(self) -> int:
        """Training images one epoch visits (``train.epoch_samples``, at most all of them)."""
        n, k = self.data.size("train"), self.cfg.train.epoch_samples
        return n if k is None else min(k, n)

    def images(self, epoch: int, index: torch.Tensor) -> torch.Tensor:
        """Positions in this epoch's order -> training image indices: the identity, or with
        ``train.epoch_samples`` the epoch's own random subset (seed and epoch alone fix it)."""
        n = self.data.size("train")
        if self.samples_per_epoch == n:
            return index
        if self._subset is None or self._subset[0] != epoch:
            order = epoch_order(n, stream_seed(self.cfg.train.seed, "subsets"), epoch)
            self._subset = (epoch, order[:self.samples_per_epoch])
        return self._subset[1][index]

    def _inputs(self, epoch: int, batch: int, index: torch.Tensor) -> torch.Tensor:
        d, t = self.cfg.data, self.cfg.train
        if d.noise_draw == "epoch" and d.noise > 0:
            gen = torch.Generator().manual_seed(batch_seed(stream_seed(t.seed, "noise"),
                                                           epoch, batch))
            return data_mod.add_noise(self.data.clean["train"][index], d.noise, gen)
        return self.data.inputs["train"][index]

    def step(self, epoch: int, batch: int, index: torch.Tensor) -> dict[str, float]:
        t = self.cfg.train
        index = self.images(epoch, index)
        rows = local_rows(len(index))  # this rank's share of the batch (all of it in one)
        x = self._inputs(epoch, batch, index)[rows].to(self.device, self.dtype)
        y = self.data.targets["train"][index[rows]].to(self.device, self.dtype)
        if t.deploy_aware:
            out = deploy_aware_forward(self.model, x, self.cfg, clip=t.clip_derivative,
                                       penalty=t.penalty_no_spike)
        else:
            out = self.model(x, clip=t.clip_derivative, penalty=t.penalty_no_spike)
        loss = loss_fn(out.output, y, self.cfg.model.latency)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.model.clamp_pulses()
        silent = float(torch.isinf(out.output).double().mean())
        return {"loss": float(loss.detach()), "silent": silent}

    def end_epoch(self, epoch: int) -> dict[str, float]:
        deployed = self.cfg.train.deploy_aware
        m = evaluate(self.model, self.data, self.cfg, "validation", self.device,
                     deployed=deployed)["metrics"]
        measured = "deployed" if deployed else "continuous"
        if m["mse"] < self.best["mse"] or self.best.get("model", "continuous") != measured:
            self.best = {"mse": m["mse"], "epoch": epoch + 1, "model": measured,
                         "state": copy.deepcopy(self.model.state_dict())}
        return {"val_mse": m["mse"], "val_pixel_mse": m["pixel_mse"],
                "val_silent": m["silent_outputs"]}

    def learning_rates(self) -> list[float]:
        return [self.cfg.train.lr, self.cfg.train.lr_pulses]

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]


def build_model(cfg: ComsaConfig, pixels: int) -> ComsaAE:
    return ComsaAE(pixels, cfg.model, generator=generator(cfg.train.seed, "init"),
                   dtype=DTYPES[cfg.train.dtype], weight_grid=weight_grid(cfg))


def train_comsa(cfg: ComsaConfig, run_dir: str | os.PathLike, *,
                start: dict[str, Any] | None = None, show_progress: bool = True,
                log: Callable[[str], None] = print,
                data: data_mod.ComsaData | None = None) -> dict[str, Any]:
    """Train (from the checkpoint ``start`` when resuming), select on validation, score the
    test split, train the ANN baselines, write the run directory; return the results (plus
    ``_model``, ``_data`` and ``_test`` for callers in the same process)."""
    from spikecodec.train.families.comsa.ann import train_ann_baselines

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_io.save(cfg, run_dir / "config.toml")
    t = cfg.train
    data = data or data_mod.load_data(cfg.data, seed=stream_seed(t.seed, "noise"))
    device = training_device(t.device)
    model = build_model(cfg, data.pixels).to(device)
    trainer = ComsaTrainer(model, data, cfg, device)
    plan = FitPlan(kind=MODEL_KIND, epochs=t.epochs, batch_size=t.batch_size,
                   n_train=trainer.samples_per_epoch, seed=t.seed,
                   checkpoint_every=t.checkpoint_every,
                   threads=t.threads, device=t.device, lr_schedule=t.lr_schedule,
                   desc="Comsa AE",
                   static={"in_neurons": data.pixels, "config": config_io.to_dict(cfg)})
    run = fit(trainer, plan, run_dir, start=start, show_progress=show_progress, log=log)
    if trainer.best["state"] is not None:
        model.load_state_dict(trainer.best["state"])  # the epoch validation chose
    test = evaluate(model, data, cfg, "test", device)
    validation = evaluate(model, data, cfg, "validation", device)["metrics"]
    n_in, h = data.pixels, cfg.model.hidden
    results: dict[str, Any] = {
        "model": MODEL_KIND, "dataset": cfg.data.dataset, "network": f"{n_in}-{h}-{n_in}",
        "pulses": cfg.model.pulses, "latency": cfg.model.latency, "noise": cfg.data.noise,
        "epochs": t.epochs, "best_epoch": trainer.best["epoch"],
        "train_samples": data.size("train"), "epoch_samples": plan.n_train,
        "validation_samples": data.size("validation"),
        "test_samples": data.size("test"),
        "metrics": {"test": test["metrics"], "validation": validation,
                    "per_epoch": run.epoch_metrics},
        "timing": {"seconds_per_epoch": run.epoch_seconds,
                   "mean_seconds_per_epoch": float(np.mean(run.epoch_seconds)),
                   "train_samples_per_second": plan.n_train * t.epochs / run.train_seconds,
                   "device": str(device), "torch_threads": torch.get_num_threads(),
                   "dtype": t.dtype},
    }
    if cfg.ann.enabled:
        results["metrics"].update(train_ann_baselines(data, cfg, show_progress=show_progress))
    _figures(run_dir, data, test, run, results)
    write_json(run_dir / "results.json", results)
    return {**results, "_model": model, "_data": data, "_test": test}


def _figures(run_dir: Path, data: data_mod.ComsaData, test: dict[str, Any], run,
             results: dict[str, Any]) -> None:
    from spikecodec.train import plots

    k = 10
    y = data.targets["test"][:k]
    noisy = data.inputs["test"][:k]
    recon = (1.0 - observed(test["output"][:k], results["latency"])).clamp(0.0, 1.0)
    rows = [("image", (1.0 - y).numpy()),
            ("input", (1.0 - torch.where(torch.isinf(noisy), 1.0, noisy)).numpy()),
            ("SNN output", recon.numpy())]
    m = results["metrics"]["test"]
    plots.reconstruction_grid(rows, data.image_shape, run_dir / "reconstructions.png",
                              title=f"Comsa AE {results['network']}, l={results['latency']}, "
                                    f"noise {results['noise']}: test MSE {m['mse']:.4f}")
    curves = {"training loss (per batch)": run.history["loss"]}
    plots.training_curve(curves, run_dir / "loss.png")


def load_trained(run_dir: str | os.PathLike, *, best: bool = True
                 ) -> tuple[ComsaConfig, ComsaAE]:
    """The config and model of a finished run: the epoch validation chose (``best``) or the
    last one."""
    from spikecodec.train.checkpoint import load_checkpoint

    run_dir = Path(run_dir)
    cfg = config_io.load(ComsaConfig, run_dir / "config.toml")
    ckpt = load_checkpoint(run_dir / "checkpoint.pt", model_kind=MODEL_KIND)
    model = build_model(cfg, int(ckpt["in_neurons"]))
    state = ckpt["trainer"]["best"]["state"] if best else None
    model.load_state_dict(state if state is not None else ckpt["model"])
    return cfg, model


def potential(t: torch.Tensor, t_in: torch.Tensor, weight: torch.Tensor, decay: float
              ) -> torch.Tensor:
    """Membrane potential ``V(t) = sum_i w_i (t - t_i) exp(-K (t - t_i))`` over the inputs
    with ``t_i <= t``: ``t (T,)``, ``t_in (n,)``, ``weight (n,)`` -> ``(T,)`` (figures)."""
    dt = t[:, None] - t_in[None, :]
    causal = torch.isfinite(t_in)[None, :] & (dt >= 0)
    dt = torch.where(causal, dt, torch.zeros_like(dt))
    return (weight[None, :] * dt * torch.exp(-decay * dt) * causal).sum(1)

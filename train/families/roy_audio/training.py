"""Train and evaluate Roy et al.'s audio-to-image synthesis end to end.

``train_roy_audio(cfg, run_dir)`` reads top to bottom: spoken digits through the front end, the
AE-SNN (trained into ``run_dir/ae`` with the Roy family, or a finished roy-ae run), the pairing
(dataset A or B) and each paired image's hidden spike map (first ``T_h`` steps of the AE's
encoder on one Poisson draw of the image), the audiocoder trained on the membrane-potential
loss with the XOR mask against that map shown repeatedly over ``T_a`` steps, the whole chain's
test MSE, the ANN baselines, figures and ``results.json``.

As in the Roy family, Adam steps once per batch on the loss summed over the window (the paper
steps at every time step), so the learning rate is larger than the paper's 5e-5.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch

from spikecodec.atomic import write_json
from spikecodec.errors import ConfigError
from spikecodec.train import config as config_io
from spikecodec.train import plots
from spikecodec.train.audio import AudioSplit, load_audio
from spikecodec.train.checkpoint import load_checkpoint
from spikecodec.train.datasets import ImageSplit, load_images
from spikecodec.train.encoding import poisson_rate
from spikecodec.train.families.roy.config import AnnBaselineConfig, RoyAEConfig
from spikecodec.train.families.roy.config import DataConfig as RoyData
from spikecodec.train.families.roy.config import TrainConfig as RoyTrain
from spikecodec.train.families.roy.model import RoyAE, RoyAEModelConfig
from spikecodec.train.families.roy.training import MODEL_KIND as ROY_KIND
from spikecodec.train.families.roy.training import fit_ann_ae, train_roy_ae
from spikecodec.train.families.roy_audio.ann import ann_synthesis_mse
from spikecodec.train.families.roy_audio.config import PAPER_MSE, RoyAudioConfig
from spikecodec.train.families.roy_audio.data import Pairing, pair, protocol_scores, tile_targets
from spikecodec.train.families.roy_audio.model import AudioToImage, SynthesisShape
from spikecodec.train.fit import CHECKPOINT, FitPlan, fit, training_device
from spikecodec.train.losses import MembranePotentialLoss
from spikecodec.train.parallel import local_rows
from spikecodec.train.seeds import batch_seed, generator

MODEL_KIND = "roy-audio"


class Prepared(NamedTuple):
    """Everything the audiocoder is trained and scored on."""

    train: AudioSplit
    test: AudioSplit
    ae: RoyAE
    ae_cfg: RoyAEConfig
    images: ImageSplit  # the AE dataset's training images (the pairing pool)
    pairing: Pairing
    maps: torch.Tensor  # (len(bank), code, T_h) the bank images' hidden spike maps


def ae_config(cfg: RoyAudioConfig) -> RoyAEConfig:
    """The Roy family config of the AE-SNN this run trains (``ae`` section)."""
    a, t = cfg.ae, cfg.train
    return RoyAEConfig(
        data=RoyData(dataset=a.dataset, data_dir=a.data_dir, train_limit=a.train_limit,
                     test_limit=1000, num_steps=a.num_steps),
        model=RoyAEModelConfig(hidden=a.hidden),
        train=RoyTrain(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, seed=t.seed,
                       threads=t.threads, device=t.device),
        ann=AnnBaselineConfig(enabled=False))


def load_ae(cfg: RoyAudioConfig, run_dir: Path, *, show_progress: bool,
            log: Callable[[str], None]) -> tuple[RoyAE, RoyAEConfig]:
    """The AE-SNN: from ``ae.run_dir``, from this run's ``ae/`` folder when finished, else
    trained there now."""
    if cfg.ae.run_dir is not None:
        folder = Path(cfg.ae.run_dir)
        roy_cfg = config_io.load(RoyAEConfig, folder / "config.toml")
        for key, mine, theirs in (("dataset", cfg.ae.dataset, roy_cfg.data.dataset),
                                  ("hidden", cfg.ae.hidden, roy_cfg.model.hidden),
                                  ("num_steps", cfg.ae.num_steps, roy_cfg.data.num_steps)):
            if mine != theirs:
                raise ConfigError(f"ae.{key} is {mine!r} but the AE run {folder} has "
                                  f"{theirs!r}; set ae.{key}={theirs}")
    else:
        folder, roy_cfg = run_dir / "ae", ae_config(cfg)
        if not (folder / "results.json").is_file():
            ae = train_roy_ae(roy_cfg, folder, show_progress=show_progress,
                              log=lambda _: None)  # its epoch lines are not the run's
            log(f"AE-SNN {ae['network']} trained on {roy_cfg.data.dataset} into {folder}: "
                f"test MSE {ae['metrics']['snn']['mse']:.4f} "
                f"({ae['timing']['train_seconds']:.1f} s)")
    ckpt = load_checkpoint(folder / CHECKPOINT, model_kind=ROY_KIND)
    model = RoyAE(ckpt["in_neurons"], roy_cfg.model)
    model.load_state_dict(ckpt["model"])
    return model.eval(), roy_cfg


class SplitData(NamedTuple):
    """The recordings and their images: what scoring needs (no AE)."""

    train: AudioSplit
    test: AudioSplit
    images: ImageSplit  # the AE dataset's training images (the pairing pool)
    pairing: Pairing


def load_data(cfg: RoyAudioConfig) -> SplitData:
    """Audio splits through the front end and the pairing (deterministic given the config)."""
    d = cfg.data
    fe = d.front_end()
    kwargs = {"data_dir": d.data_dir, "download": d.download, "test_speaker": d.test_speaker}
    train = load_audio(d.audio, "train", fe, limit=d.train_limit, **kwargs)
    test = load_audio(d.audio, "test", fe, limit=d.test_limit, **kwargs)
    images = load_images(cfg.ae.dataset, "train", data_dir=cfg.ae.data_dir,
                         limit=cfg.ae.train_limit)
    pairing = pair(d.pairing, train.labels, images.images, images.labels, seed=cfg.train.seed)
    return SplitData(train, test, images, pairing)


def prepare(cfg: RoyAudioConfig, run_dir: Path, *, show_progress: bool = False,
            log: Callable[[str], None] = print) -> Prepared:
    """:func:`load_data`, the AE-SNN and the bank images' hidden maps."""
    data = load_data(cfg)
    ae, roy_cfg = load_ae(cfg, run_dir, show_progress=show_progress, log=log)
    with torch.no_grad():
        spikes = poisson_rate(data.pairing.bank, roy_cfg.data.num_steps,
                              max_rate=roy_cfg.data.max_rate,
                              generator=generator(cfg.train.seed, "targets"))
        maps = ae.encode(spikes)[..., :cfg.ae.hidden_steps].to(torch.bool)
    return Prepared(data.train, data.test, ae, roy_cfg, data.images, data.pairing, maps)


def build_model(cfg: RoyAudioConfig, prep: Prepared) -> AudioToImage:
    shape = SynthesisShape(audio=prep.train.features.shape[1], model=cfg.model,
                           ae=prep.ae_cfg.model, image=prep.ae.in_neurons)
    model = AudioToImage(shape, seed=cfg.train.seed)
    with torch.no_grad():
        model.decoder.weight.copy_(prep.ae.decoder.weight)
    return model


class AudiocoderTrainer:
    """One Adam step per batch: Poisson-encode the spectrograms, run the audiocoder, the
    membrane-potential loss of its output layer against the tiled hidden maps, BPTT."""

    def __init__(self, model: AudioToImage, prep: Prepared, cfg: RoyAudioConfig,
                 device: torch.device):
        self.model, self.prep, self.cfg, self.device = model, prep, cfg, device
        self.optimizer = torch.optim.Adam(model.audiocoder_parameters(), lr=cfg.train.lr,
                                          weight_decay=cfg.train.weight_decay)
        self.loss_fn = MembranePotentialLoss(cfg.model.threshold, xor_mask=cfg.train.xor_mask)

    def step(self, epoch: int, batch: int, index: torch.Tensor) -> dict[str, float]:
        d = self.cfg.data
        rows = local_rows(len(index))  # the whole batch's draws, then this rank's rows
        spikes = poisson_rate(self.prep.train.features[index], d.num_steps,
                              max_rate=d.max_rate,
                              seed=batch_seed(self.cfg.train.seed, epoch, batch))[rows]
        target = tile_targets(self.prep.maps[self.prep.pairing.train_index[index[rows]]],
                              d.num_steps).float().to(self.device)
        out = self.model(spikes.to(self.device), decode=False)
        loss = self.loss_fn(out.code_voltage, out.code, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        wrong = (out.code != target).float().mean().item()
        return {"loss": loss.item(), "code_bit_errors": wrong}

    def learning_rates(self) -> list[float]:
        return [self.cfg.train.lr]

    def state_dict(self) -> dict[str, Any]:
        return {}  # every draw is keyed by (seed, epoch, batch)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@torch.no_grad()
def synthesise(model: AudioToImage, features: torch.Tensor, cfg: RoyAudioConfig
               ) -> tuple[torch.Tensor, dict[str, float]]:
    """Output spike counts ``(n, pixels)`` of the chain on ``features`` with the run's ``eval``
    Poisson draws (what an export's ``inputs`` draws), and spikes per sample per layer."""
    gen = generator(cfg.train.seed, "eval")
    counts, totals = [], {"hidden": 0.0, "code": 0.0, "image": 0.0}
    device = next(model.parameters()).device
    for start in range(0, len(features), cfg.train.eval_batch_size):
        x = poisson_rate(features[start:start + cfg.train.eval_batch_size], cfg.data.num_steps,
                         max_rate=cfg.data.max_rate, generator=gen)
        out = model(x.to(device))
        counts.append(out.image.sum(-1).cpu())
        for key in totals:
            totals[key] += getattr(out, key).sum().item()
    n = max(len(features), 1)
    return torch.cat(counts), {f"{k}_spikes_per_sample": v / n for k, v in totals.items()}


def evaluate(model: AudioToImage, prep: Prepared, cfg: RoyAudioConfig) -> dict[str, Any]:
    counts, rates = synthesise(model, prep.test.features, cfg)
    scores = protocol_scores(cfg.data.pairing, counts, prep.test.labels, prep.pairing.bank,
                             prep.pairing.bank_labels)
    return {**scores, **rates}


def ann_baselines(prep: Prepared, cfg: RoyAudioConfig, *, bits: int | None = None,
                  show_progress: bool = False) -> dict[str, dict[str, float]]:
    """AC-ANN + AE-ANN test MSE, plain SGD and Adam (see :mod:`.ann`)."""
    a, out = cfg.ann, {}
    for opt in ("sgd", "adam"):
        ae = fit_ann_ae(prep.images, prep.ae_cfg, opt, show_progress=show_progress)
        out[f"ann_{opt}"] = ann_synthesis_mse(
            ae, prep.train.features, prep.pairing, prep.test.features, prep.test.labels,
            kind=cfg.data.pairing, hidden=cfg.model.hidden, bits=a.bits if bits is None else bits,
            optimizer=opt, lr=a.sgd_lr if opt == "sgd" else a.adam_lr,
            weight_decay=a.weight_decay, epochs=a.epochs, batch_size=a.batch_size,
            seed=cfg.train.seed, show_progress=show_progress)
    return out


def generated_examples(model: AudioToImage, prep: Prepared, cfg: RoyAudioConfig,
                       per_class: int = 5) -> list[tuple[str, Any]]:
    """Rows ``(digit, counts (per_class, pixels))`` of the first test recordings per digit."""
    rows = []
    counts, _ = synthesise(model, prep.test.features, cfg)
    for digit in range(10):
        idx = torch.nonzero(prep.test.labels == digit).flatten()[:per_class]
        if len(idx):
            rows.append((f"'{digit}'", counts[idx].numpy()))
    return rows


def train_roy_audio(cfg: RoyAudioConfig, run_dir: str | os.PathLike, *,
                    start: dict[str, Any] | None = None, show_progress: bool = True,
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (from the checkpoint ``start`` when resuming), evaluate, write the run folder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_io.save(cfg, run_dir / "config.toml")

    # data, AE-SNN, pairing, hidden maps; the synthesis model with the AE's decoder
    prep = prepare(cfg, run_dir, show_progress=show_progress, log=log)
    device = training_device(cfg.train.device)
    model = build_model(cfg, prep).to(device)
    trainer = AudiocoderTrainer(model, prep, cfg, device)

    # train the audiocoder
    t, d = cfg.train, cfg.data
    plan = FitPlan(kind=MODEL_KIND, epochs=t.epochs, batch_size=t.batch_size,
                   n_train=len(prep.train), seed=t.seed, checkpoint_every=t.checkpoint_every,
                   threads=t.threads, device=t.device, lr_schedule=t.lr_schedule,
                   desc="audiocoder",
                   static={"config": config_io.to_dict(cfg),
                           "ae_model": dataclasses.asdict(prep.ae_cfg.model)})
    run = fit(trainer, plan, run_dir, start=start, show_progress=show_progress, log=log)

    # evaluate the whole chain on the test recordings
    model.cpu()
    snn = evaluate(model, prep, cfg)
    results: dict[str, Any] = {
        "model": MODEL_KIND,
        "audio": d.audio, "images": cfg.ae.dataset, "pairing": d.pairing,
        "split": f"test speaker {d.test_speaker}" if d.test_speaker else "standard",
        "network": f"{prep.train.features.shape[1]}-{cfg.model.hidden}-{cfg.ae.hidden}/"
                   f"{cfg.ae.hidden}-{prep.ae.in_neurons}",
        "num_steps": d.num_steps, "hidden_steps": cfg.ae.hidden_steps,
        "epochs": t.epochs, "train_samples": len(prep.train), "test_samples": len(prep.test),
        "metrics": {"snn": snn},
        "timing": {"train_seconds": run.train_seconds,
                   "seconds_per_epoch": run.train_seconds / t.epochs,
                   "torch_threads": torch.get_num_threads()},
        "paper_mse": PAPER_MSE[d.pairing],
    }
    if cfg.ann.enabled:
        results["metrics"].update(ann_baselines(prep, cfg, show_progress=show_progress))

    # figures and results
    rows = generated_examples(model, prep, cfg)
    plots.reconstruction_grid(
        rows, prep.images.shape, run_dir / "generated.png",
        title=f"audio-to-image {d.pairing}, T_h={cfg.ae.hidden_steps}: test MSE "
              f"{snn['mse']:.3f}")
    plots.training_curve({"membrane-potential loss": run.history["loss"],
                          "code bit errors (fraction)": run.history["code_bit_errors"]},
                         run_dir / "loss.png")
    results["files"] = {n: n for n in ("config.toml", "checkpoint.pt", "metrics.csv",
                                       "generated.png", "loss.png")}
    write_json(run_dir / "results.json", results)
    return results

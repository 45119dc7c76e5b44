"""Comsa et al. 2021 as a model family: training through the registry and the one loop.

Deployment (the spike-once alpha and pulse layer kinds, their Lava processes, the discrete
fixed-point model) is the second part of this family's work and not built yet: the family says
so (``deployable = False``), ``train`` writes no export, and the export hooks raise an
:class:`~spikecodec.errors.ExportError` that says why.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch

from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.errors import ConfigError, ExportError
from spikecodec.train.families.base import ExportInputs, Family
from spikecodec.train.families.comsa.config import (
    MODEL_KIND,
    ComsaConfig,
    published,
    published_start,
    search_space,
)
from spikecodec.train.families.comsa.training import train_comsa

NOT_YET = ("Comsa et al. autoencoders cannot be exported yet: their spike-once alpha neurons "
           "and pulse sources need layer kinds and Lava processes of their own (the family's "
           "deployment part); train, evaluate and compare them in torch meanwhile")


class ComsaFamily(Family):
    name = MODEL_KIND
    title = ("Comsa et al. 2021 temporal-coding autoencoder (spike-once alpha neurons, exact "
             "spike-time gradients, learnable pulses)")
    config_type = ComsaConfig
    deployable = False
    smoke_settings = ("data.dataset=digits", "data.train_limit=120", "data.test_limit=30",
                      "model.hidden=8", "model.pulses=3", "train.epochs=2",
                      "train.batch_size=32", "ann.enabled=false")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--published", metavar="NOISE,LATENCY,HIDDEN",
                            help="the authors' tuned hyperparameters for this condition, e.g. "
                                 "0.0,1,32 (75 published; --set still wins)")

    def cli_overrides(self, args: argparse.Namespace) -> list[str]:
        extra = []
        if args.published:
            parts = args.published.split(",")
            try:
                noise, latency, hidden = float(parts[0]), int(parts[1]), int(parts[2])
            except (ValueError, IndexError):
                raise ConfigError(f"--published takes NOISE,LATENCY,HIDDEN, e.g. 0.0,1,32; got "
                                  f"{args.published!r}") from None
            extra = published(noise, latency, hidden)
        return extra + super().cli_overrides(args)

    def run_name(self, cfg: ComsaConfig) -> str:
        return (f"{self.name}-{cfg.data.dataset}-h{cfg.model.hidden}-l{cfg.model.latency:g}"
                f"-n{cfg.data.noise:g}")

    def train(self, cfg: ComsaConfig, run_dir: Path, *, start: dict[str, Any] | None,
              show_progress: bool, log: Callable[[str], None]) -> dict[str, Any]:
        results = train_comsa(cfg, run_dir, start=start, show_progress=show_progress, log=log)
        return {k: v for k, v in results.items() if not k.startswith("_")}

    prune_metric = "val_mse"  # the validation MSE end_epoch measures after every epoch

    def search_space(self, cfg: ComsaConfig) -> dict[str, Any]:
        return search_space(cfg)

    def warm_starts(self, cfg: ComsaConfig) -> list[dict[str, str]]:
        return published_start(cfg)

    def sweep_objective(self, results: dict[str, Any]) -> float:
        """The best epoch's MSE on the VALIDATION split (held out of the training images;
        the test split stays untouched by the sweep)."""
        return float(results["metrics"]["validation"]["mse"])

    def format_results(self, results: dict[str, Any]) -> str:
        m = results["metrics"]
        fmt = "{:<26} {:>10} {:>10} {:>14}"
        lines = [f"Comsa AE {results['network']} on {results['dataset']} (latency "
                 f"{results['latency']:g}, noise {results['noise']:g}, {results['pulses']} "
                 f"pulses/layer, {results['epochs']} epoch(s), best on validation: epoch "
                 f"{results['best_epoch']})",
                 fmt.format("model", "test MSE", "pixel MSE", "silent outputs")]
        test = m["test"]
        lines.append(fmt.format("SNN", f"{test['mse']:.4f}", f"{test['pixel_mse']:.4f}",
                                f"{100 * test['silent_outputs']:.1f}%"))
        for key, label in (("ann_plain", "ANN (plain images)"),
                           ("ann_inverted", "ANN (inverted images)")):
            if key in m:
                lines.append(fmt.format(label, f"{m[key]['mse']:.4f}", "-", "-"))
        t = results["timing"]
        lines.append(f"training: {t['mean_seconds_per_epoch']:.1f} s/epoch, "
                     f"{t['train_samples_per_second']:.0f} samples/s ({t['device']}, "
                     f"{t['torch_threads']} threads, {t['dtype']}); hidden spikes/sample "
                     f"{test['hidden_spikes_per_sample']:.1f}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ deployment (part 2)
    def export(self, run_dir: Path, ckpt: dict[str, Any]) -> NoReturn:
        raise ExportError(NOT_YET)

    def rebuild(self, net: FixedPointNetwork) -> NoReturn:
        raise ExportError(NOT_YET)

    def layer_outputs(self, model: torch.nn.Module, spikes: torch.Tensor) -> NoReturn:
        raise ExportError(NOT_YET)

    def inputs(self, net: FixedPointNetwork, **kwargs: Any) -> NoReturn:
        raise ExportError(NOT_YET)

    def score(self, net: FixedPointNetwork, inputs: ExportInputs, spikes: np.ndarray
              ) -> NoReturn:
        raise ExportError(NOT_YET)

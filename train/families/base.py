"""What a model family is: the hooks every command calls, declared once.

A family (Roy et al.'s AE-SNN, VDIB, ...) is one folder under ``train/families/`` holding a
:class:`Family` subclass and one line in ``train/families/__init__.py``. The CLI, the
workflows (export, evaluate, parity, quickstart) and the tests loop over the registry; nothing
dispatches on a model's name. Every hook is abstract, so a family that misses one cannot be
instantiated, let alone registered.

The life of a run, and the hook that does each part:

=====================  =======================================================================
train                  :meth:`Family.train` (config -> run directory, through ``train.fit``)
report                 :meth:`Family.format_results`
export                 :meth:`Family.export` (run directory + checkpoint -> FixedPointNetwork)
rebuild                :meth:`Family.rebuild`, :meth:`Family.layer_outputs` (parity's float row)
inputs for a split     :meth:`Family.inputs` (the export's own config says how to draw them)
score                  :meth:`Family.score` (backend output spikes -> the family's metrics)
=====================  =======================================================================
"""
from __future__ import annotations

import argparse
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.errors import ConfigError, ExportError
from spikecodec.train import config as config_io

# What ``train --resume RUN_DIR --set ...`` may change: the length of the run, how often it
# saves, threads, learning rates, and switching on deployment-aware fine-tuning and the images
# per epoch from then on (Comsa). Anything else would make the resumed run a different
# experiment.
RESUME_SAFE = re.compile(
    r"^train\.(epochs|checkpoint_every|threads|lr\w*|deploy_aware|epoch_samples)$")


class ExportInputs(NamedTuple):
    """What an export is fed for one split, and what its outputs are scored against."""

    spikes: torch.Tensor  # (n, in, T) 0/1
    labels: torch.Tensor | None  # (n,) class labels, when the data have them
    target: Any  # what :meth:`Family.score` compares with (images, decoder references, ...)
    context: Any  # family-specific (e.g. the rebuilt task)
    description: str  # e.g. "digits test"


class Family(ABC):
    """One model family. Subclasses set the class attributes and implement every hook."""

    name: ClassVar[str]  # the CLI's and the checkpoint's model kind, e.g. "roy-ae"
    title: ClassVar[str]  # one line for help texts
    config_type: ClassVar[type]  # the frozen config dataclass (loaded by train.config)
    # parity: engines whose every layer must equal the reference engine's, spike for spike
    exact_engines: ClassVar[tuple[str, ...]] = ("reference", "lava-sim")
    # whether its runs export (False while a family's layer kinds are not built: train writes
    # no export and the deployment hooks raise ExportError saying why)
    deployable: ClassVar[bool] = True
    # overrides for a seconds-long run on the embedded data (at least 2 epochs of >= 3 batches):
    # what the family tests train, export, resume and score, for every registered family
    smoke_settings: ClassVar[tuple[str, ...]]

    # ------------------------------------------------------------------ command line
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Options of ``spikecodec train NAME`` beyond the common ones."""
        parser.add_argument("--dataset", help="dataset (default: the config's)")
        parser.add_argument("--data-dir", help="folder with the dataset files")
        parser.add_argument("--download", action="store_true",
                            help="allow downloading the dataset (needs internet)")

    def cli_overrides(self, args: argparse.Namespace) -> list[str]:
        """Command-line options as config overrides (``--set`` ones come after and win)."""
        pairs = [("data.dataset", args.dataset), ("data.data_dir", args.data_dir),
                 ("data.download", "true" if args.download else None)]
        return [f"{key}={value}" for key, value in pairs if value]

    def check_config(self, cfg: Any) -> None:
        """Refuse a config before any run folder is made (cross-field checks)."""
        return None

    @abstractmethod
    def run_name(self, cfg: Any) -> str:
        """Default run folder name, e.g. ``roy-ae-digits``."""

    # ------------------------------------------------------------------ training
    @abstractmethod
    def train(self, cfg: Any, run_dir: Path, *, start: dict[str, Any] | None,
              show_progress: bool, log: Callable[[str], None]) -> dict[str, Any]:
        """Train (from the checkpoint ``start`` when resuming), evaluate, write the run
        directory (config.toml, checkpoint.pt, metrics.csv, results.json, figures); return the
        results (JSON-able)."""

    @abstractmethod
    def format_results(self, results: dict[str, Any]) -> str:
        """The results of :meth:`train` as a few lines of text."""

    # ------------------------------------------------------------------ sweeps
    # the per-epoch value a sweep's pruner watches (a key of the epoch's means in metrics.csv)
    prune_metric: ClassVar[str] = "loss"

    def search_space(self, cfg: Any) -> dict[str, Any]:
        """What ``spikecodec sweep NAME`` searches around ``cfg``: dotted config keys to
        :mod:`spikecodec.train.search` ranges (declared beside the family's config)."""
        raise ConfigError(f"the {self.name} family declares no search space")

    def warm_starts(self, cfg: Any) -> list[dict[str, str]]:
        """Known good points of the search space for ``cfg``, tried first (key -> value)."""
        return []

    def sweep_objective(self, results: dict[str, Any]) -> float:
        """The value a sweep minimises, from :meth:`train`'s results."""
        raise ConfigError(f"the {self.name} family declares no sweep objective")

    # ------------------------------------------------------------------ deployment
    @abstractmethod
    def export(self, run_dir: Path, ckpt: dict[str, Any]) -> FixedPointNetwork:
        """The trained network of ``run_dir`` (its checkpoint ``ckpt``) in fixed point."""

    @abstractmethod
    def rebuild(self, net: FixedPointNetwork) -> torch.nn.Module:
        """The training model with the export's weights (parity's float row)."""

    @abstractmethod
    def layer_outputs(self, model: torch.nn.Module, spikes: torch.Tensor
                      ) -> list[torch.Tensor]:
        """Every layer's spikes ``(batch, neurons, time)`` of a rebuilt model, export order."""

    @abstractmethod
    def inputs(self, net: FixedPointNetwork, *, split: str = "test", samples: int | None = None,
               dataset: str | None = None, data_dir: str | None = None,
               download: bool = False) -> ExportInputs:
        """The first ``samples`` of ``split`` as the export's config draws them (the seeds of
        the training run's evaluation); ``dataset``/``data_dir`` replace the stored ones."""

    @abstractmethod
    def score(self, net: FixedPointNetwork, inputs: ExportInputs, spikes: np.ndarray
              ) -> dict[str, float]:
        """The family's metrics of output spikes ``(n, out, T)``; ``mse`` first."""

    def require_scorable(self, net: FixedPointNetwork) -> None:
        """Raise (a typed error saying why) when :meth:`score` cannot score ``net``'s outputs,
        before any backend time is spent (e.g. an export without its host decoder)."""
        return None

    def decode(self, net: FixedPointNetwork, inputs: ExportInputs | None, spikes: np.ndarray
               ) -> np.ndarray | None:
        """Host-side estimates of output spikes, for families with a host decoder."""
        return None

    def parity_details(self, net: FixedPointNetwork, inputs: ExportInputs,
                       layers: list[np.ndarray]) -> dict[str, Any] | None:
        """What ``spikecodec check`` adds to the parity table for this family, given the
        reference engine's spikes of every layer: JSON-able data plus ``text`` (lines to
        print); ``None``: nothing (e.g. Comsa compares the deployed spike times with its
        continuous model)."""
        return None

    def training_metrics(self, net: FixedPointNetwork) -> list[tuple[str, dict[str, Any]]]:
        """``(label, metrics)`` the training run measured, stored in the export (eval prints
        them beside the deployed figures)."""
        rows = (("float", net.metadata.float_metrics),
                ("quantized", net.metadata.quantized_metrics))
        return [(label, dict(m)) for label, m in rows if m is not None]

    # ------------------------------------------------------------------ shared helpers
    def load_config(self, path: str | Path | None, overrides: list[str]) -> Any:
        return config_io.load(self.config_type, path, overrides)

    def export_config(self, net: FixedPointNetwork) -> Any:
        """The training config an export carries (``metadata.config_toml``)."""
        text = net.metadata.config_toml
        if not isinstance(text, str):
            raise ExportError(f"this {self.name} export has no training config (metadata "
                              f"config_toml), so its inputs cannot be rebuilt; export it with "
                              f"`spikecodec export`")
        try:
            data = config_io.tomllib.loads(text)
        except config_io.tomllib.TOMLDecodeError as err:
            raise ExportError(f"the export's config_toml is not valid TOML: {err}") from err
        return config_io.from_dict(self.config_type, data)


def check_split(split: str) -> str:
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    return split

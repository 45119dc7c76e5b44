"""Configuration of the Comsa et al. 2021 family (frozen dataclasses; the comments say why).

The defaults are the published tuned configuration for MNIST at noise 0, latency 1, 32 hidden
neurons (``hyperparameters.csv`` beside this file, from the authors' repository), except the
dataset (the embedded digits) and the number of epochs (the paper trains 100).
:func:`published` returns the overrides of any of the 75 published conditions
(``spikecodec train comsa --published NOISE,LATENCY,HIDDEN``).

Units: time is in units of the input interval (inputs spike in [0, 1]); ``decay`` is K in the
alpha kernel ``w (t - t_i) exp(-K (t - t_i))``, per unit time.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from spikecodec.errors import ConfigError
from spikecodec.train.config import OMIT_DEFAULT
from spikecodec.train.datasets import DATASETS
from spikecodec.train.fit import check_loop_settings
from spikecodec.train.search import Float, Int, Param

MODEL_KIND = "comsa"
WEIGHT_BITS_MAX = 8  # a Loihi 2 synapse's signed weight mantissa
NOISE_DRAWS = ("once", "epoch")
DTYPES = ("float32", "float64")
TABLE = Path(__file__).with_name("hyperparameters.csv")
# table column -> config key
_COLUMNS = {"n_pulses": "model.pulses", "batch_size": "train.batch_size",
            "decay_rate": "model.decay", "fire_threshold": "model.threshold",
            "learning_rate": "train.lr", "learning_rate_pulses": "train.lr_pulses",
            "clip_derivative": "train.clip_derivative",
            "penalty_no_spike": "train.penalty_no_spike",
            "nonpulse_weight_mean_multiplier": "model.weight_mean",
            "pulse_weight_mean_multiplier": "model.pulse_weight_mean"}


def _positive(where: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{where} must be a finite number > 0, got {value!r}")


def _non_negative(where: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ConfigError(f"{where} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class ComsaDataConfig:
    dataset: str = "digits"  # digits (embedded), mnist, fashion-mnist
    data_dir: str | None = None  # None: $SPIKECODEC_DATA or ~/.cache/spikecodec/data
    download: bool = False
    validation_fraction: float = 0.1  # held out of the training split (MNIST: 54k / 6k)
    train_limit: int | None = None  # first N training images (before the validation cut)
    test_limit: int | None = None
    noise: float = 0.0  # eta of eq. 6: x' = clamp(x + eta r, 0, 1), r ~ N(1, 1) in time space
    noise_draw: str = "once"  # once: drawn at load for every split (the C++ code); epoch: the
    #                           training inputs are redrawn every epoch (validation/test fixed)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError(f"data.dataset must be one of {DATASETS}, got {self.dataset!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ConfigError(f"data.validation_fraction must be in (0, 1), got "
                              f"{self.validation_fraction!r}")
        _non_negative("data.noise", self.noise)
        if self.noise_draw not in NOISE_DRAWS:
            raise ConfigError(f"data.noise_draw must be one of {NOISE_DRAWS}, got "
                              f"{self.noise_draw!r}")
        for name in ("train_limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise ConfigError(f"data.{name} must be >= 2 or unset, got {value}")


@dataclass(frozen=True)
class ComsaModelConfig:
    hidden: int = 32  # embedding size h
    latency: float = 1.0  # target latency l: output pixel k should spike at l + t_k
    pulses: int = 10  # synchronisation pulses per layer (learned times and weights)
    decay: float = 0.172556  # K, the alpha kernel's rate per unit time
    threshold: float = 0.834236  # theta
    weight_mean: float = -7.038462  # initial mean of regular weights, in units of sigma
    pulse_weight_mean: float = 4.213218  # initial mean of pulse weights, in units of sigma

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise ConfigError(f"model.hidden must be >= 1, got {self.hidden}")
        if self.pulses < 0:
            raise ConfigError(f"model.pulses must be >= 0, got {self.pulses}")
        _non_negative("model.latency", self.latency)
        _positive("model.decay", self.decay)
        _positive("model.threshold", self.threshold)
        for name in ("weight_mean", "pulse_weight_mean"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"model.{name} must be finite, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class ComsaTrainConfig:
    epochs: int = 20
    batch_size: int = 7
    lr: float = 0.001676  # Adam, weights
    lr_pulses: float = 0.001441  # Adam, pulse times (own learning rate and Adam state)
    clip_derivative: float = 386.058227  # each dt_out/dw and dt_out/dt_in clipped to +-this
    penalty_no_spike: float = 6.250341  # pushes up the weights of neurons that stay silent
    seed: int = 0
    eval_batch_size: int = 500
    checkpoint_every: int | None = None  # batches between mid-epoch checkpoints
    dtype: str = "float32"  # float64 is the C++ code's precision (about 2x slower here)
    # torch CPU threads. 1, measured: a quiet 2-core machine trains an MNIST epoch in 26.5 s
    # with 1 thread, 24.4 s with 2 (benchmarks/comsa_training_speed.py), but 2 threads collapse
    # when another process holds a core (an epoch took 207 s instead of ~20 s here); 0 keeps
    # torch's default
    threads: int = 1
    device: str = "cpu"
    # learning-rate schedule over the whole run (train/fit.py lr_factor): constant | cosine
    lr_schedule: str = field(default="constant", metadata=OMIT_DEFAULT)
    # the forward is the deployed discrete fixed-point model, the backward the exact spike-time
    # gradient (finetune.py); validation then selects on the deployed model's MSE. Meant for
    # fine-tuning: `train comsa --resume RUN --set train.epochs=N --set train.deploy_aware=true`
    deploy_aware: bool = False
    # training images per epoch: each epoch draws its own random subset of this many (a pure
    # function of seed and epoch, so resuming stays bit-exact); None: all of them. Bounds the
    # cost of an epoch, e.g. deployment-aware fine-tuning at l = 16 (T = 552 steps)
    epoch_samples: int | None = None
    # train the continuous model on the deployed weight grid (quantize.py's WeightGrid): its
    # weights and pulse weights rounded every step to the per-layer grid of a signed mantissa of
    # this many bits (8: Loihi 2's), the gradient straight through; the export then uses the same
    # grid. None: float weights (the paper). The time grid stays continuous
    weight_bits: int | None = None

    def __post_init__(self) -> None:
        check_loop_settings(self)
        if self.weight_bits is not None and (isinstance(self.weight_bits, bool)
                                             or not isinstance(self.weight_bits, int)
                                             or not 2 <= self.weight_bits <= WEIGHT_BITS_MAX):
            raise ConfigError(f"train.weight_bits must be an integer in [2, {WEIGHT_BITS_MAX}] "
                              f"(Loihi 2's weight mantissa) or unset, got {self.weight_bits!r}")
        if self.epoch_samples is not None and (isinstance(self.epoch_samples, bool)
                                               or not isinstance(self.epoch_samples, int)
                                               or self.epoch_samples < 1):
            raise ConfigError(f"train.epoch_samples must be an integer >= 1 or unset, got "
                              f"{self.epoch_samples!r}")
        for name in ("lr", "lr_pulses", "clip_derivative"):
            _positive(f"train.{name}", getattr(self, name))
        _non_negative("train.penalty_no_spike", self.penalty_no_spike)
        if self.dtype not in DTYPES:
            raise ConfigError(f"train.dtype must be one of {DTYPES}, got {self.dtype!r}")


@dataclass(frozen=True)
class ComsaAnnConfig:
    enabled: bool = True  # the paper's ANN baseline (same sizes, optimiser and epochs)


@dataclass(frozen=True)
class ComsaDeployConfig:
    """The time grid of the deployed (discrete, fixed-point) model: quantize.py."""

    # grid steps per unit time (the input interval): dt = 1 / steps_per_unit. 32 keeps the
    # decay exact to 2.3% at K = 0.1726 (4096 (1 - e^{-K dt}) = 22.0 -> 22) and the spike-time
    # rounding at 1/64 of the interval; benchmarks/comsa_deploy.py measures others
    steps_per_unit: int = 32
    # horizon beyond latency + input interval (outputs should spike in [l, l + 1]; a background
    # pixel that spikes after the horizon reads as silent, i.e. as background: no loss)
    margin: float = 0.25

    def __post_init__(self) -> None:
        if isinstance(self.steps_per_unit, bool) or not isinstance(self.steps_per_unit, int) \
                or not 1 <= self.steps_per_unit <= 4096:
            raise ConfigError(f"deploy.steps_per_unit must be an integer in [1, 4096], got "
                              f"{self.steps_per_unit!r}")
        _non_negative("deploy.margin", self.margin)


@dataclass(frozen=True)
class ComsaConfig:
    data: ComsaDataConfig = field(default_factory=ComsaDataConfig)
    model: ComsaModelConfig = field(default_factory=ComsaModelConfig)
    train: ComsaTrainConfig = field(default_factory=ComsaTrainConfig)
    ann: ComsaAnnConfig = field(default_factory=ComsaAnnConfig)
    deploy: ComsaDeployConfig = field(default_factory=ComsaDeployConfig)


@cache
def _table() -> dict[tuple[float, int, int], dict[str, str]]:
    rows = [line for line in TABLE.read_text().splitlines() if not line.startswith("#")]
    out = {}
    for row in csv.DictReader(rows):
        key = (float(row["noise_factor_ae"]), int(row["latency_ae"]), int(row["n_hidden"]))
        out[key] = row
    return out


def published(noise: float, latency: int, hidden: int) -> list[str]:
    """Config overrides (``key=value``) of the published tuned configuration for MNIST at
    noise ``noise``, latency ``latency`` and ``hidden`` hidden neurons (75 conditions)."""
    table = _table()
    key = (float(noise), int(latency), int(hidden))
    if key not in table:
        noises = sorted({k[0] for k in table})
        latencies = sorted({k[1] for k in table})
        sizes = sorted({k[2] for k in table})
        raise ConfigError(f"no published configuration for noise {noise}, latency {latency}, "
                          f"hidden {hidden}; published: noise {noises}, latency {latencies}, "
                          f"hidden {sizes}")
    row = table[key]
    return [f"data.noise={noise}", f"model.latency={float(latency)}",
            f"model.hidden={int(hidden)}"] + [f"{cfg}={row[col]}" for col, cfg in
                                                _COLUMNS.items()]


def search_space(cfg: ComsaConfig) -> dict[str, Param]:
    """The paper's Table 1 search ranges (log-scaled where it marks them so)."""
    return {"model.decay": Float(0.1, 2.0),  # decay_constant (tau)
            "model.threshold": Float(0.1, 1.5),  # fire_threshold (theta)
            "model.pulses": Int(0, 10),  # n_pulses
            "model.weight_mean": Float(-10.0, 10.0),  # nonpulse_init_multiplier
            "model.pulse_weight_mean": Float(-10.0, 10.0),  # pulse_init_multiplier
            "train.batch_size": Int(1, 1000, log=True),
            "train.clip_derivative": Float(1.0, 1000.0),
            "train.penalty_no_spike": Float(0.0, 100.0),
            "train.lr": Float(1e-5, 1.0, log=True),
            "train.lr_pulses": Float(1e-5, 1.0, log=True)}


def published_start(cfg: ComsaConfig) -> list[dict[str, str]]:
    """The published configuration of ``cfg``'s (noise, latency, hidden) as a warm-start trial
    (its searched keys only; none when the paper has no row for the condition)."""
    try:
        row = published(cfg.data.noise, int(cfg.model.latency), cfg.model.hidden)
    except ConfigError:
        return []
    space = search_space(cfg)
    return [{k: v for k, v in (item.split("=", 1) for item in row) if k in space}]

"""Configuration of the Roy et al. 2019 AE-SNN family (frozen dataclasses; the comments say why).

Every field is what ``--set key=value`` and a TOML file set; the resolved config is saved as
``config.toml`` beside every run and inside every export.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from spikecodec.errors import ConfigError
from spikecodec.train.config import OMIT_DEFAULT
from spikecodec.train.datasets import DATASETS
from spikecodec.train.families.roy.model import RoyAEModelConfig
from spikecodec.train.fit import check_loop_settings
from spikecodec.train.search import Float, Int, Param

# Table 1 of the paper (test MSE): SNN, ANN (SGD), ANN (Adam).
PAPER_MSE = {
    ("mnist", 196): {"snn": 0.357, "ann_sgd": 0.226, "ann_adam": 0.122},
    ("fashion-mnist", 512): {"snn": 0.178, "ann_sgd": 0.416, "ann_adam": 0.300},
    ("fashion-mnist", 1024): {"snn": 0.140, "ann_sgd": 0.418, "ann_adam": 0.387},
}


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "digits"  # one of spikecodec.train.datasets.DATASETS
    data_dir: str | None = None  # None: $SPIKECODEC_DATA or ~/.cache/spikecodec/data
    download: bool = False  # allow torchvision downloads (needs internet)
    train_limit: int | None = None  # use only the first N training images
    test_limit: int | None = None
    num_steps: int = 15  # T, the spike-train duration (paper: 15 MNIST, 60 Fashion-MNIST)
    max_rate: float = 1.0  # Poisson spike probability per step of a white pixel

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError(f"data.dataset must be one of {', '.join(DATASETS)}; "
                              f"got {self.dataset!r}")
        if self.num_steps < 1:
            raise ConfigError(f"data.num_steps must be >= 1, got {self.num_steps}")
        if not 0 < self.max_rate <= 1:
            raise ConfigError(f"data.max_rate must be in (0, 1], got {self.max_rate}")
        for name in ("train_limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"data.{name} must be >= 1 or unset, got {value}")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 1
    batch_size: int = 100
    lr: float = 2e-3  # Adam; one step per batch (see module docstring)
    weight_decay: float = 1e-4  # paper: 1e-4
    xor_mask: bool = True  # the paper's XOR error mask (essential per its Fig. 3b)
    seed: int = 0  # weights, shuffling and Poisson draws all derive from it
    checkpoint_every: int = 100  # batches between checkpoints (and at every epoch end)
    eval_batch_size: int = 1000
    # torch CPU threads. 1, measured (benchmarks/reference_under_load.py --workload training,
    # Roy AE 784-196-784, 2 cores): beside a busy core 1 thread kept 0.96 of its quiet speed,
    # 2 threads 0.30 (quiet, 2 are ~1.45x faster); 0 keeps torch's default
    threads: int = 1
    device: str = "cpu"  # "cuda" trains on a GPU; spikes are drawn on the CPU either way
    # learning-rate schedule over the whole run (train/fit.py lr_factor): constant | cosine
    lr_schedule: str = field(default="constant", metadata=OMIT_DEFAULT)

    def __post_init__(self) -> None:
        check_loop_settings(self)
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"train.weight_decay must be >= 0, got {self.weight_decay}")


@dataclass(frozen=True)
class AnnBaselineConfig:
    enabled: bool = True  # train the AE-ANN baselines of the same size after the SNN
    sgd_lr: float = 0.1  # paper
    adam_lr: float = 5e-3  # the paper's 0.1 diverges with Adam; 5e-3 was best of 1e-3/5e-3
    weight_decay: float = 1e-4


@dataclass(frozen=True)
class RoyAEConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: RoyAEModelConfig = field(default_factory=RoyAEModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    ann: AnnBaselineConfig = field(default_factory=AnnBaselineConfig)


def search_space(cfg: RoyAEConfig) -> dict[str, Param]:
    """What ``spikecodec sweep roy-ae`` searches: the learning rate, the leak and T."""
    return {"train.lr": Float(1e-4, 1e-2, log=True),  # the default 2e-3 in the middle
            "model.leak": Float(0.01, 0.5),  # alpha; the paper's best is 0.1
            "data.num_steps": Int(5, 60)}  # paper: 15 (MNIST) and 60 (Fashion-MNIST)

"""Configuration of Roy et al.'s audio-to-image synthesis (frozen dataclasses; comments say why).

The run trains (or reuses) an AE-SNN on images, turns each paired image into its hidden spike
map, trains the spiking audiocoder to emit that map from spoken digits, and exports audiocoder +
the AE's decoder layer as one network.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from spikecodec.errors import ConfigError
from spikecodec.train.audio import AUDIO_DATASETS, FrontEnd
from spikecodec.train.datasets import DATASETS
from spikecodec.train.families.roy.config import TrainConfig as RoyTrainConfig
from spikecodec.train.search import Float, Int, Param

# Table 1 of the paper (test MSE on TI-46 + MNIST): SNN, ANN (SGD), ANN (Adam)
PAPER_MSE = {"A": {"snn": 0.254, "ann_sgd": 0.408, "ann_adam": 0.144},
             "B": {"snn": 0.543, "ann_sgd": 0.611, "ann_adam": 0.556}}
PAIRINGS = ("A", "B")


@dataclass(frozen=True)
class DataConfig(FrontEnd):
    """The spoken digits, their front end (:class:`~spikecodec.train.audio.FrontEnd`), the
    pairing with images and the audio spike trains."""

    audio: str = "fsdd"  # spikecodec.train.audio.AUDIO_DATASETS ("tones": synthetic, offline)
    data_dir: str | None = None  # folder holding fsdd/recordings (None: $SPIKECODEC_DATA ...)
    download: bool = False  # FSDD has no maintained downloader: True only changes the message
    test_speaker: str | None = None  # speaker-independent split: this speaker is the test set
    pairing: str = "A"  # A: one image per class; B: a random image of its class per recording
    train_limit: int | None = None  # first N training recordings (they cover every digit)
    test_limit: int | None = None
    num_steps: int = 60  # T_a, audio spike-train duration (paper: 60)
    max_rate: float = 1.0  # Poisson spike probability per step of a spectrogram value of 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.audio not in AUDIO_DATASETS:
            raise ConfigError(f"data.audio must be one of {', '.join(AUDIO_DATASETS)}; got "
                              f"{self.audio!r}")
        if self.pairing not in PAIRINGS:
            raise ConfigError(f"data.pairing must be 'A' or 'B', got {self.pairing!r}")
        if self.num_steps < 1:
            raise ConfigError(f"data.num_steps must be >= 1, got {self.num_steps}")
        if not 0 < self.max_rate <= 1:
            raise ConfigError(f"data.max_rate must be in (0, 1], got {self.max_rate}")
        for name in ("train_limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"data.{name} must be >= 1 or unset, got {value}")

    def front_end(self) -> FrontEnd:
        return FrontEnd(**{f: getattr(self, f) for f in FrontEnd.__dataclass_fields__})


@dataclass(frozen=True)
class AEConfig:
    """The image autoencoder whose hidden spike map is the audiocoder's target. Trained inside
    the run (folder ``ae/``) with the Roy family, unless ``run_dir`` names a finished roy-ae run,
    whose config must then agree with ``dataset``, ``hidden`` and ``num_steps``."""

    run_dir: str | None = None
    dataset: str = "mnist"  # images paired with the recordings (and the AE's training set)
    data_dir: str | None = None
    hidden: int = 196  # the code: 196 neurons in the paper
    num_steps: int = 15  # T of the AE (paper: 15)
    hidden_steps: int = 15  # T_h, the kept steps of the hidden map (paper: 15 for A, 10 for B)
    epochs: int = 1  # paper: 1
    lr: float = 2e-3  # Roy family default (one Adam step per batch)
    batch_size: int = 100
    train_limit: int | None = None

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError(f"ae.dataset must be one of {', '.join(DATASETS)}; got "
                              f"{self.dataset!r}")
        if not 1 <= self.hidden_steps <= self.num_steps:
            raise ConfigError(f"ae.hidden_steps must be in [1, ae.num_steps={self.num_steps}], "
                              f"got {self.hidden_steps}")
        for name in ("hidden", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ae.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class ModelConfig:
    """The audiocoder: ``audio -> hidden -> code`` CUBA LIF layers (Roy's neuron)."""

    hidden: int = 512  # paper: 2048 (see the README for what we ran)
    threshold: float = 1.0
    leak: float = 0.1  # paper: 0.1
    scale: int = 256  # weight mantissa = weight * scale
    surrogate_slope: float = 1.0
    init_scale: float = 1.0
    bf16_grads: bool = True

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise ConfigError(f"model.hidden must be >= 1, got {self.hidden}")
        if not 0.0 <= self.leak <= 1.0:
            raise ConfigError(f"model.leak must be in [0, 1], got {self.leak}")


@dataclass(frozen=True)
class TrainConfig(RoyTrainConfig):
    """Roy's training table (its checks included) with the audiocoder's paper defaults."""

    epochs: int = 20  # paper: 20
    batch_size: int = 50  # paper: 50
    lr: float = 1e-3  # Adam, one step per batch (the paper's 5e-5 steps at every time step)
    eval_batch_size: int = 100


@dataclass(frozen=True)
class AnnConfig:
    """The ANN baselines: AE-ANN on the images, AC-ANN (same sizes) onto its hidden vector
    quantized to ``2**bits`` levels (0: not quantized), plain SGD and Adam."""

    enabled: bool = True
    bits: int = 0
    epochs: int = 20  # paper: 20
    batch_size: int = 100  # paper: 100
    sgd_lr: float = 0.1
    adam_lr: float = 1e-3
    weight_decay: float = 1e-4  # paper

    def __post_init__(self) -> None:
        if not 0 <= self.bits <= 16:
            raise ConfigError(f"ann.bits must be in [0, 16], got {self.bits}")


@dataclass(frozen=True)
class RoyAudioConfig:
    data: DataConfig = field(default_factory=DataConfig)
    ae: AEConfig = field(default_factory=AEConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    ann: AnnConfig = field(default_factory=AnnConfig)


def search_space(cfg: RoyAudioConfig) -> dict[str, Param]:
    """What ``spikecodec sweep roy-audio`` searches: the audiocoder's learning rate, its leak
    and hidden width, and T_h (bounded by the AE's T)."""
    return {"train.lr": Float(1e-4, 1e-2, log=True),  # the default 1e-3 in the middle
            "model.leak": Float(0.01, 0.5),  # paper: 0.1
            "model.hidden": Int(64, 2048, log=True),  # paper: 2048
            "ae.hidden_steps": Int(1, cfg.ae.num_steps)}

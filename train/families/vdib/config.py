"""Configuration of the VDIB family (frozen dataclasses; the comments say why)."""
from __future__ import annotations

from dataclasses import dataclass, field

from spikecodec.errors import ConfigError
from spikecodec.lava_procs.stochastic_readout.dynamics import check_seed
from spikecodec.train.config import OMIT_DEFAULT
from spikecodec.train.families.vdib.learning import check_beta, check_probability
from spikecodec.train.families.vdib.model import VDIBModelConfig
from spikecodec.train.families.vdib.tasks import BLOBS_PROTOCOLS
from spikecodec.train.fit import check_loop_settings
from spikecodec.train.search import Float, Int, Param

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
    # paper: one spike per blob, reference = the pair of inputs driven delta steps ago, decoded
    # by one softmax over pairs (tasks.py); smooth: this project's first version. None (the
    # default) = paper; None is not written to config.toml, so exports of other tasks made
    # before this key existed stay byte for byte the same
    blobs_protocol: str | None = None
    # events
    bin_us: int = 10_000  # event bin (10 ms, the paper's MNIST-DVS setting)
    mnist_dir: str | None = None  # where the class reference images (MNIST) are; None: data_dir
    dvs_scale: int | None = None  # mnist-dvs: keep one recording scale (4, 8, 16); None: all

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"data.task must be one of {TASKS}, got {self.task!r}")
        if self.num_steps < 1:
            raise ConfigError(f"data.num_steps must be >= 1, got {self.num_steps}")
        if not 0 < self.max_rate <= 1:
            raise ConfigError(f"data.max_rate must be in (0, 1], got {self.max_rate}")
        if self.delta < 0:
            raise ConfigError(f"data.delta must be >= 0, got {self.delta}")
        if self.blobs_protocol is not None and self.blobs_protocol not in BLOBS_PROTOCOLS:
            raise ConfigError(f"data.blobs_protocol must be one of {BLOBS_PROTOCOLS}, "
                              f"got {self.blobs_protocol!r}")


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
    # decoders estimating at every step: a readout spike is credited with the estimates whose
    # window holds it, the one k steps later weighted by credit_discount^k. 1: all equally
    # (exact without readout feedback); 0: its own step's only (biased, much less variance)
    credit_discount: float = field(default=1.0, metadata=OMIT_DEFAULT)
    baseline_momentum: float = 0.9
    seed: int = 0
    checkpoint_every: int | None = None  # batches between mid-epoch checkpoints; None: epoch ends
    eval_batch_size: int = 500
    # torch CPU threads. 1, measured (benchmarks/reference_under_load.py --workload training,
    # Roy AE 784-196-784, 2 cores): beside a busy core 1 thread kept 0.96 of its quiet speed,
    # 2 threads 0.30 (quiet, 2 are ~1.45x faster); 0 keeps torch's default
    threads: int = 1
    device: str = "cpu"
    # learning-rate schedule over the whole run (train/fit.py lr_factor): constant | cosine
    lr_schedule: str = field(default="constant", metadata=OMIT_DEFAULT)

    def __post_init__(self) -> None:
        check_loop_settings(self)
        for name in ("lr_decoder", "lr_encoder"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"train.{name} must be > 0, got {getattr(self, name)}")
        check_beta(self.beta, "train.beta")
        check_probability("train.prior", self.prior)
        check_seed(self.seed)
        if isinstance(self.credit_discount, bool) or not 0.0 <= self.credit_discount <= 1.0:
            raise ConfigError("train.credit_discount must be a number in [0, 1], got "
                              f"{self.credit_discount!r}")
        if self.rule not in RULES:
            raise ConfigError(f"train.rule must be one of {RULES}, got {self.rule!r}")


@dataclass(frozen=True)
class VDIBConfig:
    data: VDIBDataConfig = field(default_factory=VDIBDataConfig)
    model: VDIBModelConfig = field(default_factory=VDIBModelConfig)
    decoder: VDIBDecoderConfig = field(default_factory=VDIBDecoderConfig)
    train: VDIBTrainConfig = field(default_factory=VDIBTrainConfig)


def search_space(cfg: VDIBConfig) -> dict[str, Param]:
    """What ``spikecodec sweep vdib`` searches: beta, the decoding window and the prior."""
    return {"train.beta": Float(1e-5, 1e-1, log=True),  # the bottleneck's weight
            # tau_d in steps; at most T (check_config), so the range follows data.num_steps
            "decoder.window": Int(1, cfg.data.num_steps),
            "train.prior": Float(0.05, 0.5)}  # readout spike probability per step

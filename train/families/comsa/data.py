"""Images as spike times (Comsa et al. 2021, section 2.3 and eq. 6), split as the C++ code does.

* **Brightness-inverted latency.** A pixel of intensity ``x`` spikes at ``t = 1 - x``; a pixel of
  0 (``t = 1``) sends no spike (``t = +inf``). MNIST and Fashion-MNIST intensities are
  ``raw / 256`` as in the C++ code (so the brightest pixel spikes at ``1/256``, not 0); the
  embedded digits keep their own scale (``raw / 16``).
* **Noise** (eq. 6 in time space): ``t' = clamp(t + eta r, 0, 1)`` with ``r ~ N(1, 1)``, where a
  silent input counts as ``t = 1`` and ``t' >= 1`` is silent again. The C++ code draws it once,
  when the data are loaded, for the training, validation and test inputs alike (the default,
  ``noise_draw = "once"``); ``"epoch"`` redraws the training inputs every epoch (each batch keyed
  by ``(seed, epoch, batch)``), a reading of the paper's text. Targets stay clean.
* **Targets**: the clean image's times with background at 1.0: output neuron ``k`` should spike
  at ``l + y_k``, ``y_k = 1 - x_k``.
* **Splits**: the last ``validation_fraction`` of the training split is the validation set
  (model selection); MNIST gives 54,000 / 6,000 / 10,000 as in the paper.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from spikecodec.train.datasets import load_images
from spikecodec.train.families.comsa.config import ComsaDataConfig

SPLITS = ("train", "validation", "test")


def intensities(images: torch.Tensor, dataset: str) -> torch.Tensor:
    """Loader images in [0, 1] -> the intensities the C++ code sees (``raw / 256`` for MNIST
    and Fashion-MNIST, whose loader divides by 255)."""
    if dataset == "digits":
        return images.double()
    return torch.round(images.double() * 255.0) / 256.0


def clean_times(x: torch.Tensor) -> torch.Tensor:
    """Intensities ``(n, pixels)`` -> input spike times, ``+inf`` where ``x == 0``."""
    t = 1.0 - x
    return torch.where(t >= 1.0, torch.full_like(t, torch.inf), t)


def targets(x: torch.Tensor) -> torch.Tensor:
    """The clean target ``y = 1 - x`` (background 1.0, never silent)."""
    return 1.0 - x


def add_noise(times: torch.Tensor, eta: float, generator: torch.Generator) -> torch.Tensor:
    """Eq. 6 in time space (module docstring); ``eta = 0`` returns ``times`` unchanged."""
    if eta == 0:
        return times
    t = torch.where(torch.isinf(times), torch.ones_like(times), times)
    r = torch.randn(t.shape, generator=generator, dtype=t.dtype) + 1.0
    t = (t + eta * r).clamp(0.0, 1.0)
    return torch.where(t >= 1.0, torch.full_like(t, torch.inf), t)


@dataclass
class ComsaData:
    """Every split as clean times, noisy inputs and targets, all ``(n, pixels)`` float64."""

    clean: dict[str, torch.Tensor]  # input times without noise (+inf silent)
    inputs: dict[str, torch.Tensor]  # what the network is fed (noise drawn once)
    targets: dict[str, torch.Tensor]  # y = 1 - x
    labels: dict[str, torch.Tensor]
    image_shape: tuple[int, int]

    def size(self, split: str) -> int:
        return int(self.inputs[split].shape[0])

    @property
    def pixels(self) -> int:
        return int(self.inputs["train"].shape[1])


def load_data(cfg: ComsaDataConfig, *, seed: int) -> ComsaData:
    """Load, split, encode and (once) add noise; ``seed`` keys the noise draw."""
    train = load_images(cfg.dataset, "train", data_dir=cfg.data_dir, download=cfg.download,
                        limit=cfg.train_limit)
    test = load_images(cfg.dataset, "test", data_dir=cfg.data_dir, download=cfg.download,
                       limit=cfg.test_limit)
    n_val = max(1, round(cfg.validation_fraction * len(train)))
    x_train = intensities(train.images, cfg.dataset)
    xs = {"train": x_train[:-n_val], "validation": x_train[-n_val:],
          "test": intensities(test.images, cfg.dataset)}
    labels = {"train": train.labels[:-n_val], "validation": train.labels[-n_val:],
              "test": test.labels}
    gen = torch.Generator().manual_seed(seed)
    clean = {s: clean_times(x) for s, x in xs.items()}
    inputs = {s: add_noise(clean[s], cfg.noise, gen) for s in SPLITS}
    return ComsaData(clean, inputs, {s: targets(x) for s, x in xs.items()}, labels,
                     train.shape)

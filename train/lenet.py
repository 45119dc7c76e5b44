"""LeNet-5 judge of VDIB's MNIST naturalization experiment (Skatchkovsky et al. 2021, sec. 6.2).

The paper scores decoded images by the accuracy of a LeNet trained on MNIST (they downloaded
pretrained weights); we train our own, once, and cache it. Images are ``(n, 784)`` rows in
[0, 1] (28 x 28, row-major), as :func:`spikecodec.train.datasets.load_images` returns them.

Network (ReLU, max pooling; the classic LeNet-5 widths)::

    x' = (x - 0.1307) / 0.3081                        MNIST pixel mean / std, inside the model
    conv 5x5, 6 maps, pad 2   -> ReLU -> max 2x2      6 x 14 x 14
    conv 5x5, 16 maps         -> ReLU -> max 2x2      16 x 5 x 5
    linear 400 -> 120 -> ReLU -> 84 -> ReLU -> 10     logits

Training: cross-entropy, Adam (``lr``), learning rate decayed linearly to 0 over all steps,
batches shuffled by a generator seeded from ``seed`` (weights too, without touching torch's
global RNG). Two epochs on the 60,000 training images with the defaults (batch 128, lr 5e-3)
reach 99.0-99.1 % test accuracy (seeds 0-3) in 10-50 s on 2 CPU cores, depending on load.

Cache (:func:`load_or_train_lenet`): ``cache_path`` holds a spikecodec checkpoint (model kind
``"lenet5"``, written atomically) and ``cache_path.with_suffix(".json")`` its test accuracy and
training recipe. A cache whose recipe differs from the one asked for is retrained.
"""

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from spikecodec.atomic import write_json
from spikecodec.errors import InputError, InputTypeError
from spikecodec.train.checkpoint import FORMAT, load_checkpoint, save_atomic
from spikecodec.train.datasets import ImageSplit, load_images
from spikecodec.train.progress import progress

__all__ = ["MODEL_KIND", "LeNet5", "lenet_accuracy", "load_or_train_lenet", "train_lenet"]

MODEL_KIND = "lenet5"
_MNIST_MEAN, _MNIST_STD = 0.1307, 0.3081
_SIDE, _NUM_CLASSES = 28, 10


class LeNet5(nn.Module):
    """``(batch, 784)`` images in [0, 1] -> ``(batch, 10)`` logits; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, _NUM_CLASSES)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.reshape(-1, 1, _SIDE, _SIDE) - _MNIST_MEAN) / _MNIST_STD
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc3(F.relu(self.fc2(x)))


def train_lenet(
    train_split: ImageSplit,
    test_split: ImageSplit,
    *,
    epochs: int = 2,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 5e-3,
    threads: int | None = None,
    show_progress: bool = True,
) -> tuple[LeNet5, float]:
    """Train on ``train_split``; return the model (eval mode) and its ``test_split`` accuracy.

    ``threads`` sets torch's CPU threads for the call only (``None`` keeps the current count).
    """
    for name, split in (("train_split", train_split), ("test_split", test_split)):
        if not isinstance(split, ImageSplit):
            raise InputTypeError(f"{name} must be an ImageSplit; got {type(split).__name__}")
        if split.shape != (_SIDE, _SIDE):
            raise InputError(f"{name} must hold 28 x 28 images; found {split.shape} ({split.name})")
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputTypeError(f"{name} must be an int; got {type(value).__name__}")
    if epochs < 1 or batch_size < 1:
        raise InputError(f"epochs and batch_size must be >= 1; got {epochs}, {batch_size}")
    if not lr > 0:
        raise InputError(f"lr must be > 0; got {lr!r}")
    _check_images_labels(train_split.images, train_split.labels)

    with _num_threads(threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # weights; restored on exit by fork_rng
        model = LeNet5()
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        n = len(train_split)
        per_epoch = -(-n // batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: max(0.0, 1.0 - step / (epochs * per_epoch)))  # linear decay
        model.train()
        for epoch in range(epochs):
            order = torch.randperm(n, generator=gen)
            starts = progress(range(0, n, batch_size), desc=f"LeNet-5 epoch {epoch + 1}/{epochs}",
                              enabled=show_progress, total=per_epoch)
            for start in starts:
                index = order[start : start + batch_size]
                loss = F.cross_entropy(model(train_split.images[index]), train_split.labels[index])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        model.eval()
        accuracy = lenet_accuracy(model, test_split.images, test_split.labels)
    return model, accuracy


@torch.no_grad()
def lenet_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                   batch_size: int = 1000) -> float:
    """Fraction of ``images (n, 784)`` in [0, 1] whose argmax class equals ``labels (n,)``."""
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    _check_images_labels(images, labels)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive int; got {batch_size!r}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start : start + batch_size].to(device, torch.float32))
        correct += int((logits.argmax(1).cpu() == labels[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / len(images)


def load_or_train_lenet(
    cache_path: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    *,
    epochs: int = 2,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 5e-3,
    threads: int | None = None,
    show_progress: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[LeNet5, float]:
    """The cached judge at ``cache_path`` if its recipe matches, else train on MNIST and cache.

    MNIST comes from ``load_images("mnist", ..., data_dir=data_dir)`` (no download). Returns the
    model (eval mode) and its MNIST test accuracy.
    """
    if not isinstance(cache_path, (str, os.PathLike)):
        raise InputTypeError(f"cache_path must be a path; got {type(cache_path).__name__}")
    path = Path(cache_path)
    recipe = {"epochs": epochs, "seed": seed, "batch_size": batch_size, "lr": lr}
    if path.is_file():
        ckpt = load_checkpoint(path, model_kind=MODEL_KIND)
        if ckpt.get("recipe") == recipe:
            model = LeNet5()
            model.load_state_dict(ckpt["state_dict"])
            return model.eval(), float(ckpt["test_accuracy"])
        log(f"LeNet-5 cache {path} was trained with {ckpt.get('recipe')}; retraining with {recipe}")
    train = load_images("mnist", "train", data_dir=data_dir)
    test = load_images("mnist", "test", data_dir=data_dir)
    began = time.perf_counter()
    model, accuracy = train_lenet(train, test, epochs=epochs, seed=seed, batch_size=batch_size,
                                  lr=lr, threads=threads, show_progress=show_progress)
    seconds = time.perf_counter() - began
    path.parent.mkdir(parents=True, exist_ok=True)
    save_atomic({"format": FORMAT, "model_kind": MODEL_KIND, "state_dict": model.state_dict(),
                 "test_accuracy": accuracy, "recipe": recipe}, path)
    write_json(path.with_suffix(".json"), _record(accuracy, recipe, seconds, len(train), len(test)))
    log(f"LeNet-5 judge: MNIST test accuracy {accuracy:.4f} after {seconds:.0f} s -> {path}")
    return model, accuracy


def _record(accuracy: float, recipe: dict[str, Any], seconds: float, n_train: int,
            n_test: int) -> dict[str, Any]:
    return {"model_kind": MODEL_KIND, "test_accuracy": accuracy, "dataset": "mnist",
            "train_images": n_train, "test_images": n_test, **recipe,
            "train_seconds": round(seconds, 1), "threads": torch.get_num_threads(),
            "torch": torch.__version__}


@contextmanager
def _num_threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"threads must be a positive int or None; got {threads!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_images_labels(images: object, labels: object) -> None:
    if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise InputTypeError(
            f"images and labels must be torch.Tensors; got {type(images).__name__}, "
            f"{type(labels).__name__}"
        )
    if images.dim() != 2 or images.shape[1] != _SIDE * _SIDE or not images.is_floating_point():
        raise InputError(
            f"images must be float (n, 784) rows of 28 x 28 images; found {images.dtype} "
            f"{tuple(images.shape)}"
        )
    if len(images) == 0:
        raise InputError("images is empty")
    if labels.shape != (len(images),) or labels.is_floating_point() or labels.is_complex():
        raise InputError(
            f"labels must be integer ({len(images)},); found {labels.dtype} {tuple(labels.shape)}"
        )
    if not bool(torch.isfinite(images).all()):
        raise InputError("images must be finite; found NaN or inf")
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise InputError(f"images must be in [0, 1]; found {low:g}..{high:g}")
    if int(labels.min()) < 0 or int(labels.max()) >= _NUM_CLASSES:
        raise InputError(f"labels must be in 0..9; found {int(labels.min())}..{int(labels.max())}")

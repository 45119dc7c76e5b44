"""LeNet-5 judge: learns digits, caches itself with its accuracy, rejects bad images."""

import json

import pytest
import torch
from torch.nn import functional as F

from spikecodec.errors import CheckpointError, InputError, InputTypeError
from spikecodec.train import lenet
from spikecodec.train.checkpoint import save_atomic
from spikecodec.train.datasets import ImageSplit, load_images
from spikecodec.train.lenet import LeNet5, lenet_accuracy, load_or_train_lenet, train_lenet

from conftest import SHARED_DATA

needs_shared = pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(),
                                  reason=f"{SHARED_DATA / 'mnist'} not present")


def digits_28(split: str, limit: int | None = None) -> ImageSplit:
    """scikit-learn's 8x8 digits, upsampled to 28x28 (no files needed)."""
    small = load_images("digits", split, limit=limit)
    big = F.interpolate(small.images.view(-1, 1, 8, 8), size=(28, 28), mode="bilinear",
                        align_corners=False).clamp(0.0, 1.0)
    return ImageSplit(images=big.reshape(-1, 784), labels=small.labels, shape=(28, 28),
                      name=f"digits28/{split}")


@pytest.fixture(scope="module")
def digits():
    return digits_28("train"), digits_28("test")


def test_learns_upsampled_digits(digits):
    train, test = digits
    model, accuracy = train_lenet(train, test, epochs=2, batch_size=64, threads=1,
                                  show_progress=False)
    assert accuracy > 0.8  # chance is 0.1
    assert not model.training
    assert accuracy == lenet_accuracy(model, test.images, test.labels, batch_size=7)


def test_training_is_seeded_and_leaves_global_rng_alone(digits):
    train, test = digits_28("train", limit=200), digits[1]
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, _ = train_lenet(train, test, epochs=1, seed=4, show_progress=False, threads=1)
    assert torch.equal(torch.rand(1), before)  # global stream untouched
    b, _ = train_lenet(train, test, epochs=1, seed=4, show_progress=False, threads=1)
    c, _ = train_lenet(train, test, epochs=1, seed=5, show_progress=False, threads=1)
    assert torch.equal(a.fc3.weight, b.fc3.weight)
    assert not torch.equal(a.fc3.weight, c.fc3.weight)


def test_accuracy_counts_argmax_hits():
    model = LeNet5()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.fc3.bias[3] = 1.0  # always predicts class 3
    images = torch.rand(8, 784)
    labels = torch.tensor([3, 3, 1, 3, 0, 9, 3, 2])
    assert lenet_accuracy(model, images, labels) == 0.5
    assert model.training  # the model's mode is restored


@needs_shared
def test_learns_a_few_hundred_mnist_images():
    images = load_images("mnist", "test", data_dir=SHARED_DATA, limit=1600)  # the small file
    train, test = (ImageSplit(images.images[part], images.labels[part], (28, 28), name)
                   for part, name in ((slice(0, 600), "train"), (slice(600, None), "test")))
    _, accuracy = train_lenet(train, test, epochs=4, batch_size=64, threads=1,
                              show_progress=False)
    assert accuracy > 0.7  # chance is 0.1


def test_cache_round_trip(tmp_path, monkeypatch, digits):
    monkeypatch.setattr(lenet, "load_images", lambda name, split, data_dir: {
        "train": digits_28("train", limit=300), "test": digits[1]}[split])
    cache = tmp_path / "judge" / "lenet.pt"
    messages = []
    model, accuracy = load_or_train_lenet(cache, epochs=1, threads=1, show_progress=False,
                                          log=messages.append)
    assert cache.is_file() and len(messages) == 1 and f"{accuracy:.4f}" in messages[0]
    record = json.loads(cache.with_suffix(".json").read_text())
    assert record["test_accuracy"] == accuracy and record["epochs"] == 1
    assert record["model_kind"] == "lenet5" and record["train_images"] == 300
    assert sorted(p.name for p in cache.parent.iterdir()) == ["lenet.json", "lenet.pt"]

    def no_training(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(lenet, "train_lenet", no_training)
    again, cached_accuracy = load_or_train_lenet(cache, epochs=1, show_progress=False)
    assert cached_accuracy == accuracy and not again.training
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value)
    test = digits[1]
    assert lenet_accuracy(again, test.images, test.labels) == accuracy


def test_cache_with_another_recipe_is_retrained(tmp_path, monkeypatch, digits):
    monkeypatch.setattr(lenet, "load_images", lambda name, split, data_dir: {
        "train": digits_28("train", limit=100), "test": digits_28("test", limit=50)}[split])
    cache = tmp_path / "lenet.pt"
    load_or_train_lenet(cache, epochs=1, threads=1, show_progress=False, log=lambda m: None)
    messages = []
    load_or_train_lenet(cache, epochs=1, seed=1, threads=1, show_progress=False,
                        log=messages.append)
    assert "retraining" in messages[0]
    assert json.loads(cache.with_suffix(".json").read_text())["seed"] == 1


def test_bad_cache_raises_checkpoint_error(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_or_train_lenet(tmp_path / "junk.pt", show_progress=False)
    save_atomic({"format": 1, "model_kind": "roy-ae"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="roy-ae"):
        load_or_train_lenet(tmp_path / "other.pt", show_progress=False)


@pytest.mark.parametrize(
    "images, labels, error, words",
    [
        (torch.rand(4, 64), torch.zeros(4, dtype=torch.long), InputError, "784"),
        (torch.rand(4, 28, 28), torch.zeros(4, dtype=torch.long), InputError, "784"),
        (torch.zeros(4, 784, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), InputError,
         "float"),
        (torch.rand(4, 784) * 255, torch.zeros(4, dtype=torch.long), InputError, "[0, 1]"),
        (torch.full((4, 784), float("nan")), torch.zeros(4, dtype=torch.long), InputError,
         "finite"),
        (torch.rand(4, 784), torch.zeros(3, dtype=torch.long), InputError, "labels"),
        (torch.rand(4, 784), torch.zeros(4), InputError, "integer"),
        (torch.rand(4, 784), torch.full((4,), 10), InputError, "0..9"),
        (torch.rand(0, 784), torch.zeros(0, dtype=torch.long), InputError, "empty"),
        (torch.rand(4, 784).numpy(), torch.zeros(4, dtype=torch.long), InputTypeError, "Tensor"),
    ],
)
def test_accuracy_rejects_bad_inputs(images, labels, error, words):
    with pytest.raises(error, match=words.replace("[", r"\[").replace("]", r"\]")):
        lenet_accuracy(LeNet5(), images, labels)


def test_train_rejects_bad_splits(digits):
    small = load_images("digits", "test", limit=10)
    with pytest.raises(InputError, match="28 x 28"):
        train_lenet(small, digits[1], show_progress=False)
    with pytest.raises(InputTypeError, match="ImageSplit"):
        train_lenet(digits[0], (digits[1].images, digits[1].labels), show_progress=False)
    with pytest.raises(InputTypeError, match="epochs"):
        train_lenet(digits[0], digits[1], epochs=1.5, show_progress=False)
    with pytest.raises(InputError, match="threads"):
        train_lenet(digits[0], digits[1], threads=0, show_progress=False)
    with pytest.raises(InputTypeError, match="model"):
        lenet_accuracy(torch.zeros(3), digits[1].images, digits[1].labels)


@pytest.mark.slow
@needs_shared
def test_full_mnist_judge_reaches_98_5_percent(tmp_path):
    model, accuracy = load_or_train_lenet(tmp_path / "lenet.pt", SHARED_DATA, show_progress=False,
                                          log=lambda m: None)
    assert accuracy >= 0.985
    assert json.loads((tmp_path / "lenet.json").read_text())["test_accuracy"] == accuracy

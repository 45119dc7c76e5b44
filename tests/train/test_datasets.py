"""Image datasets: bundled digits, MNIST / Fashion-MNIST from npz and IDX, and typed errors."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from spikecodec.errors import DataError, DatasetNotFoundError, InputError
from spikecodec.train.datasets import DATASETS, default_data_dir, load_images

from conftest import SHARED_DATA

needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} not present")


def write_idx(path: Path, array: np.ndarray, magic: int | None = None, cut: int = 0) -> None:
    """An unsigned-byte IDX file (gzip when the name ends in .gz), optionally bad or truncated."""
    magic = 0x0800 | array.ndim if magic is None else magic
    data = struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
    data = data[: len(data) - cut]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def fake_mnist(folder: Path, n: int = 3, gz: bool = False, labels=None) -> np.ndarray:
    """Write a tiny valid train split into ``folder``; return its images."""
    images = np.arange(n * 28 * 28, dtype=np.int64).reshape(n, 28, 28) % 256
    labels = np.arange(n) % 10 if labels is None else np.asarray(labels)
    ext = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{ext}", images)
    write_idx(folder / f"train-labels-idx1-ubyte{ext}", labels)
    return images


def test_digits_split_shapes_and_range():
    train, test = load_images("digits", "train"), load_images("digits", "test")
    assert train.images.shape == (1437, 64) and test.images.shape == (360, 64)
    assert train.labels.shape == (1437,) and test.labels.shape == (360,)
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert train.shape == (8, 8) and train.name == "digits/train" and len(test) == 360
    for split in (train, test):
        assert split.images.min() == 0.0 and split.images.max() == 1.0
        assert set(split.labels.tolist()) == set(range(10))


def test_digits_split_is_deterministic_and_limited():
    again = load_images("digits", "test")
    assert torch.equal(again.images, load_images("digits", "test").images)
    small = load_images("digits", "test", limit=10)
    assert torch.equal(small.images, again.images[:10])
    assert torch.equal(small.labels, again.labels[:10])


@needs_shared
@pytest.mark.parametrize("data_dir", [SHARED_DATA, SHARED_DATA / "mnist", str(SHARED_DATA)])
def test_mnist_from_npz(data_dir):
    test = load_images("mnist", "test", data_dir=data_dir)
    assert test.images.shape == (10000, 784) and test.shape == (28, 28)
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert test.images.dtype == torch.float32
    assert 0.0 <= test.images.min() and test.images.max() <= 1.0
    assert test.images.mean().item() * 255 == pytest.approx(33.791, abs=1e-3)


@needs_shared
def test_mnist_train_from_npz_and_idx_agree(tmp_path):
    (tmp_path / "raw").symlink_to(SHARED_DATA / "mnist" / "raw")
    from_npz = load_images("mnist", "train", data_dir=SHARED_DATA)
    from_idx = load_images("mnist", "train", data_dir=tmp_path)
    assert from_npz.images.shape == (60000, 784)
    assert torch.equal(from_npz.images, from_idx.images)
    assert torch.equal(from_npz.labels, from_idx.labels)


@needs_shared
@pytest.mark.parametrize("layout", ["mnist/raw", "MNIST/raw", "raw"])
def test_mnist_test_from_idx_layouts(tmp_path, layout):
    (tmp_path / layout).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / layout).symlink_to(SHARED_DATA / "mnist" / "raw")
    test = load_images("mnist", "test", data_dir=tmp_path, limit=5)
    assert test.images.shape == (5, 784)
    assert test.labels.tolist() == [7, 2, 1, 0, 4]


@needs_shared
def test_fashion_mnist_from_npz_and_idx(tmp_path):
    (tmp_path / "FashionMNIST").mkdir()
    (tmp_path / "FashionMNIST" / "raw").symlink_to(SHARED_DATA / "fashion_mnist" / "raw")
    from_npz = load_images("fashion-mnist", "test", data_dir=SHARED_DATA)
    from_idx = load_images("fashion-mnist", "test", data_dir=tmp_path)
    assert from_npz.images.shape == (10000, 784) and from_npz.name == "fashion-mnist/test"
    assert from_npz.labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert torch.equal(from_npz.images, from_idx.images)
    train = load_images("fashion_mnist", "train", data_dir=SHARED_DATA, limit=100)
    assert train.images.shape == (100, 784) and train.name == "fashion-mnist/train"


@pytest.mark.parametrize("gz", [False, True])
def test_small_idx_values_exact(tmp_path, gz):
    images = fake_mnist(tmp_path / "mnist", n=4, gz=gz, labels=[3, 1, 4, 1])
    split = load_images("mnist", data_dir=tmp_path)
    assert torch.equal(split.images, torch.from_numpy(images.reshape(4, -1) / 255.0).float())
    assert split.labels.tolist() == [3, 1, 4, 1]


def test_missing_files_name_what_was_expected(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_images("mnist", "test", data_dir=tmp_path / "nowhere")
    message = str(info.value)
    for words in ("nowhere", "mnist.npz", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert words in message
    assert "--download" in message and "--data-dir" in message
    assert isinstance(info.value, FileNotFoundError)


def test_other_datasets_folder_is_not_mistaken(tmp_path):
    fake_mnist(tmp_path / "mnist" / "raw")
    assert len(load_images("mnist", data_dir=tmp_path / "mnist")) == 3
    with pytest.raises(DatasetNotFoundError, match="fashion_mnist.npz"):
        load_images("fashion-mnist", data_dir=tmp_path / "mnist")


def test_default_data_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SPIKECODEC_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path)):
        load_images("fashion-mnist")
    monkeypatch.delenv("SPIKECODEC_DATA")
    assert default_data_dir() == Path.home() / ".cache" / "spikecodec" / "data"


def corrupt_bad_magic(folder: Path) -> None:
    fake_mnist(folder)
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((3, 28, 28)), magic=0x0801)


def corrupt_truncated(folder: Path) -> None:
    fake_mnist(folder)
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((3, 28, 28)), cut=10)


def corrupt_trailing(folder: Path) -> None:
    fake_mnist(folder)
    path = folder / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00")


def corrupt_truncated_gzip(folder: Path) -> None:
    fake_mnist(folder, gz=True)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])


def corrupt_wrong_size(folder: Path) -> None:
    fake_mnist(folder)
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((3, 20, 20)))


def corrupt_npz_keys(folder: Path) -> None:
    np.savez(folder / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8))


def corrupt_npz_not_zip(folder: Path) -> None:
    (folder / "mnist.npz").write_bytes(b"not a zip archive at all")


def corrupt_npz_dtype(folder: Path) -> None:
    x, y = np.zeros((2, 28, 28), np.float32), np.zeros(2, np.uint8)
    np.savez(folder / "mnist.npz", x_train=x, y_train=y, x_test=x, y_test=y)


CORRUPTIONS = {
    "bad magic": (corrupt_bad_magic, "magic"),
    "truncated": (corrupt_truncated, "truncated"),
    "trailing bytes": (corrupt_trailing, "trailing"),
    "truncated gzip": (corrupt_truncated_gzip, "cannot read"),
    "wrong image size": (corrupt_wrong_size, "(n, 28, 28)"),
    "count mismatch": (lambda f: fake_mnist(f, n=3, labels=[1, 2]), "3 images but 2 labels"),
    "label range": (lambda f: fake_mnist(f, n=2, labels=[1, 12]), "0..9"),
    "npz keys": (corrupt_npz_keys, "missing keys"),
    "npz not zip": (corrupt_npz_not_zip, "not a readable"),
    "npz dtype": (corrupt_npz_dtype, "uint8"),
}


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_corrupt_files_raise_data_error(tmp_path, case):
    corrupt, words = CORRUPTIONS[case]
    corrupt(tmp_path)
    with pytest.raises(DataError) as info:
        load_images("mnist", data_dir=tmp_path)
    assert words in str(info.value) and str(tmp_path) in str(info.value)
    assert not isinstance(info.value, DatasetNotFoundError)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(name="cifar10"), DataError, ", ".join(DATASETS)),
        (dict(name=None), DataError, "unknown dataset"),
        (dict(name="digits", split="valid"), DataError, "unknown split"),
        (dict(name="digits", limit=0), InputError, "limit"),
        (dict(name="digits", limit=-5), InputError, "limit"),
        (dict(name="digits", limit=2.5), InputError, "limit"),
        (dict(name="digits", limit=True), InputError, "limit"),
    ],
)
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        load_images(**kwargs)
    assert words in str(info.value)

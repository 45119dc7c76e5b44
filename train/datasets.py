"""Image datasets as float32 tensors in [0, 1], one flattened image per row.

``digits`` is scikit-learn's bundled 8x8 set (values 0..16, divided by 16); it needs no files.
Its split is fixed: ``RandomState(0).permutation`` (legacy numpy, frozen across versions), the
first 80 % train (1437) and the rest test (360).

``mnist`` and ``fashion-mnist`` (28x28, uint8 / 255) are read from ``data_dir`` (default
``default_data_dir()``), looking in this order and taking the first hit:

1. ``<stem>.npz`` in ``<data_dir>/`` or ``<data_dir>/<folder>/``, keys ``x_train y_train x_test
   y_test`` (uint8 images ``(n, 28, 28)``, integer labels ``(n,)``);
2. IDX files ``<prefix>-images-idx3-ubyte[.gz]`` and ``<prefix>-labels-idx1-ubyte[.gz]``
   (prefix ``train`` or ``t10k``; plain before gzip) in ``<data_dir>/<folder>/raw/``,
   ``<data_dir>/<folder>/``, torchvision's ``<data_dir>/<MNIST|FashionMNIST>/raw/``, and finally
   ``<data_dir>/raw/`` and ``<data_dir>/`` themselves -- skipped when ``data_dir`` is named
   after the *other* dataset, because both sets use the same IDX file names.

stem / folders: ``mnist`` / ``mnist``; ``fashion_mnist`` / ``fashion_mnist``, ``fashion-mnist``.
Nothing is downloaded unless ``download=True`` (torchvision, imported only then); nothing is
cached between calls.
"""

import gzip
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from spikecodec.errors import DataError, DatasetNotFoundError, InputError, InputTypeError

__all__ = ["DATASETS", "IMAGE_SHAPES", "ImageSplit", "default_data_dir", "load_images"]

DATASETS = ("digits", "mnist", "fashion-mnist")
IMAGE_SHAPES = {"digits": (8, 8), "mnist": (28, 28), "fashion-mnist": (28, 28)}
SPLITS = ("train", "test")

_NUM_CLASSES = 10
_DIGITS_TRAIN = 1437  # floor(0.8 * 1797)
_IDX_PREFIX = {"train": "train", "test": "t10k"}
_IDX_UBYTE = 0x08  # IDX type code of unsigned bytes; magic = 0x0000 | type << 8 | ndim


@dataclass(frozen=True)
class ImageSplit:
    """One split of an image dataset."""

    images: torch.Tensor  # (n, H*W) float32 in [0, 1]
    labels: torch.Tensor  # (n,) int64 class ids
    shape: tuple[int, int]  # (H, W) of one image
    name: str  # "<dataset>/<split>", e.g. "mnist/train"

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass(frozen=True)
class _Source:
    stem: str  # <stem>.npz
    folders: tuple[str, ...]  # <data_dir>/<folder>/ holds the npz or the IDX files
    torchvision: str  # torchvision class name, also its folder: <data_dir>/<torchvision>/raw/


_SOURCES = {
    "mnist": _Source("mnist", ("mnist",), "MNIST"),
    "fashion-mnist": _Source("fashion_mnist", ("fashion_mnist", "fashion-mnist"), "FashionMNIST"),
}


def default_data_dir() -> Path:
    """``$SPIKECODEC_DATA`` if set, else ``~/.cache/spikecodec/data``."""
    env = os.environ.get("SPIKECODEC_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "spikecodec" / "data"


def load_images(
    name: str,
    split: str = "train",
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    limit: int | None = None,
) -> ImageSplit:
    """Load one split of ``name`` (see ``DATASETS``); ``limit`` keeps the first samples only."""
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else name
    if key not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be a positive int or None; got {limit!r}")
    if not isinstance(download, bool):
        raise InputTypeError(f"download must be a bool; got {type(download).__name__}")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise InputTypeError(f"data_dir must be a path or None; got {type(data_dir).__name__}")
    root = default_data_dir() if data_dir is None else Path(os.fspath(data_dir)).expanduser()
    images, labels, full_scale = _LOADERS[key](split, root, download)
    images, labels = images[:limit], labels[:limit]
    height, width = images.shape[1:]
    flat = np.asarray(images.reshape(len(images), height * width), dtype=np.float32)
    return ImageSplit(
        images=torch.from_numpy(flat).div_(full_scale),
        labels=torch.from_numpy(labels.astype(np.int64)),
        shape=(int(height), int(width)),
        name=f"{key}/{split}",
    )


def _load_digits(split: str, root: Path, download: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """scikit-learn's bundled digits: images (n, 8, 8) in 0..16, fixed 80/20 split."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        msg = "the 'digits' dataset needs scikit-learn (pip install scikit-learn)"
        raise DataError(msg) from exc
    bunch = load_digits()
    order = np.random.RandomState(0).permutation(len(bunch.target))
    part = order[:_DIGITS_TRAIN] if split == "train" else order[_DIGITS_TRAIN:]
    return bunch.images[part], bunch.target[part], 16.0


def _load_files(key: str, split: str, root: Path, download: bool) -> tuple[np.ndarray, ...]:
    """MNIST-style files from disk (npz or IDX), downloading first only when allowed."""
    source = _SOURCES[key]
    reader = _locate(source, split, root)
    if reader is None and download:
        _download(key, source, root)
        reader = _locate(source, split, root)
    if reader is None:
        raise DatasetNotFoundError(_not_found_message(key, source, split, root))
    return reader()


def _npz_paths(source: _Source, root: Path) -> list[Path]:
    return [root / f"{source.stem}.npz"] + [root / f / f"{source.stem}.npz" for f in source.folders]


def _idx_dirs(source: _Source, root: Path) -> list[Path]:
    dirs = [d for f in source.folders for d in (root / f / "raw", root / f)]
    dirs.append(root / source.torchvision / "raw")
    others = {
        n.lower() for s in _SOURCES.values() if s != source for n in (*s.folders, s.torchvision)
    }
    if root.name.lower() not in others:  # <data_dir> may be this dataset's own folder
        dirs += [root / "raw", root]
    return dirs


def _idx_names(split: str) -> tuple[str, str]:
    prefix = _IDX_PREFIX[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _locate(source: _Source, split: str, root: Path) -> Callable | None:
    """A zero-argument reader for the first matching file(s), or None."""
    for path in _npz_paths(source, root):
        if path.is_file():
            return partial(_read_npz, path, split)
    for folder in _idx_dirs(source, root):
        found = [_plain_or_gz(folder / n) for n in _idx_names(split)]
        if all(found):
            return partial(_read_idx_pair, *found)
    return None


def _plain_or_gz(path: Path) -> Path | None:
    gz = path.with_name(path.name + ".gz")
    return path if path.is_file() else gz if gz.is_file() else None


def _not_found_message(key: str, source: _Source, split: str, root: Path) -> str:
    images, labels = _idx_names(split)
    state = "" if root.is_dir() else " (the directory does not exist)"
    if root / "raw" not in _idx_dirs(source, root):
        state += f" ({root.name!r} names another dataset, so its own raw/ was not searched)"
    return (
        f"{key} ({split} split) not found in {root}{state}. Looked for\n"
        f"  {source.stem}.npz (keys x_train, y_train, x_test, y_test) in: "
        f"{', '.join(str(p.parent) for p in _npz_paths(source, root))}\n"
        f"  IDX files {images}[.gz] and {labels}[.gz] in: "
        f"{', '.join(str(d) for d in _idx_dirs(source, root))}\n"
        "Pass --download (download=True) to fetch them with torchvision, or --data-dir "
        "(data_dir=...) to point at a directory that holds them."
    )


def _download(key: str, source: _Source, root: Path) -> None:
    try:
        import torchvision.datasets
    except ImportError as exc:
        raise DataError(f"downloading {key} needs torchvision (pip install torchvision)") from exc
    root.mkdir(parents=True, exist_ok=True)
    try:  # one call fetches all four files into <root>/<torchvision>/raw/
        getattr(torchvision.datasets, source.torchvision)(root=str(root), download=True)
    except (OSError, RuntimeError) as exc:
        raise DataError(f"downloading {key} into {root} failed: {exc}") from exc


def _read_npz(path: Path, split: str) -> tuple[np.ndarray, np.ndarray, float]:
    keys = ("x_train", "y_train", "x_test", "y_test")
    bad_zip = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
    try:
        archive = np.load(path, allow_pickle=False)
    except bad_zip as exc:
        raise DataError(f"{path}: not a readable .npz archive ({exc})") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: holds a single array, not an .npz archive with keys {keys}")
    with archive:
        missing = [k for k in keys if k not in archive.files]
        if missing:
            raise DataError(f"{path}: missing keys {missing}; found {archive.files}")
        try:
            images, labels = archive[f"x_{split}"], archive[f"y_{split}"]
        except bad_zip as exc:
            raise DataError(f"{path}: corrupt x_{split} or y_{split} ({exc})") from exc
    if images.dtype != np.uint8:
        raise DataError(f"{path}: x_{split} must be uint8; found {images.dtype}")
    return _checked(images, labels, f"{path} (x_{split}, y_{split})")


def _read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    images, labels = _read_idx(images_path, ndim=3), _read_idx(labels_path, ndim=1)
    return _checked(images, labels, f"{images_path} and {labels_path}")


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An unsigned-byte IDX file (plain or gzip) as a read-only uint8 array."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated; {len(data)} bytes, shorter than the IDX header")
    magic, expected = struct.unpack(">I", data[:4])[0], _IDX_UBYTE << 8 | ndim
    if magic != expected:
        raise DataError(
            f"{path}: bad magic number 0x{magic:08X}; expected 0x{expected:08X} "
            f"(unsigned-byte IDX with {ndim} dimension(s))"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    size = header + math.prod(dims)
    if len(data) != size:
        problem = "truncated" if len(data) < size else "trailing bytes"
        raise DataError(
            f"{path}: {problem}; {len(data)} bytes, but dimensions {dims} need {size}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _checked(images: np.ndarray, labels: np.ndarray, where: str) -> tuple[np.ndarray, ...]:
    """Shape, count and label-range checks shared by both MNIST formats; full scale 255."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{where}: images must be (n, 28, 28); found {images.shape}")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: labels must be 1-D ints; found {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise DataError(f"{where}: {len(images)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= _NUM_CLASSES):
        raise DataError(
            f"{where}: labels must be in 0..{_NUM_CLASSES - 1}; "
            f"found {labels.min()}..{labels.max()}"
        )
    return images, labels, 255.0


# name -> loader(split, root, download) -> (images (n, H, W), labels (n,), full-scale value)
_LOADERS = {"digits": _load_digits, **{k: partial(_load_files, k) for k in _SOURCES}}

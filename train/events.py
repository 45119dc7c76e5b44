"""Event-camera datasets for VDIB: N-MNIST and MNIST-DVS, read from disk and binned into spikes.

Events are numpy structured arrays of ``EVENT_DTYPE``: ``x`` column and ``y`` row (0 = top) in
pixels, ``t`` timestamp in µs, ``p`` polarity (1 = ON, brighter; 0 = OFF).

Binning (:func:`bin_events`). With ``t0`` the earliest timestamp (or ``t_start_us``), an event
falls in step ``(t - t0) // bin_us``; steps ``>= num_steps`` are dropped. ``crop (h, w)`` keeps
the centred window, rows ``(H - h) // 2 ..`` and columns ``(W - w) // 2 ..``. A neuron spikes
(1) in a step if it had at least one event there. Neurons are numbered row-major over the crop,
``row * w + col``; with ``polarity="split"`` OFF pixels come first and ON pixels follow
(``p * h * w + row * w + col``), with ``"merge"`` both polarities share a pixel.

N-MNIST (Orchard et al. 2015; 34 x 34 pixels, 2 polarities). Files are the original ``.bin``
layout (SLAYER's copies call it ``.bs2``): 5 bytes per event, x (8 bit), y (8 bit), polarity
(1 bit) and a 23-bit timestamp in µs. They are decoded by tonic's own reader,
``tonic.io.read_mnist_file``, which works offline on single files. tonic's dataset class is not
used: it wants the official zip layout with md5 checks. tonic 1.7 declares librosa (numba,
llvmlite) for audio transforms we never touch, so ``make setup`` installs it with ``--no-deps``
plus the three packages its ``__init__`` imports (importRosbag, expelliarmus, requests; see
requirements.txt). It is imported only when an N-MNIST file is read: this module imports without
it, and reading raises :class:`~spikecodec.errors.DataError` naming ``pip install tonic``.
Two folder layouts are found under ``root`` (or its ``nmnist``, ``nmnist_small``, ``NMNIST``
subfolders): a list file ``<split>*.txt`` (lines ``<id> <label>``, ``#`` comments) beside
``<id>.bs2`` / ``<id>.bin`` files, as in SLAYER's NMNISTsmall; or the official
``Train/<digit>/*.bin`` and ``Test/<digit>/*.bin``.

MNIST-DVS (Serrano-Gotarredona & Linares-Barranco 2015; DVS128, 128 x 128). jAER AEDAT 2.0
files: header lines starting with ``#`` (one must be ``#!AER-DAT2.0``), then big-endian pairs
(uint32 address, uint32 timestamp in µs). Read by our own :func:`read_aedat_dvs128`, which
decodes the DVS128 address as jAER's DVS128 extractor does, with the rows flipped so that the
digit is upright (row 0 at the top)::

    bit 0      raw polarity, 0 = ON        ->  p = 1 - (addr & 1)
    bits 1-7   raw x                       ->  x = 127 - ((addr >> 1) & 0x7F)
    bits 8-14  raw y (0 = bottom)          ->  y = 127 - ((addr >> 8) & 0x7F)
    bit 15+    special / sync event        ->  dropped

Labels come from the file name ``mnist_<digit>_scale<NN>_<NNNN>.aedat``. The paper crops to
26 x 26 (676 inputs) and bins 2 s at 10 ms (200 steps): the defaults of :func:`load_mnist_dvs`.
"""

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import numpy as np
import torch

from spikecodec.errors import DataError, DatasetNotFoundError, InputError, InputTypeError
from spikecodec.train.datasets import default_data_dir

__all__ = [
    "DVS128_SENSOR", "EVENT_DTYPE", "NMNIST_SENSOR", "POLARITIES", "EventSplit", "bin_events",
    "load_mnist_dvs", "load_nmnist", "mnist_dvs_index", "read_aedat_dvs128", "read_nmnist",
]

EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])
NMNIST_SENSOR = (34, 34)  # (height, width)
DVS128_SENSOR = (128, 128)
POLARITIES = ("merge", "split")
SPLITS = ("train", "test")

_NUM_CLASSES = 10
_NMNIST_FOLDERS = ("", "nmnist", "nmnist_small", "NMNIST")
_NMNIST_EXTS = (".bs2", ".bin")
_MNIST_DVS_NAME = re.compile(r"^mnist_(\d)_scale(\d+)_\d+\.aedat$")
_AEDAT_BODY = np.dtype([("address", ">u4"), ("t", ">u4")])
_DVS128_SPECIAL = ~np.uint32(0x7FFF)  # any address bit above 14


@dataclass(frozen=True)
class EventSplit:
    """Binned recordings of one split."""

    spikes: torch.Tensor  # (n, neurons, T) uint8 0/1; neurons = channels * height * width
    labels: torch.Tensor  # (n,) int64 class ids
    shape: tuple[int, int, int]  # (channels, height, width) of one step; channels 2 if split
    name: str  # "nmnist/train", "mnist-dvs"
    bin_us: int  # width of one step in µs

    def __len__(self) -> int:
        return self.spikes.shape[0]


def bin_events(
    events: np.ndarray,
    *,
    sensor: tuple[int, int],
    crop: tuple[int, int] | None = None,
    bin_us: int,
    num_steps: int,
    polarity: str = "merge",
    t_start_us: int | None = None,
) -> np.ndarray:
    """Events -> spikes ``(neurons, num_steps)`` uint8 0/1; rules in the module docstring.

    ``sensor`` and ``crop`` are ``(height, width)`` in pixels; ``crop=None`` keeps the sensor.
    """
    _check_events(events)
    height, width = _check_pair("sensor", sensor)
    h, w = (height, width) if crop is None else _check_pair("crop", crop)
    if h > height or w > width:
        raise InputError(f"crop {crop} is larger than the sensor {sensor}")
    _check_positive_int("bin_us", bin_us)
    _check_positive_int("num_steps", num_steps)
    if polarity not in POLARITIES:
        raise InputError(f"polarity must be one of {POLARITIES}; got {polarity!r}")
    channels = 2 if polarity == "split" else 1
    spikes = np.zeros((channels * h * w, num_steps), dtype=np.uint8)
    if len(events) == 0:
        return spikes
    x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
    t, p = events["t"].astype(np.int64), events["p"].astype(np.int64)
    if x.min() < 0 or x.max() >= width or y.min() < 0 or y.max() >= height:
        raise InputError(
            f"event coordinates x {x.min()}..{x.max()}, y {y.min()}..{y.max()} are outside "
            f"the {height} x {width} sensor"
        )
    if p.min() < 0 or p.max() > 1:
        raise InputError(f"polarity must be 0 or 1; found {p.min()}..{p.max()}")
    if t_start_us is None:
        t0 = int(t.min())
    elif isinstance(t_start_us, bool) or not isinstance(t_start_us, Integral):
        raise InputTypeError(f"t_start_us must be an int or None; got {type(t_start_us).__name__}")
    else:
        t0 = int(t_start_us)
    step = (t - t0) // bin_us  # floor: events before t0 get negative steps
    top, left = (height - h) // 2, (width - w) // 2  # centred crop
    row, col = y - top, x - left
    keep = (step >= 0) & (step < num_steps) & (row >= 0) & (row < h) & (col >= 0) & (col < w)
    neuron = row * w + col + (p * h * w if channels == 2 else 0)
    spikes[neuron[keep], step[keep]] = 1
    return spikes


def read_nmnist(path: str | os.PathLike) -> np.ndarray:
    """One N-MNIST ``.bin`` / ``.bs2`` file -> events (``EVENT_DTYPE``), via tonic."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if size % 5:
        raise DataError(f"{path}: truncated; {size} bytes is not a whole number of 5-byte events")
    read_mnist_file = _tonic_reader()
    try:
        events = read_mnist_file(str(path), dtype=EVENT_DTYPE)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable N-MNIST file ({exc})") from exc
    return np.asarray(events, dtype=EVENT_DTYPE)


def read_aedat_dvs128(path: str | os.PathLike) -> np.ndarray:
    """One jAER AEDAT 2.0 file of a DVS128 -> events (``EVENT_DTYPE``); special events dropped."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    start, version = 0, None
    while data[start : start + 1] == b"#":  # header: lines that start with '#'
        end = data.find(b"\n", start)
        if end < 0:
            raise DataError(f"{path}: header line at byte {start} has no end")
        line = data[start:end].rstrip(b"\r")
        if line.startswith(b"#!AER-DAT"):
            version = line[len(b"#!AER-DAT") :].decode("ascii", "replace").strip()
        start = end + 1
    if version is None or not version.startswith("2."):
        found = "no '#!AER-DAT' line" if version is None else f"version {version}"
        raise DataError(f"{path}: not an AEDAT 2.0 file ({found})")
    body = len(data) - start
    if body % _AEDAT_BODY.itemsize:
        raise DataError(f"{path}: truncated; {body} data bytes is not a whole number of events")
    raw = np.frombuffer(data, dtype=_AEDAT_BODY, offset=start)
    raw = raw[(raw["address"] & _DVS128_SPECIAL) == 0]
    addr = raw["address"].astype(np.int64)
    events = np.empty(len(raw), dtype=EVENT_DTYPE)
    events["x"] = 127 - ((addr >> 1) & 0x7F)
    events["y"] = 127 - ((addr >> 8) & 0x7F)  # jAER's y counts from the bottom
    events["t"] = raw["t"]
    events["p"] = 1 - (addr & 1)  # raw 0 is ON
    return events


def load_nmnist(
    root: str | os.PathLike | None = None,
    split: str = "train",
    *,
    num_steps: int = 35,
    bin_us: int = 10_000,
    polarity: str = "split",
    crop: tuple[int, int] | None = None,
    limit: int | None = None,
) -> EventSplit:
    """Load and bin one N-MNIST split; ``root=None`` means ``default_data_dir()``.

    The defaults (35 steps of 10 ms, both polarities) cover the longest recordings (~336 ms).
    ``limit`` keeps the first samples only (list order, or by digit then file name).
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    _check_limit(limit)
    base = _root(root)
    samples = _nmnist_samples(base, split)[:limit]
    spikes = [
        bin_events(read_nmnist(path), sensor=NMNIST_SENSOR, crop=crop, bin_us=bin_us,
                   num_steps=num_steps, polarity=polarity)
        for path, _ in samples
    ]
    labels = [label for _, label in samples]
    return _split(spikes, labels, NMNIST_SENSOR, crop, polarity, f"nmnist/{split}", bin_us)


def load_mnist_dvs(
    paths_or_dir: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
    *,
    num_steps: int = 200,
    bin_us: int = 10_000,
    polarity: str = "merge",
    crop: tuple[int, int] | None = (26, 26),
    scale: int | None = None,
    limit: int | None = None,
) -> EventSplit:
    """Load and bin MNIST-DVS recordings; labels from the file names.

    ``paths_or_dir``: a folder (searched recursively for ``mnist_<digit>_scale<NN>_*.aedat``,
    sorted by path), a list of files, or ``None`` for ``default_data_dir() / "mnist_dvs"``.
    ``scale`` keeps one recording scale (4, 8 or 16); ``limit`` the first files only.
    """
    _check_limit(limit)
    named = mnist_dvs_index(paths_or_dir, scale=scale)[:limit]
    spikes = [
        bin_events(read_aedat_dvs128(path), sensor=DVS128_SENSOR, crop=crop, bin_us=bin_us,
                   num_steps=num_steps, polarity=polarity)
        for path, _ in named
    ]
    labels = [digit for _, digit in named]
    return _split(spikes, labels, DVS128_SENSOR, crop, polarity, "mnist-dvs", bin_us)


def mnist_dvs_index(
    paths_or_dir: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
    *,
    scale: int | None = None,
) -> list[tuple[Path, int]]:
    """``(path, digit)`` of the MNIST-DVS recordings :func:`load_mnist_dvs` would read, from
    the file names alone (nothing is opened): cheap enough to check or split a large folder
    before binning any of it."""
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, Integral)):
        raise InputTypeError(f"scale must be an int or None; got {type(scale).__name__}")
    paths = _mnist_dvs_paths(paths_or_dir)
    named = [(path, _MNIST_DVS_NAME.match(path.name)) for path in paths]
    bad = [str(path) for path, match in named if match is None]
    if bad:
        raise DataError(f"cannot read the digit from {bad[0]}; MNIST-DVS files are named "
                        "mnist_<digit>_scale<NN>_<NNNN>.aedat")
    named = [(p, m) for p, m in named if scale is None or int(m.group(2)) == scale]
    if not named:
        raise DatasetNotFoundError(f"no MNIST-DVS recording of scale {scale} among {len(paths)}")
    return [(p, int(m.group(1))) for p, m in named]


def _tonic_reader():
    try:
        from tonic.io import read_mnist_file
    except ImportError as exc:
        raise DataError(
            f"reading N-MNIST files needs tonic ({exc}): run `make setup`, or "
            "`pip install --no-deps tonic==1.7.0 importRosbag expelliarmus requests`, or plain "
            "`pip install tonic`"
        ) from exc
    return read_mnist_file


def _split(spikes: list[np.ndarray], labels: list[int], sensor: tuple[int, int],
           crop: tuple[int, int] | None, polarity: str, name: str, bin_us: int) -> EventSplit:
    h, w = sensor if crop is None else crop
    return EventSplit(
        spikes=torch.from_numpy(np.stack(spikes)),
        labels=torch.tensor(labels, dtype=torch.int64),
        shape=(2 if polarity == "split" else 1, int(h), int(w)),
        name=name,
        bin_us=int(bin_us),
    )


def _root(root: object) -> Path:
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise InputTypeError(f"root must be a path or None; got {type(root).__name__}")
    return default_data_dir() if root is None else Path(os.fspath(root)).expanduser()


def _nmnist_samples(base: Path, split: str) -> list[tuple[Path, int]]:
    """(file, label) pairs of the first layout found under ``base``."""
    for folder in (base / f if f else base for f in _NMNIST_FOLDERS):
        lists = sorted(folder.glob(f"{split}*.txt")) if folder.is_dir() else []
        if len(lists) > 1:
            raise DataError(f"{folder}: several {split} lists ({', '.join(p.name for p in lists)})")
        if lists:
            return _read_list(lists[0])
        official = folder / split.capitalize()
        if official.is_dir():
            found = [(p, int(p.parent.name)) for p in official.glob("[0-9]/*.bin")]
            if found:
                return sorted(found, key=lambda item: (item[1], item[0].name))
    state = "" if base.is_dir() else " (the directory does not exist)"
    where = ", ".join(str(base / f) if f else str(base) for f in _NMNIST_FOLDERS)
    raise DatasetNotFoundError(
        f"nmnist ({split} split) not found in {base}{state}. Looked in {where} for\n"
        f"  a list file {split}*.txt (lines '<id> <label>') beside <id>.bs2 or <id>.bin files, "
        f"or\n  the official layout {split.capitalize()}/<digit>/*.bin "
        "(unzip N-MNIST's Train.zip / Test.zip there).\n"
        "Pass root=... (--data-dir) to point at a directory that holds them."
    )


def _read_list(path: Path) -> list[tuple[Path, int]]:
    samples = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        if len(parts) != 2 or not all(s.isdigit() for s in parts):
            raise DataError(f"{path}:{number}: expected '<id> <label>'; found {line!r}")
        label = int(parts[1])
        if label >= _NUM_CLASSES:
            raise DataError(f"{path}:{number}: label must be in 0..9; found {label}")
        files = [path.parent / f"{parts[0]}{ext}" for ext in _NMNIST_EXTS]
        found = next((f for f in files if f.is_file()), None)
        if found is None:
            raise DataError(f"{path}:{number}: sample {parts[0]} has no file "
                            f"({' or '.join(f.name for f in files)}) in {path.parent}")
        samples.append((found, label))
    return samples


def _mnist_dvs_paths(paths_or_dir: object) -> list[Path]:
    if paths_or_dir is None or isinstance(paths_or_dir, (str, os.PathLike)):
        folder = _root(paths_or_dir) / ("mnist_dvs" if paths_or_dir is None else "")
        paths = sorted(folder.rglob("mnist_*.aedat")) if folder.is_dir() else []
        if not paths:
            state = "" if folder.is_dir() else " (the directory does not exist)"
            raise DatasetNotFoundError(
                f"mnist-dvs not found in {folder}{state}: no mnist_<digit>_scale<NN>_*.aedat "
                "files there or below. Put the unzipped MNIST-DVS recordings (AEDAT 2.0, from "
                "http://www2.imse-cnm.csic.es/caviar/MNISTDVS.html) in that folder, or pass "
                "a folder or a list of files."
            )
        return paths
    if not isinstance(paths_or_dir, Iterable):
        raise InputTypeError(
            f"paths_or_dir must be a folder, a list of files or None; got "
            f"{type(paths_or_dir).__name__}"
        )
    paths = []
    for item in paths_or_dir:
        if not isinstance(item, (str, os.PathLike)):
            raise InputTypeError(f"MNIST-DVS paths must be paths; got {type(item).__name__}")
        paths.append(Path(os.fspath(item)).expanduser())
    if not paths:
        raise InputError("paths_or_dir is an empty list")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DatasetNotFoundError(f"MNIST-DVS file(s) not found: {', '.join(missing[:3])}")
    return paths


def _check_events(events: object) -> None:
    if not isinstance(events, np.ndarray):
        raise InputTypeError(f"events must be a numpy structured array; got {type(events)}")
    names = set(events.dtype.names or ())
    if events.ndim != 1 or not {"x", "y", "t", "p"} <= names:
        raise InputError(
            f"events must be a 1-D structured array with fields x, y, t, p; found shape "
            f"{events.shape}, fields {sorted(names)}"
        )


def _check_pair(name: str, value: object) -> tuple[int, int]:
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, Integral) and not isinstance(v, bool) and v >= 1 for v in value
    )
    if not ok:
        raise InputError(f"{name} must be (height, width), two positive ints; got {value!r}")
    return int(value[0]), int(value[1])


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise InputError(f"{name} must be a positive int; got {value!r}")


def _check_limit(limit: object) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be a positive int or None; got {limit!r}")

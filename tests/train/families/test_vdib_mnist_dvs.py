"""VDIB event naturalization on MNIST-DVS: the documented folder layout, all ten classes or a
typed error naming the missing ones, and a tiny run end to end (synthetic recordings written by
the test); the real sample when ../shared/data has it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spikecodec.errors import DataError
from spikecodec.train import config as config_io
from spikecodec.train.families.vdib import tasks
from spikecodec.train.families.vdib.config import VDIBConfig
from spikecodec.train.families.vdib.training import load_task, train_vdib

from conftest import SHARED_DATA

MNIST_DVS_SAMPLE = SHARED_DATA / "mnist_dvs_sample"
PER_DIGIT = 5  # recordings per digit: 4 train, 1 test after the per-class 80/20 split


def write_recording(path: Path, digit: int, seed: int) -> None:
    """An AEDAT 2.0 file of a DVS128: events on a vertical bar whose column is the digit's,
    inside the central 26 x 26 crop, over ~60 ms (addresses as jAER's DVS128 writes them)."""
    rng = np.random.default_rng(seed)
    n = 300
    x = 52 + 2 * digit + rng.integers(0, 2, n)  # columns 52..71: inside crop columns 51..76
    y = rng.integers(52, 76, n)
    t = np.sort(rng.integers(0, 60_000, n))
    p = rng.integers(0, 2, n)
    body = np.empty(n, dtype=[("a", ">u4"), ("t", ">u4")])
    body["a"] = (127 - y) << 8 | (127 - x) << 1 | (1 - p)
    body["t"] = t
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"#!AER-DAT2.0\r\n# synthetic\r\n" + body.tobytes())


def write_layout(root: Path, digits=range(10)) -> Path:
    """The documented layout, as the official zips unpack: mnist_dvs/grabbed_data<d>/scale<NN>/
    mnist_<d>_scale<NN>_<NNNN>.aedat; plus a scale-8 copy of digit 0 to be filtered out."""
    folder = root / "mnist_dvs"
    for d in digits:
        for k in range(1, PER_DIGIT + 1):
            write_recording(folder / f"grabbed_data{d}" / "scale4" /
                            f"mnist_{d}_scale04_{k:04d}.aedat", d, seed=100 * d + k)
    write_recording(folder / "grabbed_data0" / "scale8" / "mnist_0_scale08_0001.aedat", 0, 7)
    return folder


def write_mnist(root: Path) -> None:
    """A stand-in mnist.npz: image of class c = a bright square at a class-dependent place."""
    x = np.zeros((20, 28, 28), np.uint8)
    y = np.arange(20) % 10
    for i, c in enumerate(y):
        x[i, 2 + 2 * c: 6 + 2 * c, 4:10] = 255 if i < 10 else 128
    (root / "mnist").mkdir(parents=True, exist_ok=True)
    np.savez(root / "mnist" / "mnist.npz", x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])


def events_cfg(folder: Path, mnist_root: Path, *extra: str) -> VDIBConfig:
    return config_io.apply_overrides(VDIBConfig(), [
        "data.task=events", "data.dataset=mnist-dvs", f"data.data_dir={folder}",
        f"data.mnist_dir={mnist_root}", "data.num_steps=6", "data.bin_us=10000",
        "data.dvs_scale=4", *extra])


def test_layout_loads_every_class_split_per_class_with_class_image_references(tmp_path):
    folder = write_layout(tmp_path)
    write_mnist(tmp_path)
    task = load_task(events_cfg(folder, tmp_path))
    assert task.in_features == 26 * 26 and task.num_steps == 6 and task.out_shape == (784,)
    train, test = task.labels["train"], task.labels["test"]
    assert sorted(train.tolist()) == sorted(list(range(10)) * (PER_DIGIT - 1))  # scale 8 gone
    assert sorted(test.tolist()) == list(range(10))
    for split in ("train", "test"):
        x = task.inputs[split]
        assert x.shape == (len(task.labels[split]), 676, 6) and x.dtype == torch.uint8
        # each recording's bar sits in its digit's columns of the crop (row-major neurons)
        cols = torch.nonzero(x.sum(-1))[:, 1] % 26
        digit_of = task.labels[split][torch.nonzero(x.sum(-1))[:, 0]]
        assert torch.all((cols - (1 + 2 * digit_of) >= 0) & (cols - (1 + 2 * digit_of) <= 1))
        # the reference is the first MNIST training image of the sample's class
        ref = task.references[split].reshape(-1, 28, 28)
        for r, c in zip(ref, task.labels[split], strict=True):
            assert float(r[2 + 2 * c, 5]) == 1.0 and float(r.sum()) == 24.0


def test_limits_read_only_what_they_keep(tmp_path):
    folder = write_layout(tmp_path)
    write_mnist(tmp_path)
    task = load_task(events_cfg(folder, tmp_path, "data.train_limit=12", "data.test_limit=3"))
    assert task.size("train") == 12 and task.size("test") == 3


def test_missing_digits_raise_a_data_error_naming_them(tmp_path):
    folder = write_layout(tmp_path, digits=[d for d in range(10) if d not in (3, 7)])
    with pytest.raises(DataError, match=r"no recordings of digit\(s\) 3, 7 .*all 10 classes"):
        load_task(events_cfg(folder, tmp_path))  # before any recording or MNIST is read


def test_tiny_run_vdib_vs_rate_end_to_end(tmp_path):
    folder = write_layout(tmp_path)
    write_mnist(tmp_path)
    rows = {}
    for name, decoding in (("time", "window"), ("rate", "rate")):
        cfg = events_cfg(folder, tmp_path, "model.hidden=8", "model.readout.neurons=6",
                         "decoder.hidden=8", "train.epochs=1", "train.batch_size=10",
                         f"decoder.input={decoding}")
        out = train_vdib(cfg, tmp_path / f"run_{name}", show_progress=False, log=lambda _: None)
        rows[name] = out["metrics"]
        assert out["dataset"] == "mnist-dvs" and out["test_samples"] == 10
        assert (tmp_path / f"run_{name}" / "reconstructions.png").is_file()
    for m in rows.values():
        assert 0 < m["float"]["mse"] < 1 and m["chance"]["mse"] > 0


@pytest.mark.skipif(not MNIST_DVS_SAMPLE.is_dir(), reason=f"{MNIST_DVS_SAMPLE} not present")
def test_real_sample_holds_digit_zero_only_and_says_which_digits_are_missing():
    with pytest.raises(DataError, match=r"digit\(s\) 1, 2, 3, 4, 5, 6, 7, 8, 9 .*0: 20"):
        tasks.events_task(dataset="mnist-dvs", data_dir=str(MNIST_DVS_SAMPLE), train_limit=None,
                          test_limit=None, num_steps=20, bin_us=10_000, mnist_dir=None)

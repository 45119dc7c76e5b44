"""Event data: N-MNIST and AEDAT 2.0 round trips, binning, crop, polarity, loaders, real files."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spikecodec.errors import DataError, DatasetNotFoundError, InputError, InputTypeError
from spikecodec.train.events import (
    EVENT_DTYPE,
    bin_events,
    load_mnist_dvs,
    load_nmnist,
    read_aedat_dvs128,
    read_nmnist,
)

from conftest import SHARED_DATA

NMNIST = SHARED_DATA / "nmnist_small"
MNIST_DVS = SHARED_DATA / "mnist_dvs_sample"


def needs(folder: Path):
    return pytest.mark.skipif(not folder.is_dir(), reason=f"{folder} not present")


def events(x, y, t, p) -> np.ndarray:
    out = np.empty(len(x), dtype=EVENT_DTYPE)
    out["x"], out["y"], out["t"], out["p"] = x, y, t, p
    return out


def random_events(n: int, sensor=(34, 34), t_max=300_000, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, t_max, n))
    return events(rng.integers(0, sensor[1], n), rng.integers(0, sensor[0], n), t,
                  rng.integers(0, 2, n))


def write_nmnist(path: Path, ev: np.ndarray) -> None:
    """The 40-bit N-MNIST layout: x, y, polarity bit + 23-bit timestamp (µs), big-endian."""
    t = ev["t"].astype(np.int64)
    raw = np.stack([ev["x"], ev["y"], (ev["p"].astype(np.int64) << 7) | (t >> 16 & 0x7F),
                    t >> 8 & 0xFF, t & 0xFF], axis=1).astype(np.uint8)
    path.write_bytes(raw.tobytes())


def write_aedat(path: Path, ev: np.ndarray, *, header=b"#!AER-DAT2.0\r\n", extra=None) -> None:
    """AEDAT 2.0 with DVS128 addresses, inverting the reader's decoding."""
    addr = ((127 - ev["y"].astype(np.int64)) << 8 | (127 - ev["x"].astype(np.int64)) << 1
            | (1 - ev["p"].astype(np.int64)))
    body = np.empty(len(ev), dtype=[("a", ">u4"), ("t", ">u4")])
    body["a"], body["t"] = addr, ev["t"]
    if extra is not None:
        body = np.concatenate([body, extra]).astype(body.dtype)  # concatenate goes native-endian
    text = header + b"# This is a raw AE data file - do not edit\r\n# created today\r\n"
    path.write_bytes(text + body.tobytes())


# --- readers: write tiny files, read them back ---------------------------------------------


def test_nmnist_round_trip(tmp_path):
    ev = random_events(500, t_max=2**23 - 1)
    write_nmnist(tmp_path / "1.bs2", ev)
    back = read_nmnist(tmp_path / "1.bs2")
    assert back.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(back, ev)


def test_aedat_round_trip_and_special_events_dropped(tmp_path):
    ev = random_events(300, sensor=(128, 128), t_max=2**32 - 1, seed=1)
    special = np.array([(0x8000 | 5, 7), (1 << 20, 9)], dtype=[("a", ">u4"), ("t", ">u4")])
    write_aedat(tmp_path / "mnist_3_scale04_0001.aedat", ev, extra=special)
    back = read_aedat_dvs128(tmp_path / "mnist_3_scale04_0001.aedat")
    np.testing.assert_array_equal(back, ev)


def test_aedat_bit_layout_by_hand(tmp_path):
    # raw x = 3, raw y = 5, raw polarity 0 (ON) -> x = 124, y = 122, p = 1
    body = np.array([(5 << 8 | 3 << 1 | 0, 10), (5 << 8 | 3 << 1 | 1, 20)],
                    dtype=[("a", ">u4"), ("t", ">u4")])
    (tmp_path / "a.aedat").write_bytes(b"#!AER-DAT2.0\n" + body.tobytes())
    back = read_aedat_dvs128(tmp_path / "a.aedat")
    assert back["x"].tolist() == [124, 124] and back["y"].tolist() == [122, 122]
    assert back["p"].tolist() == [1, 0] and back["t"].tolist() == [10, 20]


@pytest.mark.parametrize(
    "content, words",
    [
        (b"#!AER-DAT2.0\n" + b"\x00" * 12, "truncated"),
        (b"#!AER-DAT3.1\n" + b"\x00" * 8, "version 3.1"),
        (b"# no version line\n" + b"\x00" * 8, "no '#!AER-DAT' line"),
        (b"#!AER-DAT2.0", "has no end"),
    ],
)
def test_bad_aedat_raises_data_error(tmp_path, content, words):
    (tmp_path / "bad.aedat").write_bytes(content)
    with pytest.raises(DataError, match=words):
        read_aedat_dvs128(tmp_path / "bad.aedat")


def test_bad_nmnist_raises_data_error(tmp_path):
    (tmp_path / "1.bin").write_bytes(b"\x00" * 7)
    with pytest.raises(DataError, match="truncated"):
        read_nmnist(tmp_path / "1.bin")
    with pytest.raises(DataError, match="cannot read"):
        read_nmnist(tmp_path / "nothing.bin")


def test_nmnist_without_tonic_names_the_install(tmp_path, monkeypatch):
    write_nmnist(tmp_path / "1.bs2", random_events(5))
    monkeypatch.setitem(sys.modules, "tonic", None)  # import tonic.io now raises ImportError
    monkeypatch.setitem(sys.modules, "tonic.io", None)
    with pytest.raises(DataError, match="pip install"):
        read_nmnist(tmp_path / "1.bs2")


# --- binning -------------------------------------------------------------------------------


def test_bin_events_by_hand():
    ev = events(x=[0, 2, 2, 1, 0], y=[0, 1, 1, 0, 1], t=[100, 1099, 1100, 2500, 9000],
                p=[1, 0, 0, 1, 1])
    spikes = bin_events(ev, sensor=(2, 3), bin_us=1000, num_steps=3)
    assert spikes.dtype == np.uint8 and spikes.shape == (6, 3)
    expected = np.zeros((6, 3), np.uint8)
    expected[0, 0] = 1  # (row 0, col 0) at t - t0 = 0
    expected[5, 0] = 1  # (row 1, col 2) at 999 µs; two events there still give one spike
    expected[5, 1] = 1  # ... and again at 1000 µs, the next bin
    expected[1, 2] = 1  # (row 0, col 1) at 2400 µs; the event at 8900 µs is past 3 bins
    np.testing.assert_array_equal(spikes, expected)


def test_bin_events_start_time():
    ev = events(x=[0, 0], y=[0, 0], t=[5000, 7000], p=[1, 1])
    assert bin_events(ev, sensor=(1, 1), bin_us=1000, num_steps=3).tolist() == [[1, 0, 1]]
    late = bin_events(ev, sensor=(1, 1), bin_us=1000, num_steps=3, t_start_us=4000)
    assert late.tolist() == [[0, 1, 0]]
    early = bin_events(ev, sensor=(1, 1), bin_us=1000, num_steps=3, t_start_us=6000)
    assert early.tolist() == [[0, 1, 0]]  # the event before t_start is dropped


def test_bin_events_polarity_split():
    ev = events(x=[1, 1], y=[0, 0], t=[0, 0], p=[0, 1])
    split = bin_events(ev, sensor=(2, 2), bin_us=10, num_steps=1, polarity="split")
    assert split.shape == (8, 1)
    assert np.flatnonzero(split[:, 0]).tolist() == [1, 4 + 1]  # OFF block, then ON block
    merged = bin_events(ev, sensor=(2, 2), bin_us=10, num_steps=1, polarity="merge")
    assert np.flatnonzero(merged[:, 0]).tolist() == [1]


def test_bin_events_centred_crop():
    # sensor 6 x 8, crop 2 x 4: rows 2..3, columns 2..5 survive
    ev = events(x=[2, 5, 1, 6, 3, 3], y=[2, 3, 2, 2, 1, 4], t=[0] * 6, p=[1] * 6)
    spikes = bin_events(ev, sensor=(6, 8), crop=(2, 4), bin_us=10, num_steps=1)
    assert spikes.shape == (8, 1)
    assert np.flatnonzero(spikes[:, 0]).tolist() == [0 * 4 + 0, 1 * 4 + 3]


def test_bin_events_matches_dense_reference():
    ev = random_events(2000, sensor=(34, 34), seed=3)
    spikes = bin_events(ev, sensor=(34, 34), crop=(28, 30), bin_us=7000, num_steps=40,
                        polarity="split")
    dense = np.zeros((2, 34, 34, 40), np.uint8)
    t0 = ev["t"].min()
    for e in ev:
        step = (e["t"] - t0) // 7000
        if step < 40:
            dense[e["p"], e["y"], e["x"], step] = 1
    np.testing.assert_array_equal(spikes, dense[:, 3:31, 2:32].reshape(-1, 40))


def test_bin_events_empty():
    spikes = bin_events(np.empty(0, EVENT_DTYPE), sensor=(4, 4), bin_us=5, num_steps=3)
    assert spikes.shape == (16, 3) and spikes.sum() == 0


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"sensor": (4, 4), "crop": (5, 2)}, InputError, "larger"),
        ({"sensor": (4,)}, InputError, "sensor"),
        ({"sensor": (4, 0)}, InputError, "sensor"),
        ({"sensor": (4, 4), "crop": (2.0, 2)}, InputError, "crop"),
        ({"sensor": (4, 4), "polarity": "both"}, InputError, "polarity"),
        ({"sensor": (4, 4), "bin_us": 0}, InputError, "bin_us"),
        ({"sensor": (4, 4), "num_steps": 1.5}, InputError, "num_steps"),
        ({"sensor": (2, 2)}, InputError, "outside"),
        ({"sensor": (4, 4), "t_start_us": 1.0}, InputTypeError, "t_start_us"),
    ],
)
def test_bin_events_bad_arguments(kwargs, error, words):
    ev = events(x=[3], y=[1], t=[0], p=[1])
    kwargs = {"bin_us": 10, "num_steps": 2, **kwargs}
    with pytest.raises(error, match=words):
        bin_events(ev, **kwargs)


def test_bin_events_bad_events():
    with pytest.raises(InputTypeError):
        bin_events([(1, 2, 3, 1)], sensor=(4, 4), bin_us=1, num_steps=1)
    with pytest.raises(InputError, match="fields"):
        bin_events(np.zeros(3), sensor=(4, 4), bin_us=1, num_steps=1)
    with pytest.raises(InputError, match="polarity must be 0 or 1"):
        bin_events(events([0], [0], [0], [2]), sensor=(4, 4), bin_us=1, num_steps=1)


# --- loaders on tiny synthetic datasets ----------------------------------------------------


def fake_nmnist_list(folder: Path, labels=(3, 1, 4), split="train") -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    lines, written = ["#sample #class"], []
    for i, label in enumerate(labels, start=1):
        ev = random_events(50 + i, seed=i)
        write_nmnist(folder / f"{i}.bs2", ev)
        lines.append(f"{i}\t{label}")
        written.append(ev)
    (folder / f"{split}3.txt").write_text("\n".join(lines) + "\n")
    return written


def test_load_nmnist_from_list_layout(tmp_path):
    written = fake_nmnist_list(tmp_path / "nmnist_small")
    split = load_nmnist(tmp_path, "train", num_steps=30, bin_us=10_000, limit=2)
    assert split.spikes.shape == (2, 2 * 34 * 34, 30) and split.spikes.dtype == torch.uint8
    assert split.labels.tolist() == [3, 1] and split.labels.dtype == torch.int64
    assert split.shape == (2, 34, 34) and split.name == "nmnist/train" and split.bin_us == 10_000
    expected = bin_events(written[1], sensor=(34, 34), bin_us=10_000, num_steps=30,
                          polarity="split")
    np.testing.assert_array_equal(split.spikes[1].numpy(), expected)


def test_load_nmnist_from_official_layout(tmp_path):
    for label, name in [(7, "00012.bin"), (2, "00003.bin"), (2, "00001.bin")]:
        (tmp_path / "Test" / str(label)).mkdir(parents=True, exist_ok=True)
        write_nmnist(tmp_path / "Test" / str(label) / name, random_events(20))
    split = load_nmnist(tmp_path, "test", polarity="merge", crop=(28, 28))
    assert split.labels.tolist() == [2, 2, 7]
    assert split.spikes.shape == (3, 28 * 28, 35) and split.shape == (1, 28, 28)


def test_load_nmnist_missing_says_where(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_nmnist(tmp_path / "nowhere", "test")
    message = str(info.value)
    for words in ("nowhere", "test*.txt", "Test/<digit>/*.bin", "does not exist", "root="):
        assert words in message
    assert isinstance(info.value, FileNotFoundError)


def test_load_nmnist_bad_lists(tmp_path):
    fake_nmnist_list(tmp_path, labels=(1, 2))
    (tmp_path / "2.bs2").unlink()
    with pytest.raises(DataError, match="sample 2 has no file"):
        load_nmnist(tmp_path)
    (tmp_path / "train3.txt").write_text("1 12\n")
    with pytest.raises(DataError, match="0..9"):
        load_nmnist(tmp_path)
    with pytest.raises(DataError, match="unknown split"):
        load_nmnist(tmp_path, "val")
    with pytest.raises(InputError, match="limit"):
        load_nmnist(tmp_path, limit=0)


def test_load_mnist_dvs_from_folder_and_list(tmp_path):
    names = ["mnist_7_scale08_0001.aedat", "mnist_2_scale04_0002.aedat",
             "mnist_2_scale04_0001.aedat"]
    for i, name in enumerate(names):
        (tmp_path / "scale").mkdir(exist_ok=True)
        write_aedat(tmp_path / "scale" / name, random_events(400, sensor=(128, 128), seed=i,
                                                             t_max=2_000_000))
    split = load_mnist_dvs(tmp_path)
    assert split.spikes.shape == (3, 676, 200) and split.shape == (1, 26, 26)
    assert split.labels.tolist() == [2, 2, 7] and split.name == "mnist-dvs"
    assert load_mnist_dvs(tmp_path, scale=4).labels.tolist() == [2, 2]
    one = load_mnist_dvs([tmp_path / "scale" / names[0]], crop=None, polarity="split",
                         num_steps=20, bin_us=100_000)
    assert one.spikes.shape == (1, 2 * 128 * 128, 20) and one.labels.tolist() == [7]
    assert one.spikes.sum() > 0


def test_load_mnist_dvs_errors(tmp_path, monkeypatch):
    with pytest.raises(DatasetNotFoundError, match="MNISTDVS"):
        load_mnist_dvs(tmp_path)
    monkeypatch.setenv("SPIKECODEC_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "mnist_dvs")):
        load_mnist_dvs()
    with pytest.raises(DatasetNotFoundError, match="not found"):
        load_mnist_dvs([tmp_path / "mnist_1_scale04_0001.aedat"])
    write_aedat(tmp_path / "digit.aedat", random_events(5, sensor=(128, 128)))
    with pytest.raises(DataError, match="mnist_<digit>"):
        load_mnist_dvs([tmp_path / "digit.aedat"])
    with pytest.raises(InputTypeError):
        load_mnist_dvs(42)


# --- the real files in ../shared/data ------------------------------------------------------


@needs(NMNIST)
def test_real_nmnist_files():
    ev = read_nmnist(NMNIST / "1.bs2")
    assert len(ev) > 1000
    assert 0 <= ev["x"].min() and ev["x"].max() <= 33 and 0 <= ev["y"].min() and ev["y"].max() <= 33
    assert set(np.unique(ev["p"]).tolist()) == {0, 1}
    assert np.all(np.diff(ev["t"]) >= 0) and 250_000 < ev["t"].max() < 340_000


@needs(NMNIST)
def test_real_nmnist_splits_and_label_counts():
    train = load_nmnist(NMNIST, "train")
    assert train.spikes.shape == (1000, 2312, 35)
    assert np.bincount(train.labels.numpy()).tolist() == [97, 116, 99, 93, 105, 92, 94, 117,
                                                           87, 100]
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]  # MNIST train images 1..5
    test = load_nmnist(SHARED_DATA, "test", limit=100)
    assert np.bincount(test.labels.numpy()).tolist() == [8, 14, 8, 11, 14, 7, 10, 15, 2, 11]
    active = train.spikes.sum(dim=(1, 2))
    assert bool((active > 100).all())
    # three saccades, ~100 ms each: every 10 ms step of the first 300 ms has events
    assert bool((train.spikes[:, :, :30].sum(dim=1) > 0).float().mean() > 0.95)


@needs(MNIST_DVS)
def test_real_mnist_dvs_files():
    paths = sorted(MNIST_DVS.glob("*.aedat"))
    assert len(paths) == 20
    for path in paths[:5]:
        ev = read_aedat_dvs128(path)
        assert 10_000 < len(ev) < 25_000
        assert 0 <= ev["x"].min() and ev["x"].max() <= 127
        assert 0 <= ev["y"].min() and ev["y"].max() <= 127
        assert np.all(np.diff(ev["t"]) >= 0)
        assert 1.5e6 < ev["t"][-1] - ev["t"][0] < 2.6e6  # ~2.2 s recordings
        assert 0.3 < ev["p"].mean() < 0.7
        centre = (np.abs(ev["x"] - 63.5) < 13) & (np.abs(ev["y"] - 63.5) < 13)
        assert centre.mean() > 0.5  # the digit sits in the paper's central 26 x 26 crop


@needs(MNIST_DVS)
def test_real_mnist_dvs_split():
    split = load_mnist_dvs(MNIST_DVS, limit=6)
    assert split.spikes.shape == (6, 676, 200) and split.labels.tolist() == [0] * 6
    rate = split.spikes.float().mean().item()
    assert 0.01 < rate < 0.3
    assert bool((split.spikes.sum(dim=1) > 0).float().mean() > 0.9)  # events in most 10 ms bins


def test_events_task_finds_its_mnist_references_under_data_dir(tmp_path):
    """--data-dir names one folder for the events and for the MNIST class images."""
    from spikecodec.train import config as config_io
    from spikecodec.train.families.vdib.config import VDIBConfig
    from spikecodec.train.families.vdib.training import load_task

    fake_nmnist_list(tmp_path / "nmnist_small")
    fake_nmnist_list(tmp_path / "nmnist_small", labels=(2, 9), split="test")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    labels = np.arange(20) % 10
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=labels, x_test=images[:10],
             y_test=labels[:10])
    cfg = config_io.load(VDIBConfig, None, ["data.task=events", "data.dataset=nmnist",
                                            f"data.data_dir={tmp_path}", "data.num_steps=10"])
    task = load_task(cfg)
    ref = task.references["train"]
    for i, label in enumerate(task.labels["train"].tolist()):
        np.testing.assert_allclose(ref[i].numpy(), images[label].reshape(-1) / 255.0,
                                   rtol=1e-6)  # float32 images

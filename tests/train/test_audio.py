"""The spoken-digit front end: wav reading with typed errors per file, the mel spectrogram's
shape and range, FSDD's standard and speaker-independent splits, the synthetic set."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.io import wavfile

from spikecodec.errors import ConfigError, DataError, DatasetNotFoundError
from spikecodec.train.audio import FrontEnd, load_audio, read_wav, spectrogram

FE = FrontEnd()


def _tone(seconds: float, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _write(path, signal, rate=8000, dtype=np.int16):
    scale = {np.int16: 32767, np.int32: 2**31 - 1, np.uint8: None, np.float32: 1.0}[dtype]
    data = (signal * 127 + 128).astype(np.uint8) if scale is None \
        else (signal * scale).astype(dtype)
    wavfile.write(path, rate, data)
    return path


@pytest.fixture(scope="module")
def fsdd(request):
    root = request.getfixturevalue("shared_data") / "fsdd"
    if not (root / "recordings").is_dir():
        pytest.skip(f"FSDD not found at {root}")
    return root


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8, np.float32])
def test_read_wav_scales_every_sample_type_to_unit_range(tmp_path, dtype):
    x, resampled = read_wav(_write(tmp_path / "a.wav", _tone(0.2), dtype=dtype), FE)
    assert x.dtype == np.float32 and len(x) == 1600 and not resampled
    assert 0.45 < np.abs(x).max() <= 0.51


def test_stereo_is_averaged_to_mono(tmp_path):
    left = _tone(0.2)
    wavfile.write(tmp_path / "s.wav", 8000, np.stack([left, np.zeros_like(left)], 1))
    x, _ = read_wav(tmp_path / "s.wav", FE)
    np.testing.assert_allclose(x, left / 2, atol=1e-7)


@pytest.mark.parametrize("content, message", [
    (b"", "not a readable wav file"),
    (b"RIFF garbage that is no wave", "not a readable wav file"),
])
def test_unreadable_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        read_wav(path, FE)
    assert str(path) in str(err.value)


def test_a_wav_without_samples_is_refused(tmp_path):
    path = tmp_path / "empty.wav"
    wavfile.write(path, 8000, np.zeros(0, dtype=np.int16))
    with pytest.raises(DataError, match="holds no samples") as err:
        read_wav(path, FE)
    assert "empty.wav" in str(err.value)


def test_a_recording_shorter_than_one_frame_is_refused(tmp_path):
    path = _write(tmp_path / "short.wav", _tone(0.05))  # 400 samples < n_fft 512
    with pytest.raises(DataError, match=r"short.wav: 400 samples .* shorter than one frame"):
        read_wav(path, FE)


def test_another_sample_rate_is_refused_unless_resampling_is_asked_for(tmp_path):
    path = _write(tmp_path / "fast.wav", _tone(0.3, 16000), rate=16000)
    with pytest.raises(DataError, match=r"fast.wav: sample rate 16000 Hz, expected 8000 Hz"):
        read_wav(path, FE)
    x, resampled = read_wav(path, FrontEnd(resample=True))
    assert resampled and abs(len(x) - 2400) <= 1


def test_resampling_says_so_with_a_warning(tmp_path):
    for i in range(5):
        _write(tmp_path / f"{i % 10}_x_{i}.wav", _tone(0.3, 16000), rate=16000)
    with pytest.warns(UserWarning, match=r"resampled 5 of 5 recordings to 8000 Hz"):
        split = load_audio("fsdd", "test", FrontEnd(resample=True), data_dir=tmp_path)
    assert split.features.shape == (5, 39 * 40)


def test_a_bad_file_inside_the_dataset_is_named(tmp_path):
    _write(tmp_path / "0_x_0.wav", _tone(0.3))
    (tmp_path / "1_x_1.wav").write_bytes(b"nope")
    with pytest.raises(DataError, match="1_x_1.wav"):
        load_audio("fsdd", "test", FE, data_dir=tmp_path)


def test_spectrogram_shape_range_padding_and_cropping():
    short = spectrogram(_tone(0.2), FE)  # 1 + (1600 - 512) // 128 = 9 frames, then zeros
    assert short.shape == (39, 40) and short.dtype == np.float32
    assert 0.0 <= short.min() and short.max() == pytest.approx(1.0)
    assert short[:, :9].max() > 0 and not short[:, 9:].any()
    long = spectrogram(np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32), FE)
    assert long.shape == (39, 40) and long[:, -1].any()  # 2 s: cropped to 40 frames


def test_front_end_settings_are_checked():
    with pytest.raises(ConfigError, match="data.frames must be a positive integer"):
        FrontEnd(frames=0)
    with pytest.raises(ConfigError, match="n_mels .* exceeds"):
        FrontEnd(n_mels=300, n_fft=256)


def test_missing_folder_and_download_say_where_to_get_fsdd(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="FSDD recordings not found under"):
        load_audio("fsdd", "train", FE, data_dir=tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError, match="no maintained loader downloads FSDD"):
        load_audio("fsdd", "train", FE, data_dir=tmp_path, download=True)
    with pytest.raises(DataError, match="unknown audio dataset"):
        load_audio("timit", "train", FE)


def test_synthetic_tones_cover_every_digit_in_order():
    train = load_audio("tones", "train", FrontEnd(frames=8), limit=30)
    test = load_audio("tones", "test", FrontEnd(frames=8))
    assert train.features.shape == (30, 39 * 8) and len(test) == 150
    assert set(train.labels[:10].tolist()) == set(range(10))
    assert 0 <= float(train.features.min()) and float(train.features.max()) <= 1
    again = load_audio("tones", "train", FrontEnd(frames=8), limit=30)
    assert (again.features == train.features).all()


def test_fsdd_standard_split(fsdd):
    test = load_audio("fsdd", "test", FE, data_dir=fsdd.parent)
    assert test.features.shape == (300, 39 * 40) and test.shape == (39, 40)
    assert all(int(n.split("_")[2][:-4]) <= 4 for n in test.names)
    assert np.bincount(test.labels.numpy()).tolist() == [30] * 10
    assert 0 <= float(test.features.min()) and float(test.features.max()) <= 1
    train = load_audio("fsdd", "train", FE, data_dir=fsdd, limit=20)  # the folder itself works
    assert len(train) == 20 and set(train.labels.tolist()) == set(range(10))
    assert all(int(n.split("_")[2][:-4]) >= 5 for n in train.names)


def test_fsdd_speaker_independent_split(fsdd):
    test = load_audio("fsdd", "test", FE, data_dir=fsdd.parent, test_speaker="theo", limit=40)
    train = load_audio("fsdd", "train", FE, data_dir=fsdd.parent, test_speaker="theo",
                       limit=40)
    assert set(test.speakers) == {"theo"} and "theo" not in set(train.speakers)
    with pytest.raises(ConfigError, match="'nobody' is not a speaker of fsdd"):
        load_audio("fsdd", "test", FE, data_dir=fsdd.parent, test_speaker="nobody")

"""Spoken digits as spectrograms in [0, 1]: wav reading, the mel front end, FSDD and a
synthetic set.

Front end (librosa, the maintained library; no hand-written DSP): a recording (mono, float in
[-1, 1]) -> power STFT (``n_fft`` samples, hop ``hop_length``, no centring, Hann window) -> a
mel filterbank of ``n_mels`` channels (the paper's 39) -> dB relative to the recording's
loudest bin, floored at ``-top_db`` -> ``(dB + top_db) / top_db`` in [0, 1] -> a fixed
``frames`` columns: longer recordings are **cropped at the end** (FSDD is trimmed to start at the
utterance), shorter ones **padded at the end with zeros** (silence). One sample is the
``(n_mels, frames)`` map flattened channel-major, ready for Poisson encoding.

Wav files are read with ``scipy.io.wavfile``. Bad input raises a typed error naming the file:
unreadable or empty files, recordings shorter than one frame (``n_fft`` samples), and a sample
rate other than the expected one. Resampling happens only when asked (``resample=True``, with
``librosa.resample``), and then with a warning naming how many files were resampled.

Datasets (``load_audio``):

Recordings are ordered by (index, speaker, digit), so a ``limit`` keeps every digit.

* ``fsdd``: the Free Spoken Digit Dataset (``{digit}_{speaker}_{index}.wav``, 8 kHz), looked up
  as ``<data_dir>/fsdd/recordings``, ``<data_dir>/recordings`` or ``<data_dir>`` itself. Its
  standard split: recordings 0-4 of each speaker and digit are the test set (300), 5-49 train
  (2,700). ``test_speaker=NAME`` makes the speaker-independent split instead: every recording
  of NAME is the test set, the other speakers' are the training set. No maintained loader
  downloads FSDD (tonic and torchaudio have none), so ``download=True`` says where to get it.
* ``tones``: a small synthetic, offline stand-in (each digit a pair of tones with a per-speaker
  pitch shift and per-recording jitter), for seconds-long smoke runs; same split rule.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikecodec.errors import ConfigError, DataError, DatasetNotFoundError
from spikecodec.train.datasets import default_data_dir

AUDIO_DATASETS = ("fsdd", "tones")
FSDD_TEST_INDICES = range(5)  # the dataset's README: recordings 0-4 are the test set
FSDD_SOURCE = "github.com/Jakobovski/free-spoken-digit-dataset (folder recordings/)"
_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


@dataclass(frozen=True)
class FrontEnd:
    """The spectrogram settings (module docstring); times in samples unless named ``_s``."""

    sample_rate: int = 8000  # Hz the files must have (FSDD: 8 kHz)
    resample: bool = False  # resample other rates (with a warning) instead of refusing them
    n_mels: int = 39  # frequency channels (paper: 39)
    n_fft: int = 512  # STFT window: 64 ms at 8 kHz; also the shortest usable recording
    hop_length: int = 128  # 16 ms at 8 kHz
    frames: int = 40  # spectrogram columns kept (0.69 s at 8 kHz: ~90 % of FSDD unclipped)
    top_db: float = 80.0  # dynamic range mapped onto [0, 1]

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_mels", "n_fft", "hop_length", "frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"data.{name} must be a positive integer, got {value!r}")
        if not self.top_db > 0:
            raise ConfigError(f"data.top_db must be > 0, got {self.top_db!r}")
        if self.n_mels > self.n_fft // 2 + 1:
            raise ConfigError(f"data.n_mels ({self.n_mels}) exceeds the {self.n_fft // 2 + 1} "
                              f"frequency bins of n_fft={self.n_fft}")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_mels, self.frames)


@dataclass(frozen=True)
class AudioSplit:
    """One split of a spoken-digit set."""

    features: torch.Tensor  # (n, n_mels * frames) float32 in [0, 1]
    labels: torch.Tensor  # (n,) int64 digits
    speakers: tuple[str, ...]
    names: tuple[str, ...]  # file names (or synthetic ids)
    shape: tuple[int, int]  # (n_mels, frames)
    name: str  # e.g. "fsdd/test"

    def __len__(self) -> int:
        return self.features.shape[0]


def read_wav(path: str | os.PathLike, fe: FrontEnd) -> tuple[np.ndarray, bool]:
    """A wav file as mono float32 in [-1, 1] at ``fe.sample_rate``; ``(signal, resampled)``.

    Multi-channel files are averaged to mono. Raises :class:`DataError` naming the file when it
    cannot be read, holds no samples, has another rate (unless ``fe.resample``) or is shorter
    than one frame.
    """
    from scipy.io import wavfile

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)  # odd chunks: data still read
            rate, data = wavfile.read(path)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"{path}: not a readable wav file ({err})") from None
    if data.size == 0:
        raise DataError(f"{path}: the wav file holds no samples")
    x = _to_float(np.asarray(data), path)
    if x.ndim == 2:
        x = x.mean(axis=1)
    resampled = False
    if rate != fe.sample_rate:
        if not fe.resample:
            raise DataError(f"{path}: sample rate {rate} Hz, expected {fe.sample_rate} Hz "
                            f"(set data.resample=true to resample it)")
        import librosa

        x = librosa.resample(x, orig_sr=rate, target_sr=fe.sample_rate)
        resampled = True
    if len(x) < fe.n_fft:
        raise DataError(f"{path}: {len(x)} samples ({len(x) / fe.sample_rate:.3f} s) is shorter "
                        f"than one frame (n_fft={fe.n_fft} samples)")
    return x.astype(np.float32), resampled


def _to_float(data: np.ndarray, path: Path) -> np.ndarray:
    if data.dtype.kind == "f":
        x = data.astype(np.float32)
    elif data.dtype == np.uint8:
        x = (data.astype(np.float32) - 128.0) / 128.0
    elif data.dtype.kind == "i":
        x = data.astype(np.float32) / float(2 ** (8 * data.dtype.itemsize - 1))
    else:
        raise DataError(f"{path}: unsupported sample type {data.dtype}")
    if not np.isfinite(x).all():
        raise DataError(f"{path}: the wav file holds non-finite samples")
    return x


def spectrogram(signal: np.ndarray, fe: FrontEnd) -> np.ndarray:
    """Mono ``signal`` -> ``(n_mels, frames)`` float32 in [0, 1] (module docstring)."""
    import librosa

    mel = librosa.feature.melspectrogram(y=signal, sr=fe.sample_rate, n_fft=fe.n_fft,
                                         hop_length=fe.hop_length, n_mels=fe.n_mels,
                                         center=False, power=2.0)
    db = librosa.power_to_db(mel, ref=np.max, top_db=fe.top_db)  # <= 0, floored at -top_db
    scaled = np.clip((db + fe.top_db) / fe.top_db, 0.0, 1.0)
    out = np.zeros((fe.n_mels, fe.frames), dtype=np.float32)  # zeros: padded silence
    keep = min(fe.frames, scaled.shape[1])
    out[:, :keep] = scaled[:, :keep]
    return out


def load_audio(name: str, split: str, fe: FrontEnd, *, data_dir: str | os.PathLike | None = None,
               download: bool = False, test_speaker: str | None = None,
               limit: int | None = None) -> AudioSplit:
    """One split of spoken-digit set ``name`` (``AUDIO_DATASETS``) through the front end."""
    if name not in AUDIO_DATASETS:
        raise DataError(f"unknown audio dataset {name!r}; valid names: "
                        f"{', '.join(AUDIO_DATASETS)}")
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}; valid splits: train, test")
    if name == "tones":
        items = _tone_items()
    else:
        root = default_data_dir() if data_dir is None else Path(data_dir).expanduser()
        items = _fsdd_items(_fsdd_folder(root, download))
    if test_speaker is not None and test_speaker not in {spk for _, spk, _, _ in items}:
        raise ConfigError(f"data.test_speaker {test_speaker!r} is not a speaker of {name}; "
                          f"speakers: {', '.join(sorted({s for _, s, _, _ in items}))}")

    def is_test(spk: str, index: int) -> bool:
        return spk == test_speaker if test_speaker is not None else index in FSDD_TEST_INDICES

    chosen = [it for it in items if is_test(it[1], it[2]) == (split == "test")][:limit]
    feats, resampled = [], 0
    for _, _, _, source in chosen:
        if isinstance(source, Path):
            signal, was = read_wav(source, fe)
            resampled += was
        else:
            signal = source(fe.sample_rate)
        feats.append(spectrogram(signal, fe).reshape(-1))
    if resampled:
        warnings.warn(f"{name}/{split}: resampled {resampled} of {len(chosen)} recordings to "
                      f"{fe.sample_rate} Hz", stacklevel=2)
    return AudioSplit(
        features=torch.from_numpy(np.stack(feats)) if feats else torch.zeros(0, fe.n_mels
                                                                                * fe.frames),
        labels=torch.tensor([it[0] for it in chosen], dtype=torch.int64),
        speakers=tuple(it[1] for it in chosen),
        names=tuple(it[3].name if isinstance(it[3], Path) else f"{it[0]}_{it[1]}_{it[2]}"
                    for it in chosen),
        shape=fe.shape, name=f"{name}/{split}")


def _fsdd_folder(root: Path, download: bool) -> Path:
    for folder in (root / "fsdd" / "recordings", root / "recordings", root):
        if folder.is_dir() and any(_NAME.match(p.name) for p in folder.iterdir()):
            return folder
    how = ("no maintained loader downloads FSDD (tonic and torchaudio have none); "
           if download else "")
    raise DatasetNotFoundError(
        f"FSDD recordings not found under {root} (looked in fsdd/recordings/, recordings/ and "
        f"the folder itself for {{digit}}_{{speaker}}_{{index}}.wav files); {how}get them from "
        f"{FSDD_SOURCE} and pass data.data_dir")


def _fsdd_items(folder: Path) -> list[tuple[int, str, int, Path]]:
    """``(digit, speaker, index, path)`` of every recording, sorted by (index, speaker, digit)
    so that the first ``limit`` recordings of a split cover every digit."""
    items = []
    for path in folder.iterdir():
        m = _NAME.match(path.name)
        if m:
            items.append((int(m[1]), m[2], int(m[3]), path))
    return sorted(items, key=lambda it: (it[2], it[1], it[0]))


_TONE_SPEAKERS = ("alto", "bass", "tenor")
_TONE_RECORDINGS = 12  # per speaker and digit: 0-4 test, 5-11 train


def _tone_items() -> list[tuple[int, str, int, object]]:
    """The synthetic set: each digit ``d`` a tone pair at ``(300 + 60 d, 900 + 140 d)`` Hz,
    shifted per speaker, 0.3-0.5 s with a rising and falling envelope, seeded per recording."""
    return [(d, spk, i, _tone(d, s, i)) for i in range(_TONE_RECORDINGS)
            for s, spk in enumerate(_TONE_SPEAKERS) for d in range(10)]


def _tone(digit: int, speaker: int, index: int):
    def make(rate: int) -> np.ndarray:
        rng = np.random.default_rng(1000 * digit + 100 * speaker + index)
        n = int(rate * rng.uniform(0.3, 0.5))
        t = np.arange(n) / rate
        shift = 1.0 + 0.08 * (speaker - 1) + rng.normal(0, 0.01)
        f1, f2 = (300 + 60 * digit) * shift, (900 + 140 * digit) * shift
        env = np.sin(np.pi * np.arange(n) / n)
        x = env * (0.6 * np.sin(2 * np.pi * f1 * t) + 0.3 * np.sin(2 * np.pi * f2 * t))
        return (x + rng.normal(0, 0.01, n)).astype(np.float32)
    return make

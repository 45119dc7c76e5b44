"""Seeded fuzzing of the reader: every damaged export ends in a clean load or an ExportError.

Three sources of damage, over both committed exports:

* single-byte flips at random offsets of the sealed files: the checksum must catch every one
  (a flip always changes the bytes) before h5py parses anything;
* the same flips in unsealed copies (as lava-dl writes files): the probe and the typed reader
  must turn each into a clean load or an ExportError -- never another exception, a crash or a
  hang;
* structured corruptions made with h5py and then resealed, as a buggy writer would: the parser
  itself must name each problem.

The default suite runs a few hundred cases; ``-m slow`` runs thousands.
"""
from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
import pytest

from spikecodec.deploy.hdf5 import read_hdf5
from spikecodec.errors import ExportError

from conftest import REPO, edit_export, unsealed_copy

NAMES = ["roy_ae_digits", "vdib_digits"]


def outcome(path) -> str:
    """``"clean"``, ``"ExportError"`` or the name of any other exception (a failure)."""
    try:
        read_hdf5(path)
    except ExportError:
        return "ExportError"
    except Exception as err:  # noqa: BLE001  (the point: nothing else may escape)
        return f"{type(err).__name__}: {err}"
    return "clean"


def flip_cases(data: bytes, count: int, seed: int):
    """``count`` copies of ``data`` with one byte XOR-ed by a nonzero mask at a random offset."""
    rng = np.random.default_rng(seed)
    for offset, mask in zip(rng.integers(0, len(data), count), rng.integers(1, 256, count),
                            strict=True):
        damaged = bytearray(data)
        damaged[offset] ^= int(mask)
        yield int(offset), bytes(damaged)


def fuzz_sealed(tmp_path, name: str, count: int, seed: int) -> Counter:
    data = (REPO / "netx_exports" / name / "export.h5").read_bytes()
    tally, path = Counter(), tmp_path / "damaged.h5"
    for offset, damaged in flip_cases(data, count, seed):
        path.write_bytes(damaged)
        try:
            read_hdf5(path)
            result = f"accepted a flip at byte {offset}"
        except ExportError as err:
            result = "ExportError" if "damaged" in str(err) else f"not 'damaged': {err}"
        except Exception as err:  # noqa: BLE001
            result = f"{type(err).__name__} at byte {offset}: {err}"
        tally[result] += 1
    return tally


def fuzz_unsealed(tmp_path, name: str, count: int, seed: int) -> Counter:
    plain = unsealed_copy(REPO / "netx_exports" / name / "export.h5", tmp_path / "plain.h5")
    data, path = plain.read_bytes(), tmp_path / "damaged.h5"
    tally = Counter()
    for _, damaged in flip_cases(data, count, seed):
        path.write_bytes(damaged)
        tally[outcome(path)] += 1
    return tally


@pytest.mark.parametrize("name", NAMES)
def test_every_flip_of_a_sealed_export_is_detected(tmp_path, name):
    tally = fuzz_sealed(tmp_path, name, 150, seed=16)
    assert tally == Counter({"ExportError": 150}), tally


@pytest.mark.parametrize("name", NAMES)
def test_flips_of_unsealed_exports_load_or_raise_export_error(tmp_path, name):
    tally = fuzz_unsealed(tmp_path, name, 12, seed=17)
    assert set(tally) <= {"clean", "ExportError"}, tally


# --------------------------------------------------------------------------- structured damage

def _set_attr(path, key, value):
    def edit(f):
        f[path].attrs[key] = value
    return edit


def _replace(path, value, **kwargs):
    def edit(f):
        del f[path]
        f.create_dataset(path, data=value, **kwargs)
    return edit


def _delete(path):
    def edit(f):
        del f[path]
    return edit


def _scale(path, factor):
    def edit(f):
        with np.errstate(invalid="ignore"):
            value = f[path][()] * factor
        del f[path]
        f.create_dataset(path, data=value)
    return edit


def _huge(path):
    def edit(f):
        del f[path]
        f.create_dataset(path, shape=(1 << 18, 1 << 14), dtype=np.float32)
    return edit


def _shift(path, delta):
    def edit(f):
        value = f[path][()] + delta
        del f[path]
        f.create_dataset(path, data=value)
    return edit


def _readout(edit):
    """Only for an export whose layer 1 is a stochastic readout (KeyError elsewhere)."""
    def guarded(f):
        f[f"{SP}/layers/1/lut"]
        edit(f)
    return guarded


def _delayed(edit):
    """Only for an export whose layer 1 is a delay_readout (KeyError elsewhere)."""
    def guarded(f):
        f[f"{SP}/layers/1/delay"]
        edit(f)
    return guarded


def _plain_readout(edit):
    """Only for an export whose layer 1 is a stochastic readout without delays."""
    def guarded(f):
        if "delay" in f[f"{SP}/layers/1"] or "lut" not in f[f"{SP}/layers/1"]:
            raise KeyError("not a plain readout")
        edit(f)
    return guarded


def _extra_layer(f):
    f.copy(f["layer/0"], f["layer"], "2")


SP, IN = "spikecodec", "spikecodec/input"
# name -> edit(h5py.File); an edit that raises KeyError does not apply to that export
STRUCTURED = {
    "delete /spikecodec/layers/1": _delete(f"{SP}/layers/1"),
    "delete /spikecodec/layers/0": _delete(f"{SP}/layers/0"),
    "extra /layer/2": _extra_layer,
    "delete /layer": _delete("layer"),
    "delete /layer/0/weight": _delete("layer/0/weight"),
    "delete /layer/0/neuron": _delete("layer/0/neuron"),
    "delete /spikecodec/input": _delete(IN),
    "delete /spikecodec": _delete(SP),
    "weight as text": _replace("layer/0/weight", "abc"),
    "weight 3-D": _replace("layer/0/weight", np.zeros((2, 2, 2), np.float32)),
    "weight NaN": _scale("layer/0/weight", np.nan),
    "weight inf": _scale("layer/0/weight", np.inf),
    "weight fractional": _shift("layer/0/weight", 0.5),
    "weight zeros": _scale("layer/0/weight", 0),
    "weight bool": _replace("layer/0/weight", np.ones((16, 64), bool)),
    "weight huge": _huge("layer/0/weight"),
    "bias wrong shape": _replace("layer/0/bias", np.zeros(3, np.float32)),
    "inFeatures wrong": _replace("layer/0/inFeatures", 63),
    "shape wrong": _replace("layer/0/shape", np.array([17])),
    "iDecay 2048.7": _replace("layer/0/neuron/iDecay", 2048.7),
    "iDecay True": _replace("layer/0/neuron/iDecay", True),
    "iDecay array": _replace("layer/0/neuron/iDecay", np.arange(3)),
    "vDecay 9000": _replace("layer/0/neuron/vDecay", 9000),
    "vThMant NaN": _replace("layer/0/neuron/vThMant", np.nan),
    "neuron type XYZ": _replace("layer/0/neuron/type", "XYZ"),
    "type empty": _replace("layer/0/type", np.array([b""], "S10")),
    "type ALIF": _replace("layer/0/type", np.array([b"ALIF"], "S10")),
    "type integer": _replace("layer/0/type", 7),
    "type binary": _replace("layer/0/type", np.array([b"\xff\xfe"], "S10")),
    "format_version 1.5": _set_attr(SP, "format_version", 1.5),
    "format_version text": _set_attr(SP, "format_version", "1"),
    "format_version 2": _set_attr(SP, "format_version", 2),
    "metadata a list": _set_attr(SP, "metadata", "[1, 2]"),
    "metadata not JSON": _set_attr(SP, "metadata", "{oops"),
    "metadata seed 1.5": _set_attr(SP, "metadata", '{"seed": 1.5}'),
    "metadata an int attribute": _set_attr(SP, "metadata", 5),
    "num_steps 15.7": _set_attr(IN, "num_steps", 15.7),
    "num_steps text": _set_attr(IN, "num_steps", "15"),
    "num_steps 0": _set_attr(IN, "num_steps", 0),
    "num_steps huge": _set_attr(IN, "num_steps", 1 << 40),
    "input shape text": _set_attr(IN, "shape", '["a"]'),
    "input shape wrong size": _set_attr(IN, "shape", "[65]"),
    "input shape object": _set_attr(IN, "shape", '{"a": 1}'),
    "params a list": _set_attr(IN, "params", "[1]"),
    "params unknown key": _set_attr(IN, "params", '{"bogus": 1}'),
    "params wrong type": _set_attr(IN, "params", '{"max_rate": "x", "t_max": "x"}'),
    "params out of range": _set_attr(IN, "params", '{"max_rate": 7, "t_max": 900}'),
    "params NaN": _set_attr(IN, "params", '{"max_rate": NaN}'),
    "encoding empty": _set_attr(IN, "encoding", ""),
    "layer kind unknown": _set_attr(f"{SP}/layers/0", "kind", "mystery"),
    "layer kind integer": _set_attr(f"{SP}/layers/0", "kind", 3),
    "layer name bytes": _set_attr(f"{SP}/layers/0", "name", np.void(b"\x00\x01")),
    "decoder config a list": _set_attr(f"{SP}/decoder", "config", "[]"),
    "decoder config no kind": _set_attr(f"{SP}/decoder", "config", "{}"),
    "decoder config bad arch": _set_attr(f"{SP}/decoder", "config",
                                         '{"kind": "ann", "arch": "rnn"}'),
    "decoder w0 NaN": _scale(f"{SP}/decoder/w0", np.nan),
    "decoder w0 wrong shape": _replace(f"{SP}/decoder/w0", np.zeros((2, 2), np.float32)),
    "decoder w0 text": _replace(f"{SP}/decoder/w0", "w"),
    "decoder b1 deleted": _delete(f"{SP}/decoder/b1"),
    "readout seed 1.5": _readout(_set_attr(f"{SP}/layers/1", "seed", 1.5)),
    "readout seed -1": _readout(_set_attr(f"{SP}/layers/1", "seed", -1)),
    "readout fb_decay text": _readout(_set_attr(f"{SP}/layers/1", "fb_decay", "x")),
    "readout i_decay 2048.7": _readout(_replace(f"{SP}/layers/1/i_decay",
                                                np.array([2048.7, 4096.0]))),
    "readout i_decay 2-D": _readout(_replace(f"{SP}/layers/1/i_decay",
                                             np.ones((2, 2), np.int64))),
    "readout lut empty": _readout(_replace(f"{SP}/layers/1/lut", np.zeros(0, np.int64))),
    "readout weight NaN": _readout(_scale(f"{SP}/layers/1/weight", np.nan)),
    "readout weight huge": _readout(_huge(f"{SP}/layers/1/weight")),
    "delay 63": _delayed(_shift(f"{SP}/layers/1/delay", 63)),
    "delay negative": _delayed(_shift(f"{SP}/layers/1/delay", -100)),
    "delay fractional": _delayed(_shift(f"{SP}/layers/1/delay", 0.5)),
    "delay NaN": _delayed(_scale(f"{SP}/layers/1/delay", np.nan)),
    "delay 2-D": _delayed(_replace(f"{SP}/layers/1/delay", np.zeros((2, 3), np.int64))),
    "delay one short": _delayed(_replace(f"{SP}/layers/1/delay", np.zeros(5, np.int64))),
    "delay text": _delayed(_replace(f"{SP}/layers/1/delay", "abc")),
    "delay bool": _delayed(_replace(f"{SP}/layers/1/delay", np.ones(4, bool))),
    "delay deleted": _delayed(_delete(f"{SP}/layers/1/delay")),
    "delay on a plain readout": _plain_readout(_set_attr(f"{SP}/layers/1", "kind",
                                                   "delay_readout")),
    "delay taps not whole": _delayed(_replace(f"{SP}/layers/1/weight",
                                              np.zeros((7, 12), np.int64))),
}
# corruptions that leave a valid network (a clean load is right for them)
# valid files: the encoder's own names and ranges are checked when inputs are drawn
# (tests/train/test_encoding.py), since deploy does not import the encoders
VALID = {"weight zeros", "delete /spikecodec", "params unknown key", "params out of range"}


def delay_export(tmp_path):
    """A small sealed export whose layer 1 is a delay_readout (no committed export has one)."""
    from spikecodec.deploy.hdf5 import write_hdf5

    from conftest import random_network

    net = random_network(["dense", "delay_readout"], seed=4, n_in=12)
    return write_hdf5(net, tmp_path / "delay_source.h5")


def structured_outcomes(tmp_path, name: str, source=None) -> dict[str, str]:
    source = source or REPO / "netx_exports" / name / "export.h5"
    results = {}
    for case, edit in STRUCTURED.items():
        path = shutil.copyfile(source, tmp_path / "case.h5")
        try:
            with edit_export(path) as f:
                edit(f)
        except KeyError:
            continue  # not in this export (e.g. the readout of the Roy AE)
        results[case] = outcome(path)
    return results


@pytest.mark.parametrize("name", NAMES)
def test_structured_corruptions_are_named_export_errors(tmp_path, name):
    results = structured_outcomes(tmp_path, name)
    assert len(results) > 40
    wrong = {case: result for case, result in results.items()
             if result != ("clean" if case in VALID else "ExportError")}
    assert not wrong, wrong


def test_structured_corruptions_of_a_delay_readout_export(tmp_path):
    """The same corruptions, and those of the delay field, on an export with delay taps."""
    results = structured_outcomes(tmp_path, "delay", delay_export(tmp_path))
    assert sum(case.startswith("delay ") for case in results) == 10
    # this export has no host decoder: its dense layer alone is a valid network
    valid = VALID | {"delete /spikecodec/layers/1"}
    wrong = {case: result for case, result in results.items()
             if result != ("clean" if case in valid else "ExportError")}
    assert not wrong, wrong


@pytest.mark.parametrize("case, match", [
    ("delay 63", r"delay1: delay must lie in \[0, 62\]"),
    ("delay negative", r"delay1: delay must lie in \[0, 62\]"),
    ("delay fractional", r"delay1: delay must hold integers"),
    ("delay 2-D", r"layers/1\): dataset 'delay' must be 1-D"),
    ("delay one short", r"delay1: delay must have shape"),
    ("delay deleted", r"layers/1\).*'delay'"),
    ("delay taps not whole", r"delay1: weight rows \(7\) must be C taps"),
])
def test_delay_errors_name_the_layer_and_field(tmp_path, case, match):
    path = delay_export(tmp_path)
    with edit_export(path) as f:
        STRUCTURED[case](f)
    with pytest.raises(ExportError, match=match):
        read_hdf5(path)


def test_flips_of_a_delay_readout_export(tmp_path):
    data = delay_export(tmp_path).read_bytes()
    path, tally = tmp_path / "damaged.h5", Counter()
    for _, damaged in flip_cases(data, 60, seed=23):
        path.write_bytes(damaged)
        tally[outcome(path)] += 1
    assert tally == Counter({"ExportError": 60}), tally


@pytest.mark.parametrize("export,case,match", [
    ("roy_ae_digits", "delete /spikecodec/layers/1",
     r"layer tables disagree: /spikecodec/layers lists 1 .* /layer holds 2"),
    ("roy_ae_digits", "extra /layer/2", r"layer tables disagree: .* lists 2 .* /layer holds 3"),
    ("roy_ae_digits", "num_steps 15.7",
     r"/spikecodec/input: attribute 'num_steps' must be an integer, got 15.7"),
    ("roy_ae_digits", "iDecay True",
     r"/layer/0\)/neuron: dataset 'iDecay' has dtype bool, expected integers"),
    ("roy_ae_digits", "metadata a list", r"attribute 'metadata' must be a JSON object, got list"),
    ("roy_ae_digits", "type empty", r"/layer/0: dataset 'type' is empty"),
    ("roy_ae_digits", "weight huge",
     r"dataset 'weight' declares shape .* more than the file can hold"),
    ("roy_ae_digits", "params wrong type",
     r"/spikecodec/input: params\['max_rate'\] must be a finite number"),
    ("vdib_digits", "readout seed 1.5",
     r"layers/1\): attribute 'seed' must be an integer, got 1.5"),
    ("vdib_digits", "readout i_decay 2048.7",
     r"readout: i_decay\[0\] must be an integer, got 2048.7"),
    ("vdib_digits", "decoder w0 NaN", r"/spikecodec/decoder: dataset 'w0' holds non-finite values"),
    ("vdib_digits", "decoder w0 wrong shape", r"decoder array 'w0' has shape \(2, 2\)"),
])
def test_the_errors_name_the_group_dataset_or_field(tmp_path, export, case, match):
    path = shutil.copyfile(REPO / "netx_exports" / export / "export.h5", tmp_path / "case.h5")
    with edit_export(path) as f:
        STRUCTURED[case](f)
    with pytest.raises(ExportError, match=match):
        read_hdf5(path)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_thousands_of_flips(tmp_path, name):
    sealed = fuzz_sealed(tmp_path, name, 5000, seed=1016)
    assert sealed == Counter({"ExportError": 5000}), sealed
    plain = fuzz_unsealed(tmp_path, name, 300, seed=1017)
    assert set(plain) <= {"clean", "ExportError"}, plain

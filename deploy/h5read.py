"""Typed reads of one HDF5 item: every damaged value becomes an ExportError naming it.

The export reader (:mod:`spikecodec.deploy.hdf5`) and the layer kinds' ``read_hdf5`` hooks read
through these and nothing else, so a missing, mistyped, oversized or non-integer item is refused
here with its HDF5 path (``/layer/0/neuron: dataset 'iDecay' ...``) instead of being truncated
(``int(15.7)``) or raising whatever numpy or h5py would raise on it. Ranges are the IR's
business (:mod:`spikecodec.validate`); these check only what a value *is*.
"""
from __future__ import annotations

import json
from typing import Any

import h5py
import numpy as np

from spikecodec.deploy.integrity import MAX_DATASET_BYTES, SIZE_FACTOR
from spikecodec.errors import ExportError

MAX_TEXT = 1 << 20  # characters of a JSON attribute or a type string


def _limit(item: h5py.HLObject) -> int:
    """The most bytes a dataset of this file may declare: ``SIZE_FACTOR`` times the file (the
    same rule as the probe's), at most ``MAX_DATASET_BYTES``."""
    try:
        size = item.file.id.get_filesize()
    except Exception:  # noqa: BLE001  (h5py raises a zoo of types on damaged files)
        size = MAX_DATASET_BYTES
    return min(MAX_DATASET_BYTES, max(size * SIZE_FACTOR, 1 << 20))


def read_dataset(group: h5py.Group, key: str, where: str, *, kinds: str = "iuf") -> np.ndarray:
    """Dataset ``key`` of ``group`` as a numpy array whose dtype kind is one of ``kinds``
    (``"iuf"``: integers or floats; ``"S"`` / ``"O"`` for text); refuses a missing item, another
    dtype (bool, compound, text where numbers belong) and a declared size beyond the file."""
    item = group.get(key)
    if not isinstance(item, h5py.Dataset):
        raise ExportError(f"{where}: missing dataset '{key}'")
    nbytes = int(np.prod(item.shape or (), dtype=np.float64) * item.dtype.itemsize)
    if nbytes > _limit(item):
        raise ExportError(f"{where}: dataset '{key}' declares shape {item.shape} ({nbytes} "
                          f"bytes), more than the file can hold (damaged?)")
    if item.dtype.kind not in kinds:
        raise ExportError(f"{where}: dataset '{key}' has dtype {item.dtype}, expected "
                          f"{_kind_names(kinds)}")
    return np.asarray(item[()])


def read_text(group: h5py.Group, key: str, where: str) -> str:
    """A non-empty ASCII string stored as dataset ``key`` (a scalar or SLAYER's ``(1,)`` S10)."""
    value = read_dataset(group, key, where, kinds="SOU")
    if value.size != 1:
        raise ExportError(f"{where}: dataset '{key}' must hold one string, got shape "
                          f"{value.shape}")
    item = value.reshape(-1)[0]
    text = _decode(item, f"{where}: dataset '{key}'")
    if not text:
        raise ExportError(f"{where}: dataset '{key}' is empty")
    return text


def read_scalar_int(group: h5py.Group, key: str, where: str) -> Any:
    """Dataset ``key`` as one integer value (numpy int, or a float holding an integer exactly,
    returned as ``int``); refuses bools, fractions, non-finite values and arrays. The range is
    the IR's to check."""
    raw = read_dataset(group, key, where)
    if raw.size != 1:
        raise ExportError(f"{where}: dataset '{key}' must hold one integer, got shape "
                          f"{raw.shape}")
    return _integer(raw.reshape(-1)[0], f"{where}: dataset '{key}'")


def attr_int(obj: h5py.HLObject, key: str, where: str) -> int:
    """Attribute ``key`` as an int; refuses a missing one, bools, fractions (``15.7``) and
    anything not a number."""
    if key not in obj.attrs:
        raise ExportError(f"{where}: missing attribute '{key}'")
    value = np.asarray(obj.attrs[key])
    if value.size != 1:
        raise ExportError(f"{where}: attribute '{key}' must be one integer, got shape "
                          f"{value.shape}")
    return _integer(value.reshape(-1)[0], f"{where}: attribute '{key}'")


def attr_text(obj: h5py.HLObject, key: str, where: str, default: str | None = None) -> str:
    """Attribute ``key`` as a string (``default`` when absent and a default is given)."""
    if key not in obj.attrs:
        if default is not None:
            return default
        raise ExportError(f"{where}: missing attribute '{key}'")
    value = np.asarray(obj.attrs[key])
    if value.size != 1 or value.dtype.kind not in "SOU":
        raise ExportError(f"{where}: attribute '{key}' must be a string, got {value.dtype} "
                          f"{value.shape}")
    return _decode(value.reshape(-1)[0], f"{where}: attribute '{key}'")


def attr_json(obj: h5py.HLObject, key: str, where: str, *, expect: type = dict,
              default: str | None = None) -> Any:
    """Attribute ``key`` parsed as JSON, which must be an ``expect`` (an object by default)."""
    text = attr_text(obj, key, where, default)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ExportError(f"{where}: attribute '{key}' is not valid JSON ({err})") from None
    if not isinstance(value, expect):
        raise ExportError(f"{where}: attribute '{key}' must be a JSON "
                          f"{'object' if expect is dict else expect.__name__}, got "
                          f"{type(value).__name__}")
    return value


def _integer(item: Any, where: str) -> int:
    if isinstance(item, (bool, np.bool_)):
        raise ExportError(f"{where} must be an integer, got the boolean {item!r}")
    if isinstance(item, np.integer):
        return int(item)
    if isinstance(item, np.floating) and np.isfinite(item) and float(item).is_integer():
        return int(item)
    raise ExportError(f"{where} must be an integer, got {item!r}")


def _decode(item: Any, where: str) -> str:
    if isinstance(item, bytes):
        try:
            text = item.decode("utf-8")
        except UnicodeDecodeError:
            raise ExportError(f"{where} is not valid text: {item[:40]!r}") from None
    elif isinstance(item, str):
        text = str(item)  # not numpy's str_, which h5py cannot write back
    else:
        raise ExportError(f"{where} must be a string, got {type(item).__name__}")
    if len(text) > MAX_TEXT or "\0" in text:
        raise ExportError(f"{where} is not a plausible string ({len(text)} characters)")
    return text


def _kind_names(kinds: str) -> str:
    names = {"i": "integers", "u": "integers", "f": "floats", "S": "text", "O": "text",
             "U": "text"}
    return " or ".join(dict.fromkeys(names[k] for k in kinds))

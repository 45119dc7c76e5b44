"""The one set of integer validators: every field of an export, a config or a process.

Each raises :class:`~spikecodec.errors.ConfigError` (a ``ValueError``) naming ``where`` (the
layer, process or config key) and the field, with the allowed range. numpy is the only import,
so the IR, the training code and Lava process models all use these.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from spikecodec.errors import ConfigError


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def check_int(where: str, name: str, value: Any, lo: int | None = None,
              hi: int | None = None) -> int:
    """``value`` as a Python int; refuses bools, floats (even ``2.0``) and values off range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{_prefix(where)}{name} must be an integer, got {value!r}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_text = "-inf" if lo is None else lo
        hi_text = "inf" if hi is None else hi
        raise ConfigError(f"{_prefix(where)}{name} must be in [{lo_text}, {hi_text}], "
                          f"got {value}")
    return value


def check_int_array(where: str, name: str, value: Any, shape: tuple[int, ...] | None, lo: int,
                    hi: int, *, broadcast: bool = False) -> np.ndarray:
    """``value`` as a read-only int64 array of ``shape`` with every entry in ``[lo, hi]``.

    Float arrays are accepted when they hold integers exactly (HDF5 stores NetX weights as
    float32); bools are not. ``shape=None`` keeps the array's own shape; ``broadcast`` lets a
    scalar (or a broadcastable array) stand for every entry.
    """
    arr = np.asarray(value)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise ConfigError(f"{_prefix(where)}{name} must be an integer array, got dtype "
                          f"{arr.dtype}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ConfigError(f"{_prefix(where)}{name} contains non-finite values")
        if not np.array_equal(arr, np.round(arr)):
            raise ConfigError(f"{_prefix(where)}{name} must hold integers, found fractional "
                              f"values")
    if shape is not None:
        if broadcast:
            try:
                arr = np.broadcast_to(arr, shape)
            except ValueError:
                raise ConfigError(f"{_prefix(where)}{name} must be a scalar or have shape "
                                  f"{shape}, got {np.shape(value)}") from None
        elif arr.shape != tuple(shape):
            raise ConfigError(f"{_prefix(where)}{name} must have shape {tuple(shape)}, got "
                              f"{arr.shape}")
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise ConfigError(f"{_prefix(where)}{name} must lie in [{lo}, {hi}], got values in "
                          f"[{arr.min():g}, {arr.max():g}]")
    out = np.array(arr, dtype=np.int64)
    out.setflags(write=False)
    return out


def check_int_tuple(where: str, name: str, value: Any, lo: int, hi: int, *,
                    length: int | None = None) -> tuple[int, ...]:
    """A non-empty tuple of integers in ``[lo, hi]`` (of ``length`` entries when given)."""
    if not isinstance(value, (tuple, list)) or not value:
        raise ConfigError(f"{_prefix(where)}{name} must be a non-empty tuple of integers, got "
                          f"{value!r}")
    if length is not None and len(value) != length:
        raise ConfigError(f"{_prefix(where)}{name} must have {length} entries, got "
                          f"{len(value)}")
    return tuple(check_int(where, f"{name}[{i}]", v, lo, hi) for i, v in enumerate(value))

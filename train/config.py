"""Frozen dataclass configs: strict loading from TOML / dicts, typed ``--set a.b=v`` overrides,
and writing the resolved config back to TOML beside every run.

A config is a frozen dataclass whose fields are scalars (bool, int, float, str, optionally
``None``) or nested config dataclasses (TOML tables). Unknown keys, wrong types and bad values
raise :class:`~spikecodec.errors.ConfigError` naming the dotted key.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from spikecodec.atomic import write_text
from spikecodec.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on the 3.10 path
    import tomli as tomllib

C = TypeVar("C")
SCALARS = (bool, int, float, str)


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``int | None`` -> (int, True); ``int`` -> (int, False)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _coerce(value: Any, tp: Any, key: str) -> Any:
    base, optional = _unwrap_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key}: a value is required (type {getattr(base, '__name__', base)})")
    if typing.get_origin(base) is tuple:  # tuple[X, ...]: a TOML array
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected an array, got {type(value).__name__} {value!r}")
        item = typing.get_args(base)[0]
        return tuple(_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(base):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {type(value).__name__}")
        return from_dict(base, value, prefix=f"{key}.")
    if base is bool:
        if isinstance(value, bool):
            return value
    elif base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{key}: must be finite, got {value!r}")
            return float(value)
    elif base is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - programming error in a config class
        raise TypeError(f"{key}: unsupported config field type {tp!r}")
    raise ConfigError(f"{key}: expected {base.__name__}, got {type(value).__name__} {value!r}")


def from_dict(cls: type[C], data: dict[str, Any], *, prefix: str = "") -> C:
    """Build ``cls`` from a (nested) dict; missing keys keep their defaults."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a table, got {type(data).__name__}")
    types_ = _field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; "
            f"valid keys{' under ' + prefix.rstrip('.') if prefix else ''}: {', '.join(types_)}"
        )
    kwargs = {k: _coerce(v, types_[k], prefix + k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{prefix or 'config'}: {err}") from err


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


# Field metadata of a key added after files were written: left out of the written config while
# it holds its default, so that configs and exports that do not use it keep their exact bytes.
OMIT_DEFAULT = {"omit_default": True}


def compact_dict(cfg: Any) -> dict[str, Any]:
    """:func:`to_dict` less the :data:`OMIT_DEFAULT` fields that hold their default (loading
    the result gives the same config)."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.metadata.get("omit_default") and value == f.default:
            continue
        out[f.name] = compact_dict(value) if dataclasses.is_dataclass(value) else \
            copy.deepcopy(value)
    return out


def _parse_scalar(text: str, tp: Any, key: str) -> Any:
    base, optional = _unwrap_optional(tp)
    if optional and text.lower() in ("none", "null", ""):
        return None
    if typing.get_origin(base) is tuple:  # "600,300" (or "[600, 300]"); "" is empty
        items = [t.strip() for t in text.strip().strip("[]").split(",") if t.strip()]
        item = typing.get_args(base)[0]
        return tuple(_parse_scalar(t, item, f"{key}[{i}]") for i, t in enumerate(items))
    if base is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{key}: expected true/false, got {text!r}")
    if base is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{key}: expected an int, got {text!r}") from None
    if base is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {text!r}") from None
    if base is str:
        return text
    raise ConfigError(f"{key}: is a table; set one of its keys, e.g. {key}.<name>=...")


def apply_overrides(cfg: C, overrides: list[str]) -> C:
    """Apply ``["train.lr=1e-3", "model.hidden=64"]`` to a config, type-checked per field."""
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, text = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        cls: Any = type(cfg)
        node = data
        for depth, part in enumerate(parts):
            types_ = _field_types(cls)
            if part not in types_:
                where = ".".join(parts[:depth]) or "the top level"
                raise ConfigError(
                    f"unknown config key {key!r}: {part!r} is not in {where} "
                    f"(valid: {', '.join(types_)})"
                )
            tp = types_[part]
            if depth == len(parts) - 1:
                node[part] = _parse_scalar(text.strip(), tp, key)
            else:
                cls, _ = _unwrap_optional(tp)
                if not dataclasses.is_dataclass(cls):
                    raise ConfigError(f"{'.'.join(parts[:depth + 1])} is not a table")
                node = node[part]
    return from_dict(type(cfg), data)


def load(cls: type[C], path: str | os.PathLike | None = None,
         overrides: list[str] | None = None) -> C:
    """Defaults, then the TOML file (if any), then ``overrides``."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"config file {p} is not valid TOML: {err}") from err
    cfg = from_dict(cls, data)
    return apply_overrides(cfg, overrides or [])


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def dumps(cfg: Any) -> str:
    """TOML text of a config (``None`` values are omitted: they are the defaults)."""
    lines: list[str] = []
    tables: list[tuple[str, dict]] = []

    def emit(prefix: str, data: dict[str, Any]) -> None:
        for key, value in data.items():
            if isinstance(value, dict):
                tables.append((prefix + key, value))
            elif value is not None:
                lines.append(f"{key} = {_toml_value(value)}")

    emit("", compact_dict(cfg))
    while tables:
        name, data = tables.pop(0)
        lines.append(f"\n[{name}]")
        emit(name + ".", data)
    return "\n".join(lines).lstrip("\n") + "\n"


def save(cfg: Any, path: str | os.PathLike) -> Path:
    """Write the resolved config atomically (temp file + rename)."""
    return write_text(path, dumps(cfg))

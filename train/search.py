"""Search spaces for sweeps, declared beside each family's config without importing Optuna.

A search space maps dotted config keys (``train.lr``) to a :class:`Float`, :class:`Int` or
:class:`Choice`; ``spikecodec.workflows.sweep`` turns them into Optuna distributions.
:func:`check_space` refuses keys the config does not have and empty ranges, naming them.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, Union

from spikecodec.errors import ConfigError


@dataclass(frozen=True)
class Float:
    low: float
    high: float
    log: bool = False  # sample log-uniformly (learning rates, weights of loss terms)


@dataclass(frozen=True)
class Int:
    low: int
    high: int  # inclusive
    log: bool = False


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]


Param = Union[Float, Int, Choice]


def _field_type(config_type: type, key: str) -> Any:
    """The annotated type of dotted ``key`` in ``config_type``; ConfigError if there is none."""
    cls: Any = config_type
    for i, name in enumerate(key.split(".")):
        hints = typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}
        if name not in hints:
            raise ConfigError(f"search space: unknown parameter {key!r} (no "
                              f"{'.'.join(key.split('.')[:i + 1])!r} in "
                              f"{config_type.__name__})")
        cls = hints[name]
    if dataclasses.is_dataclass(cls):
        raise ConfigError(f"search space: {key!r} is a table, not a value")
    return cls


def check_space(config_type: type, space: dict[str, Param]) -> dict[str, Param]:
    """``space`` itself, once every key names a config value and every range holds values."""
    if not space:
        raise ConfigError("search space: no parameters to search")
    for key, p in space.items():
        _field_type(config_type, key)
        if isinstance(p, Choice):
            if not p.values:
                raise ConfigError(f"search space: {key} has no choices")
            continue
        if not isinstance(p, (Float, Int)):
            raise ConfigError(f"search space: {key} is {p!r}, not Float, Int or Choice")
        if not (math.isfinite(p.low) and math.isfinite(p.high)) or p.low >= p.high:
            raise ConfigError(f"search space: {key} has an empty range [{p.low}, {p.high}] "
                              f"(low must be < high)")
        if p.log and p.low <= 0:
            raise ConfigError(f"search space: {key} is log-scaled, so low must be > 0, got "
                              f"{p.low}")
    return space


def from_table(table: dict[str, Any]) -> dict[str, Param]:
    """A search space from TOML: ``"train.lr" = {low = 1e-4, high = 1e-2, log = true}``,
    ``{low = 1, high = 8, int = true}`` or ``{choices = [...]}``."""
    space: dict[str, Param] = {}
    for key, spec in table.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"search space: {key} must be a table {{low, high[, log, int]}} "
                              f"or {{choices}}, got {spec!r}")
        extra = set(spec) - {"low", "high", "log", "int", "choices"}
        if extra:
            raise ConfigError(f"search space: {key} has unknown fields {sorted(extra)}")
        if "choices" in spec:
            space[key] = Choice(tuple(spec["choices"]))
        elif "low" in spec and "high" in spec:
            kind = Int if spec.get("int", False) else Float
            space[key] = kind(spec["low"], spec["high"], bool(spec.get("log", False)))
        else:
            raise ConfigError(f"search space: {key} needs low and high, or choices")
    return space

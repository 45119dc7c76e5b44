"""``spikecodec config FAMILY``: the full default config of a family as commented TOML.

Each value is the dataclass default; its comment is the one written beside the field in the
family's config module (the source is the documentation), and each table starts with the first
line of its dataclass's docstring. Unset (``None``) values are shown commented out, since TOML
has no null. The text loads back (``--config``) to exactly the default config.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from typing import Any

from spikecodec.train import config as config_io

_FIELD = re.compile(r"^\s+(\w+)\s*:[^#]*?(?:#\s*(.*))?$")


def field_comments(cls: type) -> dict[str, str]:
    """``{field: comment}`` from the inline comments of a dataclass's source, the class's own
    first, then its dataclass bases' (a field it inherits keeps the base's comment)."""
    names = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, str] = {}
    for klass in cls.__mro__:
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for line in source.splitlines():
            match = _FIELD.match(line)
            if match and match.group(1) in names and match.group(2):
                out.setdefault(match.group(1), match.group(2).strip())
    return out


def default_config_toml(family: str) -> str:
    """The commented TOML of ``family``'s default config."""
    from spikecodec.train.families import get_family

    fam = get_family(family)
    cfg = fam.config_type()
    lines = [f"# spikecodec train {fam.name}: {fam.title}",
             f"# Full default config ({type(cfg).__module__}.{type(cfg).__name__}). Save it,",
             "# edit it and pass it with --config FILE; --set table.key=value overrides one value."]
    tables: list[tuple[str, Any]] = []
    _emit(cfg, "", lines, tables)
    while tables:
        name, sub = tables.pop(0)
        doc = (inspect.getdoc(type(sub)) or "").strip().splitlines()
        lines.append("")
        if doc and not doc[0].startswith(type(sub).__name__ + "("):
            lines.append(f"# {doc[0]}")
        lines.append(f"[{name}]")
        _emit(sub, name + ".", lines, tables)
    return "\n".join(lines) + "\n"


def _emit(cfg: Any, prefix: str, lines: list[str], tables: list[tuple[str, Any]]) -> None:
    comments = field_comments(type(cfg))
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            tables.append((prefix + f.name, value))
            continue
        note = comments.get(f.name, "")
        if value is None:
            kind = getattr(hints.get(f.name), "__args__", ())
            types = "/".join(t.__name__ for t in kind if t is not type(None)) or "value"
            lines.append(f"# {f.name} = <{types}>  # unset" + (f"; {note}" if note else ""))
            continue
        plain = config_io.to_dict(value) if dataclasses.is_dataclass(value) else value
        text = f"{f.name} = {config_io._toml_value(_plain(plain))}"
        lines.append(text + (f"  # {note}" if note else ""))


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value

"""Atomic file writes: the target is replaced only by a complete file.

Everything spikecodec writes for keeps (checkpoints, exports, results, figures, spike files)
goes through :func:`atomic_path`: the caller writes a temporary file in the target's folder,
which is flushed to disk and renamed over the target only when the ``with`` block ends without an
error. An interrupted or failed write leaves the previous file intact and no temporary behind.
This module imports only the standard library, so train/ and deploy/ both use it.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it to ``path``.

    The temporary name keeps the suffix (``.x.<pid>.tmp.h5``), for writers that look at it
    (numpy adds ``.npz`` to names without it, matplotlib picks the format from it).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Write ``payload`` as indented JSON to ``path`` atomically."""
    return write_text(path, json.dumps(payload, indent=2) + "\n")

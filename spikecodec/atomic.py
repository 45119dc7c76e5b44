"""Atomic file writes: the target is replaced only by a complete file.

Everything spikecodec writes for keeps (checkpoints, exports, results, figures, spike files)
goes through :func:`atomic_path`: the caller writes a temporary file in the target's folder,
which is flushed to disk and renamed over the target only when the ``with`` block ends without an
error. An interrupted or failed write leaves the previous file intact and no temporary behind.
This module imports only the standard library, so train/ and deploy/ both use it.

Only a regular file, or a new name in an existing writable folder, may be a target
(:func:`check_target`, called before anything is written and again right before the rename): a
rename over a device node (``/dev/null``, ``/dev/full``), a FIFO, a socket, a folder or a
symlink to one of them would replace that object (or the link) with a regular file, so such a
target is refused with a :class:`~spikecodec.errors.ConfigError` naming it, as is a path under
``/proc`` or ``/sys`` or in a folder that is missing or not writable. Nothing but the named path
is ever replaced.
"""
from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from spikecodec.errors import ConfigError

_PSEUDO_FS = ("/proc", "/sys")  # kernel file systems: no file of ours belongs there


def check_target(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`Path` if an atomic write may replace it (module docstring), else
    :class:`ConfigError` saying what it is."""
    path = Path(path)
    if not path.name or path.name in (".", ".."):
        raise ConfigError(f"output {str(path)!r} names a folder, not a file")
    resolved = Path(os.path.realpath(path.parent))
    if any(resolved == Path(p) or Path(p) in resolved.parents for p in _PSEUDO_FS):
        raise ConfigError(f"output {path} is under {resolved}, a kernel file system: write "
                          f"to a regular folder")
    try:
        mode = os.stat(path).st_mode  # follows a symlink: a link to /dev/null is refused too
    except FileNotFoundError:
        mode = None
    except OSError as err:
        raise ConfigError(f"output {path} cannot be examined: {err}") from None
    if mode is not None and not stat.S_ISREG(mode):
        what = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode)
                else "a device node" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "not a regular file")
        raise ConfigError(f"output {path} is {what}, not a regular file: refusing to replace "
                          f"it")
    if not path.parent.is_dir():
        raise ConfigError(f"output {path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ConfigError(f"output {path}: the folder {path.parent} is not writable")
    return path


def check_folder(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`Path` if it can be a run folder (an existing folder, or a new name
    whose nearest existing ancestor is a writable folder outside ``/proc`` and ``/sys``), else
    :class:`ConfigError`. The files written into it then go through :func:`atomic_path`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output folder {path} exists and is not a folder")
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    resolved = Path(os.path.realpath(ancestor))
    if any(resolved == Path(p) or Path(p) in resolved.parents for p in _PSEUDO_FS):
        raise ConfigError(f"output folder {path} is under {resolved}, a kernel file system")
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"output folder {path}: {ancestor} is not a writable folder")
    return path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it to ``path``.
    :class:`ConfigError` before anything is written when ``path`` may not be replaced
    (:func:`check_target`).

    The temporary name keeps the suffix (``.x.<pid>.tmp.h5``), for writers that look at it
    (numpy adds ``.npz`` to names without it, matplotlib picks the format from it).
    """
    path = check_target(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        check_target(path)  # it may have changed while we wrote
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

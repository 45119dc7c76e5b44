"""Integrity of an export before the HDF5 library parses it: the checksum block and the probe.

Every export spikecodec writes starts with a 512-byte HDF5 *user block*, which the HDF5 library
(and so h5py and ``lava.lib.dl.netx.hdf5.Network``) skips: the HDF5 superblock sits at byte 512
and the file reads unchanged. The block is ASCII, NUL-padded to 512 bytes::

    spikecodec-h5sum\\n           MAGIC (16 bytes + newline)
    block 1\\n                    version of this block's layout (not of the HDF5 layout)
    size 123456\\n                bytes after the block (the HDF5 file proper)
    sha256 <64 lowercase hex>\\n  digest of those bytes
    \\0 ... \\0                   zeros up to byte 512

:func:`verify` reads the block and hashes the rest with plain file reads, so a damaged file is
refused (:class:`ExportError` "damaged") before h5py sees a byte of it. Every byte of the file is
covered: the header lines must parse exactly and the padding must be zeros, so any change to a
file we wrote is detected, in the block or after it. :func:`seal` fills the block of a file
written with ``userblock_size=BLOCK_SIZE`` (:func:`spikecodec.deploy.hdf5.write_hdf5` calls it on
the temporary file, before the atomic rename).

Files without the block (lava-dl's own exports, spikecodec exports from before the block) are
opened first by :func:`probe` in a fresh interpreter (``subprocess``, not a fork: no state of the
caller is shared) that opens the file, walks every group and attribute and reads every dataset.
A segfault or abort inside the HDF5 library kills only that child, a hang is ended by the
timeout (:data:`PROBE_TIMEOUT_S`), and either becomes an :class:`ExportError`; the caller parses
the file itself only after the probe walked all of it.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Literal

from spikecodec.errors import ExportError

BLOCK_SIZE = 512  # an HDF5 user block: a power of two >= 512
MAGIC = b"spikecodec-h5sum"
BLOCK_VERSION = 1
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
PROBE_TIMEOUT_S = 60.0  # opening and walking an export takes < 2 s even on a busy machine
MAX_DATASET_BYTES = 1 << 30  # a dataset may declare at most this, and 64x the file's size
_HEADER = re.compile(re.escape(MAGIC)
                     + rb"\nblock (\d{1,9})\nsize (\d{1,19})\nsha256 ([0-9a-f]{64})\n")
SIZE_FACTOR = 64  # room for compressed datasets (NetX exports have none)
_CHUNK = 1 << 20


def _digest(fh, start: int) -> tuple[int, str]:
    """``(bytes read, sha256 hex)`` of ``fh`` from ``start`` to its end."""
    fh.seek(start)
    sha, size = hashlib.sha256(), 0
    while block := fh.read(_CHUNK):
        sha.update(block)
        size += len(block)
    return size, sha.hexdigest()


def seal(path: str | os.PathLike) -> str:
    """Fill the user block of ``path`` (written with ``userblock_size=BLOCK_SIZE``) with the
    header above; return the digest. Refuses a file whose HDF5 part does not start at
    :data:`BLOCK_SIZE` (the block would hide its superblock)."""
    with open(path, "rb+") as fh:
        fh.seek(BLOCK_SIZE)
        if fh.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
            raise ExportError(f"{path}: no HDF5 superblock at byte {BLOCK_SIZE}: the file was "
                              f"not written with a {BLOCK_SIZE}-byte user block")
        size, digest = _digest(fh, BLOCK_SIZE)
        header = (MAGIC + f"\nblock {BLOCK_VERSION}\nsize {size}\nsha256 {digest}\n".encode())
        fh.seek(0)
        fh.write(header.ljust(BLOCK_SIZE, b"\0"))
    return digest


def verify(path: str | os.PathLike) -> Literal["sealed", "unsealed"]:
    """``"sealed"`` when ``path`` carries a valid block, ``"unsealed"`` when it has none (then
    :func:`probe` it); :class:`ExportError` saying the file is damaged when the block is there
    but does not match, or when the first bytes are a damaged copy of :data:`MAGIC`."""
    with open(path, "rb") as fh:
        head = fh.read(BLOCK_SIZE)
        if not head.startswith(MAGIC):
            close = sum(a == b for a, b in zip(head[:len(MAGIC)], MAGIC, strict=False))
            if close >= len(MAGIC) - 4:  # one of ours with its magic bytes hit
                raise ExportError(f"{path} is damaged: its checksum block (bytes 0-15) is "
                                  f"altered")
            return "unsealed"
        match = _HEADER.match(head)
        if len(head) < BLOCK_SIZE or match is None:
            raise ExportError(f"{path} is damaged: its checksum block (the first "
                              f"{BLOCK_SIZE} bytes) does not parse")
        if head[match.end():].strip(b"\0"):
            raise ExportError(f"{path} is damaged: nonzero bytes in the checksum block's "
                              f"padding (bytes {match.end()}-{BLOCK_SIZE - 1})")
        version, size, digest = int(match[1]), int(match[2]), match[3].decode()
        if version != BLOCK_VERSION:
            raise ExportError(f"{path}: checksum block version {version} is not supported "
                              f"(this spikecodec reads version {BLOCK_VERSION})")
        actual_size, actual = _digest(fh, BLOCK_SIZE)
    if actual_size != size:
        raise ExportError(f"{path} is damaged: {actual_size} bytes follow the checksum block, "
                          f"it records {size} (truncated or extended)")
    if actual != digest:
        raise ExportError(f"{path} is damaged: sha256 of its content is {actual[:16]}..., the "
                          f"checksum block records {digest[:16]}...")
    return "sealed"


# The child's whole program: open, walk, read everything, check declared sizes. Exit 0 = fine;
# exit 3 + a line on stderr = a Python-level error h5py raised (the parent names it).
_PROBE = f"""
import os, sys
import h5py
path = sys.argv[1]
limit = min({MAX_DATASET_BYTES}, max(os.path.getsize(path) * {SIZE_FACTOR}, 1 << 20))
def visit(name, obj):
    for key in obj.attrs:
        obj.attrs[key]
    if isinstance(obj, h5py.Dataset):
        nbytes = obj.size * obj.dtype.itemsize
        if nbytes > limit:
            raise ValueError(f"dataset /{{name}} declares {{nbytes}} bytes, more than the file "
                             f"can hold")
        obj[()]
try:
    with h5py.File(path, "r") as f:
        visit("", f)
        f.visititems(visit)
except Exception as err:
    print(f"{{type(err).__name__}}: {{err}}"[:400], file=sys.stderr)
    sys.exit(3)
"""


def probe(path: str | os.PathLike, *, timeout: float = PROBE_TIMEOUT_S,
          program: str = _PROBE) -> None:
    """Open and walk ``path`` in a fresh interpreter (module docstring); :class:`ExportError`
    when the child fails, crashes or outlives ``timeout`` seconds (it is killed then).
    ``program`` replaces the child's code (tests: a crash or a hang on purpose)."""
    cmd = [sys.executable, "-c", program, str(Path(path).resolve())]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, text=True,
                              stdin=subprocess.DEVNULL, errors="replace")
    except subprocess.TimeoutExpired:  # run() kills and reaps the child before raising
        raise ExportError(f"{path}: the HDF5 library did not finish reading the file within "
                          f"{timeout:g} s (damaged file?); stopped") from None
    if done.returncode == 0:
        return
    if done.returncode < 0:
        raise ExportError(f"{path}: the HDF5 library crashed reading the file (signal "
                          f"{-done.returncode}): the file is damaged")
    last = (done.stderr.strip().splitlines() or ["no message"])[-1]
    raise ExportError(f"{path} is not a readable HDF5 file (corrupt or truncated?): {last}")

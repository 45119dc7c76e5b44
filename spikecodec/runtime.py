"""Process-wide settings, opt-in: library calls never change them behind the caller's back.

The ``spikecodec`` command applies :func:`configure_process` once at its entry. A library user
who wants the same gets it by calling it, or scopes a thread count with :func:`torch_threads`,
which restores the previous count on exit (``fit`` uses it for ``train.threads``).

*The allocator.* glibc returns every freed block above 128 KiB (``M_MMAP_THRESHOLD``) to the
kernel, so a training step that allocates the same 1-5 MB activations again pays a page fault
per 4 KiB page each time. Raising the mmap threshold to its maximum (32 MiB) and keeping freed
memory in the heap makes torch's CPU tensors reuse warm pages: on this project's 2-core machines
the Roy AE-SNN step ran ~1.8x faster (benchmarks/roy_training_speed.py applies it to every
contender). It changes no number, only where memory comes from.

*The plotting backend.* Figures are drawn on matplotlib ``Figure`` objects with the Agg canvas
(:mod:`spikecodec.train.plots`), so no global backend is ever selected.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
_MMAP_MAX = 32 * 1024 * 1024  # glibc's upper limit for M_MMAP_THRESHOLD on 64-bit
_TRIM = 1 << 30

_done = False


def tune_allocator() -> bool:
    """Apply the glibc settings above once per process; ``False`` where not glibc (no-op)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(M_MMAP_THRESHOLD, _MMAP_MAX) == 1 and mallopt(M_TRIM_THRESHOLD, _TRIM) == 1
    _done = ok
    return ok


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads (0: leave the count as it is), then
    restore the previous count."""
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if threads:
            torch.set_num_threads(previous)


def configure_process() -> None:
    """What the ``spikecodec`` command sets for its whole process: the allocator tuning."""
    tune_allocator()

"""Process-level settings for training loops: the device, and the CPU allocator.

glibc returns every freed block above 128 KiB (``M_MMAP_THRESHOLD``) to the kernel, so a
training step that allocates the same 1-5 MB activations again pays a page fault per 4 KiB page
each time. Raising the mmap threshold to its maximum (32 MiB) and keeping freed memory in the
heap makes torch's CPU tensors reuse warm pages: on this project's 2-core machines the Roy
AE-SNN step ran ~1.8x faster (benchmarks/roy_training_speed.py applies it to every contender).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

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


def training_device(name: str):
    """``torch.device(name)``; a CUDA name without a visible GPU raises ``ConfigError``."""
    import torch

    from spikecodec.errors import ConfigError

    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but torch sees no CUDA GPU; use train.device=cpu")
    return torch.device(name)

"""The int32 CUBA training loop as one small C function, compiled at first use (optional).

:func:`spikecodec.train.blocks._lif_forward_int32` runs the exact integer neuron of
:mod:`spikecodec.lava_procs.cuba` with ~6 torch passes per time step; for the Roy AE-SNN's two
layers (784-196-784, batch 100, T=15) that took 1.9 ms per training step on one core (measured
alone, load ~7). The C function below does the same arithmetic element by element in one pass
over the input (0.44 ms there): per neuron and step, with the int32 state proven by
:func:`~spikecodec.train.blocks.state_fits_int32` (no value reaches 2^31)::

    u = du == 4096 ? a : (int32)((double) u * keep_u) + a     # rstz(u, 4096 - du) + a
    y = (int32)((double) v * keep_v) + u                        # rstz(v, 4096 - dv) + u
    voltage = (float) y * out_scale; spike = y > vth; v = spike ? 0 : y

``keep = (4096 - d) / 4096`` is dyadic, so the double product is exact and the C conversion to
int32 truncates towards zero: ``rstz`` exactly as the shared step's int32 path computes it (see
:func:`~spikecodec.lava_procs.cuba.rstz`); ``(float) y`` rounds to nearest as torch's
int-to-float copy does, and ``out_scale`` is a power of two. The compiler may not contract or
reorder float operations (``-ffp-contract=off``, no ``-ffast-math``), and no flag depends on
the build machine's CPU. tests/train/test_native_lif.py checks the C loop, the torch loop and
``cuba_step`` equal, spike for spike and voltage for voltage.

Building: the system C compiler (``$CC``, else ``cc``) at the first call in a process whose
cache has no library yet (~0.2 s), into ``$SPIKECODEC_CACHE``, else
``$XDG_CACHE_HOME/spikecodec``, else ``~/.cache/spikecodec``, under a name that hashes the
source, the flags and the compiler (written atomically; processes building at once each rename
a complete file into place); loaded with ctypes. Without a compiler, after a failed build, in a
cache that cannot be written, or with ``SPIKECODEC_NATIVE=0``, :func:`load` returns None, says
why in :func:`why_not`, and training runs the torch loop with the same results. A build that
failed is not retried in the same process.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

from spikecodec.atomic import atomic_path
from spikecodec.errors import ConfigError
from spikecodec.lava_procs.cuba import DECAY_SCALE, CubaParams

SOURCE = r"""
#include <stdint.h>

/* One pass per time step over the flattened population (see spikecodec/train/native_lif.py). */
void cuba_forward_i32(const int32_t *a, float *voltage, float *spikes, int64_t steps,
                      int64_t n, int32_t du, int32_t dv, int32_t vth, float out_scale,
                      int32_t *u, int32_t *v)
{
    const double keep_u = (double)(4096 - du) / 4096.0;
    const double keep_v = (double)(4096 - dv) / 4096.0;
    for (int64_t t = 0; t < steps; t++) {
        const int32_t *at = a + t * n;
        float *vt = voltage + t * n, *st = spikes + t * n;
        for (int64_t i = 0; i < n; i++) {
            int32_t cur = at[i];
            if (du != 4096) {
                cur += (int32_t)((double)u[i] * keep_u);  /* decay current, integrate input */
                u[i] = cur;
            }
            int32_t y = (int32_t)((double)v[i] * keep_v) + cur;  /* decay, integrate */
            int fired = y > vth;                                  /* fire */
            vt[i] = (float)y * out_scale;
            st[i] = fired ? 1.0f : 0.0f;
            v[i] = fired ? 0 : y;                                 /* reset */
        }
    }
}
"""
FLAGS = ("-O3", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math")
ENV_SWITCH = "SPIKECODEC_NATIVE"  # "0": never build or use the C loop

_lock = threading.Lock()
_state: dict = {}  # "fn": the loaded function, or "why": why there is none (per process)


def cache_dir() -> Path:
    """Where compiled libraries are kept (module docstring)."""
    if os.environ.get("SPIKECODEC_CACHE"):
        return Path(os.environ["SPIKECODEC_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spikecodec"


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC") or "cc")


def _library_path(cc: str) -> Path:
    key = "\0".join((SOURCE, *FLAGS, cc, platform.machine(), platform.system()))
    return cache_dir() / f"cuba_lif_{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"


def _build(cc: str, target: Path) -> None:
    """Compile ``SOURCE`` into ``target`` (atomically); ``RuntimeError`` with the compiler's
    output when it fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="spikecodec-cc-") as tmp:
        src, lib = Path(tmp) / "cuba_lif.c", Path(tmp) / "cuba_lif.so"
        src.write_text(SOURCE)  # scratch, removed with the folder
        run = subprocess.run([cc, *FLAGS, "-o", str(lib), str(src)], capture_output=True,
                             text=True, timeout=120)
        if run.returncode != 0:
            raise RuntimeError(f"{cc} exited with {run.returncode}: "
                               f"{(run.stderr or run.stdout).strip()[:500]}")
        with atomic_path(target) as out:
            shutil.copyfile(lib, out)


def _open(path: Path):
    fn = ctypes.CDLL(str(path)).cuba_forward_i32
    i32, i64, ptr = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
    fn.argtypes = [ptr, ptr, ptr, i64, i64, i32, i32, i32, ctypes.c_float, ptr, ptr]
    fn.restype = None
    return fn


def load():
    """The C function, building it first if the cache has none; None when it cannot be had
    (:func:`why_not` says why) or ``SPIKECODEC_NATIVE=0``."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return None
    with _lock:
        if "fn" in _state or "why" in _state:
            return _state.get("fn")
        cc = _compiler()
        if cc is None:
            _state["why"] = f"no C compiler ({os.environ.get('CC') or 'cc'} not found)"
            return None
        path = "the cache"
        try:
            path = _library_path(cc)  # (a home folder that cannot be found: RuntimeError)
            if not path.is_file():
                _build(cc, path)
            _state["fn"] = _open(path)
        except (OSError, RuntimeError, subprocess.SubprocessError, ConfigError) as exc:
            _state["why"] = f"building {path} failed: {exc}"
            return None
        return _state["fn"]


def why_not() -> str | None:
    """Why :func:`load` found no C function in this process (None: it did, or was not asked)."""
    return _state.get("why")


def reset() -> None:
    """Forget what :func:`load` found, so that the next call looks again (for tests)."""
    with _lock:
        _state.clear()


def lif_forward_int32(a: torch.Tensor, p: CubaParams, out_scale: float
                      ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Spikes and pre-reset voltages ``* out_scale`` (float32, shaped like ``a``) of the
    unbounded CUBA neuron driven by ``a`` (int32 state units, ``(time, ...)``, contiguous, on
    the CPU, every value proven to fit int32); None when the C function is not available.
    ``ValueError`` for an input the C function cannot take (it reads raw memory)."""
    if a.dtype != torch.int32 or a.device.type != "cpu" or not a.is_contiguous() \
            or a.dim() < 1:
        raise ValueError(f"the C CUBA loop needs a contiguous int32 CPU tensor (time, ...), "
                         f"got {a.dtype} {tuple(a.shape)} on {a.device}")
    if not (isinstance(p.bias, int) and p.bias == 0) or not 0 <= p.du <= DECAY_SCALE \
            or not 0 <= p.dv <= DECAY_SCALE:
        raise ValueError(f"the C CUBA loop has no bias and decays in [0, 4096], got {p}")
    fn = load()
    if fn is None:
        return None
    steps = a.shape[0]
    n = a.numel() // steps if steps else 0
    voltage = torch.empty(a.shape, dtype=torch.float32)
    spikes = torch.empty(a.shape, dtype=torch.float32)
    u = torch.zeros(n, dtype=torch.int32)
    v = torch.zeros(n, dtype=torch.int32)
    if steps and n:
        fn(a.data_ptr(), voltage.data_ptr(), spikes.data_ptr(), steps, n, p.du, p.dv, p.vth,
           out_scale, u.data_ptr(), v.data_ptr())
    return spikes, voltage

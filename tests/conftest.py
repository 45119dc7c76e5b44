"""Shared fixtures and builders. Markers (lava, slow, gpu) are declared once, in pyproject.toml.

The builders make random but valid deploy objects: :func:`random_layer` one layer of any
registered kind (:data:`RANDOM_LAYERS` holds one maker per kind, and
tests/deploy/test_layer_kinds.py fails when a registered kind has none),
:func:`random_network` a chain of them, :func:`random_spikes` binary input ``(batch, n, T)``.
:func:`run_both` runs a network on the reference engine and the Lava simulator.
:func:`descendants` and :func:`alive` watch the processes a run leaves (from /proc).
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# Real datasets (MNIST, Fashion-MNIST, N-MNIST, ...): ../shared/data beside the repo, or wherever
# $SPIKECODEC_SHARED_DATA points; tests that need them skip where neither has them.
SHARED_DATA = Path(os.environ.get("SPIKECODEC_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repo (real MNIST etc.); skips when this checkout has none."""
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def no_leftover_children():
    """Fails the test when a Lava (or any other) child process outlives it."""
    before = set(multiprocessing.active_children())
    yield
    assert set(multiprocessing.active_children()) <= before


def pytest_collection_modifyitems(config, items):
    """GPU tests skip (never fail) on machines without CUDA."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# --------------------------------------------------------------------------- processes

def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --------------------------------------------------------------------------- random networks

def _dense(rng: np.random.Generator, name: str, n_in: int, n_out: int):
    from spikecodec.deploy.layers import CubaNeuron, DenseLayer

    neuron = CubaNeuron(int(rng.choice([1024, 2048, 4096])), int(rng.choice([0, 512, 1024])),
                        int(rng.integers(20, 120)))
    bias = rng.integers(-40, 41, n_out) if rng.random() < 0.5 else None
    return DenseLayer(name, 2 * rng.integers(-50, 51, (n_out, n_in)), neuron, bias)


def _stochastic_readout(rng: np.random.Generator, name: str, n_in: int, n_out: int):
    from spikecodec.deploy.layers import StochasticReadoutLayer
    from spikecodec.lava_procs.stochastic_readout.dynamics import sigmoid_lut

    k = int(rng.integers(1, 3))
    lut, shift, offset = sigmoid_lut(state_scale=4096)
    return StochasticReadoutLayer(
        name, 2 * rng.integers(-40, 41, (k * n_out, n_in)),
        tuple(int(d) for d in rng.choice([512, 1024, 4096], k)),
        tuple(int(d) for d in rng.choice([256, 1024, 2048], k)), int(rng.integers(0, 4097)),
        rng.integers(-60, 61, n_out), rng.integers(-60, 61, n_out), np.asarray(lut), shift,
        offset, int(rng.integers(0, 2**32)))


def _spike_once_alpha(rng: np.random.Generator, name: str, n_in: int, n_out: int):
    """Mostly excitatory weights and one to three pulses (steps < 8: any test T >= 8 fits)."""
    from spikecodec.deploy.layers import SpikeOnceAlphaLayer

    pulses = int(rng.integers(1, 4))
    return SpikeOnceAlphaLayer(
        name, 2 * rng.integers(-20, 61, (n_out, n_in)), int(rng.choice([128, 512, 1024])),
        int(rng.integers(150, 600)), rng.integers(0, 8, pulses),
        2 * rng.integers(-30, 31, (n_out, pulses)), int(rng.integers(0, 3)))


def _delay_readout(rng: np.random.Generator, name: str, n_in: int, n_out: int):
    """A stochastic readout with one to four delayed taps per synapse (delays up to 5)."""
    from spikecodec.deploy.layers import DelayReadoutLayer

    base = _stochastic_readout(rng, name, n_in, n_out)
    taps = int(rng.integers(1, 5))
    rows = taps * base.weight.shape[0]
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    fields["weight"] = 2 * rng.integers(-40, 41, (rows, n_in))
    return DelayReadoutLayer(**fields, delay=rng.integers(0, 6, rows))


# One maker per registered layer kind: maker(rng, name, n_in, n_out) -> a valid layer.
RANDOM_LAYERS = {"dense": _dense, "stochastic_readout": _stochastic_readout,
                 "spike_once_alpha": _spike_once_alpha, "delay_readout": _delay_readout}


def random_layer(kind: str, rng: np.random.Generator, name: str, n_in: int, n_out: int):
    return RANDOM_LAYERS[kind](rng, name, n_in, n_out)


def random_network(kinds, *, seed: int = 0, n_in: int = 20, num_steps: int = 12,
                   sizes=None):
    """A valid FixedPointNetwork whose layers are of ``kinds``, in order (random sizes unless
    ``sizes``: one output size per layer), fed by ``n_in`` raw input spikes."""
    from spikecodec.deploy.ir import FixedPointNetwork, InputSpec

    rng = np.random.default_rng(seed)
    sizes = sizes or [int(rng.integers(6, 18)) for _ in kinds]
    layers, previous = [], n_in
    for i, (kind, n_out) in enumerate(zip(kinds, sizes, strict=True)):
        layers.append(random_layer(kind, rng, f"{kind[:5]}{i}", previous, n_out))
        previous = n_out
    return FixedPointNetwork(layers, InputSpec("spikes", num_steps, (n_in,)))


def random_spikes(batch: int, n: int, steps: int, *, rate: float = 0.3,
                  seed: int = 7) -> np.ndarray:
    """Binary uint8 spikes ``(batch, n, steps)``."""
    rng = np.random.default_rng(seed)
    return (rng.random((batch, n, steps)) < rate).astype(np.uint8)


def run_both(net, spikes: np.ndarray, **lava_options):
    """``(reference RunResult, lava-sim RunResult)``, both with every layer probed; Lava runs
    with ``lava_options`` (gap, chunk)."""
    from spikecodec.deploy.backends import run

    reference = run(net, spikes, backend="reference", probe=True)
    lava = run(net, spikes, backend="lava-sim", probe=True, **lava_options)
    return reference, lava


# --------------------------------------------------------------------------- editing exports

@contextmanager
def edit_export(path, *, reseal: bool = True):
    """Open an export for editing (h5py ``r+``) and, with ``reseal``, refill its checksum block
    afterwards: a file as a buggy writer would make it, so the parser (not the checksum) is
    what the test exercises."""
    import h5py

    from spikecodec.deploy.integrity import seal

    with h5py.File(path, "r+") as f:
        yield f
    if reseal:
        seal(path)


def unsealed_copy(src, dst, *, drop=()):
    """``src``'s groups copied into a new plain HDF5 file ``dst`` (no user block, as lava-dl
    writes), leaving out the top-level names in ``drop``."""
    import h5py

    with h5py.File(src, "r") as a, h5py.File(dst, "w") as b:
        for key in a:
            if key not in drop:
                a.copy(a[key], b, key)
        for key, value in a.attrs.items():
            b.attrs[key] = value
    return dst


def long_lava_run_script(*, samples: int, workers: int = 1) -> str:
    """Python source of a lava-sim run far longer than any test waits (two small dense layers,
    ``samples`` samples of 20 steps): it prints "ready", then ends only by a signal, saying
    how (exit 128 + signal on ``Terminated``, 130 on Ctrl-C)."""
    options = "" if workers == 1 else f", workers={workers}"
    return f"""
import sys
import numpy as np
from spikecodec.deploy.backends import run
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import CubaNeuron, DenseLayer
from spikecodec.errors import Terminated

rng = np.random.default_rng(0)
net = FixedPointNetwork([DenseLayer("a", 2 * rng.integers(-9, 10, (8, 6)), CubaNeuron(4096, 0, 9)),
                         DenseLayer("b", 2 * rng.integers(-9, 10, (5, 8)), CubaNeuron(4096, 0, 9))],
                        InputSpec("spikes", 20, (6,)))
spikes = (rng.random(({samples}, 6, 20)) < 0.3).astype(np.uint8)
print("ready", flush=True)
try:
    run(net, spikes, backend="lava-sim"{options})
except Terminated as err:
    print("stopped:", err, flush=True)
    sys.exit(128 + err.signum)
except KeyboardInterrupt:
    print("stopped: interrupted", flush=True)
    sys.exit(130)
print("finished?!", flush=True)
"""


def signal_long_lava_run(script: str, signum: int, *, processes: int, grace: float,
                         settle: float = 1.0, sigint: str = "default", then: int | None = None):
    """Run ``script`` (:func:`long_lava_run_script`), wait until it has at least ``processes``
    descendants (Lava starting) and ``settle`` seconds more, send ``signum`` (and, when
    ``then`` is a signal, check that the run is still going 3 s later and send that one);
    return ``(returncode, stdout, stderr)`` after asserting that no descendant outlives it by
    ``grace`` seconds and no new /dev/shm segment (torch's own aside) is left.

    The script starts with SIGINT at its default (``sigint="default"``), as in a terminal's
    foreground, or ignored (``"ignore"``), as a shell's background job is (POSIX): Python then
    keeps ignoring Ctrl-C, so a test that inherited the ignore would wait for nothing."""
    import signal
    import subprocess
    import sys
    import time

    from spikecodec.deploy.backends.lava_parallel import STOP_SECONDS

    disposition = {"default": signal.SIG_DFL, "ignore": signal.SIG_IGN}[sigint]
    shm_before = set(os.listdir("/dev/shm"))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, disposition))
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 180
        while len(descendants(proc.pid)) < processes and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(settle)
        lava = descendants(proc.pid)
        assert len(lava) >= processes, f"Lava did not start ({len(lava)} processes)"
        proc.send_signal(signum)
        if then is not None:
            time.sleep(3.0)
            assert proc.poll() is None, "the run ended on a signal it ignores"
            proc.send_signal(then)
        # the run's own bound: its workers' stop (lava_parallel.STOP_SECONDS, shared by all
        # workers) plus the kill and Lava's shutdown; a machine under load needs much of it
        out, err = proc.communicate(timeout=STOP_SECONDS + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + grace
    while any(alive(pid) for pid in lava) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in lava if alive(pid)], "Lava processes outlived the run"
    left = {name for name in set(os.listdir("/dev/shm")) - shm_before
            if not name.startswith("torch_")}
    assert not left, f"/dev/shm segments left behind: {sorted(left)[:5]}"
    return proc.returncode, out, err

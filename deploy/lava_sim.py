"""The ``lava-sim`` and ``loihi2`` backends: a FixedPointNetwork as a NetX process graph.

The network is written to a temporary HDF5 export and loaded by
``lava.lib.dl.netx.hdf5.Network`` (standard dense CUBA layers), fed by a
:class:`~spikecodec.lava_procs.spike_io.process.SpikeSource` and read by
:class:`~spikecodec.lava_procs.spike_io.process.SpikeSink`, both file-backed (``.npy`` memory
maps in the same temporary folder), so a whole test set streams through one Lava run::

    SpikeSource ──► netx Network (Dense+LIFReset per layer) ──► SpikeSink (output)
                          └── each layer's out ──► SpikeSink     (probe=True)

Stream layout and reset (measured on lava-nc 0.10 / lava-dl 0.6, tests/integration/
test_lava_sim.py): sample ``k`` occupies source steps ``k * P .. k * P + T - 1`` (0-based) with
period ``P = T + gap``; the ``gap`` steps between samples are zeros. The source sends row ``j``
at Lava time step ``j + 1``; every Dense delays by one step, so layer ``i`` (0-based) integrates
the input of sample ``k``, step ``t`` at time step ``k * P + t + 2 + i``. NetX gives layer ``i``
a ``LIFReset`` that zeroes ``u`` and ``v`` when ``time_step % P == (reset_offset + 1 + i) % P``,
*before* integrating that step's input. We pass ``reset_offset = 1``, so every layer resets
exactly on the step it integrates the first input of a sample: each sample is computed from zero
state with no warm-up step, as :func:`spikecodec.lava_procs.cuba.cuba_step` started from zeros
and the reference backend compute it. (NetX's default ``reset_offset = 0`` resets one step
early: it needs ``gap >= 1``, and with biases every layer then runs one warm-up step, bias plus
the previous layer's warm-up spikes, before the sample.) So ``gap = 0`` is already exact; a gap
only spends steps. Output (layer ``i``) for sample ``k``, step ``t`` arrives at 0-based Lava
step ``k * P + t + i + 1``; the last sample needs ``latency`` steps to drain, so a run of ``n``
samples takes ``(n - 1) * P + T + latency`` steps.

The runtime is always stopped (also on errors and ``KeyboardInterrupt``) and the temporary
files are removed. Lava's processes are forked with SIGINT ignored: Ctrl-C reaches the whole
process group, and a child killed by it would leave ``stop()`` waiting forever. (A process model
that raises also hangs Lava 0.10's runtime, so everything the models read is validated here
first.) Lava is imported only inside the functions.
"""
from __future__ import annotations

import math
import signal
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from spikecodec.deploy.backends import RunResult, check_input
from spikecodec.deploy.hdf5 import write_hdf5
from spikecodec.deploy.network import FixedPointNetwork
from spikecodec.errors import BackendUnavailableError, ConfigError

TARGETS = ("sim", "loihi2")
DEFAULT_GAP = 0  # zero steps between samples: exact thanks to reset_offset=1 (module docstring)
RESET_OFFSET = 1  # NetX adds 1 + layer index: layer i resets on its first step of each sample
PROGRESS_SEGMENTS = 50  # with show_progress, a run is advanced in about this many pieces

LOIHI2_HELP = ("the loihi2 backend needs lava-loihi (Intel's Loihi 2 extension of Lava, "
               "available to Intel INRC members: https://intel-ncl.atlassian.net/wiki/spaces/"
               "INRC); --backend lava-sim runs the same process graph on the CPU")


def run_lava(net: FixedPointNetwork, spikes: np.ndarray, *, target: str = "sim",
             probe: bool = False, show_progress: bool = False, gap: int | None = None,
             chunk: int | None = None) -> RunResult:
    """Run ``spikes (batch, in_features, T)`` through ``net`` in Lava; outputs aligned to input.

    Args:
        net: the network (standard dense layers only: NetX builds the graph).
        spikes: binary input ``(batch, in_features, T)``, numpy or torch (validated by
            :func:`spikecodec.deploy.backends.check_input`).
        target: ``"sim"`` (``Loihi2SimCfg(select_tag="fixed_pt")``) or ``"loihi2"``
            (``Loihi2HwCfg``, needs lava-loihi).
        probe: also return every layer's spikes ``(batch, n_l, T)`` in ``RunResult.layers``.
        show_progress: a tqdm bar over the Lava steps of each run.
        gap: zero steps between samples (``>= 0``, default 0; any value gives the same spikes).
        chunk: samples per Lava run (default: all in one run); bounds the size of the
            temporary stream files, each run costs ~0.5 s of start-up.

    Returns:
        ``RunResult(spikes (batch, out, T) uint8, layers or None, stats)`` with stats
        ``steps`` (Lava steps, all runs), ``seconds`` (wall time of those steps; compiling
        and starting the runtime, ~0.5 s per run, excluded), ``gap`` and ``runs`` (number of
        Lava runtimes started).
    """
    if target not in TARGETS:
        raise ConfigError(f"target must be one of {TARGETS}, got {target!r}")
    _allow_lava_import()
    gap = DEFAULT_GAP if gap is None else _check_int("gap", gap, 0)
    spikes = check_input(net, spikes)
    batch, _, steps = spikes.shape
    chunk = batch if chunk is None else _check_int("chunk", chunk, 1)
    for layer in net.layers:
        if not getattr(layer, "standard", False):
            raise ConfigError(f"{layer.name}: layer kind {layer.kind!r} has no Lava process yet")
    if target == "loihi2":
        _require_loihi2()

    out = np.zeros((batch, net.out_features, steps), dtype=np.uint8)
    layers = [np.zeros((batch, layer.out_features, steps), dtype=np.uint8)
              for layer in net.layers] if probe else None
    stats = {"steps": 0, "seconds": 0.0, "gap": gap, "runs": 0}
    with tempfile.TemporaryDirectory(prefix="spikecodec-lava-") as tmp:
        h5 = write_hdf5(net, Path(tmp) / "net.h5")
        for start in range(0, batch, chunk):
            part = slice(start, min(start + chunk, batch))
            recorded, n_steps, seconds = _run_stream(
                h5, spikes[part], latency=net.latency, gap=gap, probe=probe, target=target,
                workdir=Path(tmp), show_progress=show_progress)
            out[part] = recorded[-1]
            if layers is not None:
                for full, rec in zip(layers, recorded, strict=True):
                    full[part] = rec
            stats["steps"] += n_steps
            stats["seconds"] += seconds
            stats["runs"] += 1
    return RunResult(spikes=out, layers=layers, stats=stats)


def _allow_lava_import() -> None:
    """Let Lava's first import succeed after something fixed the multiprocessing start method.

    Lava's message infrastructure calls ``multiprocessing.set_start_method("fork")`` when it is
    first imported, which raises once the start method is fixed -- and any lock created before,
    e.g. by a tqdm progress bar during training, fixes it. Unfixing it is harmless: Lava sets
    "fork", the Linux default those locks were made with.
    """
    import multiprocessing
    import sys

    if "lava.magma.runtime.message_infrastructure.multiprocessing" in sys.modules:
        return
    if multiprocessing.get_start_method(allow_none=True) is not None:
        multiprocessing.set_start_method(None, force=True)


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _require_loihi2() -> None:
    """Raise :class:`BackendUnavailableError` unless lava-loihi (compiler + adapters) imports."""
    try:
        import lava.magma.compiler.subcompilers.nc.ncproc_compiler  # noqa: F401
        import lava.proc.embedded_io.spike  # noqa: F401
    except ImportError as err:
        raise BackendUnavailableError(f"{LOIHI2_HELP} ({err})") from err


def _run_stream(h5: Path, x: np.ndarray, *, latency: int, gap: int, probe: bool, target: str,
                workdir: Path, show_progress: bool) -> tuple[list[np.ndarray], int, float]:
    """One Lava run of the samples ``x (n, in, T)`` laid end to end.

    Returns the recorded spikes (every layer's with ``probe``, else only the output), each
    ``(n, neurons, T)``, the number of Lava steps and the wall time of the run.
    """
    n, n_in, steps = x.shape
    period = steps + gap
    total = (n - 1) * period + steps + latency
    stream_path = workdir / "stream.npy"
    stream = np.lib.format.open_memmap(stream_path, mode="w+", dtype=np.uint8,
                                       shape=(n * period, n_in))
    stream.reshape(n, period, n_in)[:, :steps] = x.transpose(0, 2, 1)
    stream.flush()
    del stream
    try:
        with _lava_graph(h5, stream_path, latency=latency, period=period, n=n, steps=steps,
                         probe=probe, target=target, workdir=workdir) as (network, sinks, cfg):
            start = time.perf_counter()
            _advance(network, total, cfg, show_progress)
            seconds = time.perf_counter() - start
        recorded = [np.load(path).transpose(0, 2, 1).copy() for path in sinks]
    finally:
        for path in workdir.glob("*.npy"):
            path.unlink()
    return recorded, total, seconds


@contextmanager
def _lava_graph(h5: Path, stream_path: Path, *, latency: int, period: int, n: int, steps: int,
                probe: bool, target: str, workdir: Path):
    """Build source -> NetX network -> sink(s) and its runtime; yield ``(network, sink files,
    run config)`` for the caller to advance with ``network.run``. The runtime is stopped on
    exit, however the block exits."""
    from lava.lib.dl import netx

    from spikecodec.lava_procs.spike_io.process import SpikeSink, SpikeSource

    network = netx.hdf5.Network(net_config=str(h5), reset_interval=period,
                                reset_offset=RESET_OFFSET)
    if len(network.layers) != latency:
        raise ConfigError(f"NetX built {len(network.layers)} layers from the export, expected "
                          f"{latency}")
    source = SpikeSource(path=stream_path)
    to_chip, from_chip, cfg = _ports_and_config(target)
    to_chip(source.s_out).connect(network.inp)
    recorded = range(latency) if probe else [latency - 1]
    paths = []
    for i in recorded:
        layer = network.layers[i]
        path = workdir / f"layer{i}.npy"
        np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8,
                                  shape=(n, steps, int(np.prod(layer.out.shape))))
        sink = SpikeSink(path=path, offset=i + 1, period=period)
        from_chip(layer.out).connect(sink.a_in)
        paths.append(path)
    try:
        with _children_ignore_sigint():  # Ctrl-C reaches only us, and we stop the runtime
            network.create_runtime(run_cfg=cfg)  # compiles and forks Lava's processes
        yield network, paths, cfg
    finally:
        network.stop()  # no-op when the runtime never started


@contextmanager
def _children_ignore_sigint():
    """Ignore SIGINT while Lava forks its processes, so that they inherit the disposition.

    Ctrl-C goes to the whole process group: a Lava child killed by it leaves ``stop()`` waiting
    forever for its answer. Children that ignore it keep running until we stop them cleanly.
    Only the main thread may set handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _ports_and_config(target: str):
    """``(to_chip, from_chip, run_cfg)``: on the simulator the ports connect directly; on Loihi 2
    spikes cross between the host processes and the chip through lava-loihi's adapters."""
    if target == "sim":
        from lava.magma.core.run_configs import Loihi2SimCfg

        return (lambda port: port), (lambda port: port), Loihi2SimCfg(select_tag="fixed_pt")
    from lava.magma.core.run_configs import Loihi2HwCfg
    from lava.proc.embedded_io.spike import NxToPyAdapter, PyToNxAdapter

    def to_chip(port):
        adapter = PyToNxAdapter(shape=port.shape, num_message_bits=0)
        port.connect(adapter.inp)
        return adapter.out

    def from_chip(port):
        adapter = NxToPyAdapter(shape=port.shape, num_message_bits=0)
        port.connect(adapter.inp)
        return adapter.out

    return to_chip, from_chip, Loihi2HwCfg()


def _advance(network, total: int, cfg, show_progress: bool) -> None:
    """Run ``total`` steps: in one blocking call, or in pieces under a tqdm bar."""
    from lava.magma.core.run_conditions import RunSteps

    if not show_progress:
        network.run(condition=RunSteps(num_steps=total), run_cfg=cfg)
        return
    from tqdm.auto import tqdm

    piece = max(1, math.ceil(total / PROGRESS_SEGMENTS))
    with tqdm(total=total, unit="step", desc="lava", disable=None) as bar:
        done = 0
        while done < total:
            todo = min(piece, total - done)
            network.run(condition=RunSteps(num_steps=todo), run_cfg=cfg)
            done += todo
            bar.update(todo)


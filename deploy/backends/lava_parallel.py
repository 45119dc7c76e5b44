"""Parallel Lava simulation: the samples of one ``lava-sim`` run sharded over several runtimes.

``run_lava(..., workers=N)`` splits the batch into ``N`` contiguous shards of (nearly) equal size
and runs each in its own worker process, which builds its own Lava process graph and runtime
(:func:`~spikecodec.deploy.backends.lava_sim.run_chunks`, the one-runtime code path) and forks
Lava's process tree below itself::

    caller ─┬─ worker 0: samples [0, n0)      ─ Lava runtime (its own processes, /dev/shm)
            └─ worker 1: samples [n0, batch)  ─ Lava runtime

*Same spikes as one runtime.* Every layer resets on each sample's first step, so a sample's
spikes depend only on the sample -- except a stochastic readout's draws, which are keyed by the
sample's index in the whole batch. A worker passes its shard's start as ``first_sample``, so
sample ``k`` of the batch draws with key ``k`` in whichever shard (and chunk) it runs, exactly as
chunked runs already do. Workers write their outputs (and, with ``probe``, every layer's spikes)
straight into anonymous shared memory at their samples' rows, so the merge is the batch order by
construction; stats add up ``steps``, ``seconds`` (time spent stepping, summed over the
runtimes) and ``runs``, and ``workers`` says how many ran.

*Start method: fork, explicitly* (``multiprocessing.get_context("fork")``, whatever the global
default is). Lava itself forks its processes from whichever process runs it (it sets "fork"
globally when imported), so that process must already be fork-safe; a forked worker adds one
level of the same. Fork hands each worker the network and the input by memory (no pickling of a
large spike array) and shares the output mapping, and a worker starts in milliseconds with
torch and Lava already imported (spawn or forkserver would re-import them, ~2-3 s per worker on
this project's machines, and re-run a caller's ``__main__`` that lacks a main guard).

*Cleanup.* The workers are forked with SIGINT, SIGTERM and SIGHUP blocked, so none arrives
before a worker has installed its own handlers: it ignores SIGINT (the caller answers Ctrl-C),
turns SIGTERM / SIGHUP into :class:`~spikecodec.errors.Terminated` (inside a Lava run the
backend's signal guard holds it until the runtime has started, and always stops the runtime in
``finally``), asks the kernel for SIGTERM should the caller die (``PR_SET_PDEATHSIG``), and runs
in its own process group. The caller holds SIGTERM / SIGHUP with the same guard as one runtime,
so a signal, Ctrl-C or a failed worker all end the same way: every running worker gets SIGTERM
and is joined (``STOP_SECONDS``; a worker that still runs then is killed with its process
group), and only then does the error propagate -- :class:`~spikecodec.errors.WorkerError`
naming the shard for a failed worker, :class:`~spikecodec.errors.Terminated` or
``KeyboardInterrupt`` otherwise.
"""
from __future__ import annotations

import ctypes
import mmap
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from spikecodec.deploy.backends.base import RunResult
from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.errors import LavaTimeoutError, Terminated, WorkerError

STOP_SECONDS = 60.0  # a stopped worker's time to stop its runtime before it is killed
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True)
class Shard:
    """Samples ``start .. stop - 1`` of the batch, run by worker ``index`` of ``count``."""

    index: int
    count: int
    start: int
    stop: int

    def __str__(self) -> str:
        return (f"lava-sim worker {self.index + 1} of {self.count} (samples "
                f"{self.start}..{self.stop - 1})")


def shards(batch: int, workers: int) -> list[Shard]:
    """``min(workers, batch)`` contiguous shards covering ``0 .. batch - 1``, sizes differing by
    at most one (the larger first)."""
    count = min(workers, batch)
    size, extra = divmod(batch, count)
    bounds = np.cumsum([0] + [size + (i < extra) for i in range(count)])
    return [Shard(i, count, int(bounds[i]), int(bounds[i + 1])) for i in range(count)]


def run_sharded(net: FixedPointNetwork, spikes: np.ndarray, *, workers: int, chunk: int,
                gap: int, probe: bool, show_progress: bool,
                timeout: float | None = None) -> RunResult:
    """:func:`~spikecodec.deploy.backends.lava_sim.run_lava` on the simulator with its checked
    arguments, ``spikes (batch, in, T)`` sharded over ``workers`` processes (module
    docstring); ``chunk`` applies within each shard. A worker without a result ``timeout``
    seconds after the start is :class:`LavaTimeoutError` (the workers are stopped as for any
    failure)."""
    from spikecodec.deploy.backends.lava_sim import _terminate_cleanly

    _preload_lava()
    batch, _, steps = spikes.shape
    parts = shards(batch, workers)
    out = _shared((batch, net.out_features, steps))
    layers = [_shared((batch, layer.out_features, steps)) for layer in net.layers] \
        if probe else None
    context = multiprocessing.get_context("fork")
    running: list[tuple[Shard, multiprocessing.process.BaseProcess, object]] = []
    reported: set[int] = set()  # pids of the workers that sent their report
    with _terminate_cleanly() as guard:
        try:
            with _blocked(SIGNALS):  # each worker installs its handlers, then unblocks
                for shard in parts:
                    reader, writer = context.Pipe(duplex=False)
                    process = context.Process(
                        target=_work, name=f"spikecodec-lava-{shard.index}", args=(
                            net, spikes, shard, out, layers, writer,
                            dict(chunk=chunk, gap=gap, probe=probe)))
                    process.start()
                    writer.close()  # EOF on the reader once the worker is gone
                    running.append((shard, process, reader))
            guard.arm()  # raises Terminated now if a signal came while the workers started
            stats = _collect(running, reported, show_progress, timeout)
        finally:
            guard.disarm()  # a signal while the workers stop waits until they have
            with _ignoring(signal.SIGINT):
                _stop(running, reported)
        guard.raise_pending()
    stats.update(gap=gap, workers=len(parts))
    return RunResult(spikes=np.array(out), stats=stats,
                     layers=None if layers is None else [np.array(a) for a in layers])


def _work(net, spikes, shard: Shard, out, layers, writer, options) -> None:
    """A worker's body: run the shard's samples into the shared arrays, report on ``writer``."""
    from spikecodec.deploy.backends.lava_sim import run_chunks

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_terminated)
    os.setpgid(0, 0)  # the caller alone gets Ctrl-C; a last-resort kill reaches Lava too
    parent = os.getppid()
    _die_with_parent()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # held signals arrive here
    try:
        if os.getppid() != parent:  # the caller died before PDEATHSIG was set
            raise Terminated(signal.SIGTERM)
        part = slice(shard.start, shard.stop)
        result = run_chunks(net, spikes[part], first_sample=shard.start, out=out[part],
                            layers=None if layers is None else [a[part] for a in layers],
                            target="sim", show_progress=False, **options)
        report = ("ok", result.stats, "")
    except Terminated as err:
        report = ("stopped", f"terminated by {signal.Signals(err.signum).name}", "")
    except BaseException as err:  # noqa: BLE001 -- every failure goes back to the caller
        report = ("error", f"{type(err).__name__}: {err}", traceback.format_exc())
    for sig in (signal.SIGTERM, signal.SIGHUP):  # nothing left to stop: let the report out
        signal.signal(sig, signal.SIG_IGN)
    try:
        writer.send(report)
    except OSError:  # the caller is gone: nobody to tell
        pass
    writer.close()


def _collect(running, reported: set[int], show_progress: bool,
             timeout: float | None = None) -> dict:
    """Wait for every worker's report (adding its pid to ``reported``); merged stats, or
    :class:`WorkerError` for the first worker that failed, stopped on its own or died without
    a report, :class:`LavaTimeoutError` when ``timeout`` seconds pass first."""
    from tqdm.auto import tqdm

    stats = {"steps": 0, "seconds": 0.0, "runs": 0}
    pending = {reader: (shard, process) for shard, process, reader in running}
    deadline = None if timeout is None else time.monotonic() + timeout
    with tqdm(total=len(pending), unit="shard", desc="lava workers",
              disable=not show_progress or None) as bar:
        while pending:
            left = None if deadline is None else deadline - time.monotonic()
            ready = multiprocessing.connection.wait(list(pending),
                                                    None if left is None else max(left, 0.0))
            if not ready:
                names = ", ".join(str(shard) for shard, _ in pending.values())
                raise LavaTimeoutError(f"no result from {names} within {timeout:g} s: the "
                                       f"Lava runtime stopped answering (or needs a longer "
                                       f"--lava-timeout); it was stopped")
            for reader in ready:
                shard, process = pending.pop(reader)
                try:
                    status, message, details = reader.recv()
                except EOFError:
                    process.join()
                    raise WorkerError(f"{shard} exited with code {process.exitcode} without "
                                      f"a result") from None
                reported.add(process.pid)
                if status != "ok":
                    raise WorkerError(f"{shard} {'failed' if status == 'error' else 'was'}: "
                                      f"{message}", details=details)
                for key in stats:
                    stats[key] += message[key]
                bar.update(1)
    return stats


def _stop(running, reported: set[int]) -> None:
    """SIGTERM to every worker still working (not yet ``reported``), then join all within one
    shared ``STOP_SECONDS`` (not that much per worker: N slow workers must not stretch the stop
    to N times the bound); kill what has not stopped by then."""
    for _, process, _ in running:
        if process.exitcode is None and process.pid not in reported:
            _signal(process.pid, signal.SIGTERM, group=False)
    deadline = time.monotonic() + STOP_SECONDS
    for _, process, reader in running:
        process.join(max(deadline - time.monotonic(), 0.0))
        if process.exitcode is None:
            _kill_group(process)
        reader.close()


def _kill_group(process) -> None:
    """SIGKILL a worker that did not stop, with its whole process group (Lava's processes
    included), then remove the shared memory segments that group held: a killed Lava runtime
    never unlinks its own, and its resource tracker dies with it. Only segments that a process
    of this group had mapped or open are removed, never another run's."""
    segments = set()
    for pid in _group_members(process.pid):
        segments |= _shm_paths(pid)
    _signal(process.pid, signal.SIGKILL, group=True)
    process.join()
    for path in segments:
        try:
            os.unlink(path)
        except OSError:  # already gone (unlinked by its owner before the kill)
            pass


def _group_members(pgid: int) -> list[int]:
    """The living processes of process group ``pgid`` (from /proc; empty elsewhere)."""
    members = []
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def _shm_paths(pid: int) -> set[str]:
    """Paths under /dev/shm that process ``pid`` has mapped or open."""
    found = set()
    try:
        with open(f"/proc/{pid}/maps") as f:
            found |= {line.split(None, 5)[5].strip() for line in f
                      if line.count(" ") >= 5 and "/dev/shm/" in line}
    except OSError:
        pass
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("/dev/shm/"):
                found.add(target)
    except OSError:
        pass
    return {path.removesuffix(" (deleted)") for path in found
            if path.startswith("/dev/shm/") and not path.endswith(" (deleted)")}


def _signal(pid: int, signum: int, *, group: bool) -> None:
    try:
        (os.killpg if group else os.kill)(pid, signum)
    except ProcessLookupError:  # already gone
        pass


def _raise_terminated(signum, frame) -> None:
    raise Terminated(signum)


def _die_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (no-op elsewhere)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _shared(shape: tuple[int, ...]) -> np.ndarray:
    """A zeroed uint8 array in anonymous shared memory: what a forked worker writes, we see."""
    size = int(np.prod(shape))
    return np.frombuffer(mmap.mmap(-1, max(size, 1)), dtype=np.uint8, count=size).reshape(shape)


def _preload_lava() -> None:
    """Import what every worker's run imports, once, before forking them."""
    from lava.lib.dl import netx  # noqa: F401
    from lava.magma.core.run_conditions import RunSteps  # noqa: F401
    from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: F401

    from spikecodec.lava_procs.spike_io.process import SpikeSink  # noqa: F401


@contextmanager
def _blocked(signals):
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def _ignoring(signum: int):
    """Ignore ``signum`` for the block (main thread only; elsewhere nothing to do)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signum, previous)

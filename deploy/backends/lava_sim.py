"""The ``lava-sim`` and ``loihi2`` backends: a FixedPointNetwork as a Lava process graph.

The leading standard layers (:attr:`~spikecodec.deploy.ir.FixedPointNetwork.num_netx`) are
written to a temporary HDF5 export and loaded by ``lava.lib.dl.netx.hdf5.Network``; every later
layer is built by its kind's ``build_lava`` hook (:mod:`spikecodec.deploy.layers`) and chained
after them: a custom kind as a Lava ``Dense`` built exactly as NetX builds a dense layer's
synapse (:func:`netx_weights`, so :func:`spikecodec.deploy.weights.lava_weights` describes it)
and its own process (e.g.
:class:`~spikecodec.lava_procs.stochastic_readout.process.StochasticReadout`), a standard kind
as NetX's own block with the reset schedule NetX would give it. A
:class:`~spikecodec.lava_procs.spike_io.process.SpikeSource` feeds the graph and
:class:`~spikecodec.lava_procs.spike_io.process.SpikeSink` reads it, both file-backed (``.npy``
memory maps in the same temporary folder), so a whole test set streams through one Lava run::

    SpikeSource ─► netx Network (Dense + LIFReset) ─► Dense ─► StochasticReadout ─► ... ─► SpikeSink
                        └── every layer's out ─► SpikeSink    (probe=True)

A network that starts with a custom layer has no NetX part (SpikeSource ─► Dense ─► readout).

Stream layout and reset (measured on lava-nc 0.10 / lava-dl 0.6,
test_lava_sim.py and test_lava_readout.py in tests/deploy): sample ``k`` occupies source steps
``k * P .. k * P + T - 1`` (0-based) with period ``P = T + gap``; the ``gap`` steps between
samples are zeros. The source sends row ``j`` at Lava time step ``j + 1``; every Dense delays by
one step, so layer ``i`` (0-based, custom layers included) integrates the input of sample ``k``,
step ``t`` at time step ``k * P + t + 2 + i``. NetX gives layer ``i`` a ``LIFReset`` that zeroes
``u`` and ``v`` when ``time_step % P == (reset_offset + 1 + i) % P``, *before* integrating that
step's input. We pass ``reset_offset = 1``, so every layer resets exactly on the step it
integrates the first input of a sample: each sample is computed from zero state with no warm-up
step, as :func:`spikecodec.lava_procs.cuba.cuba_step` started from zeros and the reference
backend compute it. (NetX's default ``reset_offset = 0`` resets one step early: it needs
``gap >= 1``, and with biases every layer then runs one warm-up step, bias plus the previous
layer's warm-up spikes, before the sample.) So ``gap = 0`` is already exact; a gap only spends
steps. A custom layer ``i`` gets the same schedule as its process arguments: ``offset = i + 1``
(the 0-based step, ``time_step - 1``, of its sample-0 step 0), ``period = P`` and
``first_sample`` = the chunk's first index in the batch; it zeroes its state on each sample's
step 0 and keys its random draws by (step in sample, sample index), so chunked and gapped runs
draw the same spikes. A standard layer after a custom one gets NetX's ``LIFReset`` schedule
from :class:`Schedule` (``reset_offset = offset + 1``, the same numbers NetX computes).
Output (layer ``i``) for sample ``k``, step ``t`` arrives at 0-based Lava
step ``k * P + t + i + 1``; the last sample needs ``latency`` steps to drain, so a run of ``n``
samples takes ``(n - 1) * P + T + latency`` steps.

The runtime is always stopped (also on errors, ``KeyboardInterrupt``, SIGTERM and SIGHUP) and
the temporary files are removed. Lava's processes are forked with SIGINT ignored: Ctrl-C reaches
the whole process group, and a child killed by it would leave ``stop()`` waiting forever.
SIGTERM and SIGHUP (whose default kills the main process at once, leaving Lava's children and
their /dev/shm segments behind) are caught for the run by :func:`_terminate_cleanly`: a signal
raises :class:`~spikecodec.errors.Terminated` (a ``KeyboardInterrupt``) in the main thread, so
the run ends exactly as on Ctrl-C; one that arrives while the runtime starts or stops is held
until it has, and the previous handlers are restored afterwards. (A process model
that raises also hangs Lava 0.10's runtime, so everything the models read is validated here
first.) Lava is imported only inside the functions.

On ``loihi2`` only standard layers run: the readout would need a microcoded Loihi 2 neuron (an
``NcProcessModel`` through lava-loihi), which does not exist yet; ``spikecodec check --target
loihi2`` describes the options.
"""
from __future__ import annotations

import contextlib
import math
import signal
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikecodec.deploy.backends.base import RunResult, check_input
from spikecodec.deploy.hdf5 import write_hdf5
from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.errors import BackendUnavailableError, ConfigError, Terminated
from spikecodec.lava_procs.spec import STREAM_MAX
from spikecodec.validate import check_int

TARGETS = ("sim", "loihi2")
DEFAULT_GAP = 0  # zero steps between samples: exact thanks to reset_offset=1 (module docstring)
RESET_OFFSET = 1  # NetX adds 1 + layer index: layer i resets on its first step of each sample
PROGRESS_SEGMENTS = 50  # with show_progress, a run is advanced in about this many pieces

LOIHI2_HELP = ("the loihi2 backend needs lava-loihi (Intel's Loihi 2 extension of Lava, "
               "available to Intel INRC members: https://intel-ncl.atlassian.net/wiki/spaces/"
               "INRC); --backend lava-sim runs the same process graph on the CPU")


def run_lava(net: FixedPointNetwork, spikes: np.ndarray, *, target: str = "sim",
             probe: bool = False, show_progress: bool = False, gap: int | None = None,
             chunk: int | None = None, workers: int = 1,
             timeout: float | None = None) -> RunResult:
    """Run ``spikes (batch, in_features, T)`` through ``net`` in Lava; outputs aligned to input.

    Args:
        net: the network: NetX builds its leading standard layers, each kind's
            ``build_lava`` the rest.
        spikes: binary input ``(batch, in_features, T)``, numpy or torch (validated by
            :func:`spikecodec.deploy.backends.check_input`).
        target: ``"sim"`` (``Loihi2SimCfg(select_tag="fixed_pt")``) or ``"loihi2"``
            (``Loihi2HwCfg``, needs lava-loihi; standard layers only).
        probe: also return every layer's spikes ``(batch, n_l, T)`` in ``RunResult.layers``.
        show_progress: a tqdm bar over the Lava steps of each run.
        gap: zero steps between samples (``>= 0``, default 0; any value gives the same spikes).
        chunk: samples per Lava run (default: all in one run); bounds the size of the
            temporary stream files, each run costs ~0.5 s of start-up. Any value gives the
            same spikes (a stochastic readout keys its draws by the sample's batch index).
        workers: Lava runtimes running at once, each in its own process on a contiguous shard
            of the samples (:mod:`~spikecodec.deploy.backends.lava_parallel`); the same spikes
            for any value. ``1`` (default) runs here; more workers than samples use fewer.
        timeout: seconds the caller waits for the runtime(s) to finish (``None``: as long as it
            takes). With a timeout even one runtime runs in a worker process, so a runtime that
            stops answering (a Lava process stuck or dead) ends in
            :class:`~spikecodec.errors.LavaTimeoutError` after ``timeout`` seconds plus at most
            :data:`~spikecodec.deploy.backends.lava_parallel.STOP_SECONDS` to stop it, with no
            process left behind.

    Returns:
        ``RunResult(spikes (batch, out, T) uint8, layers or None, stats)`` with stats
        ``steps`` (Lava steps, all runs), ``seconds`` (wall time of those steps; compiling
        and starting the runtime, ~0.5 s per run, excluded), ``gap`` and ``runs`` (number of
        Lava runtimes started); with several workers also ``workers`` (how many ran), and
        ``steps``, ``seconds`` and ``runs`` are summed over them.
    """
    if target not in TARGETS:
        raise ConfigError(f"target must be one of {TARGETS}, got {target!r}")
    _allow_lava_import()
    gap = DEFAULT_GAP if gap is None else check_int("", "gap", gap, 0, STREAM_MAX)
    spikes = check_input(net, spikes)
    batch, _, steps = spikes.shape
    chunk = batch if chunk is None else check_int("", "chunk", chunk, 1, None)
    workers = min(check_int("", "workers", workers, 1, None), batch)
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0
                                    and math.isfinite(timeout)):
        raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
    custom = [layer for layer in net.layers if not layer.standard]
    if target == "loihi2":
        _require_loihi2()
        if custom:
            raise BackendUnavailableError(
                f"{custom[0].name}: the {custom[0].kind} layer has no Loihi 2 process model: on "
                f"Loihi2HwCfg it needs a microcoded neuron (an NcProcessModel through "
                f"lava-loihi), which spikecodec does not have yet; `spikecodec check --target "
                f"loihi2` describes the mapping options, --backend lava-sim runs it on the CPU")
        if workers > 1 or timeout is not None:
            raise ConfigError(f"workers must be 1 and timeout unset on target loihi2 (one chip "
                              f"from this process), got {workers} and {timeout}")
    if workers > 1 or timeout is not None:
        from spikecodec.deploy.backends.lava_parallel import run_sharded

        return run_sharded(net, spikes, workers=workers, chunk=chunk, gap=gap, probe=probe,
                           show_progress=show_progress, timeout=timeout)
    return run_chunks(net, spikes, chunk=chunk, gap=gap, probe=probe, target=target,
                      show_progress=show_progress)


def run_chunks(net: FixedPointNetwork, spikes: np.ndarray, *, chunk: int, gap: int, probe: bool,
               target: str, show_progress: bool, first_sample: int = 0, out=None,
               layers=None) -> RunResult:
    """:func:`run_lava` on checked arguments, here: one Lava run per ``chunk`` of the samples
    ``spikes (n, in, T)``, the first of which is sample ``first_sample`` of the whole batch
    (a stochastic readout keys its draws by ``first_sample`` plus the index in ``spikes``).
    ``out`` and ``layers``, when given, are the arrays to fill (a worker's shared memory)."""
    batch, _, steps = spikes.shape
    if out is None:
        out = np.zeros((batch, net.out_features, steps), dtype=np.uint8)
    if layers is None and probe:
        layers = [np.zeros((batch, layer.out_features, steps), dtype=np.uint8)
                  for layer in net.layers]
    stats = {"steps": 0, "seconds": 0.0, "gap": gap, "runs": 0}
    with tempfile.TemporaryDirectory(prefix="spikecodec-lava-") as tmp:
        h5 = None
        if netx_loads(net):  # NetX reads only the leading standard layers
            prefix = FixedPointNetwork(net.layers[:net.num_netx], net.input)
            h5 = write_hdf5(prefix, Path(tmp) / "net.h5")
        for start in range(0, batch, chunk):
            part = slice(start, min(start + chunk, batch))
            recorded, n_steps, seconds = _run_stream(
                net, h5, spikes[part], first_sample=first_sample + start, gap=gap, probe=probe,
                target=target,
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


def unavailable(target: str) -> str | None:
    """``None`` when ``target`` can run here, else what is missing and how to get it."""
    from importlib.util import find_spec

    if find_spec("lava.magma") is None or find_spec("lava.lib.dl.netx") is None:
        return ("the Lava backends need lava-nc and lava-dl (installed by tools/setup_env.py, "
                "requirements-lava.txt); --backend reference needs neither")
    if target == "loihi2":
        _allow_lava_import()
        try:
            _require_loihi2()
        except BackendUnavailableError as err:
            return str(err)
    return None


def _require_loihi2() -> None:
    """Raise :class:`BackendUnavailableError` unless lava-loihi (compiler + adapters) imports."""
    try:
        import lava.magma.compiler.subcompilers.nc.ncproc_compiler  # noqa: F401
        import lava.proc.embedded_io.spike  # noqa: F401
    except ImportError as err:
        raise BackendUnavailableError(f"{LOIHI2_HELP} ({err})") from err


def _run_stream(net: FixedPointNetwork, h5: Path | None, x: np.ndarray, *, first_sample: int,
                gap: int, probe: bool, target: str, workdir: Path,
                show_progress: bool) -> tuple[list[np.ndarray], int, float]:
    """One Lava run of the samples ``x (n, in, T)`` laid end to end, the first of them sample
    ``first_sample`` of the batch.

    Returns the recorded spikes (every layer's with ``probe``, else only the output), each
    ``(n, neurons, T)``, the number of Lava steps and the wall time of the run.
    """
    n, n_in, steps = x.shape
    period = steps + gap
    total = (n - 1) * period + steps + net.latency
    stream_path = workdir / "stream.npy"
    stream = np.lib.format.open_memmap(stream_path, mode="w+", dtype=np.uint8,
                                       shape=(n * period, n_in))
    stream.reshape(n, period, n_in)[:, :steps] = x.transpose(0, 2, 1)
    stream.flush()
    del stream
    try:
        with _lava_graph(net, h5, stream_path, period=period, n=n, steps=steps,
                         first_sample=first_sample, probe=probe, target=target,
                         workdir=workdir) as (root, sinks, cfg):
            start = time.perf_counter()
            _advance(root, total, cfg, show_progress)
            seconds = time.perf_counter() - start
        recorded = [np.load(path).transpose(0, 2, 1).copy() for path in sinks]
    finally:
        for path in workdir.glob("*.npy"):
            path.unlink()
    return recorded, total, seconds


@contextmanager
def _lava_graph(net: FixedPointNetwork, h5: Path | None, stream_path: Path, *, period: int,
                n: int, steps: int, first_sample: int, probe: bool, target: str, workdir: Path):
    """Build source -> NetX network (from ``h5``, the leading standard layers) -> the other
    layers (their kinds' ``build_lava``) -> sink(s) and its runtime; yield ``(root process,
    sink files, run config)`` for the caller to advance with ``root.run`` (the NetX network, or
    the source when there is none). The runtime is stopped on exit, however the block exits."""
    from spikecodec.lava_procs.spike_io.process import SpikeSink, SpikeSource

    source = SpikeSource(path=stream_path)
    to_chip, from_chip, cfg = _ports_and_config(target)
    root, outs = source, []  # outs: every layer's OutPort, in order
    lead = net.num_netx if h5 is not None else 0  # layers NetX builds; we build the others
    if h5 is not None:
        from lava.lib.dl import netx

        root = netx.hdf5.Network(net_config=str(h5), reset_interval=period,
                                 reset_offset=RESET_OFFSET)
        if len(root.layers) != net.num_netx:
            raise ConfigError(f"NetX built {len(root.layers)} layers from the export, expected "
                              f"{net.num_netx}")
        to_chip(source.s_out).connect(root.inp)
        outs = [layer.out for layer in root.layers]
    for i in range(lead, len(net.layers)):
        schedule = Schedule(index=i, period=period, first_sample=first_sample)
        inp, out = net.layers[i].build_lava(schedule)
        (outs[-1] if outs else source.s_out).connect(inp)
        outs.append(out)
    recorded = range(len(outs)) if probe else [len(outs) - 1]
    paths = []
    for i in recorded:
        path = workdir / f"layer{i}.npy"
        np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8,
                                  shape=(n, steps, int(np.prod(outs[i].shape))))
        sink = SpikeSink(path=path, offset=i + 1, period=period)
        from_chip(outs[i]).connect(sink.a_in)
        paths.append(path)
    with _terminate_cleanly() as guard:
        try:
            with _children_ignore_sigint():  # Ctrl-C reaches only us, and we stop the runtime
                root.create_runtime(run_cfg=cfg)  # compiles and forks Lava's processes
            guard.arm()  # raises Terminated now if a signal came while Lava started
            yield root, paths, cfg
        finally:
            guard.disarm()  # a signal during stop() waits until the runtime is down
            _start_if_idle(root, cfg)
            root.stop()
        guard.raise_pending()


def _start_if_idle(root, cfg) -> None:
    """Run one step on a runtime that was created but never run, so that ``stop()`` can end it.

    Lava 0.10's ``Runtime.stop()`` on a runtime that never started skips the stop handshake but
    still joins the processes ``create_runtime`` forked, which wait for their first command
    forever: a signal that arrived while Lava started (held until then, raised at ``arm()``)
    hung the run until the caller killed it (measured: 62 s, the parallel backend's
    ``STOP_SECONDS`` plus the kill; the single-runtime path had no bound). One step starts the
    runtime, and the usual stop then ends it. Lava's private ``_is_started`` flag is read with a
    default of "started", so a Lava without it gets the plain ``stop()``."""
    runtime = getattr(root, "runtime", None)
    if runtime is None or getattr(runtime, "_is_started", True):
        return
    from lava.magma.core.run_conditions import RunSteps

    with contextlib.suppress(Exception):  # stop() below still does what it can
        root.run(condition=RunSteps(num_steps=1), run_cfg=cfg)


@dataclass(frozen=True)
class Schedule:
    """Where layer ``index`` finds its samples in a run's stream (module docstring)."""

    index: int  # 0-based position of the layer in the network
    period: int  # Lava steps per sample (T + gap)
    first_sample: int  # index in the batch of the run's first sample (keys random draws)

    @property
    def offset(self) -> int:
        """0-based Lava step (``time_step - 1``) on which the layer integrates step 0 of the
        run's first sample: the source sends at step 1 and each Dense in front delays by one."""
        return self.index + 1


def netx_loads(net: FixedPointNetwork) -> bool:
    """Whether ``netx.hdf5.Network`` can build the leading standard layers: it cannot when one
    has all-zero weights (NetX's ``optimize_weight_bits`` divides by their zero maximum and
    raises). Then every layer is built through its kind's ``build_lava`` -- for a dense layer
    the same blocks and parameters NetX would make (:func:`netx_weights` maps zeros to zeros)."""
    return net.num_netx > 0 and all(np.any(layer.weight)
                                    for layer in net.layers[:net.num_netx])


def netx_weights(weight: np.ndarray) -> tuple[np.ndarray, int, int]:
    """``(mantissa, num_weight_bits, weight_exponent)`` that NetX gives the Dense of a layer
    with HDF5 ``weight``: NetX's own ``optimize_weight_bits`` of the float32 weights. An all-zero
    matrix (which NetX cannot load) maps to zeros, as ``lava_weights`` says."""
    from lava.lib.dl.netx.utils import optimize_weight_bits

    weight = np.asarray(weight, dtype=np.float32)
    if not weight.any():
        return np.zeros(weight.shape, dtype=np.int64), 8, 0
    with np.errstate(divide="ignore"):  # NetX divides by a zero max of a {-w, 0} matrix
        mantissa, num_bits, exponent, _ = optimize_weight_bits(weight)
    return mantissa, num_bits, exponent


@contextmanager
def _children_ignore_sigint():
    """Hold SIGINT while Lava forks its processes, so that they inherit a handler that only
    records it.

    Ctrl-C goes to the whole process group: a Lava child killed by it leaves ``stop()`` waiting
    forever for its answer. Children whose handler only records it keep running until we stop
    them cleanly. In this process a Ctrl-C that came meanwhile is raised as
    ``KeyboardInterrupt`` once Lava is up (it used to be ignored: lost, the run went on). Only
    the main thread may set handlers; elsewhere this does nothing. A process that was started
    ignoring SIGINT (a shell's background job, ``nohup``-style launchers) keeps ignoring it, as
    Unix programs do: its children inherit the ignore and nothing is raised.
    """
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


class _SignalGuard:
    """The handler of SIGTERM / SIGHUP during a run: records the signal, and raises
    :class:`Terminated` when armed. Lava's children are forked with it installed and never
    armed, so a signal sent to the whole group leaves them running until ``stop()``."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.armed = self.raised = False

    def __call__(self, signum, frame) -> None:
        self.signum = self.signum or signum
        if self.armed:
            self.armed, self.raised = False, True
            raise Terminated(signum)

    def arm(self) -> None:
        self.armed = True
        if self.signum is not None:
            self.armed, self.raised = False, True
            raise Terminated(self.signum)

    def disarm(self) -> None:
        self.armed = False

    def raise_pending(self) -> None:
        if self.signum is not None and not self.raised:
            self.raised = True
            raise Terminated(self.signum)


@contextmanager
def _terminate_cleanly():
    """Install a :class:`_SignalGuard` for SIGTERM and SIGHUP for the block and restore the
    previous handlers after it. Only the main thread may set handlers; elsewhere the guard is
    inert (never sees a signal)."""
    guard = _SignalGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    previous = {sig: signal.signal(sig, guard) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield guard
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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


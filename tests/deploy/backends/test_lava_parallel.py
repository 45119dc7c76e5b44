"""lava-sim with several workers: the same spikes as one runtime, typed errors, no leftovers."""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from spikecodec.deploy.backends import run
from spikecodec.deploy.backends.lava_parallel import shards
from spikecodec.errors import ConfigError, WorkerError

from conftest import (
    REPO,
    descendants,
    long_lava_run_script,
    random_network,
    random_spikes,
    signal_long_lava_run,
)

EXPORTS = ["roy_ae_digits", "vdib_digits"]  # the committed golden exports (netx_exports/)


def load_golden(name: str):
    from spikecodec.deploy.hdf5 import read_hdf5

    with np.load(REPO / "netx_exports" / name / "golden.npz") as z:
        return read_hdf5(REPO / "netx_exports" / name / "export.h5"), dict(z)


@pytest.mark.parametrize("batch,workers,sizes", [
    (7, 2, [4, 3]), (6, 3, [2, 2, 2]), (2, 5, [1, 1]), (5, 1, [5])])
def test_shards_are_contiguous_balanced_and_cover_the_batch(batch, workers, sizes):
    parts = shards(batch, workers)
    assert [p.stop - p.start for p in parts] == sizes
    assert parts[0].start == 0 and parts[-1].stop == batch
    assert all(a.stop == b.start for a, b in zip(parts, parts[1:], strict=False))
    assert str(parts[-1]).startswith(f"lava-sim worker {len(sizes)} of {len(sizes)} (samples")


@pytest.mark.parametrize("workers", [0, -1, 1.5, 2.0, True, "2"])
def test_workers_must_be_an_integer_of_at_least_one(workers):
    net = random_network(["dense"], seed=1)
    with pytest.raises(ConfigError, match="workers"):
        run(net, random_spikes(3, 20, 12), backend="lava-sim", workers=workers)


def test_the_reference_backend_has_no_workers_option():
    net = random_network(["dense"], seed=1)
    with pytest.raises(ConfigError, match="'reference' has no option workers"):
        run(net, random_spikes(3, 20, 12), backend="reference", workers=2)


def check_same(one, many):
    np.testing.assert_array_equal(many.spikes, one.spikes)
    assert len(many.layers) == len(one.layers)
    for a, b in zip(one.layers, many.layers, strict=True):
        np.testing.assert_array_equal(b, a)


@pytest.mark.lava
@pytest.mark.parametrize("name", EXPORTS)
def test_two_workers_replay_the_golden_exports_as_one_runtime(name, no_leftover_children):
    net, golden = load_golden(name)
    one = run(net, golden["input"], backend="lava-sim", probe=True)
    two = run(net, golden["input"], backend="lava-sim", probe=True, workers=2)
    check_same(one, two)
    for layer, spikes in zip(net.layers, two.layers, strict=True):
        np.testing.assert_array_equal(spikes, golden[f"layer_{layer.name}"], err_msg=layer.name)
    assert two.stats["workers"] == 2 and two.stats["runs"] == 2
    assert two.stats["steps"] > one.stats["steps"]  # each runtime drains the latency itself
    assert two.stats["seconds"] > 0 and "workers" not in one.stats


@pytest.mark.lava
@pytest.mark.parametrize("kinds,workers,chunk", [
    (["dense", "stochastic_readout"], 2, None),
    (["stochastic_readout"], 3, None),  # no NetX part
    (["dense", "stochastic_readout", "dense"], 2, 2),  # chunks inside each shard
    (["dense", "dense"], 9, None),  # more workers than samples
])
def test_workers_give_the_spikes_of_one_runtime(kinds, workers, chunk, no_leftover_children):
    net = random_network(kinds, seed=5)
    x = random_spikes(7, 20, 12, seed=11)
    one = run(net, x, backend="lava-sim", probe=True)
    many = run(net, x, backend="lava-sim", probe=True, workers=workers, chunk=chunk)
    check_same(one, many)
    assert sum(s.sum() for s in one.layers) > 0
    assert many.stats["workers"] == min(workers, 7)
    no_probe = run(net, x, backend="lava-sim", workers=workers)
    np.testing.assert_array_equal(no_probe.spikes, one.spikes)
    assert no_probe.layers is None


def _lava_descendants() -> set[int]:
    return descendants(os.getpid())


@pytest.mark.lava
def test_a_failing_worker_raises_naming_its_shard_and_stops_the_others(monkeypatch,
                                                                       no_leftover_children):
    from spikecodec.deploy.backends import lava_sim

    real = lava_sim.run_chunks

    def failing(net, spikes, *, first_sample, **options):  # forked: inherited by the workers
        if first_sample > 0:
            time.sleep(3)  # worker 1 is busy in Lava by now
            raise RuntimeError("boom")
        return real(net, spikes, first_sample=first_sample, **options)

    monkeypatch.setattr(lava_sim, "run_chunks", failing)
    shm_before = set(os.listdir("/dev/shm"))
    before = _lava_descendants()
    net = random_network(["dense", "stochastic_readout"], seed=2)
    x = random_spikes(4000, 20, 12)  # worker 1 would take minutes: it must be stopped
    tic = time.perf_counter()
    with pytest.raises(WorkerError, match=r"worker 2 of 2 \(samples 2000..3999\) failed: "
                                          r"RuntimeError: boom") as err:
        run(net, x, backend="lava-sim", workers=2)
    assert time.perf_counter() - tic < 60
    assert "RuntimeError: boom" in err.value.details
    assert not _lava_descendants() - before
    assert not set(os.listdir("/dev/shm")) - shm_before


@pytest.mark.lava
def test_a_worker_that_dies_without_a_report_is_an_error(monkeypatch, no_leftover_children):
    from spikecodec.deploy.backends import lava_sim

    def dying(net, spikes, *, first_sample, **options):
        os._exit(7)

    monkeypatch.setattr(lava_sim, "run_chunks", dying)
    with pytest.raises(WorkerError, match=r"worker \d of 2 .* exited with code 7"):
        run(random_network(["dense"], seed=1), random_spikes(4, 20, 12), backend="lava-sim",
            workers=2)


# A 2-worker run far longer than the test waits: it must end because of the signal.
SCRIPT = long_lava_run_script(samples=100000, workers=2)


@pytest.mark.lava
@pytest.mark.parametrize("signum,code,said", [
    (signal.SIGTERM, 143, "terminated by SIGTERM"), (signal.SIGINT, 130, "interrupted"),
    (signal.SIGKILL, -9, None)])  # the workers stop themselves when their parent dies
def test_a_signal_to_a_two_worker_run_leaves_nothing_behind(signum, code, said):
    returncode, out, err = signal_long_lava_run(SCRIPT, signum, processes=10, grace=60)
    assert returncode == code, (out, err[-2000:])
    if said:
        assert f"stopped: {said}" in out


# --------------------------------------------------------------------------- the CLI

@pytest.mark.lava
def test_cli_run_eval_and_check_take_workers(tmp_path, capsys, no_leftover_children):
    import json

    from spikecodec.cli import main

    export = str(REPO / "netx_exports" / "vdib_digits" / "export.h5")
    common = ["--samples", "6", "--no-progress"]
    for backend, workers in (("reference", []), ("lava-sim", ["--workers", "2"])):
        assert main(["run", export, "--backend", backend, *workers, *common,
                     "--out", str(tmp_path / f"{backend}.npz")]) == 0
        assert main(["eval", export, "--backend", backend, *workers, *common,
                     "--out", str(tmp_path / f"{backend}.json")]) == 0
    with np.load(tmp_path / "reference.npz") as a, np.load(tmp_path / "lava-sim.npz") as b:
        np.testing.assert_array_equal(b["output"], a["output"])
    metrics = [json.loads((tmp_path / f"{b}.json").read_text()) for b in ("reference", "lava-sim")]
    assert metrics[1]["mse"] == metrics[0]["mse"]
    assert main(["check", export, "--workers", "2", *common]) == 0
    assert "100.000%" in capsys.readouterr().out


def test_cli_refuses_bad_workers(capsys):
    from spikecodec.cli import main

    export = str(REPO / "netx_exports" / "roy_ae_digits" / "export.h5")
    for bad in ("0", "-2", "two"):
        with pytest.raises(SystemExit) as exit_:
            main(["run", export, "--backend", "lava-sim", "--workers", bad])
        assert exit_.value.code == 2 and "--workers" in capsys.readouterr().err
    assert main(["eval", export, "--workers", "2", "--samples", "2", "--no-progress"]) == 2
    assert "'reference' has no option workers" in capsys.readouterr().err


def test_stopping_waits_one_shared_bound_for_all_workers(monkeypatch):
    """Workers that ignore SIGTERM are killed once STOP_SECONDS have passed in all, not after
    STOP_SECONDS each (two stuck workers took twice the bound, past the caller's patience)."""
    from spikecodec.deploy.backends import lava_parallel

    clock = [0.0]
    waits, signals, killed = [], [], []

    class Stuck:  # a worker that never stops by itself; join advances the clock
        exitcode = None

        def __init__(self, pid):
            self.pid = pid

        def join(self, timeout=None):
            waits.append(timeout)
            clock[0] += timeout

    class Reader:
        def close(self):
            pass

    monkeypatch.setattr(lava_parallel.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(lava_parallel, "_signal",
                        lambda pid, signum, group: signals.append((pid, signum)))
    monkeypatch.setattr(lava_parallel, "_kill_group", lambda process: killed.append(process.pid))
    running = [(None, Stuck(pid), Reader()) for pid in (11, 12, 13)]
    lava_parallel._stop(running, reported={13})
    assert signals == [(11, signal.SIGTERM), (12, signal.SIGTERM)]  # 13 had reported
    assert sum(waits) == pytest.approx(lava_parallel.STOP_SECONDS)
    assert killed == [11, 12, 13]

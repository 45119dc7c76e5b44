"""A Lava run that stops answering ends with a typed error within a bounded time, leaving no
process behind (lava-sim's ``timeout``; the CLI's ``--lava-timeout``)."""
from __future__ import annotations

import os
import signal
import time

import pytest

from spikecodec.deploy.backends import lava_parallel, run
from spikecodec.errors import ConfigError, LavaTimeoutError

from conftest import descendants, random_network, random_spikes


@pytest.mark.lava
def test_a_stuck_runtime_is_stopped_after_the_timeout(monkeypatch, no_leftover_children):
    """One of Lava's own processes freezes (SIGSTOP) mid-run: the run blocks for good, and
    stopping it blocks too, so the worker's whole process group is killed."""
    from spikecodec.deploy.backends import lava_sim

    real = lava_sim._advance

    def freezing(network, total, cfg, show_progress):  # forked: runs in the worker
        for pid in descendants(os.getpid()):
            os.kill(pid, signal.SIGSTOP)
        real(network, total, cfg, show_progress)

    monkeypatch.setattr(lava_sim, "_advance", freezing)
    monkeypatch.setattr(lava_parallel, "STOP_SECONDS", 3.0)
    before = descendants(os.getpid())
    mapped = {}  # the stuck group's shared memory, seen from here after the run

    real_kill = lava_parallel._kill_group

    def watching(process):
        for pid in lava_parallel._group_members(process.pid):
            mapped[pid] = lava_parallel._shm_paths(pid)
        real_kill(process)

    monkeypatch.setattr(lava_parallel, "_kill_group", watching)
    tic = time.perf_counter()
    with pytest.raises(LavaTimeoutError, match=r"no result from lava-sim worker 1 of 1 "
                                               r"\(samples 0..3\) within 4 s"):
        run(random_network(["dense"], seed=1), random_spikes(4, 20, 12), backend="lava-sim",
            timeout=4)
    assert time.perf_counter() - tic < 4 + 3 + 20  # timeout + stop + the kill and the joins
    deadline = time.monotonic() + 10  # killed processes are reaped by their parents' exits
    while descendants(os.getpid()) - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not descendants(os.getpid()) - before
    segments = set().union(*mapped.values())
    assert len(mapped) > 1 and segments  # the worker and Lava's processes, holding segments
    assert not [path for path in segments if os.path.exists(path)]


@pytest.mark.lava
def test_a_healthy_run_with_a_timeout_gives_the_spikes_of_one_runtime():
    net = random_network(["dense", "stochastic_readout"], seed=3)
    x = random_spikes(5, net.in_features, net.num_steps)
    here = run(net, x, backend="lava-sim")
    guarded = run(net, x, backend="lava-sim", timeout=300)
    assert (here.spikes == guarded.spikes).all()


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "5"])
def test_bad_timeouts_are_refused(timeout):
    with pytest.raises(ConfigError, match="timeout must be a positive number"):
        run(random_network(["dense"], seed=1), random_spikes(2, 20, 12), backend="lava-sim",
            timeout=timeout)


@pytest.mark.lava
def test_cli_lava_timeout(capsys, no_leftover_children):
    from spikecodec.cli import main

    from conftest import REPO

    export = str(REPO / "netx_exports" / "roy_ae_digits" / "export.h5")
    assert main(["run", export, "--backend", "lava-sim", "--samples", "2", "--lava-timeout",
                 "-1"]) == 2
    assert "timeout must be a positive number" in capsys.readouterr().err
    assert main(["eval", export, "--backend", "lava-sim", "--samples", "2", "--lava-timeout",
                 "300", "--no-progress"]) == 0

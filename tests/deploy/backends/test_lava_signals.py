"""SIGTERM and SIGHUP end a Lava run as cleanly as Ctrl-C: the runtime is stopped, no Lava
process and no /dev/shm segment outlives it, and the previous handlers are back afterwards."""
from __future__ import annotations

import signal

import pytest

from spikecodec.errors import Terminated

from conftest import long_lava_run_script, signal_long_lava_run

pytestmark = pytest.mark.lava

# A run far longer than the test waits: it must end because of the signal.
SCRIPT = long_lava_run_script(samples=50000, workers=1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_a_lava_run_stops_it_cleanly(signum):
    returncode, out, err = signal_long_lava_run(SCRIPT, signum, processes=4, grace=20)
    assert returncode == 128 + signum, (out, err[-2000:])
    assert f"stopped: terminated by {signal.Signals(signum).name}" in out


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_lava_starts_ends_the_run(signum, code):
    """Sent as soon as Lava's first processes exist: held until the runtime is up, then the run
    stops. Lava cannot stop a runtime that never ran (its stop joins processes that wait for a
    first command), so this hung until the run was killed; one step now starts it first."""
    returncode, out, err = signal_long_lava_run(SCRIPT, signum, processes=1, grace=20,
                                                settle=0.0)
    assert returncode == code, (out, err[-2000:])
    assert "stopped:" in out


@pytest.mark.parametrize("processes,settle", [(1, 0.0), (4, 1.0)],
                         ids=["while Lava starts", "during the run"])
def test_a_run_started_ignoring_ctrl_c_keeps_ignoring_it(processes, settle):
    """A shell's background job starts with SIGINT ignored; Unix programs keep that. Ctrl-C
    neither stops the run nor is saved up to stop it later (it was once recorded while Lava
    started and raised afterwards); SIGTERM still stops it cleanly."""
    returncode, out, err = signal_long_lava_run(SCRIPT, signal.SIGINT, processes=processes,
                                                grace=20, settle=settle, sigint="ignore",
                                                then=signal.SIGTERM)
    assert returncode == 143, (out, err[-2000:])
    assert "stopped: terminated by SIGTERM" in out


def test_the_previous_handlers_are_restored_after_a_run(no_leftover_children):
    import numpy as np

    from spikecodec.deploy.backends import run

    from conftest import random_network, random_spikes

    def mine(signum, frame):
        raise AssertionError("not during the run")

    previous = {sig: signal.signal(sig, mine) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        net = random_network(["dense"], seed=1)
        result = run(net, random_spikes(2, 20, 12), backend="lava-sim")
        assert result.spikes.shape == (2, net.out_features, 12)
        assert all(signal.getsignal(sig) is mine for sig in previous)
        assert np.asarray(result.spikes).dtype == np.uint8
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_terminated_is_a_keyboard_interrupt_not_an_exception():
    err = Terminated(signal.SIGTERM)
    assert isinstance(err, KeyboardInterrupt) and not isinstance(err, Exception)
    assert str(err) == "terminated by SIGTERM" and err.signum == signal.SIGTERM

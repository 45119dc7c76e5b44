"""Data-parallel training under torchrun (train/parallel.py): a 2-process gloo run trains the
same model as one process with the same global batch, rank 0 alone writes, resume works, and a
family whose estimator is per batch is refused with its reason."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from spikecodec.errors import ConfigError
from spikecodec.train import parallel
from spikecodec.train.checkpoint import load_checkpoint
from spikecodec.train.families import FAMILIES


def _cli(args, *, processes: int, tmp_path, extra=()):
    """``spikecodec train ...`` in 1 process, or in ``processes`` under torchrun."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    head = [sys.executable, "-m", "spikecodec.cli"]
    if processes > 1:
        head = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={processes}", "-m", "spikecodec.cli"]
    return subprocess.run([*head, "train", *args, "--no-progress", *extra], env=env,
                          capture_output=True, text=True, timeout=300)


def _smoke(name: str) -> list[str]:
    out = []
    for setting in (*FAMILIES[name].smoke_settings, "train.threads=1"):
        out += ["--set", setting]
    return out


def _weights(run_dir, name):
    return load_checkpoint(run_dir / "checkpoint.pt", model_kind=name)


@pytest.mark.parametrize("rows,size", [(50, 2), (7, 2), (7, 3), (100, 4)])
def test_local_rows_split_every_batch_into_contiguous_shards(rows, size, monkeypatch):
    seen = []
    for rank in range(size):
        monkeypatch.setattr(parallel, "world", lambda rank=rank: (rank, size))
        part = parallel.local_rows(rows)
        seen += list(range(rows))[part]
        assert part.stop - part.start in (rows // size, rows // size + 1)
    assert seen == list(range(rows))


def test_batches_smaller_than_the_process_count_are_refused(monkeypatch):
    monkeypatch.setattr(parallel, "world", lambda: (0, 4))
    parallel.check_batches(100, 10)
    with pytest.raises(ConfigError, match="leaves 2 in a batch"):
        parallel.check_batches(102, 10)  # the last batch has 2 samples for 4 processes
    with pytest.raises(ConfigError, match="batch_size 3"):
        parallel.check_batches(30, 3)


def test_roy_two_processes_train_the_one_process_model(tmp_path):
    one = _cli(["roy-ae", *_smoke("roy-ae"), "--out", str(tmp_path / "one")], processes=1,
               tmp_path=tmp_path)
    two = _cli(["roy-ae", *_smoke("roy-ae"), "--out", str(tmp_path / "two")], processes=2,
               tmp_path=tmp_path)
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("run directory:") == 1  # rank 0 reports, rank 1 is quiet
    a, b = _weights(tmp_path / "one", "roy-ae"), _weights(tmp_path / "two", "roy-ae")
    la, lb = np.array(a["history"]["loss"]), np.array(b["history"]["loss"])
    # step 0 runs on identical weights: only the shard means' summation order differs
    assert abs(la[0] - lb[0]) <= 1e-6 * la[0]
    # later steps: the same trajectory; a float-order difference may flip a spike now and then
    # (measured: relative loss differences <= 2e-4, weights within 0.15 % in norm)
    np.testing.assert_allclose(lb, la, rtol=2e-3)
    for key in a["model"]:
        x, y = a["model"][key].double(), b["model"][key].double()
        assert float((x - y).norm() / x.norm()) < 1e-2, key
    # rank 0 wrote the run; rank 1's private folder is gone
    assert (tmp_path / "two" / "export.h5").is_file()
    assert not list((tmp_path / "tmp").glob("spikecodec-rank*"))


def test_a_different_seed_is_far_from_that_tolerance(tmp_path):
    """The tolerance above can fail: another seed moves the weights by far more than 1 %."""
    one = _cli(["roy-ae", *_smoke("roy-ae"), "--out", str(tmp_path / "a")], processes=1,
               tmp_path=tmp_path)
    other = _cli(["roy-ae", *_smoke("roy-ae"), "--set", "train.seed=7", "--out",
                  str(tmp_path / "b")], processes=1, tmp_path=tmp_path)
    assert one.returncode == 0 and other.returncode == 0
    a, b = _weights(tmp_path / "a", "roy-ae"), _weights(tmp_path / "b", "roy-ae")
    x, y = a["model"]["decoder.weight"].double(), b["model"]["decoder.weight"].double()
    assert float((x - y).norm() / x.norm()) > 0.1


def test_comsa_two_processes_train_the_one_process_model(tmp_path):
    smoke = _smoke("comsa")
    one = _cli(["comsa", *smoke, "--out", str(tmp_path / "one")], processes=1, tmp_path=tmp_path)
    two = _cli(["comsa", *smoke, "--out", str(tmp_path / "two")], processes=2, tmp_path=tmp_path)
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = _weights(tmp_path / "one", "comsa"), _weights(tmp_path / "two", "comsa")
    for key in a["model"]:  # no spike flips in the exact spike-time model: float order only
        torch.testing.assert_close(b["model"][key], a["model"][key], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_resume_under_torchrun_is_bit_exact(tmp_path):
    """One epoch on 2 processes, resumed on to two, equals two epochs at once."""
    smoke = _smoke("comsa")
    two = _cli(["comsa", *smoke, "--out", str(tmp_path / "two")], processes=2, tmp_path=tmp_path)
    assert two.returncode == 0, two.stderr[-2000:]
    b = _weights(tmp_path / "two", "comsa")
    first = _cli(["comsa", *smoke, "--set", "train.epochs=1", "--out", str(tmp_path / "part")],
                 processes=2, tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    resumed = _cli(["comsa", "--resume", str(tmp_path / "part"), "--set", "train.epochs=2"],
                   processes=2, tmp_path=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    c = _weights(tmp_path / "part", "comsa")
    for key in b["model"]:
        assert torch.equal(b["model"][key], c["model"][key]), key
    assert b["history"] == c["history"]


def test_vdib_two_processes_train_the_one_process_model(tmp_path):
    """REINFORCE + e-prop sharded: the readout draws and the baseline are the whole batch's."""
    smoke = _smoke("vdib")
    one = _cli(["vdib", *smoke, "--out", str(tmp_path / "one")], processes=1, tmp_path=tmp_path)
    two = _cli(["vdib", *smoke, "--out", str(tmp_path / "two")], processes=2, tmp_path=tmp_path)
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = _weights(tmp_path / "one", "vdib"), _weights(tmp_path / "two", "vdib")
    # measured: the same readout spikes at every step, losses within 2e-7 relative, weights
    # within 1e-7 in norm (float summation order only); a flipped draw would be far outside
    assert a["history"]["spikes"] == b["history"]["spikes"]
    for name in ("nll", "signal"):
        np.testing.assert_allclose(b["history"][name], a["history"][name], rtol=1e-5,
                                   err_msg=name)
    for key in a["model"]:
        x, y = a["model"][key].double(), b["model"][key].double()
        assert float((x - y).norm() / max(float(x.norm()), 1e-12)) < 1e-5, key


@pytest.mark.parametrize("shape", [(7, 5), (64, 256)])
def test_row_draws_are_the_one_process_bernoulli_draws(shape, monkeypatch):
    p = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    whole = torch.bernoulli(p, generator=torch.Generator().manual_seed(3))
    assert parallel.bernoulli(p, torch.Generator().manual_seed(3)).equal(whole)
    parts = []
    for rank in range(3):
        monkeypatch.setattr(parallel, "world", lambda rank=rank: (rank, 3))
        draws = parallel.RowDraws.for_batch(torch.Generator().manual_seed(3), shape[0])
        parts.append(draws.bernoulli(p[draws.rows]))
    assert torch.cat(parts).equal(whole)


def test_batch_mean_is_the_plain_mean_in_one_process():
    x = torch.rand(9, 4)
    assert parallel.batch_mean(x).equal(x.mean(0))


def test_a_trainer_that_cannot_shard_is_refused_with_its_reason(monkeypatch):
    class PerBatch:
        data_parallel = False
        data_parallel_reason = "its estimator is a batch statistic"

    parallel.check_trainer(PerBatch())  # one process: fine
    monkeypatch.setattr(parallel, "world", lambda: (0, 2))
    with pytest.raises(ConfigError, match="PerBatch cannot train data-parallel: its estimator"):
        parallel.check_trainer(PerBatch())

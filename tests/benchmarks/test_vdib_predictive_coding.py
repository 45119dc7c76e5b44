"""benchmarks/vdib_predictive_coding.py, tiny: both parts, seeds averaged, JSON and figures, and
the fallback for tau_e when the configuration has no delay-basis key."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "vdib_predictive_coding.py"


def run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [sys.executable, str(SCRIPT), "--seeds", "2", "--epochs", "1", "--train", "8",
            "--test", "2", "--betas", "0.1", "--tau-e", "3", "--tau-d", "1",
            "--out-dir", str(tmp_path), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)


def test_both_parts_write_seed_statistics_figures_and_say_what_tau_e_means(tmp_path):
    done = run(tmp_path, "--tau-e-key", "model.readout.no_such_key")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "has no key 'model.readout.no_such_key'" in done.stdout
    beta = json.loads((tmp_path / "vdib_predictive_coding_beta.json").read_text())
    assert beta["tau_e_key_available"] is False and "exponential" in beta["tau_e_meaning"]
    assert list(beta["points"]) == ["0.1"]
    for point in beta["points"].values():
        assert [t["seed"] for t in point["trials"]] == [0, 1]
        mses = np.array([t["mse"] for t in point["trials"]])
        assert point["mse"]["mean"] == mses.mean() and point["mse"]["std"] == mses.std()
        assert 0 < point["chance_mse"]["mean"] and 0 <= point["raw_inputs_mse"]["mean"]
        assert "train.beta=0.1" in point["overrides"]
    grid = json.loads((tmp_path / "vdib_predictive_coding_windows.json").read_text())
    assert sorted(grid["points"]) == ["3,1"]
    decays = [o for o in grid["points"]["3,1"]["overrides"] if "decay" in o]
    assert decays == ["model.readout.current_decay=0.333333",
                      "model.readout.voltage_decay=0.333333"]
    for name in ("beta", "windows"):
        png = tmp_path / f"vdib_predictive_coding_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| beta | test MSE |" in done.stdout and "raw-input decoder" in done.stdout


@pytest.mark.slow
def test_an_existing_key_is_used_as_the_window(tmp_path):
    """With a key the configuration has, tau_e is set through it (here: the decoder window,
    standing in for the delay basis this branch lacks)."""
    done = run(tmp_path, "--part", "b", "--tau-e-key", "decoder.window")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "has no key" not in done.stdout
    grid = json.loads((tmp_path / "vdib_predictive_coding_windows.json").read_text())
    assert grid["tau_e_key_available"] is True
    assert "decoder.window=3" in grid["points"]["3,1"]["overrides"]

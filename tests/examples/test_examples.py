"""Every script in examples/ runs (each in its own temporary folder) and says what it should.

The scripts run one after another in one child process (``runpy``), so torch, Lava and NIR are
imported once for all of them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import REPO

EXPECTED = {
    "own_spikes.py": "count_mse of the reconstruction",
    "own_network.py": "deployed spikes equal the trained model's",
    "lavadl_network.py": "reference engine == SLAYER",
    "nir_round_trip.py": "snnTorch on our graph vs our fixed point",
}


def test_every_example_is_tested():
    assert sorted(p.name for p in (REPO / "examples").glob("*.py")) == sorted(EXPECTED)


def test_examples_run(tmp_path):
    driver = textwrap.dedent(f"""
        import contextlib, io, json, os, runpy, sys, traceback
        results = {{}}
        for name in {sorted(EXPECTED)!r}:
            folder = os.path.join({str(tmp_path)!r}, name[:-3])
            os.mkdir(folder)
            sys.argv = [name, "--out", folder]
            buf = io.StringIO()
            try:
                with contextlib.redirect_stdout(buf):
                    runpy.run_path(os.path.join({str(REPO / "examples")!r}, name),
                                   run_name="__main__")
                results[name] = ["ok", buf.getvalue()]
            except BaseException:
                results[name] = ["failed", buf.getvalue() + traceback.format_exc()]
        print("RESULTS" + json.dumps(results))
    """)
    proc = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.split("RESULTS", 1)[1])
    for name, expected in EXPECTED.items():
        status, output = results[name]
        assert status == "ok", f"{name}:\n{output[-3000:]}"
        assert expected in output, name

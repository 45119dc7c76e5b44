"""Figures: written atomically as PNG, readable layouts, no global matplotlib state."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from spikecodec.train import plots


def test_figures_are_pngs_and_leave_no_pyplot_behind(tmp_path):
    rng = np.random.default_rng(0)
    wide = (rng.random((300, 20)) < 0.2).astype(np.uint8)  # many neurons: drawn as an image
    narrow = (rng.random((8, 20)) < 0.2).astype(np.uint8)
    paths = [plots.raster([("wide", wide), ("narrow", narrow)], tmp_path / "r.png"),
             plots.training_curve({"loss (nats)": [3.0, 2.0, 1.0], "spikes": [0.0, 5.0, 4.0]},
                                  tmp_path / "c.png"),
             plots.positions(np.eye(5)[rng.integers(0, 5, (6, 2))], rng.random((6, 2, 5)),
                             tmp_path / "p.png")]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp*"))  # atomic: no temporary left


def test_drawing_chooses_no_global_backend(tmp_path):
    code = ("import sys; import numpy as np; from spikecodec.train import plots; "
            f"plots.raster([('x', np.eye(4))], {str(tmp_path / 'r.png')!r}); "
            "sys.exit(1 if 'matplotlib.pyplot' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

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


def test_raster_draws_many_neurons_or_a_forced_panel_as_an_image():
    from matplotlib.image import AxesImage

    rng = np.random.default_rng(1)
    wide = (rng.random((256, 30)) < 0.3).astype(np.uint8)
    narrow = (rng.random((10, 30)) < 0.3).astype(np.uint8)
    fig = plots.raster_figure([("wide", wide), ("narrow", narrow)])
    kinds = [[type(a) for a in ax.get_images()] for ax in fig.axes]
    assert kinds == [[AxesImage], []]  # 256 rows: an image; 10 rows: tick marks
    assert fig.axes[0].get_images()[0].get_array().shape == (256, 30)  # neuron x time
    forced = plots.raster_figure([("narrow", narrow)], image=True)
    assert forced.axes[0].get_images()[0].get_array().shape == (10, 30)
    assert fig.axes[-1].get_xlabel() == "time step" and "neuron" in fig.axes[0].get_ylabel()


def test_training_curves_get_one_axes_each_with_their_unit():
    curves = {"decoder NLL (nats per sample)": np.linspace(5, 1, 50),
              "KL term (nats per sample)": np.linspace(1, 2, 50),
              "readout spikes per sample": np.full(50, 3.0)}
    fig = plots.training_curve_figure(curves, smooth=5, log=())
    assert [ax.get_ylabel() for ax in fig.axes] == list(curves)
    assert all(ax.get_yscale() == "linear" for ax in fig.axes)
    raw, mean = fig.axes[0].get_lines()  # faint raw values and their running mean
    assert len(raw.get_xdata()) == 50 and len(mean.get_xdata()) == 46
    np.testing.assert_allclose(mean.get_ydata(), np.convolve(curves["decoder NLL (nats per "
                                                                    "sample)"],
                                                             np.ones(5) / 5, "valid"))


def test_tracks_mark_true_and_decoded_positions_over_the_probability_image():
    t, n = 12, 6
    prob = np.zeros((t, n))
    prob[np.arange(t), np.arange(t) % n] = 0.9
    truth = np.eye(n)[np.arange(t) % n]
    decoded = np.eye(n)[(np.arange(t) + 1) % n]
    fig = plots.tracks_figure([("seq 0", prob, truth, decoded), ("seq 1", prob, truth, truth)],
                              steps=10)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 2 and len(fig.axes) == 3  # two sequences and one colour bar
    image = panels[0].get_images()[0].get_array()
    assert image.shape == (n, 10)  # position x time, first 10 steps
    true_dots, decoded_dots = panels[0].collections
    np.testing.assert_array_equal(true_dots.get_offsets(),
                                  np.c_[np.arange(10), np.arange(10) % n])
    np.testing.assert_array_equal(decoded_dots.get_offsets(),
                                  np.c_[np.arange(10), (np.arange(10) + 1) % n])
    assert "position" in panels[0].get_ylabel() and panels[-1].get_xlabel() == "time step"

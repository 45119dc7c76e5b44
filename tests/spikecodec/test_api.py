"""The public Python API: lazy, documented, and the same as the commands."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import spikecodec
from spikecodec import api
from spikecodec.cli import main
from spikecodec.train import config as config_io
from spikecodec.train.families import FAMILIES

from conftest import REPO


def test_import_spikecodec_is_cheap_and_every_name_resolves():
    code = ("import sys, spikecodec; heavy = [m for m in ('torch', 'lava', 'nir', 'h5py') "
            "if m in sys.modules]; sys.exit(1 if heavy else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path("/")).returncode == 0
    assert set(spikecodec._API) == set(api.__all__)
    for name in api.__all__:
        assert getattr(spikecodec, name) is getattr(api, name)
        assert getattr(api, name).__doc__, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        spikecodec.nope  # noqa: B018


def test_api_round_trip_of_a_golden_export(tmp_path):
    net = spikecodec.read_export(REPO / "netx_exports" / "roy_ae_digits" / "export.h5")
    with np.load(REPO / "netx_exports" / "roy_ae_digits" / "golden.npz") as g:
        x, y = g["input"][:4], g["layer_decoder"][:4]
    assert np.array_equal(spikecodec.run(net, x).spikes, y)
    assert spikecodec.evaluate_spikes(net, x, y, metric="agreement")["agreement"] == 1.0
    assert spikecodec.check(net)["ok"]
    back = spikecodec.import_nir(spikecodec.to_nir(net), num_steps=15, spikes=x).net
    assert np.array_equal(spikecodec.run(back, x).spikes, y)
    path = spikecodec.write_export(back, tmp_path / "b.h5")
    assert spikecodec.read_export(path).out_features == 64


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_config_command_prints_the_commented_default_that_loads_back(family, tmp_path, capsys):
    assert main(["config", family]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"# spikecodec train {family}:") and "  # " in text
    path = tmp_path / "c.toml"
    path.write_text(text)
    cfg = FAMILIES[family].load_config(path, [])
    assert config_io.dumps(cfg) == config_io.dumps(FAMILIES[family].config_type())
    assert spikecodec.default_config(family) == text


def test_api_reference_builds_from_the_docstrings(tmp_path):
    pytest.importorskip("pdoc")
    proc = subprocess.run([sys.executable, "-m", "pdoc", "-o", str(tmp_path), "spikecodec.api"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = (tmp_path / "spikecodec" / "api.html").read_text()
    for name in api.__all__:
        assert f'id="{name}"' in page, name
    makefile = (REPO / "Makefile").read_text()
    assert "docs: setup" in makefile and "-m pdoc -o build/docs" in makefile


def test_inherited_config_fields_keep_their_base_comments():
    """roy-audio's train table subclasses Roy's: its own defaults carry its comments, the
    inherited fields Roy's."""
    from spikecodec.train.families.roy_audio.config import TrainConfig
    from spikecodec.workflows.configs import field_comments

    comments = field_comments(TrainConfig)
    assert comments["epochs"] == "paper: 20"  # its own
    assert comments["xor_mask"].startswith("the paper's XOR error mask")  # Roy's

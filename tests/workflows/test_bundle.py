"""spikecodec bundle: the standalone INRC kit, run here on the CPU simulator."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from spikecodec.cli import main
from spikecodec.deploy.backends import run
from spikecodec.deploy.hdf5 import read_hdf5
from spikecodec.workflows import bundle as bundle_mod
from spikecodec.workflows.bundle import SCRIPT, make_bundle

from conftest import REPO

EXPORTS = REPO / "netx_exports"


def golden_input(name: str) -> np.ndarray:
    with np.load(EXPORTS / name / "golden.npz") as g:
        return g["input"]


def test_the_script_imports_only_lava_numpy_h5py_and_the_standard_library():
    modules = set(re.findall(r"^\s*(?:from|import)\s+([\w.]+)", SCRIPT.read_text(), re.M))
    third_party = {m.split(".")[0] for m in modules} - set(sys.stdlib_module_names)
    assert third_party == {"lava", "numpy", "h5py"}


@pytest.mark.lava
def test_bundled_script_reproduces_the_reference_engine_on_the_committed_exports(tmp_path):
    """Both golden exports: the script, with spikecodec made unimportable, on the CPU
    simulator; every layer NetX runs equals the reference engine's spikes."""
    bundles = {}
    for name in ("roy_ae_digits", "vdib_digits"):
        assert main(["bundle", str(EXPORTS / name / "export.h5"), str(tmp_path / name),
                     "--input", str(EXPORTS / name / "golden.npz")]) == 0
        bundles[name] = tmp_path / name
        assert {p.name for p in bundles[name].iterdir()} == {
            "export.h5", "run_export.py", "README.md", "input.npy"}
    driver = textwrap.dedent(f"""
        import runpy, sys
        sys.modules["spikecodec"] = None  # any import of spikecodec fails
        for name in {list(bundles)!r}:
            folder = {str(tmp_path)!r} + "/" + name
            sys.argv = ["run_export.py", "--input", folder + "/input.npy", "--output",
                        folder + "/out.npz", "--target", "sim", "--probe"]
            try:
                runpy.run_path(folder + "/run_export.py", run_name="__main__")
            except SystemExit as end:
                assert end.code in (0, None), end.code
    """)
    proc = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "not run here: 1: readout (stochastic_readout)" in proc.stderr
    for name, folder in bundles.items():
        net = read_hdf5(EXPORTS / name / "export.h5")
        reference = run(net, golden_input(name), probe=True)
        with np.load(folder / "out.npz") as out:
            for i in range(net.num_netx):
                assert np.array_equal(out[f"layer_{i}"], reference.layers[i]), (name, i)
            assert np.array_equal(out["output"], reference.layers[net.num_netx - 1])
            assert out["output"].sum() > 0


def test_readme_names_the_netx_arguments_versions_and_custom_layers(tmp_path):
    make_bundle(EXPORTS / "vdib_digits" / "export.h5", tmp_path / "b")
    text = (tmp_path / "b" / "README.md").read_text()
    assert "reset_interval=T, reset_offset=1" in text
    for package in ("lava-nc", "lava-dl", "numpy", "h5py"):
        assert re.search(rf"- {package} \d", text), package
    assert "'readout' (stochastic_readout)" in text and "NcProcessModel" in text
    assert not (tmp_path / "b" / "input.npy").exists()


def test_an_existing_target_is_refused_and_left_alone(tmp_path, capsys):
    target = tmp_path / "kit"
    target.mkdir()
    (target / "mine.txt").write_text("keep")
    assert main(["bundle", str(EXPORTS / "roy_ae_digits" / "export.h5"), str(target)]) == 2
    assert f"bundle folder {target} exists" in capsys.readouterr().err
    assert [p.name for p in target.iterdir()] == ["mine.txt"]


def test_a_failure_leaves_no_folder(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(bundle_mod.shutil, "copyfile", broken)
    with pytest.raises(OSError, match="disk full"):
        make_bundle(EXPORTS / "roy_ae_digits" / "export.h5", tmp_path / "kit")
    assert list(tmp_path.iterdir()) == []


def test_input_of_the_wrong_width_is_refused_before_writing(tmp_path, capsys):
    spikes = tmp_path / "x.npy"
    np.save(spikes, np.zeros((2, 5, 15), np.uint8))
    assert main(["bundle", str(EXPORTS / "roy_ae_digits" / "export.h5"), str(tmp_path / "k"),
                 "--input", str(spikes)]) == 2
    assert "5 neurons, the export takes 64" in capsys.readouterr().err
    assert not (tmp_path / "k").exists()

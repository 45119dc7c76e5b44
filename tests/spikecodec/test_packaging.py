"""The folder-to-namespace mapping: no subpackage missing from pyproject, no bare imports."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FOLDERS = {"spikecodec": "spikecodec", "train": "spikecodec.train",
           "deploy": "spikecodec.deploy", "lava_procs": "spikecodec.lava_procs"}


def test_every_subpackage_is_listed_in_pyproject():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(meta["packages"])
    found = set()
    for folder, namespace in FOLDERS.items():
        assert meta["package-dir"][namespace] == folder
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((namespace, *rel)))
    assert found == listed, f"add to pyproject [tool.setuptools].packages: {found - listed}"


def test_no_bare_imports_of_mapped_folders():
    bare = re.compile(r"^\s*(from|import)\s+(train|deploy|lava_procs)(\.|\s|$)", re.MULTILINE)
    offenders = [str(p.relative_to(REPO)) for d in ("spikecodec", "train", "deploy",
                                                   "lava_procs", "tests", "benchmarks", "tools")
                 if (REPO / d).is_dir() for p in (REPO / d).rglob("*.py")
                 if bare.search(p.read_text())]
    assert offenders == []


def test_lava_procs_do_not_import_torch():
    code = ("import sys, spikecodec.lava_procs.cuba; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path("/")).returncode == 0


def test_arrows_point_one_way():
    """deploy/ and lava_procs/ never import train/ or the workflows; train/ never imports the
    workflows or runs a backend (only spikecodec/workflows and the command compose them)."""
    imports = re.compile(r"^\s*(?:from|import)\s+(spikecodec\.[\w.]+)", re.MULTILINE)
    banned = {"deploy": ("spikecodec.train", "spikecodec.workflows", "spikecodec.cli"),
              "lava_procs": ("spikecodec.train", "spikecodec.workflows", "spikecodec.deploy",
                             "spikecodec.cli"),
              "train": ("spikecodec.workflows", "spikecodec.cli", "spikecodec.deploy.backends")}
    offenders = [f"{p.relative_to(REPO)}: {name}" for folder, bad in banned.items()
                 for p in (REPO / folder).rglob("*.py")
                 for name in imports.findall(p.read_text()) if name.startswith(bad)]
    assert offenders == []

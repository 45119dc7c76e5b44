"""Helpers shared by the benchmark scripts: paths, atomic JSON, markdown tables, environment.

The scripts run as ``.venv/bin/python benchmarks/<script>.py`` from the repo root; Python puts
``benchmarks/`` on ``sys.path``, so they import this module as ``_common``.
"""
from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from spikecodec.atomic import write_json

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
RUNS_DIR = RESULTS_DIR / "runs"  # git-ignored (benchmarks/.gitignore)
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"  # holds mnist/ and fashion_mnist/


def write_json_atomic(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON atomically (creating the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json(path, payload)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; numbers are formatted by the caller."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Versions and CPU facts recorded beside every result."""
    import torch

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_at_end_1_5_15min": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "lava-nc": _version("lava-nc"),
        "lava-dl": _version("lava-dl"),
    }

"""Shared fixtures. Markers (lava, slow, gpu) are declared once, in pyproject.toml."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Real datasets (MNIST, Fashion-MNIST, N-MNIST, ...): ../shared/data beside the repo, or wherever
# $SPIKECODEC_SHARED_DATA points; tests that need them skip where neither has them.
SHARED_DATA = Path(os.environ.get("SPIKECODEC_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repo (real MNIST etc.); skips when this checkout has none."""
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA


def pytest_collection_modifyitems(config, items):
    """GPU tests skip (never fail) on machines without CUDA."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

"""Atomic checkpoints: write to a temporary file in the same directory, fsync, then rename, so
an interrupted save never leaves a truncated checkpoint behind."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from spikecodec.atomic import atomic_path
from spikecodec.errors import CheckpointError

FORMAT = 2  # 2: written by train.fit (resumable); 1: older runs, still exportable
READABLE = (1, 2)


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, *, model_kind: str | tuple[str, ...]
                    ) -> dict[str, Any]:
    """Load and validate a checkpoint written by :func:`save_atomic` for ``model_kind`` (one
    kind, or a tuple of the kinds the caller accepts)."""
    path = Path(path)
    kinds = (model_kind,) if isinstance(model_kind, str) else tuple(model_kind)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises several types for corrupt files
        raise CheckpointError(f"checkpoint {path} is unreadable or corrupt: {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") not in READABLE:
        raise CheckpointError(f"{path} is not a spikecodec checkpoint (format {FORMAT})")
    if ckpt.get("model_kind") not in kinds:
        raise CheckpointError(
            f"checkpoint {path} holds a {ckpt.get('model_kind')!r} model, not "
            f"{' or '.join(repr(k) for k in kinds)}"
        )
    return ckpt

"""From a training run to an export: the family named by the checkpoint does the quantizing."""
from __future__ import annotations

from pathlib import Path

from spikecodec.deploy.hdf5 import write_hdf5
from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.errors import CheckpointError, ConfigError
from spikecodec.train.checkpoint import load_checkpoint
from spikecodec.train.families import FAMILIES, Family, get_family

EXPORT_NAME = "export.h5"


def export_run(run_dir: str | Path, out: str | Path | None = None
               ) -> tuple[FixedPointNetwork, Path]:
    """Quantize the trained model of ``run_dir`` and write it (default ``run_dir/export.h5``)
    atomically; return the network and the path."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").is_file():
        raise CheckpointError(f"{run_dir} is not a run directory (no config.toml)")
    ckpt = load_checkpoint(run_dir / "checkpoint.pt", model_kind=tuple(FAMILIES))
    net = FAMILIES[ckpt["model_kind"]].export(run_dir, ckpt)
    path = write_hdf5(net, Path(out) if out else run_dir / EXPORT_NAME)
    return net, path


def family_of(net: FixedPointNetwork) -> Family:
    """The family an export was trained as (its ``model_kind``)."""
    kind = net.metadata.model_kind
    if kind is None:
        raise ConfigError(f"this export names no model family (no model_kind: written by "
                          f"another tool?), so there is no dataset or metric to run it with; "
                          f"known families: {', '.join(FAMILIES)} (`spikecodec check --target "
                          f"loihi2` works on any export)")
    return get_family(kind)

"""``spikecodec bundle EXPORT DIR``: what a user copies to an INRC (Loihi 2) machine.

The folder holds the export, ``run_export.py`` (a standalone script: lava-nc, lava-dl, numpy
and h5py, no spikecodec; the source is ``spikecodec/workflows/inrc/run_export.py``), optionally
an input spike file, and a README with the versions this export was checked with, how NetX must
be called (``reset_interval`` = T, ``reset_offset = 1``) and what the custom layers, if any,
need on hardware. The folder is built beside the target under a temporary name, each file
through :mod:`spikecodec.atomic`, and renamed into place at the end: a failure leaves nothing;
an existing target is refused.
"""
from __future__ import annotations

import importlib.metadata
import os
import shutil
from pathlib import Path

import numpy as np

from spikecodec.atomic import atomic_path, check_folder, write_text
from spikecodec.deploy.ir import FixedPointNetwork
from spikecodec.errors import ConfigError

SCRIPT = Path(__file__).resolve().parent / "inrc" / "run_export.py"
VERSIONED = ("lava-nc", "lava-dl", "numpy", "h5py")


def make_bundle(export: str | Path, target: str | Path, *,
                input_spikes: np.ndarray | None = None) -> Path:
    """Write the bundle of ``export`` into the new folder ``target`` (refused if it exists)."""
    from spikecodec.deploy.hdf5 import read_hdf5

    export, target = Path(export), Path(target)
    if target.exists() or target.is_symlink():
        raise ConfigError(f"bundle folder {target} exists: give a new folder")
    check_folder(target)
    if not target.parent.is_dir():
        raise ConfigError(f"bundle folder {target}: the folder {target.parent} does not exist")
    net = read_hdf5(export)
    if net.num_netx == 0:
        first = net.layers[0]
        raise ConfigError(f"{export}: its first layer {first.name!r} is a {first.kind} layer, "
                          f"which NetX cannot build, so the bundle script could run nothing")
    if input_spikes is not None and input_spikes.shape[1] != net.in_features:
        raise ConfigError(f"the input spikes have {input_spikes.shape[1]} neurons, the export "
                          f"takes {net.in_features}")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.mkdir()
    try:
        with atomic_path(tmp / "export.h5") as out:
            shutil.copyfile(export, out)
        with atomic_path(tmp / "run_export.py") as out:
            shutil.copyfile(SCRIPT, out)
        os.chmod(tmp / "run_export.py", 0o755)
        if input_spikes is not None:
            with atomic_path(tmp / "input.npy") as out, open(out, "wb") as fh:
                np.save(fh, input_spikes.astype(np.uint8))
        write_text(tmp / "README.md", readme(net, export, input_spikes is not None))
        if target.exists():
            raise ConfigError(f"bundle folder {target} appeared while it was written")
        os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed here"
    return out


def readme(net: FixedPointNetwork, export: Path, has_input: bool) -> str:
    """The bundle's README: what it holds, how to run it, versions, custom-layer caveats."""
    from spikecodec import __version__

    custom = net.layers[net.num_netx:]
    rows = "\n".join(f"| {i} | {layer.name} | {layer.kind} | {layer.in_features} | "
                     f"{layer.out_features} | {'NetX' if i < net.num_netx else 'spikecodec'} "
                     f"| {layer.describe()} |" for i, layer in enumerate(net.layers))
    pins = "\n".join(f"- {name} {version}" for name, version in versions().items())
    example = ("python run_export.py --input input.npy --output out.npz --probe"
               if has_input else
               "python run_export.py --input my_spikes.npy --output out.npz --probe")
    files = "\n| `input.npy` | input spikes `(batch, neurons, time)` |" if has_input else ""
    custom_text = (
        "All layers are standard NetX dense CUBA layers: the script runs the whole network."
        if not custom else
        f"NetX builds the first {net.num_netx} layer(s) only. The layer(s) "
        f"{', '.join(f'{layer.name!r} ({layer.kind})' for layer in custom)} are spikecodec's "
        f"own kinds (stored under `/spikecodec/layers`), which NetX ignores: the script runs "
        f"the NetX part and saves its spikes; the rest needs spikecodec's Lava process on "
        f"the CPU (`spikecodec run --backend lava-sim`) or, on Loihi 2, a microcoded neuron "
        f"(an `NcProcessModel` through lava-loihi) that does not exist yet -- "
        f"`spikecodec check EXPORT --target loihi2` describes the options (for the stochastic "
        f"readout: sample on the host from probed potentials, bit-exact, or a microcoded "
        f"neuron whose hardware random numbers match only in distribution).")
    return f"""# Loihi 2 deployment kit: {export.name}

Made by spikecodec {__version__} (`spikecodec bundle`). Copy this folder to an INRC machine.

| file | what |
|---|---|
| `export.h5` | the NetX HDF5 export (`lava.lib.dl.netx.hdf5.Network` loads it unchanged) |
| `run_export.py` | standalone runner: lava-nc, lava-dl, numpy, h5py; no spikecodec |{files}

## Run

```bash
{example}
python run_export.py --input spikes.npy --output out.npz --target sim   # CPU simulator
```

`--target auto` (default) uses `Loihi2HwCfg` when lava-loihi imports, else
`Loihi2SimCfg(select_tag="fixed_pt")`. Input: 0/1 spikes `(batch, {net.in_features}, T)` in a
`.npy` (or an `.npz` with an `input` array); the samples run end to end through one Lava run,
T steps each (this export was made for T = {net.num_steps}). Output `out.npz`: `output` (and
`layer_<i>` with `--probe`), `(batch, neurons, T)`, aligned to the input steps.

## The NetX arguments that matter

```python
netx.hdf5.Network(net_config="export.h5", reset_interval=T, reset_offset=1)
```

`reset_interval = T` zeroes every layer's state between samples. `reset_offset = 1` puts that
reset on the step where each layer integrates a sample's first input: the source sends step
`j` at time step `j + 1` and each Dense delays by one, and NetX resets layer `i` when
`time_step % T == (reset_offset + 1 + i) % T`. With NetX's default `reset_offset = 0` each layer
resets one step early and every sample after the first starts from the previous sample's
state for one step: wrong spikes, unless silent steps separate the samples.
Outputs of layer `i` (0-based) arrive `i + 1` steps after the input step they answer.

## Network

| # | name | kind | in | out | runs on | neuron |
|---|---|---|---|---|---|---|
{rows}

{custom_text}

## Versions

Checked with (this machine, when the bundle was made):

{pins}

lava-nc 0.10 and lava-dl 0.6 declare Python < 3.11; spikecodec installs them with `--no-deps`
(see its `tools/setup_env.py`). On INRC use the Lava and lava-loihi versions the INRC
documentation pairs; the file layout is lava-dl's own (`/layer/{{i}}`, as SLAYER writes it).
Loihi 2 limits this export was checked against: weights 8 bits, vThMant 17, bias 13, decays 12,
current 24 (`spikecodec check export.h5 --target loihi2` on a machine with spikecodec).
"""

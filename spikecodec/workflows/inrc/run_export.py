#!/usr/bin/env python
"""Run a NetX HDF5 export on Loihi 2 (lava-loihi) or, without it, on Lava's CPU simulator.

Standalone: needs lava-nc, lava-dl, numpy and h5py only (copied here by ``spikecodec bundle``).

    python run_export.py --input spikes.npy --output out.npz [--export export.h5]
                         [--target auto|loihi2|sim] [--probe]

Input: a ``.npy`` (or ``.npz`` with an ``input`` or ``spikes`` array) of 0/1 spikes shaped
``(batch, neurons, time)``. The samples are sent end to end, ``time`` steps each, through one
Lava run. Output: ``out.npz`` with ``output`` (the last layer's spikes) -- and with ``--probe``
``layer_<i>`` for every layer -- shaped ``(batch, neurons, time)`` and aligned to the input
(Loihi delivers step ``t`` of layer ``i`` (0-based) ``i + 1`` steps later; this script undoes
that delay).

Why ``reset_offset=1``: NetX gives layer ``i`` a reset when ``time_step % reset_interval ==
(reset_offset + 1 + i) % reset_interval``, before it integrates that step. The input process
sends row ``j`` at time step ``j + 1`` and every Dense delays by one step, so layer ``i`` sees
step 0 of each sample at time step ``k * T + 2 + i``: ``reset_offset = 1`` resets every layer on
exactly that step, and each sample starts from zero state. NetX's default ``reset_offset = 0``
resets one step early, so every sample after the first runs on with the previous sample's last
state for one step (wrong spikes unless a gap of silent steps separates the samples).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np

RESET_OFFSET = 1


def read_spikes(path: Path) -> np.ndarray:
    """Binary ``(batch, neurons, time)`` spikes from a .npy or .npz file."""
    data = np.load(path, allow_pickle=False)
    if isinstance(data, np.lib.npyio.NpzFile):
        key = next((k for k in ("input", "spikes") if k in data.files),
                   data.files[0] if len(data.files) == 1 else None)
        if key is None:
            sys.exit(f"{path}: give an .npz with one array, or one called input or spikes")
        data = data[key]
    data = np.asarray(data)
    if data.ndim != 3 or 0 in data.shape:
        sys.exit(f"{path}: spikes must be (batch, neurons, time), got shape {data.shape}")
    if not np.isin(data, (0, 1)).all():
        sys.exit(f"{path}: spikes must be 0 or 1")
    return data.astype(np.uint8)


def netx_layers(export: Path) -> tuple[int, list[int], list[str]]:
    """``(inputs, outputs of each NetX layer, custom layers NetX does not run)``."""
    with h5py.File(export, "r") as f:
        group = f["layer"]
        n = len(group)
        outs = [int(np.asarray(group[str(i)]["outFeatures"])) for i in range(n)]
        n_in = int(np.asarray(group["0"]["inFeatures"]))
        custom = []
        extra = f.get("spikecodec/layers")
        if extra is not None:
            for key in sorted(extra, key=int):  # every layer; those past /layer are custom
                attrs = extra[key].attrs
                if int(key) >= n:
                    custom.append(f"{key}: {attrs.get('name', '?')} ({attrs.get('kind', '?')})")
    return n_in, outs, custom


def pick_target(target: str) -> str:
    if target != "auto":
        return target
    try:
        import lava.magma.compiler.subcompilers.nc.ncproc_compiler  # noqa: F401
        import lava.proc.embedded_io.spike  # noqa: F401
    except ImportError:
        return "sim"
    return "loihi2"


def run(export: Path, spikes: np.ndarray, target: str, probe: bool) -> dict[str, np.ndarray]:
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    batch, n_in, steps = spikes.shape
    declared_in, outs, _ = netx_layers(export)
    if n_in != declared_in:
        sys.exit(f"the input has {n_in} neurons, the export takes {declared_in}")
    latency = len(outs)
    total = batch * steps + latency
    stream = np.zeros((n_in, total), dtype=np.int32)  # (neurons, time): column j at step j + 1
    stream[:, :batch * steps] = spikes.transpose(1, 0, 2).reshape(n_in, batch * steps)
    net = netx.hdf5.Network(net_config=str(export), reset_interval=steps,
                            reset_offset=RESET_OFFSET)
    source = Source(data=stream)
    if target == "loihi2":
        from lava.magma.core.run_configs import Loihi2HwCfg
        from lava.proc.embedded_io.spike import NxToPyAdapter, PyToNxAdapter

        cfg = Loihi2HwCfg()

        def to_chip(port):
            adapter = PyToNxAdapter(shape=port.shape, num_message_bits=0)
            port.connect(adapter.inp)
            return adapter.out

        def from_chip(port):
            adapter = NxToPyAdapter(shape=port.shape, num_message_bits=0)
            port.connect(adapter.inp)
            return adapter.out
    else:
        from lava.magma.core.run_configs import Loihi2SimCfg

        cfg = Loihi2SimCfg(select_tag="fixed_pt")
        to_chip = from_chip = lambda port: port  # noqa: E731
    to_chip(source.s_out).connect(net.inp)
    recorded = list(range(latency)) if probe else [latency - 1]
    sinks = {}
    for i in recorded:
        sinks[i] = Sink(shape=net.layers[i].out.shape, buffer=total)
        from_chip(net.layers[i].out).connect(sinks[i].a_in)
    try:
        net.run(condition=RunSteps(num_steps=total), run_cfg=cfg)
        data = {i: np.asarray(sink.data.get()) for i, sink in sinks.items()}
    finally:
        net.stop()
    result = {}
    for i, values in data.items():  # layer i answers step j at step j + i + 1 (0-based)
        aligned = values[:, i + 1:i + 1 + batch * steps].reshape(-1, batch, steps)
        result[f"layer_{i}"] = (aligned.transpose(1, 0, 2) != 0).astype(np.uint8)
    result["output"] = result[f"layer_{latency - 1}"]
    if not probe:
        del result[f"layer_{latency - 1}"]
    return result


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path, default=here / "export.h5")
    parser.add_argument("--input", type=Path, required=True, help="(batch, neurons, time) 0/1")
    parser.add_argument("--output", type=Path, required=True, help=".npz to write")
    parser.add_argument("--target", choices=["auto", "loihi2", "sim"], default="auto",
                        help="auto: Loihi 2 when lava-loihi imports, else the CPU simulator")
    parser.add_argument("--probe", action="store_true", help="save every layer's spikes")
    args = parser.parse_args(argv)
    if args.output.exists():
        sys.exit(f"{args.output} exists; not overwriting it")
    spikes = read_spikes(args.input)
    target = pick_target(args.target)
    _, outs, custom = netx_layers(args.export)
    if custom:
        print(f"note: NetX runs the first {len(outs)} layer(s); these need spikecodec's own "
              f"Lava processes and are not run here: {'; '.join(custom)}", file=sys.stderr)
    result = run(args.export, spikes, target, args.probe)
    tmp = args.output.with_name(f".{args.output.name}.tmp.npz")
    np.savez_compressed(tmp, **result)
    tmp.replace(args.output)
    print(f"{target}: {spikes.shape[0]} samples x {spikes.shape[2]} steps, "
          f"{int(result['output'].sum())} output spikes; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The spikecodec export: a NetX HDF5 file with a superset group netx does not read.

Layout (format version 1)::

    /layer/{i}/                  the leading standard layers (i < net.num_netx), exactly as
                                 lava-dl's SLAYER writes them; a dense layer:
        type        S10 "dense"
        shape       [out]                      (int)
        inFeatures  in   outFeatures  out      (int)
        weight      (out, in) float32 holding integers in [-256, 254]
        bias        (out,) float32 integers  (only when the layer has a bias)
        neuron/     type "CUBA", iDecay, vDecay, vThMant, refDelay, gradedSpike
    /spikecodec/                 ours; lava.lib.dl.netx.hdf5.Network never looks here
        attrs       format_version, spikecodec_version, metadata (JSON)
        input/      attrs encoding, num_steps, shape (JSON list), params (JSON)
        layers/{i}/ attrs name, kind   (+ the data of every layer from the first custom one on,
                    as its kind writes it: a standard kind the same datasets as under /layer,
                    stochastic_readout: datasets weight (K*N, in), i_decay (K,), v_decay (K,),
                    fb_weight (N,), bias (N,), lut (L,); attrs fb_decay, lut_shift,
                    lut_offset, seed)
        decoder/    attrs kind, config (JSON); datasets = the decoder's arrays (host side)

Each layer kind writes and reads its own data (``write_hdf5`` / ``read_hdf5`` in
:mod:`spikecodec.deploy.layers`); this module decides where (see
:mod:`spikecodec.deploy.ir`, decision (b)). ``lava.lib.dl.netx.hdf5.Network(net_config=path)``
loads the ``/layer`` prefix of an export without changes (tests/deploy/test_export_netx.py),
the ``lava-sim`` backend builds the rest. Files written by lava-dl alone (no ``/spikecodec``)
load too, as raw-spike networks of their standard layers.

Every read is validated: a corrupt, truncated or foreign file, a missing field or a value out of
range raises :class:`~spikecodec.errors.ExportError` naming the layer and field. Writes go to a
temporary file in the same folder that replaces the target only when complete, so a failed
export leaves the previous file intact.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from spikecodec import __version__
from spikecodec.atomic import atomic_path
from spikecodec.deploy.ir import FORMAT_VERSION, FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import LAYER_KINDS
from spikecodec.errors import ConfigError, ExportError

ROOT = "spikecodec"
# Types NetX can load but a FixedPointNetwork cannot hold yet (named in the error).
_NETX_ONLY = ("input", "flatten", "average", "concat", "conv", "convT", "pool", "ADRF", "ALIF",
              "SDNN", "RF")


def write_hdf5(net: FixedPointNetwork, path: str | os.PathLike) -> Path:
    """Write ``net`` to ``path`` atomically; return the path."""
    if not isinstance(net, FixedPointNetwork):
        raise ConfigError(f"write_hdf5 needs a FixedPointNetwork, got {type(net).__name__}")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        _write(f, net)
    return Path(path)


def _write(f: h5py.File, net: FixedPointNetwork) -> None:
    root = f.create_group(ROOT)
    root.attrs["format_version"] = FORMAT_VERSION
    root.attrs["spikecodec_version"] = __version__
    root.attrs["metadata"] = _to_json(net.metadata.to_dict(), "metadata")
    inp = root.create_group("input")
    inp.attrs["encoding"] = net.input.encoding
    inp.attrs["num_steps"] = net.input.num_steps
    inp.attrs["shape"] = json.dumps([int(s) for s in net.input.shape])
    inp.attrs["params"] = _to_json(net.input.params, "input.params")
    layers = root.create_group("layers")
    for i, layer in enumerate(net.layers):
        g = layers.create_group(str(i))
        g.attrs["name"] = layer.name
        g.attrs["kind"] = layer.kind
        layer.write_hdf5(f.create_group(f"layer/{i}") if i < net.num_netx else g)
    dec = root.create_group("decoder")
    dec.attrs["config"] = _to_json(net.decoder.json_config(), "decoder")
    for key, value in net.decoder.arrays.items():
        if isinstance(value, np.ndarray):
            dec.create_dataset(key, data=value)


# --------------------------------------------------------------------------- reader

def read_hdf5(path: str | os.PathLike) -> FixedPointNetwork:
    """Load and validate an export; raise :class:`ExportError` naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"no export at {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ExportError(f"{path} is not a readable HDF5 file (corrupt or truncated?): "
                          f"{err}") from err
    try:
        with f:
            return _read(f)
    except ExportError as err:
        raise ExportError(f"{path}: {err}") from err
    except ConfigError as err:  # validation of the values read
        raise ExportError(f"{path}: invalid value: {err}") from err
    except (OSError, KeyError, ValueError, TypeError) as err:  # h5py on damaged data
        raise ExportError(f"{path}: unreadable export ({type(err).__name__}: {err})") from err


def _read(f: h5py.File) -> FixedPointNetwork:
    layer_root = f.get("layer")
    root = f.get(ROOT)
    if root is not None:
        version = root.attrs.get("format_version")
        if version != FORMAT_VERSION:
            raise ExportError(f"export format version {version!r} is not supported "
                              f"(this spikecodec reads version {FORMAT_VERSION})")
    elif not isinstance(layer_root, h5py.Group):
        raise ExportError("neither a spikecodec export nor a NetX network: no /layer group")
    names = {}  # index -> (name, kind, its /spikecodec/layers/{i} group)
    count = len(layer_root) if isinstance(layer_root, h5py.Group) else 0
    if root is not None:
        layers_meta = root.get("layers")
        if not isinstance(layers_meta, h5py.Group):
            raise ExportError("missing group /spikecodec/layers")
        count = len(layers_meta)
        for i in range(count):
            g = layers_meta.get(str(i))
            if g is None:
                raise ExportError(f"missing group /spikecodec/layers/{i}")
            names[i] = (str(g.attrs.get("name", f"layer{i}")), str(g.attrs.get("kind", "")), g)
    layers = []
    in_netx = True  # still in the leading run of standard layers, stored under /layer
    for i in range(count):
        name, kind, group = names.get(i, (f"layer{i}", "", None))
        cls = LAYER_KINDS.get(kind)
        in_netx = in_netx and (cls is None or cls.standard)
        if in_netx:
            layers.append(_read_netx_layer(layer_root, i, name, kind))
        elif cls is None:
            raise ExportError(f"layer '{name}' (/spikecodec/layers/{i}): unknown layer kind "
                              f"{kind!r}; known: {sorted(LAYER_KINDS)}")
        else:
            layers.append(cls.read_hdf5(group, name))
    if not layers:
        raise ExportError("the export holds no layers")
    if root is None:
        spec = InputSpec(encoding="spikes", num_steps=1, shape=(layers[0].in_features,))
        return FixedPointNetwork(layers, spec, metadata={"source": "netx"})
    inp = root.get("input")
    if not isinstance(inp, h5py.Group):
        raise ExportError("missing group /spikecodec/input")
    try:
        spec = InputSpec(encoding=str(inp.attrs["encoding"]),
                         num_steps=int(inp.attrs["num_steps"]),
                         shape=tuple(json.loads(inp.attrs["shape"])),
                         params=json.loads(inp.attrs["params"]))
    except KeyError as err:
        raise ExportError(f"/spikecodec/input: missing attribute {err}") from err
    dec = root.get("decoder")
    decoder: dict[str, Any] = {"kind": "rate"}
    if isinstance(dec, h5py.Group):
        decoder = json.loads(dec.attrs.get("config", '{"kind": "rate"}'))
        for key, value in dec.items():
            decoder[key] = np.asarray(value[()])
    metadata = json.loads(root.attrs.get("metadata", "{}"))
    return FixedPointNetwork(layers, spec, decoder=decoder, metadata=metadata)


def _read_netx_layer(layer_root: Any, i: int, name: str, meta_kind: str) -> Any:
    """Layer ``i`` of the ``/layer`` prefix, by its NetX ``type`` (a standard kind's name)."""
    group = layer_root.get(str(i)) if isinstance(layer_root, h5py.Group) else None
    if group is None:
        raise ExportError(f"missing group /layer/{i}")
    kind = read_text(read_dataset(group, "type", f"/layer/{i}"))
    cls = LAYER_KINDS.get(kind)
    if cls is None or not cls.standard:
        hint = " (NetX knows it, spikecodec does not yet)" if kind in _NETX_ONLY else ""
        raise ExportError(f"layer '{name}' (/layer/{i}): unsupported type {kind!r}{hint}")
    if meta_kind and meta_kind != kind:
        raise ExportError(f"layer '{name}': /layer/{i} is {kind!r} but /spikecodec says "
                          f"{meta_kind!r}")
    return cls.read_hdf5(group, name)


# --------------------------------------------------------------------------- helpers (also for
# the layer kinds' read_hdf5 hooks)

def read_dataset(group: h5py.Group, key: str, where: str) -> np.ndarray:
    item = group.get(key)
    if not isinstance(item, h5py.Dataset):
        raise ExportError(f"{where}: missing dataset '{key}'")
    value = item[()]
    return np.asarray(value)


def read_text(value: np.ndarray) -> str:
    item = value.reshape(-1)[0] if value.ndim else value.item()
    return item.decode("ascii", "replace") if isinstance(item, bytes) else str(item)


def _to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except TypeError as err:
        raise ConfigError(f"{what} must be JSON-serialisable: {err}") from err

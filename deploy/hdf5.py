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
                    lut_offset, seed; delay_readout: the same plus delay (C*K*N,) and a
                    weight of (C*K*N, in) rows, C delayed taps per synapse;
                    spike_once_alpha: datasets weight (out, in),
                    pulse_steps (P,), pulse_weight (out, P); attrs decay, v_th_mant, pulse_exp)
        decoder/    attrs kind, config (JSON); datasets = the decoder's arrays (host side)

Each layer kind writes and reads its own data (``write_hdf5`` / ``read_hdf5`` in
:mod:`spikecodec.deploy.layers`); this module decides where (see
:mod:`spikecodec.deploy.ir`, decision (b)). ``lava.lib.dl.netx.hdf5.Network(net_config=path)``
loads the ``/layer`` prefix of an export without changes (tests/deploy/test_export_netx.py),
the ``lava-sim`` backend builds the rest. Files written by lava-dl alone (no ``/spikecodec``)
load too, as raw-spike networks of their standard layers.

Integrity first (:mod:`spikecodec.deploy.integrity`): every export we write starts with a
512-byte HDF5 user block holding the sha256 of the rest of the file, which the reader checks
before h5py opens it; a file without the block (lava-dl's own exports, older spikecodec exports)
is first opened and walked in a child interpreter with a timeout, so a crash or hang of the HDF5
library cannot take the caller down. The format version stays 1: the block is outside the HDF5
layout, and files without it still read.

Every read is validated (:mod:`spikecodec.deploy.h5read` for each item): a corrupt, truncated or
foreign file, a missing field, a value of the wrong type (``num_steps`` 15.7, ``iDecay`` True)
or out of range, or two layer tables that disagree (``/spikecodec/layers`` and ``/layer`` must
list the same leading standard layers) raises :class:`~spikecodec.errors.ExportError` naming the
group, dataset or attribute. Writes go to a temporary file in the same folder that replaces the
target only when complete, so a failed export leaves the previous file intact.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from spikecodec import __version__
from spikecodec.atomic import atomic_path
from spikecodec.deploy.h5read import attr_int, attr_json, attr_text, read_dataset, read_text
from spikecodec.deploy.info import HostDecoder
from spikecodec.deploy.integrity import BLOCK_SIZE, probe, seal, verify
from spikecodec.deploy.ir import FORMAT_VERSION, FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import LAYER_KINDS
from spikecodec.errors import ConfigError, ExportError, InputError, InputTypeError

ROOT = "spikecodec"
# Types NetX can load but a FixedPointNetwork cannot hold yet (named in the error).
_NETX_ONLY = ("input", "flatten", "average", "concat", "conv", "convT", "pool", "ADRF", "ALIF",
              "SDNN", "RF")


def write_hdf5(net: FixedPointNetwork, path: str | os.PathLike) -> Path:
    """Write ``net`` to ``path`` atomically; return the path."""
    if not isinstance(net, FixedPointNetwork):
        raise ConfigError(f"write_hdf5 needs a FixedPointNetwork, got {type(net).__name__}")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", userblock_size=BLOCK_SIZE) as f:
            _write(f, net)
        seal(tmp)  # the digest of the finished bytes, before the rename makes them the file
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

# What h5py and numpy raise on damaged data that passed the probe (or a sealed file a buggy
# writer made): turned into an ExportError that names the file.
_H5_ERRORS = (OSError, KeyError, ValueError, TypeError, IndexError, OverflowError, RuntimeError,
              AttributeError, RecursionError)


def read_hdf5(path: str | os.PathLike, *, probe_timeout: float | None = None
              ) -> FixedPointNetwork:
    """Load and validate an export; raise :class:`ExportError` naming what is wrong.

    A sealed file (our checksum block) is verified, then parsed here; any other file is probed
    in a child interpreter first (``probe_timeout`` seconds at most, default
    :data:`spikecodec.deploy.integrity.PROBE_TIMEOUT_S`).
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"no export at {path} (or not a regular file)")
    try:
        sealed = verify(path) == "sealed"
    except OSError as err:
        raise ExportError(f"{path}: cannot read the file: {err}") from err
    if not sealed:
        probe(path, **({} if probe_timeout is None else {"timeout": probe_timeout}))
    try:
        f = h5py.File(path, "r")
    except _H5_ERRORS as err:
        raise ExportError(f"{path} is not a readable HDF5 file (corrupt or truncated?): "
                          f"{err}") from err
    try:
        with f:
            return _read(f)
    except ExportError as err:
        raise ExportError(f"{path}: {err}") from err
    except (ConfigError, InputError, InputTypeError) as err:  # validation of the values read
        raise ExportError(f"{path}: invalid value: {err}") from err
    except _H5_ERRORS as err:  # h5py on damaged data
        raise ExportError(f"{path}: unreadable export ({type(err).__name__}: {err})") from err


def _read(f: h5py.File) -> FixedPointNetwork:
    layer_root = f.get("layer")
    root = f.get(ROOT)
    if root is not None and not isinstance(root, h5py.Group):
        raise ExportError(f"/{ROOT} is not a group")
    if layer_root is not None and not isinstance(layer_root, h5py.Group):
        raise ExportError("/layer is not a group")
    netx_count = _netx_count(layer_root)
    if root is None:
        if layer_root is None:
            raise ExportError("neither a spikecodec export nor a NetX network: no /layer group")
        layers = [_read_netx_layer(layer_root, i, f"layer{i}", "") for i in range(netx_count)]
        if not layers:
            raise ExportError("the export holds no layers (/layer is empty)")
        spec = InputSpec(encoding="spikes", num_steps=1, shape=(layers[0].in_features,))
        return FixedPointNetwork(layers, spec, metadata={"source": "netx"})
    version = attr_int(root, "format_version", f"/{ROOT}")
    if version != FORMAT_VERSION:
        raise ExportError(f"export format version {version!r} is not supported "
                          f"(this spikecodec reads version {FORMAT_VERSION})")
    table = _layer_table(root)
    leading = next((i for i, (_, kind, _) in enumerate(table)
                    if not LAYER_KINDS[kind].standard), len(table))
    if netx_count != leading:
        raise ExportError(f"the layer tables disagree: /{ROOT}/layers lists {leading} leading "
                          f"standard layer(s), NetX's /layer holds {netx_count} (a group "
                          f"deleted or added?)")
    layers = []
    for i, (name, kind, group) in enumerate(table):
        if i < leading:
            layers.append(_read_netx_layer(layer_root, i, name, kind))
        else:
            layers.append(LAYER_KINDS[kind].read_hdf5(group, name))
    net = FixedPointNetwork(layers, _read_input(root), decoder=_read_decoder(root),
                            metadata=attr_json(root, "metadata", f"/{ROOT}", default="{}"))
    _check_decoder(net)
    _check_encoder(net.input)
    return net


def _netx_count(layer_root: h5py.Group | None) -> int:
    """How many layers NetX would build from ``/layer``: its keys must be exactly 0..n-1."""
    if layer_root is None:
        return 0
    keys = list(layer_root.keys())
    if sorted(keys) != sorted(str(i) for i in range(len(keys))):
        raise ExportError(f"/layer must hold groups 0..{len(keys) - 1}, found "
                          f"{sorted(keys)[:8]}")
    return len(keys)


def _layer_table(root: h5py.Group) -> list[tuple[str, str, h5py.Group]]:
    """``(name, kind, group)`` of every ``/spikecodec/layers/{i}``, keys exactly 0..n-1."""
    meta = root.get("layers")
    if not isinstance(meta, h5py.Group):
        raise ExportError(f"missing group /{ROOT}/layers")
    keys = list(meta.keys())
    if not keys:
        raise ExportError("the export holds no layers")
    table = []
    for i in range(len(keys)):
        g = meta.get(str(i))
        where = f"/{ROOT}/layers/{i}"
        if not isinstance(g, h5py.Group):
            raise ExportError(f"missing group {where} (/{ROOT}/layers holds {sorted(keys)[:8]})")
        kind = attr_text(g, "kind", where)
        if kind not in LAYER_KINDS:
            raise ExportError(f"{where}: unknown layer kind {kind!r}; known: "
                              f"{sorted(LAYER_KINDS)}")
        table.append((attr_text(g, "name", where, f"layer{i}"), kind, g))
    return table


def _read_input(root: h5py.Group) -> InputSpec:
    inp = root.get("input")
    where = f"/{ROOT}/input"
    if not isinstance(inp, h5py.Group):
        raise ExportError(f"missing group {where}")
    shape = attr_json(inp, "shape", where, expect=list)
    if not shape or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
        raise ExportError(f"{where}: attribute 'shape' must be a list of integers, got "
                          f"{shape!r:.80}")
    params = attr_json(inp, "params", where)
    bad = [k for k, v in params.items()
           if not isinstance(v, (int, float, str)) or v != v or v in (float("inf"), -float("inf"))]
    if bad:
        raise ExportError(f"{where}: attribute 'params' must map names to finite numbers or "
                          f"strings; bad entries {bad[:5]}")
    return InputSpec(encoding=attr_text(inp, "encoding", where),
                     num_steps=attr_int(inp, "num_steps", where), shape=tuple(shape),
                     params=params)


def _read_decoder(root: h5py.Group) -> HostDecoder:
    dec = root.get("decoder")
    where = f"/{ROOT}/decoder"
    if dec is None:
        return HostDecoder()
    if not isinstance(dec, h5py.Group):
        raise ExportError(f"{where} is not a group")
    config = attr_json(dec, "config", where, default='{"kind": "rate"}')
    if "kind" not in config:
        raise ExportError(f"{where}: attribute 'config' names no 'kind'")
    for key in dec.keys():
        if key in config:
            raise ExportError(f"{where}: dataset '{key}' repeats a config key")
        value = read_dataset(dec, key, where)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ExportError(f"{where}: dataset '{key}' holds non-finite values")
        config[key] = value
    return HostDecoder.from_dict(config)


def _check_decoder(net: FixedPointNetwork) -> None:
    """An ANN decoder's config, array names and shapes are checked at read, not first at run."""
    if net.decoder.kind != "ann":
        return
    from spikecodec.deploy.decoders import check_decoder_arrays

    check_decoder_arrays(net.decoder.as_dict(), num_steps=net.num_steps,
                         neurons=net.out_features)


def _check_encoder(spec: InputSpec) -> None:
    """The encoder's params must map names to finite numbers (or booleans). Which names and
    ranges an encoder takes is the encoder's business (:mod:`spikecodec.train.encoding`, which
    deploy does not import): it refuses them, naming ``/spikecodec/input``, when inputs are
    drawn."""
    params = spec.params
    if not isinstance(params, dict):
        raise ExportError(f"/{ROOT}/input: params must be a JSON object, got "
                          f"{type(params).__name__}")
    for key, value in params.items():
        number = isinstance(value, (bool, int, float)) and not (
            isinstance(value, float) and not math.isfinite(value))
        if not number:
            raise ExportError(f"/{ROOT}/input: params[{key!r}] must be a finite number, got "
                              f"{value!r:.60}")


def _read_netx_layer(layer_root: h5py.Group, i: int, name: str, meta_kind: str) -> Any:
    """Layer ``i`` of the ``/layer`` prefix, by its NetX ``type`` (a standard kind's name)."""
    group = layer_root.get(str(i))
    if not isinstance(group, h5py.Group):
        raise ExportError(f"missing group /layer/{i}")
    kind = read_text(group, "type", f"/layer/{i}")
    cls = LAYER_KINDS.get(kind)
    if cls is None or not cls.standard:
        hint = " (NetX knows it, spikecodec does not yet)" if kind in _NETX_ONLY else ""
        raise ExportError(f"layer '{name}' (/layer/{i}): unsupported type {kind!r}{hint}")
    if meta_kind and meta_kind != kind:
        raise ExportError(f"layer '{name}': /layer/{i} is {kind!r} but /spikecodec says "
                          f"{meta_kind!r}")
    return cls.read_hdf5(group, name)


def _to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except TypeError as err:
        raise ConfigError(f"{what} must be JSON-serialisable: {err}") from err

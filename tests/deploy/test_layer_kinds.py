"""Every registered layer kind through every consumer, and the registry's refusal of a kind
that lacks a hook.

For each kind: HDF5 write -> read gives equal layers (wherever the kind sits in the chain);
the reference engine and the Lava simulator agree spike for spike on random networks holding
it, also where a custom layer is not last and where a standard layer follows a custom one; the
Loihi 2 check and the summary describe it.
"""
from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

from spikecodec.deploy.check import format_report, loihi2_report
from spikecodec.deploy.hdf5 import read_hdf5, write_hdf5
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import LAYER_KINDS, register_kinds
from spikecodec.deploy.layers.base import HOOKS, NIR_HOOKS
from spikecodec.errors import ConfigError

from conftest import RANDOM_LAYERS, random_network, random_spikes, run_both

KINDS = sorted(LAYER_KINDS)


def chains(kind: str) -> list[tuple[str, ...]]:
    """Layer orders holding ``kind``: alone, between dense layers (a custom kind not last),
    after a custom layer (a standard kind after a custom one), twice in a row."""
    return [(kind,), ("dense", kind, "dense"), ("stochastic_readout", kind), (kind, kind)]


def assert_layers_equal(a, b) -> None:
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=f"{a.name}.{f.name}")
        else:
            assert x == y, f"{a.name}.{f.name}: {x!r} != {y!r}"


def test_every_registered_kind_has_a_random_maker():
    assert set(RANDOM_LAYERS) == set(LAYER_KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_hdf5_round_trip(kind, tmp_path):
    for i, kinds in enumerate(chains(kind)):
        net = random_network(kinds, seed=i)
        back = read_hdf5(write_hdf5(net, tmp_path / f"net{i}.h5"))
        assert len(back.layers) == len(net.layers) and back.num_netx == net.num_netx
        for a, b in zip(net.layers, back.layers, strict=True):
            assert_layers_equal(a, b)
        with h5py.File(tmp_path / f"net{i}.h5", "r") as f:  # NetX sees only the prefix
            assert len(f.get("layer", {})) == net.num_netx


@pytest.mark.lava
@pytest.mark.parametrize("kind", KINDS)
def test_reference_equals_lava_sim(kind, no_leftover_children):
    for i, kinds in enumerate([("dense", kind, "dense"), ("stochastic_readout", kind)]):
        net = random_network(kinds, seed=10 + i)
        x = random_spikes(5, net.in_features, net.num_steps, rate=0.4)
        reference, lava = run_both(net, x, chunk=3, gap=i)
        for layer, a, b in zip(net.layers, reference.layers, lava.layers, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"{kinds}: layer {layer.name}")
            assert 0 < a.sum() < a.size, f"{kinds}: layer {layer.name} is silent or saturated"


@pytest.mark.parametrize("kind", KINDS)
def test_loihi2_check_and_summary(kind):
    net = random_network(("dense", kind), seed=3)
    layer = net.layers[1]
    report = loihi2_report(net)
    row = report["layers"][1]
    assert row["layer"] == layer.name and row["kind"] == kind
    assert row["neurons"] == layer.out_features and row["cores"] >= 1
    assert row["standard"] is LAYER_KINDS[kind].standard
    assert row["bits"] and all(used >= 0 and avail > 0 for used, avail in row["bits"].values())
    assert report["ok"], row["problems"]  # the random layers are made to fit
    assert layer.name in format_report(report)
    assert layer.describe() in net.summary()


# --------------------------------------------------------------------------- the registry

def toy_kind(*, without: str | None = None, frozen: bool = True) -> type:
    """A complete (do-nothing) layer kind, less the hook ``without``."""
    namespace = {"__annotations__": {"name": str}, "kind": "toy", "standard": False,
                 "in_features": property(lambda self: 1),
                 "out_features": property(lambda self: 1)}
    for hook in HOOKS:
        namespace[hook] = lambda self, *args, **kwargs: None
    for hook in NIR_HOOKS:
        namespace[hook] = None  # allowed: "no NIR node"
    namespace.pop(without, None)
    return dataclasses.dataclass(frozen=frozen)(type("Toy", (), namespace))


def test_a_complete_kind_registers():
    toy = toy_kind()
    assert register_kinds(LAYER_KINDS["dense"], toy) == {"dense": LAYER_KINDS["dense"],
                                                         "toy": toy}


@pytest.mark.parametrize("hook", HOOKS + NIR_HOOKS + ("in_features", "out_features"))
def test_a_kind_missing_a_hook_is_refused(hook):
    with pytest.raises(ConfigError, match=f"'Toy' lacks the hook.*{hook}"):
        register_kinds(toy_kind(without=hook))


@pytest.mark.parametrize("kinds, match", [
    ((toy_kind(frozen=False),), "frozen dataclass"),
    ((toy_kind(without="kind"),), "class attribute kind"),
    ((toy_kind(without="standard"),), "class attribute standard"),
    ((toy_kind(), toy_kind()), "reuses the kind 'toy'"),
])
def test_malformed_kinds_are_refused(kinds, match):
    with pytest.raises(ConfigError, match=match):
        register_kinds(*kinds)


def test_an_unregistered_kind_cannot_enter_a_network():
    with pytest.raises(ConfigError, match="unknown layer type Toy"):
        FixedPointNetwork([toy_kind()(name="t")], InputSpec("spikes", 4, (1,)))

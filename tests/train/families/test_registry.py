"""Every registered model family implements every hook and runs the whole life of a run:
train, export, rebuild, inputs, score -- the contract a new family signs by registering."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from spikecodec.cli import build_parser
from spikecodec.deploy.backends import run
from spikecodec.deploy.hdf5 import read_hdf5
from spikecodec.errors import ExportError
from spikecodec.train.families import FAMILIES, Family, get_family
from spikecodec.workflows.exporting import export_run
from spikecodec.workflows.parity import float_layers
from spikecodec.workflows.training import start_run, train_run


def test_registry_holds_complete_families_under_their_names():
    assert {"roy-ae", "vdib"} <= set(FAMILIES)
    for name, family in FAMILIES.items():
        assert isinstance(family, Family) and family.name == name and get_family(name) is family
        assert not getattr(type(family), "__abstractmethods__", None), name
        assert dataclasses.is_dataclass(family.config_type)
        family.load_config(None, list(family.smoke_settings))  # the smoke settings are valid
        assert set(family.exact_engines) >= {"reference", "lava-sim"}


def test_a_family_missing_a_hook_cannot_be_made():
    class Incomplete(Family):
        name = "incomplete"
        title = "lacks every hook but run_name"
        config_type = object
        smoke_settings = ()

        def run_name(self, cfg):
            return "x"

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


def test_the_command_line_offers_every_family():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    assert set(train._subparsers._group_actions[0].choices) == set(FAMILIES)


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def trained(request, tmp_path_factory):
    family = FAMILIES[request.param]
    plan = start_run(family, overrides=list(family.smoke_settings),
                     out=str(tmp_path_factory.mktemp(request.param) / "run"))
    return family, train_run(family, plan, show_progress=False, log=lambda _: None), plan.run_dir


def test_train_export_rebuild_inputs_score(trained):
    family, done, run_dir = trained
    assert family.format_results(done.results).strip()
    assert (run_dir / "metrics.csv").is_file() and (run_dir / "results.json").is_file()
    if not family.deployable:  # it trains and reports, writes no export and says why not
        assert done.export is None and not (run_dir / "export.h5").exists()
        with pytest.raises(ExportError, match="cannot be exported yet"):
            export_run(run_dir)
        return
    net = read_hdf5(done.export)
    assert net.metadata.model_kind == family.name and net.metadata.config_toml is not None
    cfg = family.export_config(net)
    inputs = family.inputs(net, samples=cfg.data.test_limit)
    assert len(inputs.spikes) == cfg.data.test_limit and inputs.description
    ref = run(net, inputs.spikes, backend="reference", probe=True)
    floats = float_layers(net, inputs.spikes)  # rebuild + layer_outputs
    for a, b in zip(floats, ref.layers, strict=True):
        np.testing.assert_array_equal(a, b)  # the training forward is the deployed one
    scores = family.score(net, inputs, ref.spikes)
    assert next(iter(scores)) == "mse" and np.isfinite(list(scores.values())).all()
    # the deployed score is the one the training run measured on the same samples
    measured = dict(family.training_metrics(net))
    row = measured.get("quantized", measured.get("float"))
    assert scores["mse"] == pytest.approx(row["mse"], rel=1e-9)


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("setting, message", [
    ("train.epochs=0", "train.epochs must be >= 1"),
    ("train.threads=-1", "train.threads must be >= 0"),
    ("train.device=tpu", "train.device must be 'cpu' or 'cuda[:N]'"),
    ("train.checkpoint_every=0", "train.checkpoint_every must be >= 1"),
])
def test_every_family_checks_the_loop_settings_the_same_way(name, setting, message):
    from spikecodec.errors import ConfigError

    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        FAMILIES[name].load_config(None, [setting])

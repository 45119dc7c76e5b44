"""Config loading: TOML, typed --set overrides, round trip, and errors naming the key."""
from __future__ import annotations

import pytest

from spikecodec.errors import ConfigError
from spikecodec.train import config as config_io
from spikecodec.train.families.roy.config import RoyAEConfig


def test_defaults_overrides_and_round_trip(tmp_path):
    cfg = config_io.load(RoyAEConfig, None, ["train.lr=0.01", "model.hidden=32",
                                             "data.dataset=mnist", "ann.enabled=false",
                                             "data.train_limit=100"])
    assert (cfg.train.lr, cfg.model.hidden, cfg.data.dataset) == (0.01, 32, "mnist")
    assert cfg.ann.enabled is False and cfg.data.train_limit == 100
    path = config_io.save(cfg, tmp_path / "config.toml")
    assert config_io.load(RoyAEConfig, path) == cfg


def test_toml_file_then_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[data]\ndataset = "fashion-mnist"\nnum_steps = 60\n[model]\nhidden = 512\n')
    cfg = config_io.load(RoyAEConfig, path, ["data.num_steps=30"])
    assert (cfg.data.dataset, cfg.data.num_steps, cfg.model.hidden) == ("fashion-mnist", 30, 512)


@pytest.mark.parametrize("override, match", [
    ("train.lrr=1", "unknown config key 'train.lrr'"),
    ("nope.x=1", "'nope' is not in the top level"),
    ("model.hidden=abc", "model.hidden: expected an int"),
    ("ann.enabled=maybe", "expected true/false"),
    ("train.lr=-1", "train.lr must be > 0"),
    ("data.dataset=cifar", "data.dataset must be one of"),
    ("model=3", "is a table"),
    ("train.lr", "must look like key.sub=value"),
])
def test_bad_overrides(override, match):
    with pytest.raises(ConfigError, match=match):
        config_io.load(RoyAEConfig, None, [override])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config_io.load(RoyAEConfig, tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nlr = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config_io.load(RoyAEConfig, bad)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[train]\nlr = "fast"\nbatchsize = 3\n')
    with pytest.raises(ConfigError, match="train.batchsize"):
        config_io.load(RoyAEConfig, wrong)
    wrong.write_text('[train]\nlr = "fast"\n')
    with pytest.raises(ConfigError, match="train.lr: expected float"):
        config_io.load(RoyAEConfig, wrong)


def test_shipped_example_configs_load():
    from conftest import REPO

    paths = sorted((REPO / "docs" / "configs").glob("roy_ae_*.toml"))
    assert paths
    for path in paths:
        cfg = config_io.load(RoyAEConfig, path)
        assert cfg.data.dataset in ("mnist", "fashion-mnist")


def test_a_key_marked_omit_default_is_written_only_when_set(tmp_path):
    """model.readout.delays (added after exports were committed) leaves configs and exports
    that do not use it byte for byte as they were, and still round-trips when set."""
    from spikecodec.train.families.vdib.config import VDIBConfig

    plain = VDIBConfig()
    assert "delays" not in config_io.dumps(plain)
    assert "delays" not in config_io.compact_dict(plain.model)["readout"]
    assert config_io.compact_dict(plain.data) == config_io.to_dict(plain.data)
    set_ = config_io.apply_overrides(plain, ["model.readout.delays=4"])
    text = config_io.dumps(set_)
    assert "delays = 4" in text
    config_io.save(set_, tmp_path / "c.toml")
    assert config_io.load(VDIBConfig, tmp_path / "c.toml") == set_
    back = config_io.from_dict(VDIBConfig, config_io.compact_dict(set_))
    assert back == set_ and config_io.from_dict(VDIBConfig, config_io.compact_dict(plain)) == plain

"""Roy et al.'s audio-to-image family: datasets A and B, the test protocol, the ANN baseline's
quantizer, config checks, and the synthesis export (ONE network: audio -> hidden -> code ->
image) running on the reference engine and on Lava spike for spike."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikecodec.deploy.backends import run
from spikecodec.deploy.check import loihi2_report
from spikecodec.deploy.hdf5 import read_hdf5
from spikecodec.deploy.metrics import znorm_mse
from spikecodec.errors import ConfigError
from spikecodec.train.families import FAMILIES
from spikecodec.train.families.roy_audio.ann import quantize_levels
from spikecodec.train.families.roy_audio.data import (
    class_exemplars,
    nearest_mse,
    pair,
    protocol_mse,
    protocol_scores,
    tile_targets,
)
from spikecodec.workflows.training import start_run, train_run

FAMILY = FAMILIES["roy-audio"]


def _images(n=200, pixels=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, pixels, generator=gen), torch.arange(n) % 10


def test_dataset_a_pairs_every_recording_with_its_class_exemplar():
    images, labels = _images()
    audio_labels = torch.tensor([3, 1, 3, 9])
    p = pair("A", audio_labels, images, labels, seed=0)
    assert p.bank.shape == (10, 16) and p.train_index.tolist() == [3, 1, 3, 9]
    for digit in range(10):  # the member nearest to its class mean
        members = images[labels == digit]
        best = ((members - members.mean(0)) ** 2).sum(1).argmin()
        assert torch.equal(p.bank[digit], members[best])
    assert torch.equal(class_exemplars(images, labels), p.class_images)


def test_dataset_b_pairs_each_recording_with_a_seeded_random_image_of_its_digit():
    images, labels = _images()
    audio_labels = torch.arange(50) % 10
    p = pair("B", audio_labels, images, labels, seed=0)
    assert p.bank.shape == (50, 16) and p.train_index.tolist() == list(range(50))
    rows = [int(torch.nonzero((images == row).all(1))[0]) for row in p.bank]
    assert [int(labels[r]) for r in rows] == audio_labels.tolist()  # of its digit
    assert len(set(rows)) > 40  # drawn, not one exemplar per digit
    assert torch.equal(pair("B", audio_labels, images, labels, seed=0).bank, p.bank)
    assert not torch.equal(pair("B", audio_labels, images, labels, seed=1).bank, p.bank)


def test_hidden_maps_are_shown_repeatedly_over_the_audio_window():
    maps = torch.arange(2 * 3 * 4).reshape(2, 3, 4)
    tiled = tile_targets(maps, 10)
    assert tiled.shape == (2, 3, 10)
    assert torch.equal(tiled[..., 4:8], maps) and torch.equal(tiled[..., 8:], maps[..., :2])


def test_protocol_a_scores_the_class_image_and_b_the_nearest_training_image():
    images, labels = _images(30)
    counts = torch.rand(5, 16)
    test_labels = torch.tensor([0, 1, 2, 3, 4])
    a = protocol_mse("A", counts, test_labels, images[:10])
    torch.testing.assert_close(a, znorm_mse(images[:5], counts))
    b = protocol_mse("B", counts, test_labels, images)
    brute = torch.stack([znorm_mse(images, c.expand(30, 16)).min() for c in counts])
    torch.testing.assert_close(b, brute)
    values, index = nearest_mse(images[[7, 2]] * 3 + 1, images)  # scale-free: z-normalised
    assert index.tolist() == [7, 2] and values.max() < 1e-9


def test_class_accuracy_counts_nearest_images_of_the_right_digit():
    images, labels = _images(30)
    counts = images[[0, 11, 5]] * 2  # nearest: images 0, 11, 5 -> digits 0, 1, 5
    scores = protocol_scores("B", counts, torch.tensor([0, 1, 4]), images, labels)
    assert scores["class_accuracy"] == pytest.approx(2 / 3) and scores["mse"] < 1e-9
    p = pair("B", torch.arange(20) % 10, images, labels, seed=0)
    assert torch.equal(p.bank_labels, torch.arange(20) % 10)
    assert torch.equal(pair("A", torch.arange(3), images, labels, seed=0).bank_labels,
                       torch.arange(10))


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_quantized_hidden_state_has_2_to_the_bits_levels(bits):
    h = torch.linspace(0, 1, 1001)
    q = quantize_levels(h, bits)
    assert len(torch.unique(q)) == 2 ** bits and (q - h).abs().max() <= 0.5 / (2 ** bits - 1) + 1e-6
    assert torch.equal(quantize_levels(h, 0), h)


@pytest.mark.parametrize("setting, message", [
    ("data.pairing=C", "data.pairing must be 'A' or 'B'"),
    ("ae.hidden_steps=20", r"ae.hidden_steps must be in \[1, ae.num_steps=15\]"),
    ("data.audio=timit", "data.audio must be one of fsdd, tones"),
    ("data.n_mels=0", "data.n_mels must be a positive integer"),
])
def test_bad_settings_are_refused(setting, message):
    with pytest.raises(ConfigError, match=message):
        FAMILY.load_config(None, [setting])


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("roy-audio") / "run"
    plan = start_run(FAMILY, overrides=list(FAMILY.smoke_settings), out=str(out))
    return train_run(FAMILY, plan, show_progress=False, log=lambda _: None), out


def test_an_ae_run_that_disagrees_with_the_ae_settings_is_refused(smoke_run, tmp_path):
    _, out = smoke_run
    settings = [s for s in FAMILY.smoke_settings if not s.startswith("ae.hidden=")]
    plan = start_run(FAMILY, overrides=settings + [f"ae.run_dir={out / 'ae'}"],
                     out=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match=r"ae.hidden is 196 but the AE run .* has 16"):
        train_run(FAMILY, plan, show_progress=False, log=lambda _: None)


def test_the_synthesis_export_is_one_network_that_passes_the_loihi2_check(smoke_run):
    done, _ = smoke_run
    net = read_hdf5(done.export)
    assert [layer.name for layer in net.layers] == ["audio_hidden", "audio_code", "decoder"]
    assert (net.in_features, net.layers[1].out_features, net.out_features) == (39 * 8, 16, 64)
    assert net.input.shape == (39, 8) and net.input.num_steps == 10
    report = loihi2_report(net)
    assert report["ok"] and report["standard"] and len(report["layers"]) == 3


@pytest.mark.lava
def test_reference_equals_lava_sim_spike_for_spike_on_the_synthesis_export(smoke_run):
    done, _ = smoke_run
    net = read_hdf5(done.export)
    inputs = FAMILY.inputs(net, samples=12)
    ref = run(net, inputs.spikes, backend="reference", probe=True)
    lava = run(net, inputs.spikes, backend="lava-sim", probe=True)
    for a, b in zip(ref.layers, lava.layers, strict=True):
        np.testing.assert_array_equal(a, b)
    assert ref.layers[0].sum() > 0  # spikes flowed
    scores = FAMILY.score(net, inputs, ref.spikes)
    assert scores == FAMILY.score(net, inputs, lava.spikes)
    assert list(scores) == ["mse", "class_accuracy"] and 0 <= scores["class_accuracy"] <= 1


def test_command_line_options_become_config_overrides():
    import argparse

    parser = argparse.ArgumentParser()
    FAMILY.add_arguments(parser)
    args = parser.parse_args(["--dataset", "tones", "--pairing", "B", "--test-speaker", "alto",
                              "--data-dir", "/data"])
    assert FAMILY.cli_overrides(args) == ["data.audio=tones", "data.data_dir=/data",
                                          "ae.data_dir=/data", "data.pairing=B",
                                          "data.test_speaker=alto"]
    cfg = FAMILY.load_config(None, FAMILY.cli_overrides(args))
    assert (cfg.data.pairing, cfg.data.test_speaker, FAMILY.run_name(cfg)) == (
        "B", "alto", "roy-audio-tones-B")


def test_the_documented_config_loads_as_the_readme_says():
    from conftest import REPO

    cfg = FAMILY.load_config(REPO / "docs" / "configs" / "roy_audio_fsdd_A.toml", [])
    assert (cfg.data.audio, cfg.data.pairing, cfg.data.num_steps, cfg.ae.hidden_steps,
            cfg.model.hidden, cfg.train.epochs) == ("fsdd", "A", 60, 15, 512, 20)
    assert cfg.data.front_end().shape == (39, 40)

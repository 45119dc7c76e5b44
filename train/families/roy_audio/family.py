"""Roy et al.'s audio-to-image synthesis as a model family: every hook the commands call.

The export is ONE network: ``audio spikes -> hidden -> code -> image`` (the audiocoder and the
AE-SNN's decoder ``W2``), Poisson-fed with the spectrogram, its output spike counts scored by
the paper's protocol (:mod:`.data`).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.errors import ConfigError
from spikecodec.train import config as config_io
from spikecodec.train.encoding import encode_input
from spikecodec.train.families.base import ExportInputs, Family, check_split
from spikecodec.train.families.roy.model import RoyAEModelConfig
from spikecodec.train.families.roy_audio.config import (
    ModelConfig,
    RoyAudioConfig,
    search_space,
)
from spikecodec.train.families.roy_audio.data import protocol_scores
from spikecodec.train.families.roy_audio.model import AudioToImage, SynthesisShape
from spikecodec.train.families.roy_audio.training import (
    MODEL_KIND,
    load_data,
    train_roy_audio,
)
from spikecodec.train.quantize import dense_layer, plain
from spikecodec.train.seeds import stream_seed

LAYER_NAMES = ("audio_hidden", "audio_code", "decoder")


class RoyAudioFamily(Family):
    name = MODEL_KIND
    title = "Roy et al. 2019 audio-to-image synthesis (spiking audiocoder + AE-SNN decoder)"
    config_type = RoyAudioConfig
    smoke_settings = ("data.audio=tones", "data.frames=8", "data.num_steps=10",
                      "data.train_limit=60", "data.test_limit=20", "ae.dataset=digits",
                      "ae.hidden=16", "ae.num_steps=8", "ae.hidden_steps=4", "ae.epochs=1",
                      "ae.train_limit=100", "model.hidden=24", "train.epochs=2",
                      "train.batch_size=20", "ann.enabled=false")

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--pairing", choices=("A", "B"), help="dataset A or B (paper)")
        parser.add_argument("--test-speaker", help="speaker-independent split: test speaker")

    def cli_overrides(self, args) -> list[str]:
        pairs = [("data.audio", args.dataset), ("data.data_dir", args.data_dir),
                 ("ae.data_dir", args.data_dir),  # FSDD and MNIST side by side (--set wins)
                 ("data.download", "true" if args.download else None),
                 ("data.pairing", args.pairing), ("data.test_speaker", args.test_speaker)]
        return [f"{key}={value}" for key, value in pairs if value]

    def run_name(self, cfg: RoyAudioConfig) -> str:
        return f"{self.name}-{cfg.data.audio}-{cfg.data.pairing}"

    def train(self, cfg: RoyAudioConfig, run_dir: Path, *, start: dict[str, Any] | None,
              show_progress: bool, log: Callable[[str], None]) -> dict[str, Any]:
        return train_roy_audio(cfg, run_dir, start=start, show_progress=show_progress, log=log)

    def search_space(self, cfg: RoyAudioConfig) -> dict[str, Any]:
        return search_space(cfg)

    def sweep_objective(self, results: dict[str, Any]) -> float:
        """The synthesis model's protocol MSE on the TEST recordings (the family holds out no
        validation split, so a sweep selects on the data it reports: say so with its
        numbers)."""
        return float(results["metrics"]["snn"]["mse"])

    def format_results(self, results: dict[str, Any]) -> str:
        m, paper = results["metrics"], results["paper_mse"]
        fmt = "{:<22} {:>9} {:>10}"
        lines = [f"{results['model']} {results['network']}: {results['audio']} -> "
                 f"{results['images']}, dataset {results['pairing']}, {results['split']} split "
                 f"(T_a={results['num_steps']}, T_h={results['hidden_steps']}, "
                 f"{results['epochs']} epoch(s), {results['test_samples']} test recordings)",
                 fmt.format("model", "test MSE", "paper MSE")]
        for key, label in (("snn", "AC-SNN + AE-SNN"), ("ann_sgd", "AC-ANN + AE-ANN (SGD)"),
                           ("ann_adam", "AC-ANN + AE-ANN (Adam)")):
            if key in m:
                lines.append(fmt.format(label, f"{m[key]['mse']:.4f}", f"{paper[key]:.3f}"))
        lines.append("(paper: TI-46 speech, not FSDD: the data differ)")
        t = results["timing"]
        lines.append(f"training: {t['seconds_per_epoch']:.1f} s/epoch "
                     f"({t['torch_threads']} threads); spikes/sample: hidden "
                     f"{m['snn']['hidden_spikes_per_sample']:.0f}, code "
                     f"{m['snn']['code_spikes_per_sample']:.0f}, image "
                     f"{m['snn']['image_spikes_per_sample']:.0f}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ deployment
    def export(self, run_dir: Path, ckpt: dict[str, Any]) -> FixedPointNetwork:
        cfg = config_io.load(RoyAudioConfig, run_dir / "config.toml")
        shape = _shape_from_state(ckpt, cfg)
        model = AudioToImage(shape)
        model.load_state_dict(ckpt["model"])
        spec = InputSpec("poisson_rate", cfg.data.num_steps, cfg.data.front_end().shape,
                         {"max_rate": cfg.data.max_rate})
        metadata: dict[str, Any] = {"dataset": cfg.data.audio, "seed": cfg.train.seed,
                                    "eval_seed": stream_seed(cfg.train.seed, "eval"),
                                    "config_toml": config_io.dumps(cfg),
                                    "trained_epochs": ckpt["epoch"]}
        results = run_dir / "results.json"
        if results.is_file():
            metadata["float_metrics"] = json.loads(results.read_text())["metrics"]["snn"]
        layers = tuple(dense_layer(block, name) for block, name in
                       zip((model.hidden, model.code, model.decoder), LAYER_NAMES, strict=True))
        meta = {"model_kind": self.name, "model_config": plain(shape), **metadata}
        return FixedPointNetwork(layers, spec, decoder={"kind": "rate"}, metadata=meta)

    def rebuild(self, net: FixedPointNetwork) -> AudioToImage:
        raw = dict(net.metadata.model_config)
        shape = SynthesisShape(audio=int(raw["audio"]), model=ModelConfig(**raw["model"]),
                               ae=RoyAEModelConfig(**raw["ae"]), image=int(raw["image"]))
        model = AudioToImage(shape)
        with torch.no_grad():
            for block, layer in zip((model.hidden, model.code, model.decoder), net.layers,
                                    strict=True):
                scale = block.neuron.scale
                block.weight.copy_(torch.from_numpy(np.array(layer.weight))
                                   .to(block.weight.dtype) / scale)
        return model

    def layer_outputs(self, model: AudioToImage, spikes: torch.Tensor) -> list[torch.Tensor]:
        out = model(spikes)
        return [out.hidden, out.code, out.image]

    def inputs(self, net: FixedPointNetwork, *, split: str = "test", samples: int | None = None,
               dataset: str | None = None, data_dir: str | None = None,
               download: bool = False) -> ExportInputs:
        """The export's recordings of ``split`` (first ``samples``), Poisson-encoded with the
        training evaluation's seed; the target is the pairing's image bank (rebuilt from the
        config, with the AE run the training used)."""
        check_split(split)
        cfg = self.export_config(net)
        overrides = {"audio": dataset or cfg.data.audio,
                     "data_dir": data_dir or cfg.data.data_dir, "download": download,
                     "test_limit": None}  # train_limit stays: B's images depend on it
        cfg = type(cfg)(**{**_fields(cfg), "data": type(cfg.data)(**{**_fields(cfg.data),
                                                                      **overrides})})
        if cfg.data.pairing == "B" and split == "train":
            raise ConfigError("dataset B scores test recordings against every training image; "
                              "training recordings are not scored that way: use the test split")
        data = load_data(cfg)
        audio = data.test if split == "test" else data.train
        features, labels = audio.features[:samples], audio.labels[:samples]
        spikes = encode_input(net.input, features, seed=int(net.metadata.eval_seed or 0))
        return ExportInputs(spikes, labels, data.pairing.bank, data,
                            f"{audio.name} -> {cfg.ae.dataset} ({cfg.data.pairing})")

    def score(self, net: FixedPointNetwork, inputs: ExportInputs, spikes: np.ndarray
              ) -> dict[str, float]:
        """The paper's test MSE (A: against the class image, B: lowest over the training
        images) of the output spike counts, and how often the nearest image shows the right
        digit (:func:`~.data.protocol_scores`)."""
        cfg = self.export_config(net)
        counts = torch.from_numpy(np.asarray(spikes, dtype=np.float32)).sum(-1)
        return protocol_scores(cfg.data.pairing, counts, inputs.labels, inputs.target,
                               inputs.context.pairing.bank_labels)

    def training_metrics(self, net: FixedPointNetwork) -> list[tuple[str, dict[str, Any]]]:
        m = net.metadata.float_metrics
        if m is None:
            return []
        limit = self.export_config(net).data.test_limit
        return [("float", m if limit is None else {**m, "samples": limit})]


def _fields(obj) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


def _shape_from_state(ckpt: dict[str, Any], cfg: RoyAudioConfig) -> SynthesisShape:
    """Layer sizes from a checkpoint's weights; neurons from the config and the AE's."""
    state = ckpt["model"]
    return SynthesisShape(audio=state["hidden.weight"].shape[1], model=cfg.model,
                          ae=RoyAEModelConfig(**ckpt["ae_model"]),
                          image=state["decoder.weight"].shape[0])



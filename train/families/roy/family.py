"""The Roy et al. 2019 AE-SNN as a model family: every hook the commands call."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.metrics import image_mse, spike_mse
from spikecodec.train import config as config_io
from spikecodec.train.datasets import IMAGE_SHAPES, load_images
from spikecodec.train.encoding import encode_input
from spikecodec.train.families.base import ExportInputs, Family, check_split
from spikecodec.train.families.roy.config import RoyAEConfig, search_space
from spikecodec.train.families.roy.model import RoyAE, RoyAEModelConfig
from spikecodec.train.families.roy.training import MODEL_KIND, train_roy_ae
from spikecodec.train.quantize import dense_layer, plain
from spikecodec.train.seeds import stream_seed


class RoyFamily(Family):
    name = MODEL_KIND
    title = "Roy et al. 2019 AE-SNN (LIF autoencoder, membrane-potential loss, XOR mask)"
    config_type = RoyAEConfig
    smoke_settings = ("data.dataset=digits", "model.hidden=16", "train.epochs=2",
                      "train.batch_size=50", "data.train_limit=200", "data.test_limit=40",
                      "ann.enabled=false")

    def run_name(self, cfg: RoyAEConfig) -> str:
        return f"{self.name}-{cfg.data.dataset}"

    def train(self, cfg: RoyAEConfig, run_dir: Path, *, start: dict[str, Any] | None,
              show_progress: bool, log: Callable[[str], None]) -> dict[str, Any]:
        return train_roy_ae(cfg, run_dir, start=start, show_progress=show_progress, log=log)

    def search_space(self, cfg: RoyAEConfig) -> dict[str, Any]:
        return search_space(cfg)

    def sweep_objective(self, results: dict[str, Any]) -> float:
        """The trained SNN's reconstruction MSE on the TEST split (this family holds out no
        validation split, so a sweep selects on the data it reports: say so with its numbers)."""
        return float(results["metrics"]["snn"]["mse"])

    def format_results(self, results: dict[str, Any]) -> str:
        m = results["metrics"]
        paper = results.get("paper_mse", {})
        rows = [("AE-SNN (trained)", m["snn"]["mse"], m["snn"]["spike_mse"], paper.get("snn")),
                ("AE-SNN (untrained)", m["snn_untrained"]["mse"],
                 m["snn_untrained"]["spike_mse"], None)]
        for key, label in (("ann_sgd", "AE-ANN (SGD)"), ("ann_adam", "AE-ANN (Adam)")):
            if key in m:
                rows.append((label, m[key]["mse"], None, paper.get(key)))
        fmt = "{:<20} {:>9} {:>10} {:>10}"
        lines = [f"{results['model']} {results['network']} on {results['dataset']} "
                 f"(T={results['num_steps']}, {results['epochs']} epoch(s), "
                 f"{results['test_samples']} test samples)",
                 fmt.format("model", "test MSE", "Spike-MSE", "paper MSE")]
        for label, mse, smse, ref in rows:
            lines.append(fmt.format(label, f"{mse:.4f}", "-" if smse is None else f"{smse:.4f}",
                                    "-" if ref is None else f"{ref:.3f}"))
        t = results["timing"]
        lines.append(f"training: {t['seconds_per_epoch']:.1f} s/epoch, "
                     f"{t['samples_per_second']:.0f} samples/s ({t['torch_threads']} threads); "
                     f"spikes/sample: hidden {m['snn']['hidden_spikes_per_sample']:.0f}, "
                     f"output {m['snn']['output_spikes_per_sample']:.0f}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ deployment
    def export(self, run_dir: Path, ckpt: dict[str, Any]) -> FixedPointNetwork:
        cfg = config_io.load(RoyAEConfig, run_dir / "config.toml")
        model = RoyAE(ckpt["in_neurons"], cfg.model)
        model.load_state_dict(ckpt["model"])
        spec = InputSpec("poisson_rate", cfg.data.num_steps, IMAGE_SHAPES[cfg.data.dataset],
                         {"max_rate": cfg.data.max_rate})
        metadata: dict[str, Any] = {"dataset": cfg.data.dataset, "seed": cfg.train.seed,
                                    "eval_seed": stream_seed(cfg.train.seed, "eval"),
                                    "config_toml": config_io.dumps(cfg),
                                    "trained_epochs": ckpt["epoch"]}
        results = run_dir / "results.json"
        if results.is_file():
            metadata["float_metrics"] = json.loads(results.read_text())["metrics"]["snn"]
        return self.to_network(model, spec, metadata)

    def to_network(self, model: RoyAE, spec: InputSpec,
                   metadata: dict[str, Any] | None = None) -> FixedPointNetwork:
        """A trained AE-SNN fed as ``spec`` says, in fixed point (training is
        quantization-aware: this only reads the integers out)."""
        layers = (dense_layer(model.encoder, "encoder"), dense_layer(model.decoder, "decoder"))
        meta = {"model_kind": self.name, "model_config": plain(model.cfg), **(metadata or {})}
        return FixedPointNetwork(layers, spec, decoder={"kind": "rate"}, metadata=meta)

    def rebuild(self, net: FixedPointNetwork) -> RoyAE:
        cfg = RoyAEModelConfig(**net.metadata.model_config)
        model = RoyAE(net.in_features, cfg)
        with torch.no_grad():
            for block, layer in zip((model.encoder, model.decoder), net.layers, strict=True):
                block.weight.copy_(torch.from_numpy(np.array(layer.weight))
                                   .to(block.weight.dtype) / cfg.scale)
        return model

    def layer_outputs(self, model: RoyAE, spikes: torch.Tensor) -> list[torch.Tensor]:
        out = model(spikes)
        return [out.hidden, out.spikes]

    def inputs(self, net: FixedPointNetwork, *, split: str = "test", samples: int | None = None,
               dataset: str | None = None, data_dir: str | None = None,
               download: bool = False) -> ExportInputs:
        """Images of the export's dataset (from the data folder its config names, unless
        ``data_dir`` says otherwise), Poisson-encoded with the training evaluation's seed."""
        check_split(split)
        cfg = self.export_config(net) if net.metadata.config_toml is not None else None
        dataset = dataset or net.metadata.dataset
        if dataset is None:
            from spikecodec.errors import ConfigError
            raise ConfigError("this export does not name its dataset; pass --dataset")
        data_dir = data_dir or (cfg.data.data_dir if cfg is not None else None)
        images = load_images(dataset, split, data_dir=data_dir, download=download,
                             limit=samples)
        spikes = encode_input(net.input, images.images,
                              seed=int((net.metadata.eval_seed or 0)))
        return ExportInputs(spikes, images.labels, images.images, images,
                            f"{dataset} {split}")

    def score(self, net: FixedPointNetwork, inputs: ExportInputs, spikes: np.ndarray
              ) -> dict[str, float]:
        """The paper's reconstruction MSE (image vs output spike counts, z-normalised per
        sample) and Spike-MSE (input vs output spike counts)."""
        out = torch.from_numpy(np.asarray(spikes, dtype=np.float32))
        return {"mse": image_mse(inputs.target, out).mean().item(),
                "spike_mse": spike_mse(torch.as_tensor(inputs.spikes).float(), out).mean().item()}

    def training_metrics(self, net: FixedPointNetwork) -> list[tuple[str, dict[str, Any]]]:
        """The float model's test metrics; they cover ``data.test_limit`` samples when the
        config set one, else the whole test split."""
        m = net.metadata.float_metrics
        if m is None:
            return []
        cfg = self.export_config(net) if net.metadata.config_toml is not None else None
        limit = cfg.data.test_limit if cfg is not None else None
        return [("float", m if limit is None else {**m, "samples": limit})]

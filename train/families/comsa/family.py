"""Comsa et al. 2021 as a model family: training through the registry and the one loop, and
deployment on Loihi 2's grid.

Deployment (quantize.py, discrete.py): each layer becomes a spike-once alpha layer with its
pulses (:class:`~spikecodec.deploy.layers.SpikeOnceAlphaLayer`); inputs spike on the grid step of
their time, the host reads an output's first spike on step ``m`` as ``t = (m + L / 2) dt``, i.e.
the pixel ``1 - (t - l)``, a silent output as background, and scores it with the training run's
metric (training.output_scores). ``rebuild`` gives the discrete torch model, which equals the
reference engine spike for spike; the export records the continuous model's test metrics
(``float``) and the discrete model's on the same samples (``quantized``), and what rounding
changed (``extra.quantization``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikecodec.deploy.info import HostDecoder
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.errors import ConfigError, ExportError
from spikecodec.train import config as config_io
from spikecodec.train.families.base import ExportInputs, Family, check_split
from spikecodec.train.families.comsa import data as data_mod
from spikecodec.train.families.comsa.config import (
    MODEL_KIND,
    ComsaConfig,
    published,
    published_start,
    search_space,
)
from spikecodec.train.families.comsa.discrete import DiscreteComsaAE
from spikecodec.train.families.comsa.finetune import discrete_model_times
from spikecodec.train.families.comsa.quantize import (
    Grid,
    grid_for,
    input_spikes,
    output_times,
    quantize,
)
from spikecodec.train.families.comsa.training import (
    build_model,
    observed,
    output_scores,
    train_comsa,
)
from spikecodec.train.quantize import plain
from spikecodec.train.seeds import stream_seed

ENCODING = "comsa_latency"  # an input at time t spikes once, on step round(t / dt)


class ComsaFamily(Family):
    name = MODEL_KIND
    title = ("Comsa et al. 2021 temporal-coding autoencoder (spike-once alpha neurons, exact "
             "spike-time gradients, learnable pulses)")
    config_type = ComsaConfig
    # the float row of parity is the discrete torch model (rebuild): it must agree exactly too
    exact_engines = ("reference", "lava-sim", "float")
    smoke_settings = ("data.dataset=digits", "data.train_limit=120", "data.test_limit=30",
                      "model.hidden=8", "model.pulses=3", "train.epochs=2",
                      "train.batch_size=32", "ann.enabled=false")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--published", metavar="NOISE,LATENCY,HIDDEN",
                            help="the authors' tuned hyperparameters for this condition, e.g. "
                                 "0.0,1,32 (75 published; --set still wins)")

    def cli_overrides(self, args: argparse.Namespace) -> list[str]:
        extra = []
        if args.published:
            parts = args.published.split(",")
            try:
                noise, latency, hidden = float(parts[0]), int(parts[1]), int(parts[2])
            except (ValueError, IndexError):
                raise ConfigError(f"--published takes NOISE,LATENCY,HIDDEN, e.g. 0.0,1,32; got "
                                  f"{args.published!r}") from None
            extra = published(noise, latency, hidden)
        return extra + super().cli_overrides(args)

    def run_name(self, cfg: ComsaConfig) -> str:
        return (f"{self.name}-{cfg.data.dataset}-h{cfg.model.hidden}-l{cfg.model.latency:g}"
                f"-n{cfg.data.noise:g}")

    def train(self, cfg: ComsaConfig, run_dir: Path, *, start: dict[str, Any] | None,
              show_progress: bool, log: Callable[[str], None]) -> dict[str, Any]:
        results = train_comsa(cfg, run_dir, start=start, show_progress=show_progress, log=log)
        return {k: v for k, v in results.items() if not k.startswith("_")}

    prune_metric = "val_mse"  # the validation MSE end_epoch measures after every epoch

    def search_space(self, cfg: ComsaConfig) -> dict[str, Any]:
        return search_space(cfg)

    def warm_starts(self, cfg: ComsaConfig) -> list[dict[str, str]]:
        return published_start(cfg)

    def sweep_objective(self, results: dict[str, Any]) -> float:
        """The best epoch's MSE on the VALIDATION split (held out of the training images;
        the test split stays untouched by the sweep)."""
        return float(results["metrics"]["validation"]["mse"])

    def format_results(self, results: dict[str, Any]) -> str:
        m = results["metrics"]
        fmt = "{:<26} {:>10} {:>10} {:>14}"
        lines = [f"Comsa AE {results['network']} on {results['dataset']} (latency "
                 f"{results['latency']:g}, noise {results['noise']:g}, {results['pulses']} "
                 f"pulses/layer, {results['epochs']} epoch(s), best on validation: epoch "
                 f"{results['best_epoch']})",
                 fmt.format("model", "test MSE", "pixel MSE", "silent outputs")]
        test = m["test"]
        lines.append(fmt.format("SNN", f"{test['mse']:.4f}", f"{test['pixel_mse']:.4f}",
                                f"{100 * test['silent_outputs']:.1f}%"))
        for key, label in (("ann_plain", "ANN (plain images)"),
                           ("ann_inverted", "ANN (inverted images)")):
            if key in m:
                lines.append(fmt.format(label, f"{m[key]['mse']:.4f}", "-", "-"))
        t = results["timing"]
        lines.append(f"training: {t['mean_seconds_per_epoch']:.1f} s/epoch, "
                     f"{t['train_samples_per_second']:.0f} samples/s ({t['device']}, "
                     f"{t['torch_threads']} threads, {t['dtype']}); hidden spikes/sample "
                     f"{test['hidden_spikes_per_sample']:.1f}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ deployment
    def export(self, run_dir: Path, ckpt: dict[str, Any]) -> FixedPointNetwork:
        """The epoch validation chose, quantized to the config's grid (quantize.py)."""
        cfg = config_io.load(ComsaConfig, run_dir / "config.toml")
        model = build_model(cfg, int(ckpt["in_neurons"]))
        best = (ckpt.get("trainer") or {}).get("best") or {}
        model.load_state_dict(best.get("state") or ckpt["model"])
        layers, report = quantize(model, cfg)
        grid = grid_for(cfg, layers=len(layers))
        data = data_mod.load_data(cfg.data, seed=stream_seed(cfg.train.seed, "noise"))
        metadata: dict[str, Any] = {
            "model_kind": self.name, "model_config": plain(cfg.model),
            "config_toml": config_io.dumps(cfg), "dataset": cfg.data.dataset,
            "seed": cfg.train.seed, "trained_epochs": int(ckpt["epoch"]),
            "quantization": report}
        results = run_dir / "results.json"
        if results.is_file():
            metadata["float_metrics"] = json.loads(results.read_text())["metrics"]["test"]
        net = FixedPointNetwork(layers, self._input_spec(grid, data.image_shape),
                                decoder=self._decoder(grid, cfg.model.latency),
                                metadata=metadata)
        _, t_out = discrete_model_times(net.layers, data.inputs["test"], grid)
        scores = output_scores(t_out, data.targets["test"], cfg.model.latency)
        quantized = {**scores, "samples": data.size("test")}
        return dataclasses.replace(net, metadata=dataclasses.replace(
            net.metadata, quantized_metrics=quantized))

    @staticmethod
    def _input_spec(grid: Grid, shape: tuple[int, ...]) -> InputSpec:
        return InputSpec(ENCODING, grid.num_steps, tuple(int(s) for s in shape),
                         {"dt": grid.dt})

    @staticmethod
    def _decoder(grid: Grid, latency: float) -> HostDecoder:
        return HostDecoder(kind="spike_time", config={"dt": grid.dt, "t0": grid.t0,
                                                      "latency": float(latency)})

    def require_scorable(self, net: FixedPointNetwork) -> None:
        self._grid(net)

    def _grid(self, net: FixedPointNetwork) -> Grid:
        """The export's grid, from its host decoder (checked: typed errors naming the key)."""
        dec = net.decoder
        if dec.kind != "spike_time":
            raise ExportError(f"this Comsa export's decoder is {dec.kind!r}, not 'spike_time': "
                              f"its output spikes cannot be read as times; re-export the run")
        for key in ("dt", "t0", "latency"):
            value = dec.config.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or (key == "dt" and value <= 0):
                raise ExportError(f"the export's decoder config {key!r} must be a finite "
                                  f"number{' > 0' if key == 'dt' else ''}, got {value!r}")
        grid = Grid(float(dec.config["dt"]), net.num_steps, len(net.layers))
        if not math.isclose(grid.t0, float(dec.config["t0"]), rel_tol=1e-12):
            raise ExportError(f"the export's decoder t0 = {dec.config['t0']!r} does not match "
                              f"its {len(net.layers)} layers at dt = {grid.dt!r}")
        return grid

    def rebuild(self, net: FixedPointNetwork) -> DiscreteComsaAE:
        """The discrete fixed-point model (the reference engine's spikes, in torch)."""
        return DiscreteComsaAE(net.layers, net.num_steps)

    def layer_outputs(self, model: DiscreteComsaAE, spikes: torch.Tensor
                      ) -> list[torch.Tensor]:
        return model(spikes)

    def inputs(self, net: FixedPointNetwork, *, split: str = "test", samples: int | None = None,
               dataset: str | None = None, data_dir: str | None = None,
               download: bool = False) -> ExportInputs:
        """The split as the training run loaded it (its limits and noise seed), first
        ``samples``, spiking on the export's grid."""
        check_split(split)
        cfg = self.export_config(net)
        grid = self._grid(net)
        overrides = {k: v for k, v in (("dataset", dataset), ("data_dir", data_dir)) if v}
        data_cfg = dataclasses.replace(cfg.data, download=download or cfg.data.download,
                                       **overrides)
        data = data_mod.load_data(data_cfg, seed=stream_seed(cfg.train.seed, "noise"))
        n = data.size(split) if samples is None else min(int(samples), data.size(split))
        spikes = input_spikes(data.inputs[split][:n], grid)
        context = {"times": data.inputs[split][:n], "image_shape": data.image_shape}
        return ExportInputs(spikes, data.labels[split][:n], 1.0 - data.targets[split][:n],
                            context, f"{data_cfg.dataset} {split}")

    def _times(self, net: FixedPointNetwork, spikes: np.ndarray) -> torch.Tensor:
        return output_times(spikes, self._grid(net))

    def score(self, net: FixedPointNetwork, inputs: ExportInputs, spikes: np.ndarray
              ) -> dict[str, float]:
        """The training run's metrics of the host-decoded output (training.output_scores)."""
        latency = float(net.decoder.config["latency"])
        target = torch.as_tensor(np.asarray(inputs.target), dtype=torch.float64)
        return output_scores(self._times(net, spikes), 1.0 - target, latency)

    def parity_details(self, net: FixedPointNetwork, inputs: ExportInputs,
                       layers: list[np.ndarray]) -> dict[str, Any]:
        """The continuous model beside the deployed one (parity.py): its score, and per layer
        the spike-step error histogram and the spikes gained, lost or past the horizon."""
        from spikecodec.train.families.comsa.parity import BINS, timing_report

        grid = self._grid(net)
        timing = timing_report(net, inputs.context["times"], layers, dt=grid.dt)
        target = torch.as_tensor(np.asarray(inputs.target), dtype=torch.float64)
        cont = output_scores(timing.pop("output_times"), 1.0 - target,
                             float(net.decoder.config["latency"]))
        text = [f"continuous model (exact spike times, the export's weights): mse "
                f"{cont['mse']:.4f}, silent outputs {100 * cont['silent_outputs']:.2f}%",
                "spike-step error of the reference vs the continuous model (steps of "
                f"dt = {grid.dt:g}; ends collect beyond):",
                f"{'layer':<10} {'compared':>9} " + " ".join(f"{b:>+6d}" for b in BINS)
                + f" {'gained':>7} {'lost':>6} {'past T':>7}"]
        for row in timing["layers"]:
            text.append(f"{row['layer']:<10} {row['compared']:>9} "
                        + " ".join(f"{row['histogram'][b]:>6}" for b in BINS)
                        + f" {row['gained']:>7} {row['lost']:>6} {row['past_horizon']:>7}")
        return {"continuous": cont, "layers": timing["layers"], "text": text}

    def decode(self, net: FixedPointNetwork, inputs: ExportInputs | None, spikes: np.ndarray
               ) -> np.ndarray:
        """Pixels ``1 - (t - l)`` per output neuron (background 0 where silent), float32."""
        latency = float(net.decoder.config["latency"])
        return (1.0 - observed(self._times(net, spikes), latency)).numpy().astype(np.float32)

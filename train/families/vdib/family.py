"""VDIB (Skatchkovsky, Simeone & Jang 2021) as a model family: every hook the commands call.

An export carries its training config (``metadata.config_toml``), so its inputs are drawn
exactly as :func:`~spikecodec.train.families.vdib.training.evaluate` draws them in quantized
mode: the split of the task the config describes, encoded in batches of
``train.eval_batch_size`` whose seeds are keyed by the batch start, and sample ``k`` of the split
is sample ``k`` of the batch a backend gets (the readout's PRNG keys its draws by it). On the
reference engine -- and Lava, spike for spike -- the deployed metrics therefore equal the
training run's quantized metrics.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikecodec.deploy.decoders import decode
from spikecodec.deploy.ir import FixedPointNetwork, InputSpec
from spikecodec.deploy.layers import DelayReadoutLayer, StochasticReadoutLayer
from spikecodec.errors import ConfigError
from spikecodec.train import config as config_io
from spikecodec.train.datasets import IMAGE_SHAPES
from spikecodec.train.families.base import ExportInputs, Family, check_split
from spikecodec.train.families.vdib import tasks
from spikecodec.train.families.vdib.config import (
    MODEL_KIND,
    TASKS,
    VDIBConfig,
    VDIBModelConfig,
    search_space,
)
from spikecodec.train.families.vdib.decoders import ANNDecoder
from spikecodec.train.families.vdib.model import VDIB, VDIBEncoder
from spikecodec.train.families.vdib.readout import StochasticReadout
from spikecodec.train.families.vdib.training import eval_batches, load_task, train_vdib
from spikecodec.train.quantize import dense_layer
from spikecodec.train.seeds import stream_seed


def readout_layer(readout: StochasticReadout, name: str = "readout") -> StochasticReadoutLayer:
    """The stochastic readout as our custom export layer (the integers of its quantized mode:
    :meth:`StochasticReadout.fixed_point`); with ``delays`` a ``delay_readout``."""
    m = {k: v.cpu().numpy().astype(np.int64) for k, v in readout.mantissas().items()}
    p = readout.fixed_point()
    fields = dict(name=name, weight=m["weight"], i_decay=p.du, v_decay=p.dv, fb_decay=p.dg,
                  fb_weight=m["feedback"], bias=m["bias"], lut=p.lut.cpu().numpy(),
                  lut_shift=p.lut_shift, lut_offset=p.lut_offset, seed=p.seed)
    if readout.cfg.delays:  # delay-basis synapses: Loihi 2 synaptic delays 0 .. D-1
        return DelayReadoutLayer(**fields, delay=readout.row_delay().cpu().numpy())
    return StochasticReadoutLayer(**fields)


class VDIBFamily(Family):
    name = MODEL_KIND
    title = "VDIB (Skatchkovsky et al. 2021 SNN encoder + ANN decoder)"
    config_type = VDIBConfig
    # the float row of parity is the model in its quantized mode (sigmoid table and the
    # counter-based PRNG): it must agree bit for bit too
    exact_engines = ("float", "reference", "lava-sim")
    smoke_settings = ("data.dataset=digits", "data.train_limit=120", "data.test_limit=40",
                      "model.hidden=16", "model.readout.neurons=8", "decoder.hidden=16",
                      "train.epochs=2", "train.batch_size=40")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--task", choices=TASKS, help="the task (default images)")
        super().add_arguments(parser)

    def cli_overrides(self, args: argparse.Namespace) -> list[str]:
        task = [f"data.task={args.task}"] if args.task else []
        return task + super().cli_overrides(args)

    def check_config(self, cfg: VDIBConfig) -> None:
        if cfg.decoder.window > cfg.data.num_steps:  # build_model says so too, after the data
            raise ConfigError(f"decoder.window ({cfg.decoder.window}) must be <= "
                              f"data.num_steps ({cfg.data.num_steps}); 0 decodes the whole T")

    def run_name(self, cfg: VDIBConfig) -> str:
        d = cfg.data
        return f"{self.name}-{d.task}" + ("" if d.task == "blobs" else f"-{d.dataset}")

    def train(self, cfg: VDIBConfig, run_dir: Path, *, start: dict[str, Any] | None,
              show_progress: bool, log: Callable[[str], None]) -> dict[str, Any]:
        results = train_vdib(cfg, run_dir, start=start, show_progress=show_progress, log=log)
        return {k: v for k, v in results.items() if not k.startswith("_")}

    prune_metric = "nll"  # the decoder's training NLL, the epoch's mean

    def search_space(self, cfg: VDIBConfig) -> dict[str, Any]:
        return search_space(cfg)

    def sweep_objective(self, results: dict[str, Any]) -> float:
        """The float encoder's reconstruction MSE on the TEST split (this family holds out no
        validation split, so a sweep selects on the data it reports: say so with its numbers)."""
        return float(results["metrics"]["float"]["mse"])

    def format_results(self, results: dict[str, Any]) -> str:
        m = results["metrics"]
        accuracy = "position_accuracy" in m["float"]
        fmt = "{:<10} {:>9} {:>22}" + (" {:>13}" if accuracy else "")
        where = results["task"] + ("" if results["task"] == "blobs"
                                   else f"/{results['dataset']}")
        lines = [f"VDIB {results['network']} on {where} ({results['encoding']}, "
                 f"T={results['num_steps']}, {results['epochs']} epoch(s), {results['rule']}, "
                 f"{results['train_samples']} train / {results['test_samples']} test samples)",
                 fmt.format("encoder", "test MSE", "readout spikes/sample",
                            *(["position acc."] if accuracy else []))]
        for mode in ("float", "quantized"):
            row = m[mode]
            lines.append(fmt.format(mode, f"{row['mse']:.4f}",
                                    f"{row['readout_spikes_per_sample']:.1f}",
                                    *([f"{row['position_accuracy']:.3f}"] if accuracy else [])))
        if "chance" in m:  # runs before this field existed have none
            lines.append(fmt.format("chance", f"{m['chance']['mse']:.4f}", "(input ignored)",
                                    *([f"{m['chance']['position_accuracy']:.3f}"]
                                      if accuracy else [])))
        if "raw_inputs" in m:  # blobs: the same decoder on the raw input spikes
            lines.append(fmt.format("raw inputs", f"{m['raw_inputs']['mse']:.4f}",
                                    "(decoder on inputs)",
                                    *([f"{m['raw_inputs']['position_accuracy']:.3f}"]
                                      if accuracy else [])))
        t = results["timing"]
        lines.append(f"training: {t['mean_seconds_per_epoch']:.1f} s/epoch ({t['device']}, "
                     f"{t['torch_threads']} threads)")
        return "\n".join(lines)

    # ------------------------------------------------------------------ deployment
    def export(self, run_dir: Path, ckpt: dict[str, Any]) -> FixedPointNetwork:
        """The encoder quantized, the ANN decoder carried along; no dataset is loaded."""
        cfg = config_io.load(VDIBConfig, run_dir / "config.toml")
        in_neurons = int(ckpt["in_neurons"])
        model = VDIB(VDIBEncoder(in_neurons, cfg.model), ANNDecoder(ckpt["decoder_config"]))
        model.load_state_dict(ckpt["model"])
        d = cfg.data
        if d.task == "images":  # the task encodes images; the export says how
            shape = IMAGE_SHAPES.get(d.dataset, (in_neurons,))
            params = {"max_rate": d.max_rate} if d.encoding == "poisson_rate" else {}
            spec = InputSpec(d.encoding, d.num_steps, shape if np.prod(shape) == in_neurons
                             else (in_neurons,), params)
        else:  # blobs and events are spikes already
            spec = InputSpec("spikes", d.num_steps, (in_neurons,), {})
        metadata: dict[str, Any] = {"task": d.task, "dataset": d.dataset, "seed": cfg.train.seed,
                                    "eval_seed": stream_seed(cfg.train.seed, "eval_inputs"),
                                    "eval_batch_size": cfg.train.eval_batch_size,
                                    "config_toml": config_io.dumps(cfg),
                                    "trained_epochs": ckpt["epoch"]}
        results = run_dir / "results.json"
        if results.is_file():
            metrics = json.loads(results.read_text())["metrics"]
            metadata["float_metrics"] = metrics["float"]
            metadata["quantized_metrics"] = metrics["quantized"]
        return self.to_network(model, spec, metadata)

    def to_network(self, model: VDIB, spec: InputSpec,
                   metadata: dict[str, Any] | None = None) -> FixedPointNetwork:
        """Hidden CUBA layers and the stochastic readout in fixed point, the decoder as is."""
        enc = model.encoder
        layers = [dense_layer(block, f"hidden{i}") for i, block in enumerate(enc.hidden)]
        layers.append(readout_layer(enc.readout))
        meta = {"model_kind": self.name, "model_config": config_io.compact_dict(enc.cfg),
                **(metadata or {})}
        return FixedPointNetwork(layers, spec, decoder=model.decoder.export(), metadata=meta)

    def rebuild(self, net: FixedPointNetwork) -> VDIB:
        cfg = config_io.from_dict(VDIBModelConfig, net.metadata.model_config)
        last = net.layers[-1]
        cfg = dataclasses.replace(cfg, readout=dataclasses.replace(cfg.readout,
                                                                   seed=int(last.seed)))
        encoder = VDIBEncoder(net.in_features, cfg, generator=torch.Generator().manual_seed(0))
        p = encoder.readout.fixed_point()
        if (p.du, p.dv, p.dg, p.lut_shift, p.lut_offset) != (
                last.i_decay, last.v_decay, last.fb_decay, last.lut_shift, last.lut_offset) \
                or not np.array_equal(p.lut.numpy(), last.lut):
            raise ConfigError(f"{last.name}: the export's readout decays or sigmoid table "
                              f"differ from what its model_config gives; edited by hand?")
        want = encoder.readout.row_delay().numpy() if cfg.readout.delays else None
        have = getattr(last, "delay", None)
        if (want is None) != (have is None) or (want is not None and not np.array_equal(
                want, np.asarray(have))):
            raise ConfigError(f"{last.name}: the export's synaptic delays differ from the taps "
                              f"0..D-1 its model_config gives (model.readout.delays = "
                              f"{cfg.readout.delays}); edited by hand?")
        with torch.no_grad():
            for block, layer in zip(encoder.hidden, net.layers[:-1], strict=True):
                block.weight.copy_(torch.from_numpy(np.array(layer.weight, dtype=np.float32))
                                   / cfg.scale)
            ro, s = encoder.readout, cfg.readout.scale
            ro.weight.copy_(torch.from_numpy(np.array(last.weight, dtype=np.float32)) / s)
            ro.bias.copy_(torch.from_numpy(np.array(last.bias, dtype=np.float32)) / s)
            ro.feedback.copy_(torch.from_numpy(np.array(last.fb_weight, dtype=np.float32)) / s)
        decoder = ANNDecoder.from_export(net.decoder) if net.decoder.kind == "ann" \
            else None
        return VDIB(encoder, decoder)

    def layer_outputs(self, model: VDIB, spikes: torch.Tensor) -> list[torch.Tensor]:
        """Hidden spikes and the readout's in quantized mode (the deployed arithmetic, so the
        parity report compares like with like: the float mode samples with torch's RNG)."""
        out = model.encoder(spikes, mode="quantized")
        return [h.permute(1, 2, 0) for h in out.hidden] + [out.readout.spikes]

    def inputs(self, net: FixedPointNetwork, *, split: str = "test", samples: int | None = None,
               dataset: str | None = None, data_dir: str | None = None,
               download: bool = False) -> ExportInputs:
        """The first ``samples`` of ``split`` (all by default) of the export's task, encoded;
        ``dataset``/``data_dir``/``download`` replace the config's (files may live elsewhere
        on the machine that deploys)."""
        check_split(split)
        cfg = self.export_config(net)
        data = {"dataset": dataset or cfg.data.dataset,
                "download": download or cfg.data.download,
                "data_dir": data_dir or cfg.data.data_dir}
        if split == "test":  # test data do not depend on the training split: load one of it
            data.update(train_limit=1, blobs_train=1)
        task = load_task(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **data)))
        if task.in_features != net.in_features or task.num_steps != net.num_steps:
            raise ConfigError(f"the {data['dataset']} {task.name} task gives inputs of "
                              f"{task.in_features} neurons x {task.num_steps} steps but the "
                              f"export takes {net.in_features} x {net.num_steps}")
        stop = task.size(split) if samples is None else min(samples, task.size(split))
        chunks = [x for _, x, _ in eval_batches(task, cfg, split, stop)]
        labels = task.labels[split]
        where = task.name + ("" if task.name == "blobs" else f"/{data['dataset']}")
        return ExportInputs(torch.cat(chunks)[:stop], None if labels is None else labels[:stop],
                            task.references[split][:stop], (task, cfg), f"{where} {split}")

    def require_scorable(self, net: FixedPointNetwork) -> None:
        """Raise :class:`~spikecodec.errors.ExportError` (decode's message) unless ``net``
        carries a usable host decoder -- before any backend time is spent."""
        readout = net.layers[-1].out_features
        decode(net.decoder, np.zeros((1, readout, net.num_steps), np.uint8),
               num_steps=net.num_steps)

    def decode(self, net: FixedPointNetwork, inputs: ExportInputs | None, spikes: np.ndarray
               ) -> np.ndarray:
        """Host decoder on readout spikes ``(n, N, T)``, in evaluate()'s batches (same
        floats)."""
        batch = inputs.context[1].train.eval_batch_size if inputs is not None else 4096
        return decode(net.decoder, spikes, num_steps=net.num_steps, batch_size=batch)

    def score(self, net: FixedPointNetwork, inputs: ExportInputs, spikes: np.ndarray
              ) -> dict[str, float]:
        """The task's metrics of the host-decoded readout spikes (``mse``; blobs also
        ``position_accuracy``) and readout spikes per sample."""
        estimates = torch.from_numpy(self.decode(net, inputs, spikes))
        out = tasks.score(inputs.context[0], estimates, inputs.target)
        out["readout_spikes_per_sample"] = float(np.asarray(spikes).sum()) / len(spikes)
        return out

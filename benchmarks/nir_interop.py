"""Interoperability figures (issue 13): NIR out to snnTorch/Norse, NIR in from snnTorch, the
INRC bundle script against the reference engine.

    .venv/bin/python benchmarks/nir_interop.py --run-dir RUN      # a Roy MNIST run (784-196-784)

A. Our export -> NIR -> snnTorch's and Norse's importers (dt = 1e-4), on the first 100 MNIST
   test digits (the export's own Poisson encoding and seed): output-spike agreement with our
   float training model (= the fixed-point network for Roy et al.), with our float simulation
   of the NIR graph, and the reconstruction MSE of each.
B. An snnTorch network (784-128-10 Synaptic neurons, alpha 0.5/0.8, beta 0.9/0.95) trained here
   to classify MNIST for a few hundred steps, written by snnTorch's ``export_to_nir``, imported
   (``import_nir``) and quantized: per-layer rounding and agreement with the graph's float
   simulation, output agreement and accuracy against snnTorch's own simulation, and reference
   engine == Lava simulator on the same 100 test digits.
C. ``spikecodec bundle`` of both committed exports; the bundled script on the CPU simulator vs
   the reference engine on their golden inputs.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import nir
import numpy as np
import torch
from _common import (
    DEFAULT_DATA_DIR,
    REPO_ROOT,
    RESULTS_DIR,
    RUNS_DIR,
    environment,
    write_json_atomic,
)

from spikecodec.deploy.backends import run
from spikecodec.deploy.hdf5 import read_hdf5
from spikecodec.deploy.metrics import image_mse
from spikecodec.deploy.nirgraph import DT, parse_graph, simulate, to_nir, write_graph
from spikecodec.workflows.exporting import family_of
from spikecodec.workflows.interop import import_nir
from spikecodec.workflows.parity import float_layers


def agree(a: np.ndarray, b: np.ndarray) -> float:
    return float((a == b).mean())


def snntorch_sim(graph, spikes: np.ndarray) -> np.ndarray:
    from snntorch.import_nir import import_from_nir

    module = import_from_nir(graph)
    x = torch.as_tensor(spikes, dtype=torch.float32)
    with torch.no_grad():
        return torch.stack([module(x[..., t])[0] for t in range(x.shape[-1])],
                           -1).numpy().astype(np.uint8)


def norse_sim(graph, spikes: np.ndarray) -> np.ndarray:
    import norse.torch as norse

    module = norse.from_nir(graph, dt=DT)
    x = torch.as_tensor(spikes, dtype=torch.float32)
    state, outs = None, []
    with torch.no_grad():
        for t in range(x.shape[-1]):
            z, state = module(x[..., t], state)
            outs.append(z)
    return torch.stack(outs, -1).numpy().astype(np.uint8)


def part_a(run_dir: Path, samples: int, work: Path) -> dict:
    net = read_hdf5(run_dir / "export.h5")
    family = family_of(net)
    inputs = family.inputs(net, samples=samples, data_dir=None)
    x = inputs.spikes.numpy().astype(np.uint8)
    fixed = run(net, x, probe=True).spikes
    float_model = float_layers(net, x)[-1]
    path = write_graph(to_nir(net), work / "roy_mnist.nir")
    graph = nir.read(str(path))
    float_nir = simulate(parse_graph(graph), x)[-1]
    snn = snntorch_sim(graph, x)
    nrs = norse_sim(nir.read(str(path)), x)
    images = torch.as_tensor(np.asarray(inputs.target), dtype=torch.float32)

    def mse(spikes):
        return float(image_mse(images, torch.as_tensor(spikes, dtype=torch.float32)).mean())

    from spikecodec.train.plots import reconstruction_grid

    side = int(round(np.sqrt(net.out_features)))
    reconstruction_grid([("image", np.asarray(inputs.target)[:8]),
                         ("ours (float)", float_model[:8].sum(-1)),
                         ("snnTorch", snn[:8].sum(-1)), ("Norse", nrs[:8].sum(-1))],
                        (side, side), RESULTS_DIR / "nir_interop_reconstructions.png",
                        title="our MNIST export as NIR, simulated by snnTorch and Norse "
                              "(output spike counts)")
    return {
        "network": " -> ".join([str(net.in_features)] + [str(layer.out_features)
                                                         for layer in net.layers]),
        "samples": samples, "data": inputs.description, "dt": DT,
        "snntorch_vs_float_model": agree(snn, float_model),
        "snntorch_vs_float_nir": agree(snn, float_nir),
        "norse_vs_float_nir": agree(nrs, float_nir),
        "norse_vs_snntorch": agree(nrs, snn),
        "float_nir_vs_fixed": agree(float_nir, fixed),
        "float_model_vs_fixed": agree(float_model, fixed),
        "samples_identical_snntorch_vs_float_model": int(
            (snn == float_model).reshape(samples, -1).all(1).sum()),
        "output_spikes": {"float_model": int(float_model.sum()), "snntorch": int(snn.sum()),
                          "norse": int(nrs.sum()), "float_nir": int(float_nir.sum())},
        "mse": {"float_model": mse(float_model), "snntorch": mse(snn), "norse": mse(nrs)},
    }


def mnist(data_dir: Path):
    with np.load(data_dir / "mnist" / "mnist.npz") as f:
        return (f["x_train"].reshape(-1, 784) / 255.0, f["y_train"],
                f["x_test"].reshape(-1, 784) / 255.0, f["y_test"])


def part_b(data_dir: Path, samples: int, steps: int, iters: int, work: Path) -> dict:
    import snntorch as snn
    from snntorch import utils as snn_utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    xtr, ytr, xte, yte = mnist(data_dir)

    def synaptic(n, alpha, beta, **kw):  # snnTorch 1.0 exports per-neuron parameters only
        return snn.Synaptic(alpha=torch.full((n,), alpha), beta=torch.full((n,), beta),
                            threshold=torch.ones(n), init_hidden=True, reset_mechanism="zero",
                            **kw)

    model = torch.nn.Sequential(torch.nn.Linear(784, 128, bias=False), synaptic(128, 0.5, 0.9),
                                torch.nn.Linear(128, 10, bias=False),
                                synaptic(10, 0.8, 0.95, output=True))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(1)

    def encode(images):
        p = torch.as_tensor(images, dtype=torch.float32)
        return (torch.rand(*p.shape, steps, generator=gen) < p[..., None]).float()

    def forward(x):
        snn_utils.reset(model)
        outs = []
        for t in range(x.shape[-1]):
            out = model(x[..., t])
            outs.append(out[0] if isinstance(out, tuple) else out)  # output=True: (spk, ...)
        return torch.stack(outs, -1)

    tic = time.perf_counter()
    for _ in range(iters):
        idx = torch.randint(0, len(xtr), (64,), generator=gen)
        counts = forward(encode(xtr[idx.numpy()])).sum(-1)
        loss = torch.nn.functional.cross_entropy(counts, torch.as_tensor(ytr[idx.numpy()]).long())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    train_seconds = time.perf_counter() - tic
    graph = export_to_nir(model, torch.zeros(784))
    path = work / "snntorch_mnist.nir"
    nir.write(str(path), graph)
    x = encode(xte[:samples]).numpy().astype(np.uint8)
    labels = yte[:samples]
    source = snntorch_sim(nir.read(str(path)), x)
    result = import_nir(path, work / "snntorch_mnist.h5", spikes=x)
    ref = run(result.net, x, probe=True)
    tic = time.perf_counter()
    lava = run(result.net, x, backend="lava-sim", probe=True)
    lava_seconds = time.perf_counter() - tic
    from spikecodec.train.plots import raster

    raster([("snnTorch (float)", source[0]), ("Loihi fixed point", ref.spikes[0]),
            ("differences", (source[0] != ref.spikes[0]).astype(np.uint8))],
           RESULTS_DIR / "nir_interop_raster.png",
           title=f"snnTorch-written graph, imported: output layer, test digit {labels[0]}")
    lava_equal = [bool(np.array_equal(a, b)) for a, b in zip(ref.layers, lava.layers,
                                                             strict=True)]
    samples_equal = int(np.all([(a == b).reshape(samples, -1).all(1)
                                for a, b in zip(ref.layers, lava.layers, strict=True)],
                               axis=0).sum())
    return {
        "network": "784 -> 128 -> 10 (snnTorch Synaptic, alpha 0.5/0.8, beta 0.9/0.95)",
        "training": {"iterations": iters, "batch": 64, "steps": steps, "lr": 2e-3,
                     "seconds": train_seconds, "loss_last": float(loss.detach())},
        "samples": samples,
        "rounding": result.report["layers"],
        "fixed_vs_snntorch_output": agree(ref.spikes, source),
        "samples_identical_fixed_vs_snntorch": int(
            (ref.spikes == source).reshape(samples, -1).all(1).sum()),
        "accuracy_snntorch": float((source.sum(-1).argmax(1) == labels).mean()),
        "accuracy_fixed": float((ref.spikes.sum(-1).argmax(1) == labels).mean()),
        "predictions_equal": int((source.sum(-1).argmax(1) ==
                                  ref.spikes.sum(-1).argmax(1)).sum()),
        "reference_eq_lava_per_layer": lava_equal,
        "reference_lava_samples_identical": samples_equal,
        "lava_seconds": lava_seconds,
    }


def part_c(work: Path) -> dict:
    from spikecodec.workflows.bundle import make_bundle

    out = {}
    for name in ("roy_ae_digits", "vdib_digits"):
        folder = REPO_ROOT / "netx_exports" / name
        with np.load(folder / "golden.npz") as g:
            x = g["input"]
        target = work / f"bundle_{name}"
        make_bundle(folder / "export.h5", target, input_spikes=x)
        proc = subprocess.run([sys.executable, str(target / "run_export.py"), "--input",
                               str(target / "input.npy"), "--output", str(target / "out.npz"),
                               "--target", "sim", "--probe"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        net = read_hdf5(folder / "export.h5")
        ref = run(net, x, probe=True)
        with np.load(target / "out.npz") as got:
            layers = [got[f"layer_{i}"] for i in range(net.num_netx)]
        equal = np.all([(a == b).reshape(len(x), -1).all(1)
                        for a, b in zip(layers, ref.layers[:net.num_netx], strict=True)], 0)
        out[name] = {"layers_run": [layer.name for layer in net.layers[:net.num_netx]],
                     "samples": len(x), "samples_identical": int(equal.sum()),
                     "spikes": int(sum(a.sum() for a in layers))}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", default=str(RUNS_DIR / "roy-mnist-nir"))
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--steps", type=int, default=25, help="T of the snnTorch network")
    parser.add_argument("--iters", type=int, default=300, help="snnTorch training steps")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = RUNS_DIR / f"nir-interop-{time.strftime('%Y%m%d-%H%M%S')}"
    work.mkdir(parents=True)
    result = {"command": "benchmarks/nir_interop.py " + " ".join(argv or sys.argv[1:]),
              "A_export_to_snntorch_norse": part_a(Path(args.run_dir), args.samples, work),
              "B_import_from_snntorch": part_b(Path(args.data_dir), args.samples, args.steps,
                                               args.iters, work),
              "C_bundle_script": part_c(work),
              "environment": environment()}
    path = write_json_atomic(RESULTS_DIR / "nir_interop.json", result)
    import json

    print(json.dumps({k: v for k, v in result.items() if k != "environment"}, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

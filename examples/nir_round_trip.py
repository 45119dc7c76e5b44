"""NIR both ways: an snnTorch network into spikecodec (quantized to Loihi 2), and our export
out to snnTorch.

    python examples/nir_round_trip.py [--out DIR]

Same as ``spikecodec import-nir snn.nir --out snn.h5`` and ``spikecodec export EXPORT
--format nir``. NIR time constants are read and written for dt = 1e-4 (snnTorch's step).
"""
import argparse
import tempfile
from pathlib import Path

import nir
import numpy as np
import snntorch as snn
import torch
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir

import spikecodec as sc

parser = argparse.ArgumentParser()
parser.add_argument("--out", default=tempfile.mkdtemp(prefix="spikecodec-example-"))
out = Path(parser.parse_args().out)
torch.manual_seed(0)


def synaptic(n, alpha, beta, **kw):  # snnTorch 1.0 exports only per-neuron parameters
    return snn.Synaptic(alpha=torch.full((n,), alpha), beta=torch.full((n,), beta),
                        threshold=torch.ones(n), init_hidden=True, reset_mechanism="zero", **kw)


def simulate_snntorch(graph, spikes):
    module = import_from_nir(graph)
    x = torch.as_tensor(spikes, dtype=torch.float32)
    with torch.no_grad():
        return torch.stack([module(x[..., t])[0] for t in range(x.shape[-1])], -1).numpy()


# 1. snnTorch -> NIR -> spikecodec
model = torch.nn.Sequential(torch.nn.Linear(30, 20, bias=False), synaptic(20, 0.5, 0.9),
                            torch.nn.Linear(20, 8, bias=False), synaptic(8, 0.5, 0.9, output=True))
nir.write(str(out / "snn.nir"), export_to_nir(model, torch.zeros(30)))
spikes = (np.random.default_rng(0).random((20, 30, 40)) < 0.3).astype(np.uint8)
imported = sc.import_nir(out / "snn.nir", out / "snn.h5", spikes=spikes)
for row in imported.report["layers"]:
    print(f"{row['layer']}: iDecay {row['i_decay']['used']}, vDecay {row['v_decay']['used']}, "
          f"vThMant {row['v_th_mant']}, agreement with float {row['spike_agreement']:.2%}")
source = simulate_snntorch(nir.read(str(out / "snn.nir")), spikes)
fixed = sc.run(imported.net, spikes).spikes
print(f"Loihi fixed point vs snnTorch: {np.mean(fixed == source):.2%} of spikes agree")

# 2. spikecodec -> NIR -> snnTorch
export = Path(__file__).resolve().parents[1] / "netx_exports" / "roy_ae_digits" / "export.h5"
net = sc.read_export(export)
sc.write_nir(net, out / "roy.nir")
x = (np.random.default_rng(1).random((10, 64, 15)) < 0.3).astype(np.uint8)
theirs = simulate_snntorch(nir.read(str(out / "roy.nir")), x)
ours = sc.run(net, x).spikes
print(f"snnTorch on our graph vs our fixed point: {np.mean(theirs == ours):.2%} agree")

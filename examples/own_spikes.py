"""Your own spikes through an export: run, probe a hidden layer, score against a target.

    python examples/own_spikes.py [--out DIR]

Same as ``spikecodec run EXPORT --input spikes.npy --probe encoder`` and ``spikecodec eval
EXPORT --input spikes.npy --metric count_mse``.
"""
import argparse
import tempfile
from pathlib import Path

import numpy as np

import spikecodec as sc

EXPORT = Path(__file__).resolve().parents[1] / "netx_exports" / "roy_ae_digits" / "export.h5"

parser = argparse.ArgumentParser()
parser.add_argument("--out", default=tempfile.mkdtemp(prefix="spikecodec-example-"))
out = Path(parser.parse_args().out)

net = sc.read_export(EXPORT)  # a 64-16-64 autoencoder trained on 8x8 digits, T = 15
rng = np.random.default_rng(0)
spikes = (rng.random((8, net.in_features, net.num_steps)) < 0.2).astype(np.uint8)
np.save(out / "spikes.npy", spikes)  # (batch, neurons, time) 0/1: what --input reads

spikes = sc.read_spikes(out / "spikes.npy")
result = sc.run(net, spikes, probe=True)  # every layer's spikes
print(f"hidden spikes per sample {result.layers[0].sum() / len(spikes):.1f}, "
      f"output {result.spikes.sum() / len(spikes):.1f}")
metrics = sc.evaluate_spikes(net, spikes, metric="count_mse")  # target: the input itself
print(f"count_mse of the reconstruction {metrics['count_mse']:.3f}")

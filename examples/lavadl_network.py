"""A lava-dl (SLAYER) network: ``slayer.block.cuba.Dense`` blocks to a spikecodec export.

    python examples/lavadl_network.py [--out DIR] [--lava]

With ``--lava`` the export also runs on the Lava CPU simulator (a few seconds to start).
"""
import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from lava.lib.dl import slayer

import spikecodec as sc

parser = argparse.ArgumentParser()
parser.add_argument("--out", default=tempfile.mkdtemp(prefix="spikecodec-example-"))
parser.add_argument("--lava", action="store_true")
args = parser.parse_args()
torch.manual_seed(0)

neuron = {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.03}
model = torch.nn.Sequential(
    slayer.block.cuba.Dense(neuron, 32, 24, weight_scale=3, delay_shift=False),
    slayer.block.cuba.Dense({**neuron, "current_decay": 1.0}, 24, 10, weight_scale=3,
                            delay_shift=False))
x = (torch.rand(4, 32, 20) < 0.3).float()
with torch.no_grad():
    theirs = model(x).numpy().astype(np.uint8)

net = sc.quantize(model, num_steps=20)
print(net.summary())
path = sc.write_export(net, Path(args.out) / "slayer.h5")
ours = sc.run(net, x).spikes
assert np.array_equal(ours, theirs)
print(f"wrote {path}; reference engine == SLAYER: {int(ours.sum())} output spikes")
if args.lava:
    assert np.array_equal(sc.run(net, x, backend="lava-sim").spikes, theirs)
    print("Lava simulator == SLAYER")

"""Your own network: train a small chain of CubaDense blocks on your data, quantize, export.

    python examples/own_network.py [--out DIR]

The blocks' forward pass is already Loihi's integer arithmetic, so the export's spikes equal
the trained model's (checked at the end).
"""
import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

import spikecodec as sc
from spikecodec.train.blocks import CubaConfig, CubaDense

parser = argparse.ArgumentParser()
parser.add_argument("--out", default=tempfile.mkdtemp(prefix="spikecodec-example-"))
out = Path(parser.parse_args().out)
torch.manual_seed(0)

# toy data: 20 input channels, two classes firing on different halves
x = torch.zeros(64, 20, 16)
labels = torch.randint(0, 2, (64,))
for i, c in enumerate(labels):
    x[i, c * 10:(c + 1) * 10] = (torch.rand(10, 16) < 0.4).float()

model = torch.nn.Sequential(
    CubaDense(20, 12, CubaConfig(current_decay=0.5, voltage_decay=0.1), weight_scale=2.0),
    CubaDense(12, 2, CubaConfig(current_decay=1.0, voltage_decay=0.2), weight_scale=2.0))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
for _ in range(30):  # rate-coded classification: the right neuron should fire most
    counts = model(x).sum(-1)
    loss = torch.nn.functional.cross_entropy(counts, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
with torch.no_grad():
    float_out = model(x)
accuracy = (float_out.sum(-1).argmax(1) == labels).float().mean().item()
print(f"training accuracy {accuracy:.2f}")

net = sc.quantize(model, num_steps=16, names=["hidden", "out"])
path = sc.write_export(net, out / "mine.h5")
deployed = sc.run(sc.read_export(path), x.numpy().astype(np.uint8)).spikes
assert np.array_equal(deployed, float_out.numpy().astype(np.uint8))
print(f"wrote {path}; deployed spikes equal the trained model's")
print(sc.check(net)["ok"] and "fits Loihi 2")

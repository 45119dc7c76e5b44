"""Training throughput of the Roy et al. 2019 AE-SNN: spikecodec vs lava-dl SLAYER vs a plain loop.

One workload for every contender: 784-H-784 CUBA LIF (current decay 1, voltage decay 0.1,
threshold 1, weight scale 256), batch 100, T=15 steps of Poisson-coded MNIST (random images when
MNIST is not on disk). One training step = forward + XOR membrane-potential loss
(``spikecodec.train.losses.MembranePotentialLoss`` on output voltage, output spikes, input
spikes) + backward + one Adam step (lr 2e-3, weight decay 1e-4, as ``train_roy_ae``).

Contenders, all starting from the same (quantized) weights:

* ``spikecodec``: ``RoyAE`` (integer-exact fused forward, hand-written BPTT; its neuron loop in
  C where a C compiler is at hand, ``spikecodec.train.native_lif``, else in torch: the header
  says which; ``SPIKECODEC_NATIVE=0`` forces the torch loop);
* ``slayer``: two ``lava.lib.dl.slayer.block.cuba.Dense`` blocks (``delay_shift=False``); the
  output layer runs ``neuron.dynamics(synapse(x))`` for its pre-reset voltage and
  ``neuron.spike(voltage)`` for its spikes -- what ``block.forward`` does, keeping the voltage;
* ``plain-loop``: float weights, a Python loop over T with autograd, reset not differentiated,
  sigmoid surrogate (slope 1) in a small ``autograd.Function``.

Steps are interleaved round-robin (one step of each contender per round) after a warm-up, so slow
drifts of the machine hit all contenders alike; the median step time is reported. Input spikes
are drawn before timing from a pool of batches (encoding is not timed). Finally the forward
spikes of spikecodec and SLAYER are compared on one batch, with the initial weights and with the
weights spikecodec reached after the timed steps; both must agree on 100 % of the spikes.

    .venv/bin/python benchmarks/roy_training_speed.py [--steps 30] [--threads N]

With other work on the machine, compare the speed-up columns (all contenders share the load,
step by step) rather than the milliseconds, and prefer ``--threads 1``: torch's two threads stall
whenever one of them is descheduled, which makes 2-thread figures under load meaningless.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from _common import DEFAULT_DATA_DIR, RESULTS_DIR, environment, markdown_table, write_json_atomic

from spikecodec.errors import DatasetNotFoundError
from spikecodec.runtime import tune_allocator
from spikecodec.train import native_lif
from spikecodec.train.datasets import load_images
from spikecodec.train.encoding import poisson_rate
from spikecodec.train.families.roy.model import RoyAE, RoyAEModelConfig
from spikecodec.train.losses import MembranePotentialLoss

N_IN = 784
LR, WEIGHT_DECAY = 2e-3, 1e-4  # TrainConfig defaults
POOL = 8  # distinct input batches, cycled


@dataclass(frozen=True)
class Workload:
    hidden: int = 196
    batch: int = 100
    num_steps: int = 15  # T
    threshold: float = 1.0
    leak: float = 0.1  # voltage decay; current decay is 1
    scale: int = 256  # weight mantissa = weight * scale (RoyAEModelConfig default)
    seed: int = 0


# --- input -------------------------------------------------------------------------------------

def input_pool(w: Workload, data_dir: Path) -> tuple[list[torch.Tensor], str]:
    """``POOL`` Poisson spike batches ``(batch, 784, T)`` and a note on where images came from."""
    n = POOL * w.batch
    try:
        images = load_images("mnist", "train", data_dir=data_dir, limit=n).images
        source = f"MNIST train[:{n}] from {data_dir}"
    except DatasetNotFoundError:
        images = torch.rand(n, N_IN, generator=torch.Generator().manual_seed(w.seed))
        source = "random images U(0, 1) (MNIST not found)"
    batches = [poisson_rate(images[i * w.batch:(i + 1) * w.batch], w.num_steps, max_rate=1.0,
                            seed=w.seed + i) for i in range(POOL)]
    return batches, source


# --- contenders: each returns (model, step(x) -> loss) -------------------------------------------

def make_ours(w: Workload) -> RoyAE:
    cfg = RoyAEModelConfig(hidden=w.hidden, threshold=w.threshold, leak=w.leak, scale=w.scale)
    return RoyAE(N_IN, cfg, seed=w.seed)


def slayer_neuron_params(w: Workload) -> dict:
    return {"threshold": w.threshold, "current_decay": 1.0, "voltage_decay": w.leak,
            "scale": w.scale}


class SlayerAE(torch.nn.Module):
    """Two SLAYER CUBA Dense blocks; ``forward`` returns (hidden, spikes, voltage) ``(B, N, T)``."""

    def __init__(self, w: Workload, weights: tuple[torch.Tensor, torch.Tensor]):
        super().__init__()
        with contextlib.redirect_stdout(sys.stderr):  # keep lava-dl's import banner off stdout
            from lava.lib.dl import slayer

        params = slayer_neuron_params(w)
        self.encoder = slayer.block.cuba.Dense(params, N_IN, w.hidden, delay_shift=False)
        self.decoder = slayer.block.cuba.Dense(params, w.hidden, N_IN, delay_shift=False)
        with torch.no_grad():
            for block, weight in ((self.encoder, weights[0]), (self.decoder, weights[1])):
                block.synapse.weight.copy_(weight.reshape(block.synapse.weight.shape))

    def forward(self, x: torch.Tensor):
        hidden = self.encoder(x)
        _, voltage = self.decoder.neuron.dynamics(self.decoder.synapse(hidden))  # pre-reset
        spikes = self.decoder.neuron.spike(voltage)
        return hidden, spikes, voltage


class _SigmoidSpike(torch.autograd.Function):
    """Heaviside forward, ``slope * sig(slope x) (1 - sig(slope x))`` backward; ``x = v - th``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float):  # noqa: D401
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        sig = torch.sigmoid(ctx.slope * x)
        return grad * ctx.slope * sig * (1.0 - sig), None


class PlainLoopAE(torch.nn.Module):
    """Float LIF ``v = (1 - leak) v + W s_in``, spike when ``v > th``, reset to 0 (not
    differentiated); one Python iteration per time step, autograd records every op."""

    def __init__(self, w: Workload, weights: tuple[torch.Tensor, torch.Tensor]):
        super().__init__()
        self.w1 = torch.nn.Parameter(weights[0].clone())
        self.w2 = torch.nn.Parameter(weights[1].clone())
        self.keep = 1.0 - w.leak
        self.threshold = w.threshold

    def forward(self, x: torch.Tensor):
        v1 = x.new_zeros(x.shape[0], self.w1.shape[0])
        v2 = x.new_zeros(x.shape[0], self.w2.shape[0])
        hidden, spikes, voltage = [], [], []
        for t in range(x.shape[-1]):
            v1 = self.keep * v1 + x[..., t] @ self.w1.t()  # decay, integrate
            s1 = _SigmoidSpike.apply(v1 - self.threshold, 1.0)  # fire
            v1 = v1 * (1.0 - s1.detach())  # reset
            v2 = self.keep * v2 + s1 @ self.w2.t()
            s2 = _SigmoidSpike.apply(v2 - self.threshold, 1.0)
            hidden.append(s1)
            spikes.append(s2)
            voltage.append(v2)  # pre-reset, what the loss reads
            v2 = v2 * (1.0 - s2.detach())
        return tuple(torch.stack(y, dim=-1) for y in (hidden, spikes, voltage))


def trainer(model: torch.nn.Module, run: Callable, loss_fn) -> Callable[[torch.Tensor], float]:
    """``step(x)``: forward, loss, backward, Adam; ``run(model, x) -> (voltage, spikes)``."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=LR, weight_decay=WEIGHT_DECAY)

    def step(x: torch.Tensor) -> float:
        voltage, spikes = run(model, x)
        loss = loss_fn(voltage, spikes, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def _run_ours(model, x):
    out = model(x)
    return out.voltage, out.spikes


def _run_tuple(model, x):
    _, spikes, voltage = model(x)
    return voltage, spikes


# --- measurements ------------------------------------------------------------------------------

def time_interleaved(steps: dict[str, Callable], pool: list[torch.Tensor], *, warmup: int,
                     n: int) -> dict[str, dict]:
    """Round-robin ``n`` timed steps per contender after ``warmup`` untimed ones."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    losses: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(warmup + n):
        x = pool[i % len(pool)]
        for name, step in steps.items():
            tic = time.perf_counter()
            loss = step(x)
            elapsed = time.perf_counter() - tic
            if i >= warmup:
                times[name].append(elapsed)
            losses[name].append(loss)
    out = {}
    for name, ts in times.items():
        q = statistics.quantiles(ts, n=4, method="inclusive") if len(ts) > 1 else [ts[0]] * 3
        out[name] = {"median_s": statistics.median(ts), "p25_s": q[0], "p75_s": q[2],
                     "min_s": min(ts), "step_times_s": ts,
                     "first_loss": losses[name][0], "last_loss": losses[name][-1]}
    return out


def paired_ratios(theirs: list[float], ours: list[float]) -> dict[str, float]:
    """Median and quartiles over rounds of ``theirs[i] / ours[i]`` (step times of one round)."""
    r = [a / b for a, b in zip(theirs, ours, strict=True)]
    q = statistics.quantiles(r, n=4, method="inclusive") if len(r) > 1 else [r[0]] * 3
    return {"median": statistics.median(r), "p25": q[0], "p75": q[2]}


@torch.no_grad()
def spike_agreement(ours: RoyAE, w: Workload, x: torch.Tensor) -> dict:
    """Forward-only comparison of spikecodec and SLAYER on ``x`` with ``ours``' current weights."""
    weights = (ours.encoder.quantized_weight(), ours.decoder.quantized_weight())
    slayer_model = SlayerAE(w, weights)
    mine = ours(x)
    hidden, spikes, voltage = slayer_model(x)
    result = {}
    for name, a, b in (("hidden", mine.hidden, hidden), ("output", mine.spikes, spikes)):
        result[name] = {"equal": int((a == b).sum()), "total": a.numel(),
                        "agreement": float((a == b).double().mean()),
                        "spikes_spikecodec": int(a.sum()), "spikes_slayer": int(b.sum())}
    result["voltage_max_abs_diff"] = float((mine.voltage - voltage).abs().max())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per contender")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per contender")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--hidden", type=int, default=196)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "roy_training_speed.json")
    parser.add_argument("--no-tune-allocator", action="store_true",
                        help="keep glibc's default malloc settings (see spikecodec.runtime)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.threads < 0 or args.hidden < 1:
        parser.error("need --steps >= 1, --warmup >= 0, --threads >= 0, --hidden >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    tuned = False if args.no_tune_allocator else tune_allocator()  # same for every contender
    torch.manual_seed(0)
    load_start = os.getloadavg()[0]  # 1-min load before we add ours: others compete for CPU

    w = Workload(hidden=args.hidden)
    pool, source = input_pool(w, args.data_dir)
    loss_fn = MembranePotentialLoss(w.threshold)
    ours = make_ours(w)
    init = tuple(m.quantized_weight().detach().clone() for m in (ours.encoder, ours.decoder))
    agreement_init = spike_agreement(ours, w, pool[0])
    steps = {
        "spikecodec": trainer(ours, _run_ours, loss_fn),
        "slayer": trainer(SlayerAE(w, init), _run_tuple, loss_fn),
        "plain-loop": trainer(PlainLoopAE(w, init), _run_tuple, loss_fn),
    }
    timing = time_interleaved(steps, pool, warmup=args.warmup, n=args.steps)
    agreement_trained = spike_agreement(ours, w, pool[0])

    for t in timing.values():
        t["samples_per_s"] = w.batch / t["median_s"]
    ours_sps = timing["spikecodec"]["samples_per_s"]
    ratios = {"spikecodec/slayer": ours_sps / timing["slayer"]["samples_per_s"],
              "spikecodec/plain-loop": ours_sps / timing["plain-loop"]["samples_per_s"]}
    paired = {name: paired_ratios(timing[name]["step_times_s"],
                                  timing["spikecodec"]["step_times_s"]) for name in timing}

    env = environment()
    loop = "C (spikecodec.train.native_lif)" if native_lif.load() is not None else \
        f"torch ({native_lif.why_not() or 'SPIKECODEC_NATIVE=0'})"
    print(f"## Roy AE-SNN training step: 784-{w.hidden}-784, batch {w.batch}, T={w.num_steps}, "
          f"scale {w.scale}\n")
    print(f"glibc allocator tuned: {tuned}; input: {source}; torch {env['torch']}, "
          f"lava-dl {env['lava-dl']}, "
          f"{env['torch_threads']} torch thread(s), {env['cpu_count']} CPU(s), "
          f"1-min load average {load_start:.2f} at start; spikecodec neuron loop: {loop}; "
          f"{args.steps} timed steps after {args.warmup} warm-up, interleaved\n")
    rows = [[name, f"{t['median_s'] * 1e3:.1f}", f"{t['p25_s'] * 1e3:.1f}-{t['p75_s'] * 1e3:.1f}",
             f"{t['samples_per_s']:.0f}", f"{ours_sps / t['samples_per_s']:.2f}x",
             f"{paired[name]['median']:.2f}x ({paired[name]['p25']:.2f}-"
             f"{paired[name]['p75']:.2f})",
             f"{t['first_loss']:.1f} -> {t['last_loss']:.1f}"] for name, t in timing.items()]
    print(markdown_table(["contender", "median ms/step", "IQR ms", "samples/s",
                          "spikecodec speed-up", "paired speed-up (IQR)", "loss first -> last"],
                         rows))
    print("\n(speed-up: ratio of the median step times; paired: the median over rounds of "
          "each round's ratio, whose steps ran back to back under the same load)")
    print()
    agree_rows = []
    for label, agr in (("initial weights", agreement_init),
                       (f"after {args.warmup + args.steps} steps", agreement_trained)):
        for layer in ("hidden", "output"):
            a = agr[layer]
            agree_rows.append([label, layer, f"{100 * a['agreement']:.4f} %",
                               f"{a['spikes_spikecodec']} / {a['spikes_slayer']}",
                               f"{agr['voltage_max_abs_diff']:.3g}" if layer == "output" else ""])
    print("Forward spike agreement, spikecodec vs SLAYER (one batch of 100):\n")
    print(markdown_table(["weights", "layer", "agreement", "spikes (ours / SLAYER)",
                          "max abs dV (output)"], agree_rows))

    exact = all(agr[layer]["equal"] == agr[layer]["total"]
                for agr in (agreement_init, agreement_trained) for layer in ("hidden", "output"))
    payload = {"benchmark": "roy_training_speed", "workload": asdict(w) | {"n_in": N_IN},
               "input": source, "steps": args.steps, "warmup": args.warmup,
               "optimizer": {"name": "Adam", "lr": LR, "weight_decay": WEIGHT_DECAY},
               "environment": env | {"load_average_1min_at_start": load_start,
                                   "glibc_allocator_tuned": tuned, "neuron_loop": loop},
               "timing": timing, "ratios": ratios, "paired_ratios": paired,
               "spike_agreement": {"initial": agreement_init, "trained": agreement_trained,
                                   "exact": exact}}
    path = write_json_atomic(args.out, payload)
    print(f"\nwrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    if not exact:
        print("ERROR: spikecodec and SLAYER spikes differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

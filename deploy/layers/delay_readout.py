"""The VDIB readout with delay-basis synapses: the stochastic readout behind a Lava DelayDense.

Each synapse ``j -> i`` has ``C`` taps, the same presynaptic spike train delayed by
``delay[c * K * N + r]`` steps with its own weight (paper eq. 34 with delta-delay bases: a
learnable FIR filter over the last ``C`` steps; VDIB's "encoding window" ``tau_e = C``). The
weight is ``(C * K * N, in)``: row ``c * K * N + k * N + i`` is tap ``c`` of basis ``k`` of neuron
``i``, and ``delay`` holds one synaptic delay per row (``(C * K * N,)`` steps in ``[0, 62]``;
training writes ``delay = c`` for tap ``c``). Everything after the synapse is
:class:`~spikecodec.deploy.layers.stochastic_readout.StochasticReadoutLayer`: the ``C`` taps of a
basis row add up into the one ``K``-basis neuron
(:func:`~spikecodec.lava_procs.stochastic_readout.dynamics.tap_sum`), so the neuron, its state and
its random draws are the stochastic readout's; only the synapse costs ``C`` times as much.

Why a kind of its own rather than a field of ``stochastic_readout``: an export without delays
keeps its exact bytes (the committed ``vdib_digits`` hashes), the parametrized layer-kind tests
run this kind through every consumer with its own random maker, and the subclass reuses every
hook of the plain readout but the synapse.

* HDF5: the readout's datasets plus ``delay`` (NetX's name for a dense layer's synaptic delays,
  here in NetX's per-row 1-D form), under ``/spikecodec/layers/{i}``.
* Lava: ``DelayDense`` (lava-nc's, as NetX builds it for a dense layer with ``delay``: the same
  weights as :func:`~spikecodec.deploy.backends.lava_sim.netx_weights`, ``delays`` the per-row
  delay repeated over the inputs) into
  :class:`~spikecodec.lava_procs.stochastic_readout.process.StochasticReadout` with ``num_taps``
  and ``row_delay``. Delay ``d`` delivers a spike ``1 + d`` steps later (0: a plain Dense's one
  step). A sample's last spikes would still be in flight when the next sample starts: the
  process zeroes the rows whose delay exceeds the step within the sample, so every sample
  starts from nothing pending (on the chip: leave ``gap >= max delay`` steps between samples).
* Reference engine: the shared synapse GEMM, a ring of the last ``max delay + 1`` synaptic
  inputs per row, then the same ``tap_sum`` and ``readout_step``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from spikecodec.deploy.layers.stochastic_readout import ARRAYS, ReadoutPlan, StochasticReadoutLayer
from spikecodec.errors import ConfigError, ExportError
from spikecodec.lava_procs.spec import SYNAPSE_DELAY_BITS, SYNAPSE_DELAY_MAX, SYNAPSE_DELAY_MIN
from spikecodec.lava_procs.stochastic_readout.dynamics import (
    neuron_step_key,
    readout_step,
    sample_key,
    tap_sum,
)
from spikecodec.validate import check_int_array


@dataclass(frozen=True)
class DelayReadoutLayer(StochasticReadoutLayer):
    """VDIB readout whose synapses are ``C`` delayed taps: weight ``(C * K * N, in)``."""

    kind: ClassVar[str] = "delay_readout"
    hdf5_arrays: ClassVar[tuple[str, ...]] = (*ARRAYS, "delay")

    delay: np.ndarray = None  # (C * K * N,) synaptic delay of each row, 0..62 steps

    @property
    def out_features(self) -> int:
        return int(np.shape(self.bias)[0]) if np.ndim(self.bias) == 1 else 0

    @property
    def num_taps(self) -> int:
        """``C``: delayed taps per synapse."""
        n = self.out_features * self.num_basis
        return int(np.shape(self.weight)[0]) // n if n else 0

    @property
    def max_delay(self) -> int:
        return int(np.max(self.delay))

    # ------------------------------------------------------------------ IR
    def validate(self) -> DelayReadoutLayer:
        """The readout's checks for ``C * K * N`` rows, and the delays: one per row, integers in
        ``[0, 62]`` (:data:`~spikecodec.lava_procs.spec.SYNAPSE_DELAY_MAX`, Loihi 2 / NetX)."""
        rows = np.shape(self.weight)[0] if np.ndim(self.weight) == 2 else 0
        k = len(self.i_decay) if isinstance(self.i_decay, (tuple, list)) else 0
        n = self.out_features
        if n < 1 or k < 1 or rows % (k * n) or rows // (k * n) < 1:
            raise ConfigError(f"{self.name}: weight rows ({rows}) must be C taps x K = {k} basis "
                              f"responses x N = {n} neurons (N from bias)")
        fields = self.checked_fields(taps=rows // (k * n))
        if self.delay is None or np.ndim(self.delay) != 1:
            raise ConfigError(f"{self.name}: delay must be 1-D, one delay per weight row "
                              f"({rows},), got shape {np.shape(self.delay)}")
        delay = check_int_array(self.name, "delay", self.delay, (rows,), SYNAPSE_DELAY_MIN,
                                SYNAPSE_DELAY_MAX)
        return DelayReadoutLayer(**fields, delay=delay)

    def describe(self) -> str:
        return (f"{super().describe()}, {self.num_taps} delay taps per synapse "
                f"(delays 0..{self.max_delay})")

    @classmethod
    def read_hdf5(cls, group, name: str) -> DelayReadoutLayer:
        layer = super().read_hdf5(group, name)
        if np.ndim(layer.delay) != 1:  # raw numpy values; validate() checks the range
            raise ExportError(f"layer '{name}' ({group.name}): dataset 'delay' must be 1-D (one "
                              f"delay per weight row), got shape {np.shape(layer.delay)}")
        return layer

    # ------------------------------------------------------------------ reference engine
    def reference_plan(self, *, device, steps: int, dtype=None,
                       bounded: bool | None = None) -> DelayReadoutPlan:
        """The readout's plan behind a ring of the last ``max delay + 1`` synaptic inputs."""
        import torch

        plain = super().reference_plan(device=device, steps=steps, dtype=dtype, bounded=bounded)
        delay = torch.tensor(np.asarray(self.delay), dtype=torch.int64, device=device)
        return DelayReadoutPlan(synapse=plain.synapse, params=plain.params,
                                neurons=plain.neurons, state=plain.state, delay=delay,
                                rows=torch.arange(delay.shape[0], device=device),
                                taps=self.num_taps, depth=self.max_delay + 1)

    # ------------------------------------------------------------------ Lava
    def build_lava(self, schedule) -> tuple[Any, Any]:
        """``DelayDense ─► StochasticReadout(num_taps, row_delay)``; returns
        ``(DelayDense.s_in, readout.s_out)``."""
        from lava.proc.dense.process import DelayDense

        from spikecodec.deploy.backends.lava_sim import netx_weights
        from spikecodec.lava_procs.stochastic_readout.process import StochasticReadout

        mantissa, num_bits, exponent = netx_weights(self.weight)
        delays = np.repeat(np.asarray(self.delay, dtype=np.int64)[:, None], self.in_features, 1)
        dense = DelayDense(weights=mantissa, delays=delays, max_delay=self.max_delay,
                           weight_exp=exponent, num_weight_bits=num_bits, num_message_bits=0,
                           name=f"{self.name}_synapse")
        readout = StochasticReadout(
            shape=(self.out_features,), num_basis=self.num_basis, du=self.i_decay,
            dv=self.v_decay, fb_decay=self.fb_decay, fb_weight=self.fb_weight, bias=self.bias,
            lut=self.lut, lut_shift=self.lut_shift, lut_offset=self.lut_offset, seed=self.seed,
            period=schedule.period, offset=schedule.offset, first_sample=schedule.first_sample,
            num_taps=self.num_taps, row_delay=self.delay, name=self.name)
        dense.a_out.connect(readout.a_in)
        return dense.s_in, readout.s_out

    # ------------------------------------------------------------------ Loihi 2 check
    def worst_input(self) -> int:
        """The taps of a basis row add up in one compartment: the worst case sums them."""
        w = np.abs(np.asarray(self.weight)).sum(axis=1)
        return int(w.reshape(self.num_taps, -1).sum(axis=0).max())

    def loihi2_check(self, *, num_steps: int) -> dict[str, Any]:
        """The plain readout's row, plus the delays: their bits against Loihi 2's 6 (a delay
        above 62, NetX's and Lava's DelayDense's limit, never gets here: :meth:`validate`
        refuses it, naming the layer and field), how many synapses each delay holds, and what
        the taps cost in synapses."""
        row = super().loihi2_check(num_steps=num_steps)
        taps, k, n = self.num_taps, self.num_basis, self.out_features
        row["bits"]["delay"] = (int(self.max_delay).bit_length(), SYNAPSE_DELAY_BITS)
        values, counts = np.unique(np.asarray(self.delay), return_counts=True)
        row["delays"] = {int(d): int(c) * self.in_features for d, c in
                         zip(values, counts, strict=True)}  # synapses per delay
        row["taps"] = taps
        row["max_delay"] = self.max_delay
        usage = ", ".join(f"{d}: {c}" for d, c in row["delays"].items())
        row["notes"] = [
            f"delay-basis synapses: {taps} taps per synapse, {taps} x {self.in_features} x {k} x "
            f"{n} = {np.size(self.weight)} synapses ({taps}x the plain readout's) on Lava's "
            f"DelayDense; synapses per delay (steps): {usage}; max delay {self.max_delay} of "
            f"the {SYNAPSE_DELAY_MAX} NetX and Lava accept; the taps converge on the {n * k} "
            f"basis compartment(s): compartments, host traffic and neuron are the plain "
            f"readout's",
            f"on the chip leave a gap of >= {self.max_delay} steps between samples (the reset "
            f"zeroes u and v, not the synaptic input still in flight); the lava-sim process "
            f"drops in-flight input of the previous sample itself",
            *row["notes"]]
        return row


@dataclass(frozen=True)
class DelayReadoutPlan(ReadoutPlan):
    """:class:`ReadoutPlan` behind a ring buffer of synaptic inputs: the state is ``(readout
    state, ring (depth, B, C * K * N))``; row ``r`` reads the input of ``delay[r]`` steps ago."""

    delay: Any = None  # (C * K * N,) int64
    rows: Any = None  # arange(C * K * N)
    taps: int = 1
    depth: int = 1  # max delay + 1

    def zero_state(self, batch: int):
        import torch

        ring = torch.zeros((self.depth, batch, self.delay.shape[0]), dtype=self.state,
                           device=self.neurons.device)
        return super().zero_state(batch), ring

    def step(self, state, a, *, t: int, samples):
        readout, ring = state
        ring[t % self.depth] = a  # this step's synaptic input of every row
        delayed = ring[(t - self.delay) % self.depth, :, self.rows].t()  # row r: t - d_r
        keys = (sample_key(self.params.seed, samples), neuron_step_key(self.neurons, t))
        readout, _, s = readout_step(readout, tap_sum(delayed, self.delay, t, self.taps),
                                     self.params, keys=keys)
        return (readout, ring), s

"""The VDIB stochastic readout layer: a custom kind (our Lava process, not a NetX block).

Dense synapses ``(K * N, in)`` into ``N`` stochastic-threshold neurons. The dynamics are written
once, in :mod:`spikecodec.lava_procs.stochastic_readout.dynamics` (equations in its docstring):
``K`` alpha-shaped basis responses per synapse (row ``k * N + i`` of ``weight`` feeds basis ``k``
of neuron ``i``), an exponential feedback of the neuron's own spikes, a bias, and a spike drawn
with probability ``lut[bin(m)] / 2^16`` from a counter-based PRNG keyed by ``(seed, neuron,
step, sample)``. Weights are NetX integers (the synapse is a Lava Dense,
:func:`spikecodec.deploy.weights.lava_weights`); ``fb_weight`` and ``bias`` are mantissas
shifted left by 6 into state units, like a CUBA bias, and hold the same 13 bits.

Each consumer runs that one step function: the reference engine (:class:`ReadoutPlan`) and the
Lava process (:class:`~spikecodec.lava_procs.stochastic_readout.process.StochasticReadout`);
both key their draws by the step in the sample and the sample's index in the batch, so they
draw the same spikes. In HDF5 the layer lives under ``/spikecodec/layers/{i}`` (datasets
``weight, i_decay, v_decay, fb_weight, bias, lut``; attributes ``fb_decay, lut_shift,
lut_offset, seed``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from spikecodec.deploy.check import altered_weights, bit_problems, core_estimate, signed_bits
from spikecodec.deploy.layers.base import read_int_fields, write_int_fields
from spikecodec.errors import ConfigError, ExportError
from spikecodec.lava_procs.spec import (
    BIAS_BITS,
    BIAS_MAX,
    BIAS_MIN,
    DECAY_BITS,
    DECAY_MAX,
    DECAY_MIN,
    DECAY_SCALE,
    HOST_VALUE_BYTES,
    LUT_OFFSET_MAX,
    LUT_OFFSET_MIN,
    LUT_SHIFT_MAX,
    PROB_BITS,
    PROB_ONE,
    SEED_MAX,
    SEED_MIN,
    STATE_BITS,
    STATE_EXP,
    U_MAX,
    V_MAX,
    V_TH_MAX,
    WEIGHT_BITS,
    WEIGHT_MAX,
    WEIGHT_MIN,
)
from spikecodec.lava_procs.stochastic_readout.dynamics import (
    ReadoutParams,
    neuron_step_key,
    readout_step,
    sample_key,
    zero_state,
)
from spikecodec.validate import check_int, check_int_array, check_int_tuple

ARRAYS = ("weight", "i_decay", "v_decay", "fb_weight", "bias", "lut")  # HDF5 datasets, in order
ATTRS = ("fb_decay", "lut_shift", "lut_offset", "seed")  # HDF5 attributes, in order
LUT_BITS = PROB_BITS + 1  # table entries in [0, 2^16]: 2^16 (a certain spike) needs 17 bits


@dataclass(frozen=True)
class StochasticReadoutLayer:
    """VDIB readout: dense synapses ``(K * N, in)`` into ``N`` stochastic-threshold neurons."""

    kind: ClassVar[str] = "stochastic_readout"
    standard: ClassVar[bool] = False  # our Lava process, not a NetX block
    # NIR has no stochastic neuron: spikecodec.deploy.nirgraph.to_nir refuses this kind by name
    to_nir: ClassVar[Any] = None
    from_nir: ClassVar[Any] = None
    hdf5_arrays: ClassVar[tuple[str, ...]] = ARRAYS

    name: str
    weight: np.ndarray  # (K * N, in) integers in [-256, 254]
    i_decay: tuple[int, ...]  # current decay per basis, 0..4096
    v_decay: tuple[int, ...]  # voltage decay per basis, 0..4096
    fb_decay: int  # decay of the feedback trace, 0..4096
    fb_weight: np.ndarray  # (N,) feedback mantissas, 13-bit signed
    bias: np.ndarray  # (N,) bias mantissas, 13-bit signed
    lut: np.ndarray  # (L,) P(spike) * 2^16 per membrane bin
    lut_shift: int  # bin = (m >> lut_shift) + lut_offset, clipped to the table
    lut_offset: int
    seed: int  # PRNG seed in [0, 2^32)

    @property
    def num_basis(self) -> int:
        return len(self.i_decay)

    @property
    def in_features(self) -> int:
        return int(np.shape(self.weight)[1])

    @property
    def out_features(self) -> int:
        return int(np.shape(self.weight)[0]) // max(self.num_basis, 1)

    def params(self, xp_array=np.asarray):
        """:class:`~spikecodec.lava_procs.stochastic_readout.dynamics.ReadoutParams` with the
        arrays made by ``xp_array`` (e.g. ``torch.as_tensor``) in state units."""
        return ReadoutParams(
            du=tuple(self.i_decay), dv=tuple(self.v_decay), dg=self.fb_decay,
            w_fb=xp_array(np.asarray(self.fb_weight, dtype=np.int64) << STATE_EXP),
            bias=xp_array(np.asarray(self.bias, dtype=np.int64) << STATE_EXP),
            lut=xp_array(np.asarray(self.lut, dtype=np.int64)), lut_shift=self.lut_shift,
            lut_offset=self.lut_offset, seed=self.seed)

    # ------------------------------------------------------------------ IR
    def validate(self) -> StochasticReadoutLayer:
        """Check types and ranges; return a copy holding read-only int64 arrays."""
        return StochasticReadoutLayer(**self.checked_fields())

    def checked_fields(self, taps: int = 1) -> dict[str, Any]:
        """The validated fields of :meth:`validate` (read-only int64 arrays), for a weight of
        ``taps * K * N`` rows (``taps`` > 1: the delay-basis readout, ``delay_readout.py``)."""
        k = len(self.i_decay) if isinstance(self.i_decay, (tuple, list)) else 0
        if k < 1 or not isinstance(self.v_decay, (tuple, list)) or len(self.v_decay) != k:
            raise ConfigError(f"{self.name}: i_decay and v_decay must be equal-length tuples "
                              f"(one decay per basis response), got {self.i_decay!r}, "
                              f"{self.v_decay!r}")
        i_decay = check_int_tuple(self.name, "i_decay", self.i_decay, DECAY_MIN, DECAY_MAX)
        v_decay = check_int_tuple(self.name, "v_decay", self.v_decay, DECAY_MIN, DECAY_MAX)
        shape = np.shape(self.weight)
        if len(shape) != 2 or 0 in shape or shape[0] % (k * taps):
            rows = "K * N" if taps == 1 else f"{taps} taps x K * N"
            raise ConfigError(f"{self.name}: weight must be a non-empty ({rows}, in) array with "
                              f"K = {k} basis responses, got shape {shape}")
        weight = check_int_array(self.name, "weight", self.weight, shape, WEIGHT_MIN,
                                 WEIGHT_MAX)
        n = shape[0] // (k * taps)
        lut = np.asarray(self.lut)
        if lut.ndim != 1 or lut.size < 2:
            raise ConfigError(f"{self.name}: lut must be a 1-D table of >= 2 entries, "
                              f"got shape {lut.shape}")
        return dict(
            name=self.name, weight=weight, i_decay=i_decay, v_decay=v_decay,
            fb_decay=check_int(self.name, "fb_decay", self.fb_decay, DECAY_MIN, DECAY_MAX),
            fb_weight=check_int_array(self.name, "fb_weight", self.fb_weight, (n,), BIAS_MIN,
                                      BIAS_MAX),
            bias=check_int_array(self.name, "bias", self.bias, (n,), BIAS_MIN, BIAS_MAX),
            lut=check_int_array(self.name, "lut", lut, lut.shape, 0, PROB_ONE),
            lut_shift=check_int(self.name, "lut_shift", self.lut_shift, 0, LUT_SHIFT_MAX),
            lut_offset=check_int(self.name, "lut_offset", self.lut_offset, LUT_OFFSET_MIN,
                                 LUT_OFFSET_MAX),
            seed=check_int(self.name, "seed", self.seed, SEED_MIN, SEED_MAX))

    def worst_input(self) -> int:
        """The largest ``|sum of mantissas|`` one basis row can receive in a step."""
        return int(np.abs(np.asarray(self.weight)).sum(axis=1).max())

    def check_num_steps(self, num_steps: int) -> None:
        """Any number of steps per sample fits this layer."""

    def describe(self) -> str:
        return (f"stochastic, {self.num_basis} basis, iDecay={list(self.i_decay)} "
                f"vDecay={list(self.v_decay)} seed={self.seed}")

    # ------------------------------------------------------------------ HDF5
    def write_hdf5(self, group) -> None:
        write_int_fields(self, group, self.hdf5_arrays, ATTRS)

    @classmethod
    def read_hdf5(cls, group, name: str) -> StochasticReadoutLayer:
        values, where = read_int_fields(group, name, cls.hdf5_arrays, ATTRS)
        for key in ("i_decay", "v_decay"):  # raw numpy values: validate() refuses 2048.7
            if values[key].ndim != 1:
                raise ExportError(f"{where}: dataset '{key}' must be 1-D (one decay per basis), "
                                  f"got shape {values[key].shape}")
            values[key] = tuple(values[key].tolist() if values[key].dtype.kind in "iu"
                                else values[key])
        return cls(name=name, **values)

    # ------------------------------------------------------------------ reference engine
    def reference_plan(self, *, device, steps: int, dtype=None,
                       bounded: bool | None = None) -> ReadoutPlan:
        """The readout on ``device`` (int64 state; its saturations are part of the dynamics,
        so ``bounded`` changes nothing)."""
        import torch

        from spikecodec.deploy.backends.reference import make_synapse

        params = self.params(lambda a: torch.tensor(a, dtype=torch.int64, device=device))
        return ReadoutPlan(synapse=make_synapse(self.weight, device, dtype), params=params,
                           neurons=torch.arange(self.out_features, device=device),
                           state=torch.int64)

    # ------------------------------------------------------------------ Lava
    def build_lava(self, schedule) -> tuple[Any, Any]:
        """``Dense ─► StochasticReadout``; returns ``(Dense.s_in, readout.s_out)``.

        The Dense gets what NetX would give a dense layer's synapse
        (:func:`spikecodec.deploy.backends.lava_sim.netx_weights`), unary input spikes. So its
        per-step output is :func:`spikecodec.deploy.weights.lava_weights`' floor-shifted
        mantissa sum, which the readout shifts left by 6.
        """
        from lava.proc.dense.process import Dense

        from spikecodec.deploy.backends.lava_sim import netx_weights
        from spikecodec.lava_procs.stochastic_readout.process import StochasticReadout

        mantissa, num_bits, exponent = netx_weights(self.weight)
        dense = Dense(weights=mantissa, weight_exp=exponent, num_weight_bits=num_bits,
                      num_message_bits=0, name=f"{self.name}_synapse")
        readout = StochasticReadout(
            shape=(self.out_features,), num_basis=self.num_basis, du=self.i_decay,
            dv=self.v_decay, fb_decay=self.fb_decay, fb_weight=self.fb_weight, bias=self.bias,
            lut=self.lut, lut_shift=self.lut_shift, lut_offset=self.lut_offset, seed=self.seed,
            period=schedule.period, offset=schedule.offset, first_sample=schedule.first_sample,
            name=self.name)
        dense.a_out.connect(readout.a_in)
        return dense.s_in, readout.s_out

    # ------------------------------------------------------------------ Loihi 2 check
    def loihi2_check(self, *, num_steps: int) -> dict[str, Any]:
        """The readout on Loihi 2: no standard neuron fires with probability ``sigmoid(m)``.

        (a) A microcoded neuron (lava-loihi): Loihi 2 neuro-cores run user neuron programs, and
        each core has pseudo-random number hardware, but its draws are not keyed by (seed,
        neuron, step, sample): spikes match the reference in distribution only. Needs lava-loihi
        (Intel INRC) and an NcProcessModel of our process, which spikecodec does not have.

        (b) The synapses and the ``K`` alpha filters as standard CUBA compartments (current =
        ``u_k``, voltage = ``v_k``) with the highest threshold, their ``N * K`` 24-bit
        potentials read out every step; the host adds the feedback trace and the bias, looks up
        the table and draws with the same PRNG: bit-exact with the reference while no
        compartment wraps, spikes or hits a decay the hardware lacks. The bits below are
        measured against this mapping. A basis with ``vDecay = 4096`` (voltage decay 1, e.g.
        the delay basis's plain taps) forgets its voltage every step, ``v = 0 * v + u = u``
        exactly, so the host reads that compartment's current by state probe (a graded spike
        would carry v) and its vDecay (13 bits, one more than Loihi 2 has) is never needed.
        """
        w = self.weight
        k, n = self.num_basis, self.out_features
        worst_a = self.worst_input() << STATE_EXP  # every input spiking at once
        fields = {
            "weight": (signed_bits(w), WEIGHT_BITS),
            "bias": (signed_bits(self.bias), BIAS_BITS),
            "fbWeight": (signed_bits(self.fb_weight), BIAS_BITS),
            "iDecay": (max(max(d - 1, 0).bit_length() for d in self.i_decay), DECAY_BITS),
            "vDecay": (max((int(d).bit_length() for d in self.v_decay if d != DECAY_SCALE),
                           default=0), DECAY_BITS),
            "fbDecay": (int(self.fb_decay).bit_length(), DECAY_BITS),
            "lut": (int(np.max(self.lut)).bit_length(), LUT_BITS),
            "u (one step of input)": (worst_a.bit_length() + 1, STATE_BITS),
        }
        problems = bit_problems(fields)
        if 0 in self.i_decay:
            problems.append("iDecay = 0 (a current that never decays) has no CUBA compartment: "
                            "Loihi decays the current by du + 1 >= 1 (Lava's ds_offset)")
        warnings = []
        u_peak, v_peak = _alpha_peaks(worst_a, self.i_decay, self.v_decay)
        if u_peak >= U_MAX:
            warnings.append(f"with every input spiking a basis current can reach {u_peak} "
                            f"(>= 2^23): the readout saturates it, a CUBA compartment (mapping "
                            f"(b)) wraps it")
        if v_peak > V_TH_MAX:
            warnings.append(f"with every input spiking a basis potential can reach {v_peak} > "
                            f"{V_TH_MAX}, the highest CUBA threshold ((2^17 - 1) << 6): in "
                            f"mapping (b) such a compartment would spike and reset")
        warnings.extend(altered_weights(w))  # the readout's synapse is a Dense too
        per_step = n * k * HOST_VALUE_BYTES
        per_sample = num_steps * per_step
        feedback = ("nonzero feedback weights cost no round trip: the trace depends only on "
                    "the host's own draws, so the host keeps it" if np.any(self.fb_weight)
                    else "no feedback (fb_weight = 0)")
        notes = [
            "no standard Loihi 2 neuron fires with probability sigmoid(m); two mappings:",
            "(a) microcoded neuron via lava-loihi: Loihi 2 neuro-cores run user microcode and "
            "have per-core pseudo-random number hardware, but its draws are not keyed by (seed, "
            "neuron, step, sample), so spikes match the reference only in distribution, not bit "
            "for bit; needs lava-loihi (Intel INRC) and an NcProcessModel, which spikecodec "
            "does not have yet",
            f"(b) the synapses and the {k} alpha filter(s) as standard CUBA compartments "
            f"({n * k} of them) with the highest threshold, read out every step (state probes "
            f"or 24-bit graded spikes) and sampled on the host with the same PRNG, bit-exact "
            f"with the reference: {n} x {k} x 3 B = {per_step} B per step leave the chip, "
            f"{num_steps} x {per_step} = {per_sample} B per sample; the host does the bias, the "
            f"feedback trace, the table look-up and the draw ({feedback})",
            "the loihi2 backend runs neither yet; --backend lava-sim runs the readout on the CPU",
        ]
        full = [i for i, d in enumerate(self.v_decay) if d == DECAY_SCALE]
        if full:
            notes.append(f"basis {', '.join(map(str, full))}: vDecay = 4096 (v = u every step): "
                         f"mapping (b) reads that compartment's current u by state probe (it "
                         f"equals v; a graded spike would carry v), so its vDecay (13 bits > "
                         f"12) is never needed")
        return {"layer": self.name, "kind": self.kind, "neurons": n, "compartments": n * k,
                "synapses": int(np.count_nonzero(w)), "dense_synapses": int(w.size),
                "bits": fields, "cores": core_estimate(n * k, w.size), "standard": False,
                "mapping": "no standard neuron: (a) microcode, or (b) CUBA compartments + host "
                           "sampling (notes)",
                "host_bytes_per_step": per_step, "host_bytes_per_sample": per_sample,
                "problems": problems, "warnings": warnings, "notes": notes}


def _alpha_peaks(worst_a: int, i_decay, v_decay) -> tuple[int, int]:
    """Upper bounds of ``|u_k|`` (before saturation) and ``|v_k|`` over the basis responses for
    an input of at most ``worst_a`` per step: the current settles below ``a 4096 / du``, the
    voltage below ``u 4096 / dv``; a decay of 0 lets them grow to the 24-bit limit."""
    limit = V_MAX
    u_peak = v_peak = 0
    for du, dv in zip(i_decay, v_decay, strict=True):
        u = worst_a * DECAY_SCALE // du if du else (limit + 1 if worst_a else 0)
        v = min(limit, u) * DECAY_SCALE // dv if dv else (limit if u else 0)
        u_peak, v_peak = max(u_peak, u), max(v_peak, min(v, limit))
    return u_peak, v_peak


@dataclass(frozen=True)
class ReadoutPlan:
    """The readout in the reference engine: Lava's Dense, then ``readout_step`` with the draws
    keyed by (seed, neuron, step in the sample, sample index in the batch)."""

    synapse: Any  # spikecodec.deploy.backends.reference.Synapse
    params: Any  # ReadoutParams with int64 tensors
    neurons: Any  # (N,) neuron indices
    state: Any  # torch.int64

    def zero_state(self, batch: int):
        import torch

        zeros = torch.zeros((batch, self.neurons.shape[0]), dtype=self.state,
                            device=self.neurons.device)
        return zero_state(zeros, self.params.num_basis)

    def step(self, state, a, *, t: int, samples):
        keys = (sample_key(self.params.seed, samples), neuron_step_key(self.neurons, t))
        state, _, s = readout_step(state, a, self.params, keys=keys)
        return state, s

    def counts(self, state) -> tuple[int, int]:
        return 0, 0

"""Comsa et al.'s layer on Loihi 2: dense synapses into spike-once alpha neurons, plus pulses.

The neuron is :func:`spikecodec.lava_procs.spike_once.spike_once_step` (equations and the alpha
derivation in that module's docstring): a CUBA neuron with equal current and voltage decays
``decay`` that fires at most once per sample. ``weight`` holds NetX integers (one input spike adds
``weight << 6`` to ``u``, through a Lava Dense built as NetX builds one,
:func:`spikecodec.deploy.weights.lava_weights`), ``v_th_mant`` the threshold (spike when
``v > v_th_mant << 6``).

The layer's pulses (its fields, :mod:`spikecodec.deploy.ir` decision (a)): ``P`` sources firing on
``pulse_steps`` of every sample (:mod:`spikecodec.lava_procs.pulse`), through a Dense of their
own whose weights ``pulse_weight`` are shifted left by ``pulse_exp`` more bits (pulse weights are
much larger than the regular ones and get their own exponent): one pulse adds
``(pulse_weight << pulse_exp) << 6`` to ``u``. ``P`` may be 0.

Consumers: the reference engine (:class:`SpikeOncePlan`: the pulses' input does not depend on
the data, so it is precomputed per step), Lava (``Dense ─► SpikeOnceAlpha ◄─ Dense ◄─
PulseSource``), HDF5 under ``/spikecodec/layers/{i}`` (datasets ``weight (out, in)``,
``pulse_steps (P,)``, ``pulse_weight (out, P)``; attributes ``decay``, ``v_th_mant``,
``pulse_exp``), and the Loihi 2 check (the mapping options, honestly costed).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from spikecodec.deploy.check import altered_weights, bit_problems, core_estimate, signed_bits
from spikecodec.deploy.layers.base import read_int_fields, write_int_fields
from spikecodec.errors import ConfigError
from spikecodec.lava_procs.spec import (
    DECAY_BITS,
    DECAY_MAX,
    NUM_STEPS_MAX,
    PULSE_EXP_MAX,
    REF_DELAY_MAX,
    STATE_BITS,
    STATE_EXP,
    U_MAX,
    V_TH_BITS,
    V_TH_MANT_MAX,
    V_TH_MANT_MIN,
    WEIGHT_BITS,
    WEIGHT_EXP_MAX,
    WEIGHT_EXP_MIN,
    WEIGHT_MAX,
    WEIGHT_MIN,
)
from spikecodec.lava_procs.spike_once import SpikeOnceState, spike_once_params, spike_once_step
from spikecodec.validate import check_int, check_int_array

ARRAYS = ("weight", "pulse_steps", "pulse_weight")  # HDF5 datasets
ATTRS = ("decay", "v_th_mant", "pulse_exp")  # HDF5 attributes


@dataclass(frozen=True)
class SpikeOnceAlphaLayer:
    """Dense ``(out, in)`` into ``out`` spike-once alpha neurons, fed also by ``P`` pulses."""

    kind: ClassVar[str] = "spike_once_alpha"
    standard: ClassVar[bool] = False  # our Lava processes, not a NetX block
    to_nir: ClassVar[Any] = None  # issue 13
    from_nir: ClassVar[Any] = None

    name: str
    weight: np.ndarray  # (out, in) integers in [-256, 254]
    decay: int  # current = voltage decay, 1..4096 (keeps 4096 - decay per step)
    v_th_mant: int  # spike when v > v_th_mant << 6
    pulse_steps: np.ndarray  # (P,) fire step of each pulse in every sample, 0-based
    pulse_weight: np.ndarray  # (out, P) integers in [-256, 254]
    pulse_exp: int = 0  # pulse weights are shifted left by this many more bits, 0..7

    @property
    def in_features(self) -> int:
        return int(np.shape(self.weight)[1])

    @property
    def out_features(self) -> int:
        return int(np.shape(self.weight)[0])

    @property
    def num_pulses(self) -> int:
        return int(np.size(self.pulse_steps))

    # ------------------------------------------------------------------ IR
    def validate(self) -> SpikeOnceAlphaLayer:
        """Check types and ranges; return a copy holding read-only int64 arrays."""
        if np.ndim(self.weight) != 2 or 0 in np.shape(self.weight):
            raise ConfigError(f"{self.name}: weight must be a non-empty 2-D (out, in) array, "
                              f"got shape {np.shape(self.weight)}")
        weight = check_int_array(self.name, "weight", self.weight, np.shape(self.weight),
                                 WEIGHT_MIN, WEIGHT_MAX)
        if np.ndim(self.pulse_steps) != 1:
            raise ConfigError(f"{self.name}: pulse_steps must be 1-D (one step per pulse), got "
                              f"shape {np.shape(self.pulse_steps)}")
        steps = check_int_array(self.name, "pulse_steps", self.pulse_steps, None, 0,
                                NUM_STEPS_MAX - 1)
        pulse_weight = check_int_array(self.name, "pulse_weight", self.pulse_weight,
                                       (weight.shape[0], steps.size), WEIGHT_MIN, WEIGHT_MAX)
        return SpikeOnceAlphaLayer(
            name=self.name, weight=weight,
            decay=check_int(self.name, "decay", self.decay, 1, DECAY_MAX),
            v_th_mant=check_int(self.name, "v_th_mant", self.v_th_mant, V_TH_MANT_MIN,
                                V_TH_MANT_MAX),
            pulse_steps=steps, pulse_weight=pulse_weight,
            pulse_exp=check_int(self.name, "pulse_exp", self.pulse_exp, 0, PULSE_EXP_MAX))

    def check_num_steps(self, num_steps: int) -> None:
        """Every pulse must fire inside the sample's ``num_steps`` steps."""
        if self.num_pulses and int(np.max(self.pulse_steps)) >= num_steps:
            raise ConfigError(f"{self.name}: pulse_steps must lie in [0, {num_steps - 1}] (the "
                              f"horizon is {num_steps} steps), got "
                              f"{int(np.max(self.pulse_steps))}")

    def describe(self) -> str:
        return (f"spike-once alpha, decay={self.decay} vThMant={self.v_th_mant} "
                f"pulses={self.num_pulses} (exp +{self.pulse_exp})")

    # ------------------------------------------------------------------ HDF5
    def write_hdf5(self, group) -> None:
        write_int_fields(self, group, ARRAYS, ATTRS)

    @classmethod
    def read_hdf5(cls, group, name: str) -> SpikeOnceAlphaLayer:
        values, _ = read_int_fields(group, name, ARRAYS, ATTRS)
        return cls(name=name, **values)

    # ------------------------------------------------------------------ reference engine
    def pulse_input(self, steps: int) -> np.ndarray:
        """The pulses' synaptic input per step ``(steps, out)`` int64 in state units, exactly as
        their Lava Dense sends it (floor shift of the mantissa sums by its exponent, << 6)."""
        from spikecodec.deploy.weights import lava_weights

        out = np.zeros((steps, self.out_features), dtype=np.int64)
        if not self.num_pulses or not np.any(self.pulse_weight):
            return out
        mantissa, exponent = lava_weights(self.pulse_weight)
        exponent += self.pulse_exp
        for t in range(steps):
            fired = np.asarray(self.pulse_steps) == t
            if fired.any():
                total = mantissa[:, fired].sum(axis=1)
                total = total << exponent if exponent >= 0 else total >> -exponent
                out[t] = total << STATE_EXP
        return out

    def reference_plan(self, *, device, steps: int, dtype=None,
                       bounded: bool | None = None) -> SpikeOncePlan:
        """The layer on ``device``: int64 state, Lava's bounds always applied (and counted)."""
        import torch

        from spikecodec.deploy.backends.reference import make_synapse

        return SpikeOncePlan(
            synapse=make_synapse(self.weight, device, dtype),
            params=spike_once_params(self.decay, self.v_th_mant << STATE_EXP),
            pulses=torch.as_tensor(self.pulse_input(steps), device=device), state=torch.int64)

    # ------------------------------------------------------------------ Lava
    def build_lava(self, schedule) -> tuple[Any, Any]:
        """``Dense ─► SpikeOnceAlpha`` and ``PulseSource ─► Dense ─► SpikeOnceAlpha`` (the pulse
        source sends one step ahead of the layer, as the layer's other input does); returns
        ``(Dense.s_in, neuron.s_out)``."""
        from lava.proc.dense.process import Dense

        from spikecodec.deploy.backends.lava_sim import netx_weights
        from spikecodec.lava_procs.pulse.process import PulseSource
        from spikecodec.lava_procs.spike_once_alpha.process import SpikeOnceAlpha

        mantissa, num_bits, exponent = netx_weights(self.weight)
        dense = Dense(weights=mantissa, weight_exp=exponent, num_weight_bits=num_bits,
                      num_message_bits=0, name=f"{self.name}_synapse")
        neuron = SpikeOnceAlpha(shape=(self.out_features,), decay=self.decay,
                                vth=self.v_th_mant, period=schedule.period,
                                offset=schedule.offset, name=self.name)
        dense.a_out.connect(neuron.a_in)
        if self.num_pulses and np.any(self.pulse_weight):
            mantissa, num_bits, exponent = netx_weights(self.pulse_weight)
            pulses = PulseSource(steps=self.pulse_steps, period=schedule.period,
                                 offset=schedule.offset - 1, name=f"{self.name}_pulses")
            pulse_dense = Dense(weights=mantissa, weight_exp=exponent + self.pulse_exp,
                                num_weight_bits=num_bits, num_message_bits=0,
                                name=f"{self.name}_pulse_synapse")
            pulses.s_out.connect(pulse_dense.s_in)
            pulse_dense.a_out.connect(neuron.a_in)
        return dense.s_in, neuron.s_out

    # ------------------------------------------------------------------ Loihi 2 check
    def loihi2_check(self, *, num_steps: int) -> dict[str, Any]:
        """The layer on Loihi 2: every field against its register, and the mappings of the two
        custom parts (spike-once, pulses) with what each costs."""
        from spikecodec.deploy.weights import lava_weights

        w, pw = self.weight, self.pulse_weight
        n, p = self.out_features, self.num_pulses
        pulse_exp = (lava_weights(pw)[1] + self.pulse_exp) if p and np.any(pw) else 0
        worst = (int(np.abs(w).sum(axis=1).max())
                 + (int(np.abs(pw).sum(axis=1).max()) << self.pulse_exp if p else 0)) << STATE_EXP
        fields = {
            "weight": (signed_bits(w), WEIGHT_BITS),
            "pulseWeight": (signed_bits(pw) if p else 0, WEIGHT_BITS),
            "pulseWeightExp": (abs(pulse_exp).bit_length() + 1, 4),
            "vThMant": (int(self.v_th_mant).bit_length(), V_TH_BITS),
            "iDecay": ((self.decay - 1).bit_length(), DECAY_BITS),  # hardware stores d - 1
            "vDecay": (int(self.decay).bit_length(), DECAY_BITS),
            "u (one step of input)": (worst.bit_length() + 1, STATE_BITS),
        }
        problems = bit_problems(fields)
        if not WEIGHT_EXP_MIN <= pulse_exp <= WEIGHT_EXP_MAX:
            problems.append(f"the pulse Dense's weight exponent {pulse_exp} is outside "
                            f"[{WEIGHT_EXP_MIN}, {WEIGHT_EXP_MAX}]")
        warnings = []
        if worst >= U_MAX:
            warnings.append(f"all inputs and pulses at once add {worst} to u (>= 2^23): the "
                            f"current can wrap; the reference engine's u_wraps counter shows "
                            f"whether it does")
        warnings.extend(altered_weights(w))
        if p and np.any(pw):
            warnings.extend(f"pulses: {text}" for text in altered_weights(pw))
        refractory = num_steps - 1 <= REF_DELAY_MAX
        notes = [
            "spike-once: Lava's and Loihi 2's standard CUBA neuron resets only v, so with u > 0 "
            "it fires again; three mappings:",
            "(a) microcoded neuron via lava-loihi (a 'fired' bit beside u and v): exact, 1 "
            "compartment per neuron; needs lava-loihi (Intel INRC) and an NcProcessModel of "
            "SpikeOnceAlpha, which spikecodec does not have yet",
            f"(b) standard CUBA neuron with a refractory delay >= the rest of the sample: exact "
            f"iff T - 1 <= {REF_DELAY_MAX} (refDelay's range) -- here T = {num_steps}: "
            + ("possible" if refractory else "NOT possible")
            + "; the refractory neuron must also be reset per sample (Lava's LIFRefractory is "
            "float-only and keeps integrating u)",
            f"(c) standard CUBA neuron with a self-inhibiting connection (a 1:1 Dense, {n} more "
            f"synapses, weight -256 << 7): the inhibition arrives one step after the spike, so "
            f"a second spike one step later is possible when u alone exceeds the threshold, "
            f"and late excitation can outgrow the decaying inhibition: not bit-exact; the "
            f"host must keep only the first spike of each neuron (costless: spikes leave the "
            f"chip anyway)",
        ]
        if p:
            notes.append(
                f"pulses ({p} per sample): (a) host-injected spikes through the PyToNx adapter, "
                f"{p} spikes per sample, exact (the mapping built here: PulseSource is a host "
                f"process); (b) spike generators on the chip (lava-loihi's embedded spike "
                f"generators), exact; (c) bias-driven neurons: a CUBA neuron with a bias fires "
                f"periodically, so it fires once at its step only when it is itself a "
                f"spike-once neuron (mapping (a)/(b) above); a bias of 13 bits sets the step "
                f"only to within rounding of vth / bias")
        notes.append("the loihi2 backend runs neither custom process yet; --backend lava-sim "
                     "runs them on the CPU, bit-exact with the reference")
        return {"layer": self.name, "kind": self.kind, "neurons": n,
                "synapses": int(np.count_nonzero(w)) + int(np.count_nonzero(pw)),
                "dense_synapses": int(w.size + pw.size), "bits": fields,
                "cores": core_estimate(n, w.size + pw.size), "standard": False,
                "mapping": "spike-once CUBA (alpha: du = dv) + pulse sources: custom, see "
                           "notes",
                "problems": problems, "warnings": warnings, "notes": notes}


@dataclass(frozen=True)
class SpikeOncePlan:
    """The layer in the reference engine: Lava's Dense, the pulses' precomputed input, then
    ``spike_once_step`` (bounded, counting Lava's wraps and clips) on int64 ``(B, out)`` state."""

    synapse: Any  # spikecodec.deploy.backends.reference.Synapse
    params: Any  # CubaParams in state units
    pulses: Any  # (steps, out) int64 tensor: the pulses' input per step
    state: Any  # torch.int64

    def zero_state(self, batch: int):
        import torch

        zeros = torch.zeros((batch, self.synapse.rows), dtype=torch.int64,
                            device=self.synapse.weight_t.device)
        counters = [torch.zeros_like(zeros, dtype=torch.int32) for _ in range(2)]
        return SpikeOnceState(zeros, zeros, zeros.bool()), *counters

    def step(self, state, a, *, t: int, samples):
        neuron, wraps, clips = state
        neuron, s, hits = spike_once_step(neuron, a + self.pulses[t], self.params, hits=True)
        wraps += hits.u_wrapped
        clips += hits.v_clipped
        return (neuron, wraps, clips), s

    def counts(self, state) -> tuple[int, int]:
        _, wraps, clips = state
        return int(wraps.sum()), int(clips.sum())

"""The VDIB stochastic readout layer: a custom kind (our Lava process, not a NetX block)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from spikecodec.errors import ConfigError
from spikecodec.lava_procs.spec import (
    BIAS_MAX,
    BIAS_MIN,
    DECAY_MAX,
    DECAY_MIN,
    LUT_SHIFT_MAX,
    STATE_EXP,
    WEIGHT_MAX,
    WEIGHT_MIN,
)
from spikecodec.validate import check_int, check_int_array, check_int_tuple


@dataclass(frozen=True)
class StochasticReadoutLayer:
    """VDIB readout: dense synapses ``(K * N, in)`` into ``N`` stochastic-threshold neurons.

    The dynamics are :mod:`spikecodec.lava_procs.stochastic_readout.dynamics` (equations in its
    docstring): ``K`` alpha-shaped basis responses per synapse (row ``k * N + i`` of ``weight``
    feeds basis ``k`` of neuron ``i``), an exponential feedback of the neuron's own spikes, a
    bias, and a spike drawn with probability ``lut[bin(m)] / 2^16`` from a counter-based PRNG
    keyed by ``(seed, neuron, step, sample)``. Weights are NetX integers (the synapse is a Lava
    Dense, :func:`spikecodec.deploy.weights.lava_weights`); ``fb_weight`` and ``bias`` are
    mantissas shifted left by 6 into state units, like a CUBA bias.
    """

    kind: ClassVar[str] = "stochastic_readout"
    standard: ClassVar[bool] = False  # our Lava process, not a NetX block

    name: str
    weight: np.ndarray  # (K * N, in) integers in [-256, 254]
    i_decay: tuple[int, ...]  # current decay per basis, 0..4096
    v_decay: tuple[int, ...]  # voltage decay per basis, 0..4096
    fb_decay: int  # decay of the feedback trace, 0..4096
    fb_weight: np.ndarray  # (N,) feedback mantissas
    bias: np.ndarray  # (N,) bias mantissas
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
        from spikecodec.lava_procs.stochastic_readout.dynamics import ReadoutParams

        return ReadoutParams(
            du=tuple(self.i_decay), dv=tuple(self.v_decay), dg=self.fb_decay,
            w_fb=xp_array(np.asarray(self.fb_weight, dtype=np.int64) << STATE_EXP),
            bias=xp_array(np.asarray(self.bias, dtype=np.int64) << STATE_EXP),
            lut=xp_array(np.asarray(self.lut, dtype=np.int64)), lut_shift=self.lut_shift,
            lut_offset=self.lut_offset, seed=self.seed)

    def validate(self) -> StochasticReadoutLayer:
        """Check types and ranges; return a copy holding read-only int64 arrays."""
        from spikecodec.lava_procs.stochastic_readout.dynamics import PROB_ONE, check_seed

        k = len(self.i_decay) if isinstance(self.i_decay, (tuple, list)) else 0
        if k < 1 or not isinstance(self.v_decay, (tuple, list)) or len(self.v_decay) != k:
            raise ConfigError(f"{self.name}: i_decay and v_decay must be equal-length tuples "
                              f"(one decay per basis response), got {self.i_decay!r}, "
                              f"{self.v_decay!r}")
        i_decay = check_int_tuple(self.name, "i_decay", self.i_decay, DECAY_MIN, DECAY_MAX)
        v_decay = check_int_tuple(self.name, "v_decay", self.v_decay, DECAY_MIN, DECAY_MAX)
        shape = np.shape(self.weight)
        if len(shape) != 2 or 0 in shape or shape[0] % k:
            raise ConfigError(f"{self.name}: weight must be a non-empty (K * N, in) array with "
                              f"K = {k} basis responses, got shape {shape}")
        weight = check_int_array(self.name, "weight", self.weight, shape, WEIGHT_MIN,
                                 WEIGHT_MAX)
        n = shape[0] // k
        lut = np.asarray(self.lut)
        if lut.ndim != 1 or lut.size < 2:
            raise ConfigError(f"{self.name}: lut must be a 1-D table of >= 2 entries, "
                              f"got shape {lut.shape}")
        try:
            seed = check_seed(self.seed)
        except ConfigError as err:
            raise ConfigError(f"{self.name}: {err}") from err
        return StochasticReadoutLayer(
            name=self.name, weight=weight, i_decay=i_decay, v_decay=v_decay,
            fb_decay=check_int(self.name, "fb_decay", self.fb_decay, DECAY_MIN, DECAY_MAX),
            fb_weight=check_int_array(self.name, "fb_weight", self.fb_weight, (n,), BIAS_MIN,
                                      BIAS_MAX),
            bias=check_int_array(self.name, "bias", self.bias, (n,), BIAS_MIN, BIAS_MAX),
            lut=check_int_array(self.name, "lut", lut, lut.shape, 0, PROB_ONE),
            lut_shift=check_int(self.name, "lut_shift", self.lut_shift, 0, LUT_SHIFT_MAX),
            lut_offset=check_int(self.name, "lut_offset", self.lut_offset, -(2**31),
                                 2**31 - 1),
            seed=seed)

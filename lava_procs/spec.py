"""Loihi 2 / Lava fixed-point limits and scales: the one place every consumer reads them from.

The training blocks, the stochastic readout, the IR's validation, the Loihi 2 check and every
process model import these numbers; none of them writes a limit of its own. The module imports
nothing (not even numpy), so Lava process models can use it. Sources: lava-nc 0.10
(``proc/lif/models.py``, ``proc/dense/models.py``), lava-dl 0.6 (``netx/utils.py``,
``slayer/block/base.py``) and the Loihi 2 register widths that lava-loihi documents.

State units: Lava's CUBA neurons hold ``u`` and ``v`` on a 2^12-scaled integer state; a weight
mantissa ``w`` (and a bias mantissa) enters that state as ``w << STATE_EXP``.
"""
from __future__ import annotations

# --- time constants: decays on the 4096 scale --------------------------------------------------
DECAY_BITS = 12  # iDecay / vDecay registers (iDecay = 4096 is reached through ds_offset)
DECAY_SCALE = 1 << DECAY_BITS  # 4096: decay d keeps (4096 - d) / 4096 of the state each step
DECAY_MIN, DECAY_MAX = 0, DECAY_SCALE  # what NetX and Lava accept for both decays

# --- state -------------------------------------------------------------------------------------
STATE_EXP = 6  # weight and bias mantissas are shifted left by 6 into state units
STATE_BITS = 24  # u and v registers
U_MAX = 1 << (STATE_BITS - 1)  # 2^23: the current wraps above this (and at or below -U_MAX)
V_MAX = (1 << (STATE_BITS - 1)) - 1  # the voltage saturates at +-V_MAX

# --- synapses ----------------------------------------------------------------------------------
WEIGHT_BITS = 8  # signed weight mantissa; one exponent scales a whole matrix
WEIGHT_MIN, WEIGHT_MAX = -256, 254  # what NetX loads without clipping (SLAYER's even mantissas)
WEIGHT_RAW_MIN, WEIGHT_RAW_MAX = -256, 255  # what NetX accepts for a sign-uniform matrix
# Synaptic delays (steps a spike waits in the dendritic accumulator beyond the Dense's one step).
# Loihi 2 stores 6 delay bits per synapse: lava-nc 0.10's bit-accurate DelayDense model
# (proc/dense/models.py, PyDelayDenseModelBitAcc) refuses delays > 63 ("Loihi 2 has a maximum of
# 6 bits for delays"); lava-dl 0.6's NetX is stricter: netx/utils.py num_delay_bits refuses
# delays >= 63 ("Max delay exceeded limit of 62") and netx/hdf5.py clamps larger ones to 62 and
# builds DelayDense with max_delay=62. 62 is what both run unchanged.
SYNAPSE_DELAY_BITS = 6
SYNAPSE_DELAY_MIN, SYNAPSE_DELAY_MAX = 0, 62

# --- neuron parameters -------------------------------------------------------------------------
V_TH_BITS = 17  # vThMant: spike when v > vThMant << 6
V_TH_MANT_MIN, V_TH_MANT_MAX = 1, (1 << V_TH_BITS) - 1
V_TH_MAX = V_TH_MANT_MAX << STATE_EXP  # highest CUBA threshold in state units: 2^23 - 64
BIAS_BITS = 13  # signed bias mantissa (bias_exp = 6)
BIAS_MIN, BIAS_MAX = -(1 << (BIAS_BITS - 1)), (1 << (BIAS_BITS - 1)) - 1
REF_DELAY_MIN, REF_DELAY_MAX = 1, 63  # refractory steps (NetX's CUBA ignores it)

# --- cores (for the resource estimate of ``spikecodec check --target loihi2``) -----------------
NEURONS_PER_CORE = 8192
SYNAPSE_BITS_PER_CORE = 128 * 1024 * 8
HOST_VALUE_BYTES = 3  # one 24-bit value read out to the host

# --- custom processes --------------------------------------------------------------------------
SEED_MIN, SEED_MAX = 0, (1 << 32) - 1  # counter-based PRNG seeds (32-bit keys)
PROB_BITS = 16  # readout probabilities and random draws are 16-bit integers
PROB_ONE = 1 << PROB_BITS
NUM_BASIS_MAX = 1 << 16  # basis responses per readout synapse
LUT_SHIFT_MAX = 31
LUT_OFFSET_MIN, LUT_OFFSET_MAX = -(1 << 31), (1 << 31) - 1  # the readout table's bin offset
STREAM_MAX = 1 << 40  # stream periods, offsets and sample indices of a Lava run
NUM_STEPS_MAX = 1 << 20  # steps per sample an export may ask for
PULSE_EXP_MAX = 7  # extra left shift of a pulse synapse's weights (Loihi 2 weight exponents
#                    reach +7; the pulse weights are far larger than the regular ones)
WEIGHT_EXP_MIN, WEIGHT_EXP_MAX = -8, 7  # a Dense's weight exponent on Loihi 2

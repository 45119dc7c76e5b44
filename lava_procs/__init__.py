"""spikecodec.lava_procs -- fixed-point neuron step functions (numpy/torch agnostic, no torch
import) and the custom Lava processes built on them."""

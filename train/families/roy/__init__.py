"""Roy, Panda & Roy 2019: the AE-SNN (LIF autoencoder trained on the output membrane potential
with an XOR mask) and its AE-ANN baselines."""

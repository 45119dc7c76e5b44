"""Roy, Panda & Roy 2019, §3.2: audio-to-image synthesis -- a spiking audiocoder trained to emit
an AE-SNN's hidden spike map from spoken digits, deployed with the AE's decoder as one network."""

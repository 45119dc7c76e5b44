"""Custom Lava process of the spike-once alpha neuron (process.py, models.py); its fixed-point
step is :func:`spikecodec.lava_procs.spike_once.spike_once_step`."""

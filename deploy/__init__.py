"""spikecodec.deploy -- numpy side (Lava imported lazily): fixed-point network description, NetX
HDF5 export, backends and host decoding."""

"""Custom Lava process of the VDIB stochastic readout (process.py, models.py) and its
fixed-point dynamics (dynamics.py, shared with the torch model and the reference engine)."""

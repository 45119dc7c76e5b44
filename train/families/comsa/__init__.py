"""Comsa et al. 2021: temporal-coding spiking autoencoder (alpha neurons that spike once,
exact spike-time gradients, learnable pulses)."""

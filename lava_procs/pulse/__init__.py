"""Custom Lava process of the pulse sources (process.py, models.py): spikes at fixed steps of
every sample window (Comsa et al.'s synchronisation pulses); its step is dynamics.py."""

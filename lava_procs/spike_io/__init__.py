"""File-backed spike I/O for long Lava runs: :class:`SpikeSource` streams a ``.npy`` file one step
per time step, :class:`SpikeSink` writes the steps that matter into a ``.npy`` file the caller
reads with numpy after the run (no ``Var.get()``, which costs ~30 µs per element).

Process models live beside them in ``models.py`` (``floating_pt`` and ``fixed_pt``)."""

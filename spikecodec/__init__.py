"""spikecodec: spiking autoencoders from training to Loihi 2.

The public functions (:mod:`spikecodec.api`) are attributes of the package, imported on first
use, so ``import spikecodec`` costs no torch and no Lava::

    import spikecodec as sc
    net = sc.quantize(blocks, num_steps=20)
    sc.run(net, spikes).spikes

Subpackages: :mod:`spikecodec.train` (models, blocks, learning rules), :mod:`spikecodec.deploy`
(fixed-point networks, NetX HDF5, NIR, backends), :mod:`spikecodec.lava_procs` (Lava processes),
:mod:`spikecodec.workflows` (what the command runs).
"""
__version__ = "0.1.0"

_API = ("bundle", "check", "default_config", "evaluate", "evaluate_spikes", "export_run",
        "import_nir", "parity", "quantize", "read_export", "read_spikes", "run", "to_nir",
        "train_model", "write_export", "write_nir")

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from spikecodec import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'spikecodec' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))

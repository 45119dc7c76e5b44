"""Typed errors raised on bad input anywhere in spikecodec.

Every error names the problem and where it is (the field, file or argument). They subclass the
matching built-in (``ValueError``, ``TypeError``, ``FileNotFoundError``) so callers that catch
those keep working. This module imports nothing, so train/, deploy/ and lava_procs/ all use it.
"""


class SpikecodecError(Exception):
    """Base class of every error spikecodec raises on purpose."""


class ConfigError(SpikecodecError, ValueError):
    """A config file, key or value is invalid (unknown key, wrong type, out of range)."""


class InputError(SpikecodecError, ValueError):
    """An array argument has the wrong shape, dtype or values (e.g. non-finite, non-binary)."""


class InputTypeError(SpikecodecError, TypeError):
    """An argument has the wrong Python or tensor type."""


class DataError(SpikecodecError, ValueError):
    """A dataset name is unknown, or a data file is corrupt or truncated."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """Dataset files are missing and downloading was not allowed."""


class CheckpointError(SpikecodecError, ValueError):
    """A checkpoint or run directory is missing, corrupt or from another model."""


class ExportError(SpikecodecError, ValueError):
    """An export file is missing, corrupt, truncated, foreign, or holds invalid values."""


class NIRError(SpikecodecError, ValueError):
    """A NIR graph cannot be read, written or mapped to Loihi 2 (unsupported node, cycle,
    mismatched shapes, non-finite parameters); the message names the node or layer."""


class TrainingError(SpikecodecError, RuntimeError):
    """Training cannot go on (e.g. a loss turned NaN or infinite); says at which epoch and batch."""


class BackendUnavailableError(SpikecodecError, RuntimeError):
    """A backend cannot run here (e.g. Loihi 2 without lava-loihi); the message says what to get."""


class WorkerError(SpikecodecError, RuntimeError):
    """A worker process of a parallel run failed or died; the message names its shard (and the
    worker's error), the other workers were stopped. ``details``: the worker's traceback."""

    def __init__(self, message: str, *, details: str = "") -> None:
        self.details = details
        super().__init__(message)


class LavaTimeoutError(WorkerError):
    """A Lava run gave no result within its timeout; its runtime was stopped (killed if it did
    not stop) and no process of it is left."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived during a Lava run; raised in the main thread once the run was
    stopped cleanly (as Ctrl-C is), so callers that handle ``KeyboardInterrupt`` handle it."""

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = signum
        super().__init__(f"terminated by {signal.Signals(signum).name}")

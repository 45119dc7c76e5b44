"""Data-parallel training under ``torchrun``: every family's :func:`~spikecodec.train.fit.fit`
runs on N processes (gloo on CPU, NCCL on GPUs) with the same result as one process.

    torchrun --standalone --nproc_per_node 2 -m spikecodec.cli train roy --out runs/roy2

How the N processes stay one run:

* **the same global batch**: every rank computes the same epoch order (a pure function of the
  seed, :mod:`spikecodec.train.seeds`), so batch ``b`` holds the same sample indices everywhere;
  a trainer draws the batch's random numbers for the *whole* batch (the same draws as one
  process) and then keeps its rows, :func:`local_rows` (rank ``r`` of ``W`` keeps the
  contiguous rows ``[r n / W, (r + 1) n / W)``);
* **the same gradient**: each family's loss is a mean over its samples of per-sample terms, so
  with ``n_r`` rows on rank ``r`` the one-process gradient is ``sum_r (n_r / n) g_r``;
  :func:`average_gradients` hooks the optimiser so that, before every ``step``, each gradient
  is scaled by ``n_r / n`` and summed over the ranks (one all-reduce of one flat buffer, what
  ``DistributedDataParallel`` does after backward). Every rank then takes the same step from the
  same weights, so the replicas never drift apart beyond float summation order;
* **the same logs**: the step's metrics are averaged the same way (:func:`reduce_metrics`);
* **one writer**: checkpoints, ``metrics.csv`` and the run folder are written by rank 0 only
  (:func:`is_main`); the other ranks write what the family writes into a private temporary
  folder that is removed afterwards (``spikecodec.workflows.training``).

Why a hook rather than wrapping the model in ``DistributedDataParallel``: the families own their
forward passes (Comsa's exact spike-time backward is a custom autograd function, VDIB's e-prop
adds its own objective), and a wrapped model would rename every checkpoint key (``module.``);
summing the gradients before the optimiser step is the same arithmetic without either.

Random numbers drawn inside the forward pass, step by step (VDIB's stochastic readout), are
drawn the same way: :class:`RowDraws` draws for the whole batch and keeps this rank's rows; a
statistic of the whole batch that feeds the update (VDIB's REINFORCE baseline) is
:func:`batch_mean`, one all-reduce. A future family whose update cannot be sharded says so with
``data_parallel = False`` (and ``data_parallel_reason``) on its trainer, and
:func:`check_trainer` refuses it with the reason before anything is written.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from spikecodec.errors import ConfigError


def world() -> tuple[int, int]:
    """``(rank, size)`` of the process group, ``(0, 1)`` outside ``torchrun``."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process writes the run's files (rank 0, or the only process)."""
    return world()[0] == 0


def launched() -> bool:
    """Whether ``torchrun`` started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str = "cpu") -> tuple[int, int]:
    """Join the process group ``torchrun`` describes in the environment (once); gloo on the CPU,
    NCCL for CUDA devices. Returns :func:`world`."""
    dist = torch.distributed
    if launched() and not dist.is_initialized():
        if not dist.is_available():
            raise ConfigError("torchrun started several processes but this torch build has no "
                              "torch.distributed")
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend)
    return world()


def device_for_rank(name: str) -> str:
    """``cuda`` becomes ``cuda:LOCAL_RANK`` under ``torchrun`` (one GPU per process)."""
    if name == "cuda" and launched():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return name


def local_rows(n: int) -> slice:
    """The rows of an ``n``-sample batch that this rank computes (all of them in one process)."""
    rank, size = world()
    return slice(rank * n // size, (rank + 1) * n // size)


class RowDraws:
    """Bernoulli draws for a whole batch of ``n`` rows from one generator, of which this rank
    keeps ``rows``: the spikes one process draws for the whole batch.

    ``torch.bernoulli(p, generator=g)`` on the CPU consumes ``g`` as ``torch.rand(p.shape,
    generator=g) < p`` does, element for element (tests/train/test_parallel.py checks it), so
    one process on the CPU keeps passing the plain generator and nothing changes there. CUDA's
    Bernoulli kernel is not known to match ``rand < p``, so on a GPU one process draws through
    this class too, and N processes draw what one does by construction.
    """

    def __init__(self, generator: torch.Generator, rows: slice, n: int):
        self.generator, self.rows, self.n = generator, rows, n

    @classmethod
    def for_batch(cls, generator: torch.Generator, n: int) -> torch.Generator | RowDraws:
        """The plain generator in one CPU process, else the draws for this rank's rows."""
        if world()[1] == 1 and generator.device.type == "cpu":
            return generator
        return cls(generator, local_rows(n), n)

    def bernoulli(self, p: torch.Tensor) -> torch.Tensor:
        """0/1 of ``p``'s dtype; ``p`` holds this rank's rows of the batch (first dimension)."""
        u = torch.rand((self.n, *p.shape[1:]), generator=self.generator, dtype=p.dtype,
                       device=p.device)
        return (u[self.rows] < p).to(p.dtype)


def bernoulli(p: torch.Tensor, generator: torch.Generator | RowDraws | None) -> torch.Tensor:
    """``torch.bernoulli(p, generator=...)``, or a :class:`RowDraws`' share of the batch's."""
    if isinstance(generator, RowDraws):
        return generator.bernoulli(p)
    return torch.bernoulli(p, generator=generator)


def batch_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean over the first dimension of the whole batch, from this rank's rows ``x``:
    ``x.mean(0)`` in one process, else one all-reduce of the row sums and the row count."""
    if world()[1] == 1:
        return x.mean(0)
    flat = x.detach().sum(0).reshape(-1).to(torch.float64)
    total = torch.cat([flat, flat.new_tensor([x.shape[0]])])
    torch.distributed.all_reduce(total)
    return (total[:-1] / total[-1]).to(x.dtype).view(x.shape[1:])


def check_batches(n_train: int, batch_size: int) -> None:
    """Every batch, the last one included, must give each rank at least one sample."""
    size = world()[1]
    last = n_train - (-(-n_train // batch_size) - 1) * batch_size
    if size > 1 and min(batch_size, last) < size:
        raise ConfigError(f"data-parallel training on {size} processes needs at least {size} "
                          f"samples in every batch; batch_size {batch_size} with {n_train} "
                          f"training samples leaves {min(batch_size, last)} in a batch (change "
                          f"train.batch_size or the number of processes)")


def check_trainer(trainer: Any) -> None:
    """Refuse a trainer whose updates are not per-sample means (``data_parallel = False``)."""
    if world()[1] > 1 and not getattr(trainer, "data_parallel", True):
        reason = getattr(trainer, "data_parallel_reason", "its estimator is per batch")
        raise ConfigError(f"{type(trainer).__name__} cannot train data-parallel: {reason}; "
                          f"run it as one process")


@contextmanager
def average_gradients(optimizer: torch.optim.Optimizer, share: list[float]) -> Iterator[None]:
    """Before every ``optimizer.step()`` in this block, replace each gradient by the
    ``share[0]``-weighted sum over the ranks (``share[0] = n_r / n`` of the current batch, set by
    the caller before each step). Nothing happens in one process."""
    if world()[1] == 1:
        yield
        return
    dist = torch.distributed

    def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        params = [p for group in opt.param_groups for p in group["params"]]
        # a parameter without a gradient on every rank stays without one (as in one process)
        present = torch.tensor([p.grad is not None for p in params], dtype=torch.int32)
        dist.all_reduce(present, op=dist.ReduceOp.MAX)
        live = [p for p, flag in zip(params, present.tolist(), strict=True) if flag]
        if not live:
            return
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in live]) * share[0]
        dist.all_reduce(flat)
        at = 0
        for p in live:  # views of the one reduced buffer: no copy per parameter
            p.grad = flat[at:at + p.numel()].view_as(p)
            at += p.numel()

    handle = optimizer.register_step_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def reduce_metrics(metrics: dict[str, float], share: float) -> dict[str, float]:
    """The ``share``-weighted sum of each metric over the ranks (their one-process mean)."""
    if world()[1] == 1 or not metrics:
        return metrics
    values = torch.tensor([float(v) * share for v in metrics.values()], dtype=torch.float64)
    torch.distributed.all_reduce(values)
    return dict(zip(metrics, values.tolist(), strict=True))


def barrier() -> None:
    if world()[1] > 1:
        torch.distributed.barrier()

"""Training and fitting past one process: the process group, batch sharding, exact sums across ranks.

*Data-parallel training* (:class:`~pathways.training.Trainer` with ``strategy="auto"`` under ``torchrun``, or
``strategy="ddp"``): every rank builds the same global batches (seeded by epoch), keeps its contiguous slice of
rows (:func:`shard_batch`), and steps through ``torch.nn.parallel.DistributedDataParallel``. The loss of a step is
``Σ_ranks loss_r / Σ_ranks n_r``: the summed loss and the event count are all-reduced before the backward pass, so
the gradient equals the one-process gradient on the same global batch (not a mean of per-rank means). Rank 0 alone
logs, shows progress and writes checkpoints; a checkpoint holds no rank-specific state, so a run resumes on any
number of processes.

*Sharded statistical fits* (Hawkes likelihood / least squares, nonparametric EM, SCCS): each rank holds the
sufficient structure of its own patients and a :class:`Reducer` sums the per-rank statistics of every iteration
(one ``all_reduce`` on a flat float64 buffer), so every rank runs the same deterministic solver on the same totals.

Backends: ``gloo`` on CPU, ``nccl`` on CUDA (one device per rank: ``cuda:LOCAL_RANK``). Without a launcher
(``WORLD_SIZE`` unset or 1) everything here is the identity and the single-process path is unchanged.

Examples
--------
>>> ctx = DistContext()                       # one process
>>> ctx.active, ctx.is_main
(False, True)
>>> shard_rows(10, rank=1, world_size=3)
(3, 6)
>>> Reducer().sum(np.array([1.0, 2.0]), 3.0)
(array([1., 2.]), 3.0)
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from pathways.errors import PathwaysInputError

logger = logging.getLogger("pathways")

__all__ = [
    "sharded_fit",
    "STRATEGIES",
    "DistContext",
    "RankBatch",
    "Reducer",
    "init_distributed",
    "is_main_process",
    "launched",
    "rank_device",
    "shard_batch",
    "shard_rows",
    "slurm_env",
]

#: ``Trainer(strategy=...)``: "auto" = DDP when started by a distributed launcher, "ddp" = require one, "single"
STRATEGIES = ("auto", "ddp", "single")


def launched(slurm: bool = False) -> bool:
    """True when this process was started by ``torchrun`` (or a launcher setting the same variables) with
    more than one process; with ``slurm`` (strategy "ddp" only: a batch script with several tasks also sets them in
    its one process) SLURM tasks (``srun``, the submitit launcher) are translated first (:func:`slurm_env`)."""
    if slurm:
        slurm_env()
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def slurm_env(env: MutableMapping[str, str] | None = None) -> None:
    """Under SLURM with several tasks and no torchrun variables, export what ``env://`` reads: RANK, WORLD_SIZE,
    LOCAL_RANK from SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, MASTER_ADDR = the job's first node and a MASTER_PORT
    derived from the job id (set them yourself to override).

    >>> env = {"SLURM_NTASKS": "8", "SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "4242",
    ...        "SLURM_JOB_NODELIST": "gpu[07-08]"}
    >>> slurm_env(env); env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"], env["MASTER_ADDR"], env["MASTER_PORT"]
    ('5', '8', '1', 'gpu07', '24242')
    """
    env = os.environ if env is None else env
    if "WORLD_SIZE" in env or "SLURM_PROCID" not in env or int(env.get("SLURM_NTASKS", "1")) <= 1:
        return
    env["RANK"], env["WORLD_SIZE"] = env["SLURM_PROCID"], env["SLURM_NTASKS"]
    env["LOCAL_RANK"] = env.get("SLURM_LOCALID", "0")
    env.setdefault("MASTER_ADDR", _first_host(env.get("SLURM_JOB_NODELIST", "127.0.0.1")))
    env.setdefault("MASTER_PORT", str(20000 + int(env.get("SLURM_JOB_ID", "0")) % 20000))


def _first_host(nodelist: str) -> str:
    """First host of a SLURM node list: ``gpu[07-08,11],cpu01`` -> ``gpu07`` (what ``scontrol show hostnames``
    prints first)."""
    match = re.match(r"([^,\[]+)(?:\[([^\]\-,]+))?", nodelist.strip())
    if match is None:
        return "127.0.0.1"
    return match.group(1) + (match.group(2) or "")


def rank_device(device: str, slurm: bool = False) -> str:
    """The device of this rank: a CUDA request (``"cuda"``, ``"gpu"``, ``"auto"`` with CUDA) becomes
    ``cuda:LOCAL_RANK`` under a multi-process launch; anything else is returned unchanged.

    >>> rank_device("cpu")
    'cpu'
    """
    name = str(device).strip().lower()
    wants_cuda = name in ("cuda", "gpu") or (name == "auto" and torch.cuda.is_available())
    if not (launched(slurm) and wants_cuda):
        return device
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"


@dataclasses.dataclass(frozen=True)
class RankBatch:
    """A batch that is already this rank's own (read from its shards, :mod:`pathways.training.shards`) and its
    weight: the Trainer does not slice it. Weight 0 marks a padding step (the rank has run out of batches while
    others still have some): it runs the passes DDP synchronises and adds nothing to the loss, count or gradient."""

    batch: Any
    weight: float = 1.0


@dataclasses.dataclass(frozen=True)
class DistContext:
    """Where this process stands in the process group (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    group: Any = None

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: Any) -> tuple[Any, float]:
        """This rank's rows of a global batch and their weight (see :func:`shard_batch`); identity when alone; a
        :class:`RankBatch` is this rank's already."""
        if isinstance(batch, RankBatch):
            return batch.batch, float(batch.weight)
        if not self.active:
            return batch, 1.0
        return shard_batch(batch, self.rank, self.world_size)

    def reducer(self) -> Reducer:
        return Reducer(self.group if self.active else None, active=self.active)

    def wrap(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``module`` in ``DistributedDataParallel`` (parameters broadcast from rank 0); itself when alone."""
        if not self.active:
            return module
        ids = [device.index if device.index is not None else torch.cuda.current_device()] \
            if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids, process_group=self.group)

    def totals(self, loss: torch.Tensor, n: Any, weight: float) -> tuple[torch.Tensor, Any]:
        """(summed loss, event count) of the global batch: one ``all_reduce`` of two numbers; identity alone."""
        if not self.active:
            return loss, n
        pair = torch.stack([loss.detach().double() * weight,
                            torch.as_tensor(float(n) * weight, dtype=torch.float64, device=loss.device)])
        torch.distributed.all_reduce(pair, group=self.group)
        return pair[0], round(float(pair[1]))

    def objective(self, loss: torch.Tensor, weight: float, n: Any) -> torch.Tensor:
        """What this rank backpropagates: ``loss / n`` alone; ``weight * world * loss_r / n_global`` under DDP, whose
        gradient averaging over ranks then gives ``Σ_r ∇loss_r / n_global``, the one-process gradient."""
        if not self.active:
            return loss / max(float(n), 1.0)
        return loss * (weight * self.world_size / max(float(n), 1.0))

    def seed_epoch(self, seed: int, epoch: int) -> None:
        """Reseed torch from (seed, epoch, rank) at each epoch under DDP: per-rank dropout / Monte-Carlo draws
        differ between ranks, and do not depend on the run's past, so a run resumes identically."""
        if self.active:
            state = np.random.SeedSequence([int(seed), int(epoch), self.rank]).generate_state(1)
            torch.manual_seed(int(state[0]))


def init_distributed(strategy: str = "auto", device: torch.device | None = None) -> DistContext:
    """Join (or create) the default process group when the run is distributed.

    Parameters
    ----------
    strategy : "auto" (DDP when launched by ``torchrun`` with ``WORLD_SIZE > 1`` or when a process group is already
        initialised), "ddp" (the same, but an error without a launcher's ``WORLD_SIZE``; one process is fine) or
        "single" (ignore any process group).
    device : the rank's device: ``nccl`` on CUDA, ``gloo`` otherwise.

    Non-zero ranks lower the ``pathways`` logger to warnings: rank 0 alone reports.
    """
    if strategy not in STRATEGIES:
        raise PathwaysInputError(f"trainer setting 'strategy': expected one of {STRATEGIES}, got {strategy!r}")
    if strategy == "single":
        return DistContext()
    dist = torch.distributed
    if not dist.is_initialized() and launched(slurm=strategy == "ddp"):
        backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
        if device is not None and device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    if not dist.is_initialized() or dist.get_world_size() == 1:
        if strategy == "ddp" and "WORLD_SIZE" not in os.environ:  # torchrun with one process is a valid launch
            raise PathwaysInputError("trainer strategy 'ddp' needs a distributed launch: start the run with "
                                     "torchrun --nproc-per-node=N ... (see docs/distributed.md)")
        return DistContext()
    ctx = DistContext(dist.get_rank(), dist.get_world_size())
    if not ctx.is_main:
        logger.setLevel(logging.WARNING)
    return ctx


def is_main_process() -> bool:
    """True on rank 0 of the default process group, or when not distributed: the process that writes run outputs."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def shard_rows(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Bounds ``[lo, hi)`` of rank ``rank``'s contiguous share of ``n`` rows (sizes differ by at most one)."""
    bounds = np.arange(world_size + 1) * int(n) // int(world_size)
    return int(bounds[rank]), int(bounds[rank + 1])


def _batch_size(batch: Any) -> int | None:
    """Leading size of the first tensor found in a batch (dataclass, dict, tuple/list of tensors)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else None
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        batch = [getattr(batch, f.name) for f in dataclasses.fields(batch)]
    elif isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for value in batch:
            size = _batch_size(value)
            if size is not None:
                return size
    return None


def _rows(batch: Any, size: int, lo: int, hi: int) -> Any:
    """Rows ``lo:hi`` of every tensor whose leading dimension is the batch size; other values unchanged."""
    if isinstance(batch, torch.Tensor):
        return batch[lo:hi] if batch.dim() and batch.shape[0] == size else batch
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(batch, **{f.name: _rows(getattr(batch, f.name), size, lo, hi)
                                             for f in dataclasses.fields(batch) if f.init})
    if isinstance(batch, dict):
        return {k: _rows(v, size, lo, hi) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_rows(v, size, lo, hi) for v in batch)
    return batch


def shard_batch(batch: Any, rank: int, world_size: int) -> tuple[Any, float]:
    """Rank ``rank``'s contiguous rows of a global batch, and the weight of its loss.

    Every tensor whose leading dimension is the batch size (padded sequences, dense histories, labels, indices) is
    sliced. A rank whose share is empty (fewer rows than ranks) gets the first row with weight 0: it still runs the
    forward and backward passes DDP synchronises, but adds nothing to the loss, the count or the gradient.

    >>> batch = {"x": torch.arange(10).reshape(5, 2), "y": torch.arange(5)}
    >>> part, weight = shard_batch(batch, 1, 2)
    >>> part["y"].tolist(), weight
    ([2, 3, 4], 1.0)
    >>> shard_batch({"y": torch.arange(1)}, 0, 2)[1]
    0.0
    """
    size = _batch_size(batch)
    if size is None:
        raise PathwaysInputError("distributed training: a batch holds no tensor with a batch dimension to shard")
    lo, hi = shard_rows(size, rank, world_size)
    if hi > lo:
        return _rows(batch, size, lo, hi), 1.0
    return _rows(batch, size, 0, min(1, size)), 0.0


class Reducer:
    """Sums of statistics across the ranks of a process group (identity on one process).

    ``sum(*values)`` takes numpy arrays, torch tensors and Python numbers, packs them in one float64 buffer, runs one
    ``all_reduce`` and returns the totals with the input types, shapes and devices. Integer counts up to 2^53 are
    exact in float64.
    """

    def __init__(self, group: Any = None, active: bool | None = None):
        self.group = group
        dist = torch.distributed
        if active is None:
            active = dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1
        self.active = bool(active)
        self.world_size = dist.get_world_size(group) if self.active else 1
        self.rank = dist.get_rank(group) if self.active else 0

    def sum(self, *values: Any) -> tuple[Any, ...]:
        return self._reduce(values, torch.distributed.ReduceOp.SUM) if self.active else values

    def max(self, *values: Any) -> tuple[Any, ...]:
        """Element-wise maxima over the ranks (same types as :meth:`sum`)."""
        return self._reduce(values, torch.distributed.ReduceOp.MAX) if self.active else values

    def _reduce(self, values: tuple[Any, ...], op: Any) -> tuple[Any, ...]:
        flat = [torch.as_tensor(v, dtype=torch.float64).detach().reshape(-1).cpu() for v in values]
        buffer = torch.cat(flat) if flat else torch.zeros(0, dtype=torch.float64)
        if torch.distributed.get_backend(self.group) == "nccl":
            buffer = buffer.cuda()
        torch.distributed.all_reduce(buffer, op=op, group=self.group)
        parts = torch.split(buffer.cpu(), [f.numel() for f in flat])
        return tuple(_like(part, value) for part, value in zip(parts, values))

    def same(self, name: str, value: int) -> None:
        """Fail on every rank, naming ``name``, unless all ranks hold the same integer ``value``."""
        if not self.active:
            return
        buf = torch.tensor([float(value), -float(value)], dtype=torch.float64)
        if torch.distributed.get_backend(self.group) == "nccl":
            buf = buf.cuda()
        torch.distributed.all_reduce(buf, op=torch.distributed.ReduceOp.MAX, group=self.group)
        if float(buf[0]) != -float(buf[1]):
            raise PathwaysInputError(f"sharded fit: '{name}' differs between ranks ({-float(buf[1]):g} to "
                                     f"{float(buf[0]):g}); encode every shard with one vocabulary")


def _like(part: torch.Tensor, value: Any) -> Any:
    """``part`` (float64, flat) back in the type, shape, dtype and device of ``value``."""
    if isinstance(value, torch.Tensor):
        return part.reshape(value.shape).to(device=value.device, dtype=value.dtype)
    if isinstance(value, np.ndarray):
        return part.numpy().reshape(value.shape).astype(value.dtype, copy=False)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return round(float(part[0]))
    return float(part[0])


@contextmanager
def sharded_fit(model: Any, reducer: "Reducer") -> Iterator[Any]:
    """Inside the block, ``model.fit`` sums its statistics over the ranks through ``reducer`` (the estimators read
    ``_shard_reducer``); the attribute is removed afterwards, whatever happens, so the model stays a plain estimator."""
    model._shard_reducer = reducer
    try:
        yield model
    finally:
        del model._shard_reducer

"""Encoders over a sharded event dataset, shard by shard: memory holds one shard (plus its encoding) at a time.

Every event of a patient lies in one shard (patients hashed apart), so per-patient encodings (sparse series,
sequences, SCCS rows) of the shards are the whole population's, split by patient. SCCS case selection is pushed
down to the parquet scan: a first pass reads only the outcome codes' patient ids, the second only those cases'
events, so only cases come back to the driver.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pathways.data.dataset import EventDataset
from pathways.data.eventlog import EventLog
from pathways.encode.sccs import SCCSData, sccs_data
from pathways.encode.sequences import Sequences, to_sequences
from pathways.encode.sparse import SparseSeries, to_sparse_series
from pathways.errors import PathwaysInputError


def iter_sparse_series(dataset: EventDataset, bin_days: float = 30.0, **kwargs: Any) -> Iterator[SparseSeries]:
    """:func:`~pathways.encode.sparse.to_sparse_series` of each shard, on the dataset's one vocabulary (so the
    code axes of all shards agree); ``kwargs`` as there (``vocab`` is the dataset's)."""
    for log in dataset.iter_shards():
        yield to_sparse_series(log, bin_days, vocab=dataset.vocab, **kwargs)


def iter_sequences(dataset: EventDataset, codes: Sequence[str] | None = None) -> Iterator[Sequences]:
    """:func:`~pathways.encode.sequences.to_sequences` of each shard (codes filtered in the parquet scan)."""
    for log in dataset.iter_shards(codes=None if codes is None else list(codes)):
        yield to_sequences(log, codes)


def assign_shards(sizes: Mapping[int, int], world_size: int) -> list[list[int]]:
    """The shards each rank reads: largest shard first to the least loaded rank (ties: the lower rank).

    ``sizes`` maps shard -> patients (:meth:`EventDataset.shard_sizes`); each rank's list is sorted.

    >>> assign_shards({0: 10, 1: 4, 2: 7, 3: 5}, 2)
    [[0, 1], [2, 3]]
    """
    if world_size < 1 or len(sizes) < world_size:
        raise PathwaysInputError(f"sharded training: {len(sizes)} shards hold patients for {world_size} processes; "
                                 f"every process needs at least one shard (write the dataset with more shards)")
    loads, out = np.zeros(world_size), [[] for _ in range(world_size)]
    for k in sorted(sizes, key=lambda k: (-int(sizes[k]), int(k))):
        r = int(np.argmin(loads))
        loads[r] += int(sizes[k])
        out[r].append(int(k))
    return [sorted(ks) for ks in out]


@dataclass(frozen=True)
class ShardPlan:
    """The batches of every epoch of a training run that reads a sharded dataset, rank by rank.

    Rank ``r`` reads only its shards (``assignment[r]``), one at a time, in a seeded per-epoch order; inside a
    shard the samples are shuffled (and, with ``bucket``, sorted by length so that a batch pads little, as
    :meth:`Sequences.batches`) and cut into batches of the rank's share of ``batch_size`` (the global batch of one
    step is the union of the ranks' batches: ``batch_size`` samples while every rank has some). Ranks with fewer
    batches than ``n_steps`` pad their epoch with weight-0 steps. Everything is a pure function of the sample counts,
    the lengths of the shard being read and (seed, epoch): every rank, and an in-memory run
    (:meth:`global_rows`), can replay the plan.

    Parameters
    ----------
    counts : samples (encoded sequences, histories) per shard, over all shards of all ranks.
    assignment : shards of each rank (:func:`assign_shards`).
    batch_size : global batch size (each rank takes its share: sizes differ by at most one).
    seed, shuffle, bucket : order of shards and samples.

    Examples
    --------
    >>> plan = ShardPlan({0: 5, 1: 3, 2: 4}, [[0], [1, 2]], batch_size=4, seed=0)
    >>> plan.rank_batch_size(0), plan.n_batches(0), plan.n_batches(1), plan.n_steps
    (2, 3, 4, 4)
    >>> sorted(np.concatenate([i for k, i in plan.rank_batches(1, epoch=0) if k == 2]).tolist())
    [0, 1, 2, 3]
    """

    counts: Mapping[int, int]
    assignment: Sequence[Sequence[int]]
    batch_size: int
    seed: int = 0
    shuffle: bool = True
    bucket: bool = True

    def __post_init__(self) -> None:
        if int(self.batch_size) < self.world_size:
            raise PathwaysInputError(f"batch_size: {self.batch_size} is smaller than the {self.world_size} "
                                     f"processes; every process needs at least one sample per step")
        missing = sorted({int(k) for ks in self.assignment for k in ks} - {int(k) for k in self.counts})
        if missing:
            raise PathwaysInputError(f"ShardPlan: {len(missing)} assigned shard(s) have no sample count")

    @property
    def world_size(self) -> int:
        return len(self.assignment)

    def rank_batch_size(self, rank: int) -> int:
        """Samples rank ``rank`` contributes to a step."""
        bounds = np.arange(self.world_size + 1) * int(self.batch_size) // self.world_size
        return int(bounds[rank + 1] - bounds[rank])

    def n_batches(self, rank: int) -> int:
        b = self.rank_batch_size(rank)
        return int(sum(-(-int(self.counts[k]) // b) for k in self.assignment[rank]))

    @property
    def n_steps(self) -> int:
        """Steps of an epoch: the most batches of any rank."""
        return max(self.n_batches(r) for r in range(self.world_size))

    def shard_order(self, rank: int, epoch: int) -> list[int]:
        shards = [int(k) for k in self.assignment[rank]]
        if not self.shuffle:
            return shards
        order = np.random.default_rng([int(self.seed), int(epoch), int(rank), 0]).permutation(len(shards))
        return [shards[i] for i in order]

    def shard_batches(self, k: int, rank: int, epoch: int, lengths: np.ndarray | None = None) -> list[np.ndarray]:
        """Batches (sample positions inside shard ``k``) of rank ``rank`` at ``epoch``."""
        n = int(self.counts[k])
        if lengths is not None and len(lengths) != n:
            raise PathwaysInputError(f"sharded training: a shard encodes to {len(lengths)} samples, the plan "
                                     f"counted {n} (encode every pass the same way)")
        gen = np.random.default_rng([int(self.seed), int(epoch), int(k), 1])
        order = gen.permutation(n) if self.shuffle else np.arange(n)
        if self.bucket and lengths is not None:
            order = order[np.argsort(np.asarray(lengths)[order], kind="stable")]
        b = self.rank_batch_size(rank)
        chunks = [order[i:i + b] for i in range(0, n, b)]
        if self.shuffle:
            chunks = [chunks[i] for i in gen.permutation(len(chunks))]
        return chunks

    def rank_batches(self, rank: int, epoch: int,
                     lengths_of: Callable[[int], np.ndarray | None] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(shard, positions)`` of rank ``rank``'s batches at ``epoch``, shard after shard (no padding steps).

        ``lengths_of(k)`` (sample lengths of shard ``k``, for bucketing) is called when shard ``k`` starts: a
        reader can load the shard there and keep it until the next call.
        """
        for k in self.shard_order(rank, epoch):
            lengths = None if lengths_of is None else lengths_of(k)
            for chunk in self.shard_batches(k, rank, epoch, lengths):
                yield k, chunk

    def global_rows(self, epoch: int, shard_rows: Mapping[int, np.ndarray], lengths: np.ndarray) -> list[np.ndarray]:
        """The global batch of every step as rows of one in-memory data set holding every shard.

        ``shard_rows[k]`` gives the in-memory rows of shard ``k``'s samples (in the shard's order); ``lengths`` the
        in-memory sample lengths. Training on these batches in one process is what the sharded run computes.
        """
        lengths = np.asarray(lengths)
        per_rank = [[np.asarray(shard_rows[k])[idx] for k, idx in
                     self.rank_batches(r, epoch, lambda k: lengths[np.asarray(shard_rows[k])])]
                    for r in range(self.world_size)]
        return [np.concatenate([rows[s] for rows in per_rank if s < len(rows)]) for s in range(self.n_steps)]


def shard_batches(dataset: EventDataset, batch_size: int = 64, *, seed: int = 0, epoch: int = 0, rank: int = 0,
                  world_size: int = 1, codes: Sequence[str] | None = None) -> Iterator[Any]:
    """Padded sequence batches of this rank's shards (:func:`assign_shards`), read one shard at a time, in the
    order of a :class:`ShardPlan` (batches of ``batch_size`` per rank, no padding steps).

    For training, :func:`pathways.models.sharded.fit_from_shards` builds the full plan (global batch, equal
    steps on every rank, exact per-event averages).
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise PathwaysInputError(f"rank, world_size: expected 0 <= rank < world_size, got {rank}, {world_size}")
    sizes = dataset.shard_sizes()  # one sequence per patient
    assignment = assign_shards(sizes, world_size)
    wanted = None if codes is None else list(codes)
    current: dict[int, Sequences] = {}

    def lengths_of(k: int) -> np.ndarray:
        current.clear()
        current[k] = to_sequences(dataset.shard(k, codes=wanted), codes)
        return current[k].lengths

    counts = {k: sizes[k] for k in assignment[rank]}
    plan = ShardPlan(counts, [[] if r != rank else assignment[rank] for r in range(world_size)],
                     batch_size=int(batch_size) * world_size, seed=seed)
    for k, idx in plan.rank_batches(rank, epoch, lengths_of):
        yield current[k].pad(idx)


def case_ids(dataset: EventDataset, outcomes: Sequence[str]) -> np.ndarray:
    """Patient ids with at least one outcome event: a scan of the outcome codes' patient column only."""
    table = dataset.events(codes=list(outcomes), columns=["patient_id"])
    return np.unique(table.column("patient_id").to_numpy(zero_copy_only=False).astype(object))


def case_eventlog(dataset: EventDataset, outcomes: Sequence[str], codes: Sequence[str] | None = None) -> EventLog:
    """The events (of ``codes``, default all) of the patients having an outcome: only cases are read."""
    ids = case_ids(dataset, outcomes)
    if ids.size == 0:
        raise PathwaysInputError(f"outcomes: no event of {list(outcomes)[:5]} in the dataset")
    wanted = None if codes is None else sorted(set(codes) | set(outcomes))
    return dataset.to_eventlog(patients=ids.tolist(), codes=wanted)


def sharded_sccs_data(dataset: EventDataset, exposures: Any, outcome: Sequence[str], bucket_size: float,
                      **kwargs: Any) -> SCCSData:
    """:func:`~pathways.encode.sccs.sccs_data` on the cases only (selection pushed down to the scan).

    Every event of the cases is read (their observation windows, when the dataset stores none, come from their
    first and last events, as in the whole log); ``exposures``, ``kwargs`` as there.
    """
    return sccs_data(case_eventlog(dataset, outcome), exposures, list(outcome), bucket_size, **kwargs)


__all__ = ["ShardPlan", "assign_shards", "case_eventlog", "case_ids", "iter_sequences", "iter_sparse_series",
           "shard_batches", "sharded_sccs_data"]

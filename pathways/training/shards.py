"""Training batches read from a sharded event dataset: each rank reads only its own shards, one at a time.

A :class:`~pathways.encode.sharded.ShardPlan` says which shards each rank reads and the batches of every epoch;
:class:`ShardedBatches` is the ``epoch -> batches`` source a :class:`~pathways.training.Trainer` consumes. It loads
one shard, encodes it (the dataset's one vocabulary: mark / code indices agree across shards), yields that shard's
batches as :class:`~pathways.training.distributed.RankBatch` (the Trainer does not slice them again), then frees it:
memory holds one encoded shard. Ranks with fewer batches pad the epoch with weight-0 steps, so every rank runs the
same number of DDP steps; the Trainer all-reduces the summed loss and the event count of each step, so per-event
averages and gradients are those of one process on the union of the ranks' batches
(:meth:`ShardPlan.global_rows` replays them from an in-memory data set).

The estimators' entry point is :func:`pathways.models.sharded.fit_from_shards`.

Examples
--------
>>> import tempfile, pandas as pd
>>> from pathways.data.dataset import EventDataset, write_event_dataset
>>> from pathways.data.eventlog import EventLog
>>> from pathways.encode.sequences import to_sequences
>>> log = EventLog.from_pandas(pd.DataFrame({"patient_id": ["a", "a", "b", "c"], "time": [1.0, 2.0, 3.0, 4.0],
...                                          "code": ["X", "Y", "X", "Y"]}))
>>> with tempfile.TemporaryDirectory() as d:
...     data = EventDataset(write_event_dataset(log, d + "/ds", n_shards=2, shard=np.array([0, 1, 1])))
...     counts, _ = scan_shards(data, [0, 1], to_sequences, len)
...     plan = ShardPlan(counts, [[0, 1]], batch_size=2)
...     source = ShardedBatches(data, plan, 0, to_sequences, lambda s: s.lengths, lambda s, i: s.pad(i))
...     [int(b.batch.lengths.sum()) for b in source(0)]
[2, 2]
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from pathways.data.dataset import EventDataset
from pathways.encode.sharded import ShardPlan
from pathways.errors import PathwaysInputError
from pathways.training.distributed import RankBatch, Reducer

__all__ = ["ShardPlan", "ShardedBatches", "all_counts", "scan_shards"]

Encode = Callable[[Any], Any]


def scan_shards(dataset: EventDataset, shards: Sequence[int], encode: Encode,
                summarise: Callable[[Any], Any]) -> tuple[dict[int, int], list[Any]]:
    """One pass over ``shards`` (one in memory at a time): samples per shard and ``summarise(encoded)`` of each.

    Returns ``({shard: len(encoded)}, [summary per shard])``.
    """
    counts, summaries = {}, []
    for k in shards:
        encoded = encode(dataset.shard(int(k)))
        counts[int(k)] = len(encoded)
        summaries.append(summarise(encoded))
        del encoded
    return counts, summaries


def all_counts(local: dict[int, int], shard_ids: Sequence[int], reducer: Reducer) -> dict[int, int]:
    """Samples of every shard on every rank: each rank fills its own shards, one ``all_reduce`` sums them."""
    position = {int(k): i for i, k in enumerate(shard_ids)}
    vector = np.zeros(len(shard_ids))
    for k, n in local.items():
        vector[position[k]] = n
    (total,) = reducer.sum(vector)
    return {int(k): int(round(total[i])) for k, i in position.items()}


class ShardedBatches:
    """``epoch -> batches`` of one rank, read shard by shard (see the module docstring).

    Parameters
    ----------
    dataset : the sharded event dataset.
    plan : the run's :class:`ShardPlan` (the same on every rank).
    rank : this process's rank in the plan.
    encode : shard EventLog -> encoded samples (Sequences, OutcomeData, ...), on the dataset's vocabulary.
    lengths : encoded -> per-sample lengths (bucketing), or None (no bucketing).
    make_batch : (encoded, positions) -> a batch the module takes.
    prepare : encoded -> what ``lengths`` and ``make_batch`` take (e.g. a dense batcher); default: itself.
    """

    def __init__(self, dataset: EventDataset, plan: ShardPlan, rank: int, encode: Encode,
                 lengths: Callable[[Any], np.ndarray] | None, make_batch: Callable[[Any, np.ndarray], Any],
                 prepare: Callable[[Any], Any] | None = None):
        if not 0 <= int(rank) < plan.world_size:
            raise PathwaysInputError(f"rank: expected 0 <= rank < {plan.world_size}, got {rank}")
        self.dataset, self.plan, self.rank = dataset, plan, int(rank)
        self.encode, self.lengths, self.make_batch = encode, lengths, make_batch
        self.prepare = prepare or (lambda encoded: encoded)

    def __len__(self) -> int:
        return self.plan.n_steps

    def __call__(self, epoch: int) -> Iterator[RankBatch]:
        current: dict[int, Any] = {}

        def load(k: int) -> np.ndarray | None:
            current.clear()  # the previous shard is freed before the next is read
            current[k] = self.prepare(self.encode(self.dataset.shard(int(k))))
            return None if self.lengths is None else self.lengths(current[k])

        steps, last = 0, None
        for k, idx in self.plan.rank_batches(self.rank, epoch, load):
            last = self.make_batch(current[k], idx)
            steps += 1
            yield RankBatch(last, 1.0)
        current.clear()
        for _ in range(self.plan.n_steps - steps):  # padding: the passes DDP synchronises, weight 0
            yield RankBatch(last, 0.0)

"""Encoders over a sharded event dataset, shard by shard: memory holds one shard (plus its encoding) at a time.

Every event of a patient lies in one shard (patients hashed apart), so per-patient encodings (sparse series,
sequences, SCCS rows) of the shards are the whole population's, split by patient. SCCS case selection is pushed
down to the parquet scan: a first pass reads only the outcome codes' patient ids, the second only those cases'
events, so only cases come back to the driver.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
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


def shard_batches(dataset: EventDataset, batch_size: int = 64, *, seed: int = 0, epoch: int = 0, rank: int = 0,
                  world_size: int = 1, codes: Sequence[str] | None = None) -> Iterator[Any]:
    """Training batches read from the shards: shards in a per-epoch seeded order, batches shuffled inside each.

    With several processes (``rank`` of ``world_size``, e.g. from torchrun), each reads its own shards
    (``k % world_size == rank``), so no event is read twice and a process holds one shard at a time.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise PathwaysInputError(f"rank, world_size: expected 0 <= rank < world_size, got {rank}, {world_size}")
    shards = [k for k in dataset.shard_ids() if k % world_size == rank]
    order = np.random.default_rng([seed, epoch]).permutation(len(shards))
    for i in order:
        log = dataset.shard(shards[i], codes=None if codes is None else list(codes))
        sequences = to_sequences(log, codes)
        yield from sequences.batches(batch_size, shuffle=True, seed=int(seed) * 1_000_003 + int(epoch) * 7 + int(i))


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


__all__ = ["case_eventlog", "case_ids", "iter_sequences", "iter_sparse_series", "shard_batches",
           "sharded_sccs_data"]

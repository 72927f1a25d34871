"""Counted decisions of a Spark read, computed together: one Spark action for every count of the read report.

A Spark action re-runs the whole lineage of its DataFrame (the 9-key joins included) unless its inputs are
persisted, and each action carries a fixed cost (job scheduling, query-stage planning). The readers therefore
register each step's aggregations with a callback instead of collecting them at once; :meth:`PendingCounts.flush`
computes all of them as one union of one-row aggregations (one action, whose query stages run concurrently over
the persisted stages), then runs the callbacks in registration order, so the read report keeps the order of the
steps (and ``errors="raise"`` raises at the same first decision as the DuckDB engine).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import reduce
from typing import Any

from pathways.io.spark.tables import count_if


class PendingCounts:
    """Aggregations and report steps waiting for one Spark action.

    Examples
    --------
    >>> pending = PendingCounts()
    >>> seen = []
    >>> pending.later(lambda: seen.append("note"))
    >>> pending.flush()  # nothing to compute: no Spark job, the callbacks still run in order
    >>> seen
    ['note']
    """

    def __init__(self) -> None:
        self._items: list[tuple[Any, Any, Callable[..., None]]] = []
        self._persisted: list[Any] = []

    def add(self, df: Any, value: Any, then: Callable[[Any], None]) -> None:
        """Compute the aggregate column ``value`` over ``df`` at the next flush; call ``then`` with its value
        (decoded from JSON: numbers, lists, dicts for structs)."""
        self._items.append((df, value, then))

    def count(self, df: Any, conditions: Sequence[Any], then: Callable[[list[int]], None]) -> None:
        """``count(*)`` and one :func:`~pathways.io.spark.tables.count_if` per condition over ``df``; ``then``
        receives them as ints (0 for an empty table)."""
        from pyspark.sql import functions as F

        self.sums(df, [F.count(F.lit(1)), *[count_if(c) for c in conditions]], then)

    def sums(self, df: Any, aggregates: Sequence[Any], then: Callable[[list[int]], None]) -> None:
        """Integer aggregates over ``df``; ``then`` receives them as ints (NULL as 0)."""
        from pyspark.sql import functions as F

        self.add(df, F.array(*[a.cast("long") for a in aggregates]),
                 lambda values: then([int(v or 0) for v in values]))

    def later(self, then: Callable[[], None]) -> None:
        """A step without a count (a note), run at its place in the order."""
        self._items.append((None, None, then))

    def persist(self, df: Any) -> Any:
        """``df`` persisted (memory, spilling to disk) until :meth:`release`: computed once, read by its counts
        and by the events written from it."""
        from pyspark import StorageLevel

        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        self._persisted.append(df)
        return df

    def release(self) -> None:
        """Unpersist every DataFrame persisted through :meth:`persist`."""
        for df in self._persisted:
            df.unpersist()
        self._persisted = []

    def flush(self) -> None:
        """Compute every registered aggregation in one Spark action, then run the callbacks in order."""
        from pyspark.sql import functions as F

        items, self._items = self._items, []
        parts = [df.agg(F.to_json(F.array(value)).alias("v")).select(F.lit(i).alias("i"), "v")
                 for i, (df, value, _) in enumerate(items) if df is not None]
        values = {}
        if parts:
            values = {int(row[0]): json.loads(row[1])[0]
                      for row in reduce(lambda a, b: a.unionAll(b), parts).collect()}
        for i, (df, _, then) in enumerate(items):
            if df is None:
                then()
            else:
                then(values[i])


__all__ = ["PendingCounts"]

"""Vectorised interval algebra on grouped intervals (one group = one patient, or one patient and code).

Every function works on flat arrays ``group`` (int64), ``start``, ``end`` (float64, ``end >= start``) and never
loops over groups: it sorts once, then uses cumulative maxima and ``reduceat`` to merge runs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pathways.errors import PathwaysInputError, describe_bad_rows


@dataclass(frozen=True)
class Intervals:
    """Grouped intervals sorted by (group, start).

    ``count`` = input intervals merged into each one; ``source`` = input row of the earliest interval merged into
    each one (ties: the first in sorted order), to carry per-row attributes or the input's order over.
    """

    group: np.ndarray
    start: np.ndarray
    end: np.ndarray
    count: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return int(self.start.size)


def _as_arrays(group: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, ...]:
    group = np.asarray(group, dtype=np.int64)
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    if not (group.shape == start.shape == end.shape) or group.ndim != 1:
        raise PathwaysInputError(f"group, start, end: expected 1-D arrays of one length, got "
                                 f"{group.shape}, {start.shape}, {end.shape}")
    bad = ~np.isfinite(start) | ~np.isfinite(end) | (end < start)
    if bad.any():
        raise PathwaysInputError(describe_bad_rows("end", bad, end, "are not finite or end before start"))
    return group, start, end


def group_cummax(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Running maximum of ``values`` restarting at every change of ``group`` (rows sorted by group).

    Whole-number values (day counts from dates, the claims case) take an exact numpy path: each group is lifted
    above all earlier ones by a multiple of the value range, one running maximum is taken, and the lift is
    removed; every intermediate is an integer below 2**53, so float64 holds it exactly. Other values go through
    pandas' grouped cummax (a hash of the groups: slower and larger).

    Examples
    --------
    >>> group_cummax(np.array([0, 0, 0, 1, 1]), np.array([3., 1., 5., 2., 0.])).tolist()
    [3.0, 3.0, 5.0, 2.0, 2.0]
    """
    if values.size == 0:
        return values.copy()
    low, high = float(values.min()), float(values.max())
    span = high - low + 1.0
    starts = np.empty(values.size, dtype=bool)
    starts[0] = True
    np.not_equal(group[1:], group[:-1], out=starts[1:])
    n_groups = int(np.count_nonzero(starts))
    if span * n_groups < 2.0 ** 53 and np.all(values == np.round(values)):
        lift = np.cumsum(starts, dtype=np.float64)
        lift *= span
        out = values - low
        out += lift
        np.maximum.accumulate(out, out=out)
        out -= lift
        out += low
        return out
    # a fresh, writable array like the numpy path (pandas may hand back a read-only view)
    return pd.Series(values).groupby(group, sort=False).cummax().to_numpy(copy=True)


def merge_intervals(group: np.ndarray, start: np.ndarray, end: np.ndarray, gap: float = 0.0,
                    count: np.ndarray | None = None, presorted: bool = False,
                    overwrite_input: bool = False) -> Intervals:
    """Merge intervals of each group that overlap or lie at most ``gap`` apart.

    Two intervals of a group merge when the later one starts at most ``gap`` after the running end of the
    earlier ones (``gap=0`` merges overlapping and touching intervals). ``count`` weights each input interval
    (default 1) and is summed over merged intervals. ``presorted=True`` promises rows already sorted by
    (group, start) and skips the sort. ``overwrite_input=True`` (with ``presorted``, float64 ``start``/``end``
    and int64 ``group``) writes the result over the front of the input arrays, which are then garbage: at
    10 M intervals that saves three 80 MB arrays.

    Examples
    --------
    >>> m = merge_intervals([0, 0, 0, 1], [0., 5., 20., 0.], [10., 12., 25., 1.])
    >>> m.start.tolist(), m.end.tolist(), m.count.tolist(), m.source.tolist()
    ([0.0, 20.0, 0.0], [12.0, 25.0, 1.0], [2, 1, 1], [0, 2, 3])
    """
    inputs = (group, start, end)
    group, start, end = _as_arrays(group, start, end)
    if gap < 0 or not np.isfinite(gap):
        raise PathwaysInputError(f"gap: expected a finite value >= 0, got {gap!r}")
    weights = None if count is None else np.asarray(count, dtype=np.int64)
    if start.size == 0:
        return Intervals(group, start, end, np.zeros(0, np.int64) if weights is None else weights,
                         np.zeros(0, dtype=np.int64))
    if presorted:
        order = None
        g, s, e, w = group, start, end, weights
    else:
        order = np.lexsort((start, group))  # ties in start need no order: the running max handles them
        g, s, e = group[order], start[order], end[order]
        w = None if weights is None else weights[order]
    run_end = group_cummax(g, e)
    new_run = np.empty(s.size, dtype=bool)
    new_run[0] = True
    run_end += gap
    np.greater(s[1:], run_end[:-1], out=new_run[1:])
    del run_end
    new_run[1:] |= g[1:] != g[:-1]
    first = np.flatnonzero(new_run)
    del new_run
    ends = np.maximum.reduceat(e, first)
    if overwrite_input and presorted and all(a is b for a, b in zip(inputs, (g, s, e))):
        m = first.size
        g[:m] = g[first]  # one column at a time: a single temporary alive
        s[:m] = s[first]
        e[:m] = ends
        del ends
        g, s, ends = g[:m], s[:m], e[:m]
    else:
        g, s = g[first], s[first]
    # unweighted counts are run lengths: no array of ones
    counts = np.diff(first, append=start.size) if w is None else np.add.reduceat(w, first)
    return Intervals(g, s, ends, counts, first if order is None else order[first])


def clip_intervals(group: np.ndarray, start: np.ndarray, end: np.ndarray, low: np.ndarray,
                   high: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clip each interval to its group's window ``[low[group], high[group]]``.

    Returns ``(keep, start, end)``: ``keep`` marks intervals that meet the window (a point interval on a window
    edge is kept), and the clipped bounds of the kept ones. Clipping never extends an interval. Windows with NaN
    bounds (no window) drop their intervals.
    """
    group, start, end = _as_arrays(group, start, end)
    lo = np.asarray(low, dtype=np.float64)[group]
    hi = np.asarray(high, dtype=np.float64)[group]
    new_start = np.maximum(start, lo)
    new_end = np.minimum(end, hi)
    keep = (new_start <= new_end) & np.isfinite(lo) & np.isfinite(hi)
    return keep, new_start[keep], new_end[keep]


def first_per_group(group: np.ndarray, time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row index of the earliest time of each group (ties: first row) and the groups, sorted by group."""
    group = np.asarray(group, dtype=np.int64)
    time = np.asarray(time, dtype=np.float64)
    if group.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.arange(group.size), time, group))
    g = group[order]
    first = np.ones(g.size, dtype=bool)
    first[1:] = g[1:] != g[:-1]
    return order[first], g[first]


def total_length(intervals: Intervals, n_groups: int) -> np.ndarray:
    """Total covered length per group (intervals must be merged, so they do not overlap)."""
    return np.bincount(intervals.group, weights=intervals.end - intervals.start, minlength=n_groups)


__all__ = ["Intervals", "merge_intervals", "clip_intervals", "first_per_group", "group_cummax", "total_length"]

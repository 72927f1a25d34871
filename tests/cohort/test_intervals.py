"""Interval algebra: hand-computed cases and hypothesis properties (idempotent merge, clipping never extends)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pathways.cohort.intervals import clip_intervals, first_per_group, merge_intervals, total_length
from pathways.errors import PathwaysInputError


def test_merge_hand_computed():
    group = [0, 0, 0, 0, 1, 1]
    start = [0.0, 5.0, 12.0, 40.0, 3.0, 3.0]
    end = [10.0, 8.0, 20.0, 50.0, 4.0, 3.0]
    m = merge_intervals(group, start, end)
    assert m.group.tolist() == [0, 0, 0, 1]
    assert m.start.tolist() == [0.0, 12.0, 40.0, 3.0]
    assert m.end.tolist() == [10.0, 20.0, 50.0, 4.0]
    assert m.count.tolist() == [2, 1, 1, 2]
    g = merge_intervals(group, start, end, gap=2.0)  # 10 -> 12 is a gap of 2: merged
    assert g.start.tolist() == [0.0, 40.0, 3.0] and g.end.tolist() == [20.0, 50.0, 4.0]
    assert g.count.tolist() == [3, 1, 2]


def test_merge_touching_intervals_and_bad_input():
    m = merge_intervals([0, 0], [0.0, 10.0], [10.0, 20.0])
    assert m.start.tolist() == [0.0] and m.end.tolist() == [20.0]
    with pytest.raises(PathwaysInputError, match="end before start"):
        merge_intervals([0], [5.0], [1.0])
    with pytest.raises(PathwaysInputError, match="gap"):
        merge_intervals([0], [0.0], [1.0], gap=-1)
    empty = merge_intervals([], [], [])
    assert len(empty) == 0


def test_clip_hand_computed():
    keep, s, e = clip_intervals([0, 0, 1, 1], [0.0, 50.0, 5.0, 30.0], [20.0, 60.0, 10.0, 40.0],
                                low=[10.0, 0.0], high=[55.0, 30.0])
    assert keep.tolist() == [True, True, True, True]
    assert s.tolist() == [10.0, 50.0, 5.0, 30.0] and e.tolist() == [20.0, 55.0, 10.0, 30.0]
    keep, s, e = clip_intervals([0, 1], [0.0, 0.0], [5.0, 5.0], low=[6.0, np.nan], high=[9.0, np.nan])
    assert keep.tolist() == [False, False] and s.size == 0


def test_first_per_group_takes_earliest_then_first_row():
    rows, groups = first_per_group([2, 0, 2, 0, 2], [5.0, 3.0, 1.0, 3.0, 1.0])
    assert groups.tolist() == [0, 2] and rows.tolist() == [1, 2]


intervals = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 60), st.integers(0, 20)), min_size=0, max_size=40
)


def _arrays(items):
    g = np.array([i[0] for i in items], dtype=np.int64)
    s = np.array([i[1] for i in items], dtype=float)
    e = s + np.array([i[2] for i in items], dtype=float)
    return g, s, e


def _covered(g, s, e, n_groups=4, horizon=90):
    """Brute-force coverage on a half-unit grid (intervals have integer bounds)."""
    grid = np.arange(0, horizon, 0.5)
    cov = np.zeros((n_groups, grid.size), dtype=bool)
    for gi, si, ei in zip(g, s, e):
        cov[gi] |= (grid >= si) & (grid <= ei)
    return cov


@settings(max_examples=80, deadline=None)
@given(intervals, st.sampled_from([0.0, 1.0, 5.0]))
def test_merge_is_idempotent_and_disjoint(items, gap):
    g, s, e = _arrays(items)
    m = merge_intervals(g, s, e, gap=gap)
    again = merge_intervals(m.group, m.start, m.end, gap=gap, count=m.count)
    for a, b in zip((m.group, m.start, m.end, m.count), (again.group, again.start, again.end, again.count)):
        np.testing.assert_array_equal(a, b)
    same = m.group[1:] == m.group[:-1]
    assert np.all(m.start[1:][same] > m.end[:-1][same] + gap)  # separated by more than the gap
    assert int(m.count.sum()) == len(items)


@settings(max_examples=80, deadline=None)
@given(intervals)
def test_merge_preserves_coverage(items):
    g, s, e = _arrays(items)
    m = merge_intervals(g, s, e)
    np.testing.assert_array_equal(_covered(g, s, e), _covered(m.group, m.start, m.end))
    if items:
        lengths = total_length(m, 4)
        assert np.all(lengths >= 0)


@settings(max_examples=80, deadline=None)
@given(intervals, st.lists(st.tuples(st.integers(0, 60), st.integers(0, 40)), min_size=4, max_size=4))
def test_clipping_never_extends(items, windows):
    g, s, e = _arrays(items)
    lo = np.array([w[0] for w in windows], dtype=float)
    hi = lo + np.array([w[1] for w in windows], dtype=float)
    keep, cs, ce = clip_intervals(g, s, e, lo, hi)
    assert np.all(cs >= s[keep]) and np.all(ce <= e[keep])
    assert np.all(cs >= lo[g[keep]]) and np.all(ce <= hi[g[keep]]) and np.all(cs <= ce)
    # an interval is dropped only if it misses its window
    dropped = ~keep
    assert np.all((e[dropped] < lo[g[dropped]]) | (s[dropped] > hi[g[dropped]]))


@settings(max_examples=40, deadline=None)
@given(intervals)
def test_presorted_path_matches_the_sorting_path(items):
    g, s, e = _arrays(items)
    order = np.lexsort((s, g))
    a = merge_intervals(g, s, e, gap=1.0)
    b = merge_intervals(g[order], s[order], e[order], gap=1.0, presorted=True)
    for x, y in zip((a.group, a.start, a.end, a.count), (b.group, b.start, b.end, b.count)):
        np.testing.assert_array_equal(x, y)


@settings(max_examples=40, deadline=None)
@given(intervals)
def test_source_is_the_earliest_input_row_of_each_merged_interval(items):
    g, s, e = _arrays(items)
    m = merge_intervals(g, s, e, gap=1.0)
    # the source row belongs to the merged interval's group and opens it
    np.testing.assert_array_equal(g[m.source], m.group)
    np.testing.assert_array_equal(s[m.source], m.start)
    inside = [(g == grp) & (s >= lo) & (s <= hi) for grp, lo, hi in zip(m.group, m.start, m.end)]
    assert all(s[src] == s[mask].min() for src, mask in zip(m.source, inside))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(-50, 50)), min_size=1, max_size=40), st.booleans())
def test_group_cummax_exact_path_and_pandas_path_agree_with_a_loop(rows, fractional):
    from pathways.cohort.intervals import group_cummax

    rows = sorted(rows, key=lambda r: r[0])  # sorted by group, values in any order
    group = np.array([g for g, _ in rows])
    values = np.array([v + (0.5 if fractional else 0.0) for _, v in rows], dtype=float)
    expected, running, previous = [], None, None
    for g, v in zip(group, values):
        running = v if g != previous else max(running, v)
        expected.append(running)
        previous = g
    np.testing.assert_array_equal(group_cummax(group, values), expected)


def test_merge_with_fractional_times_takes_the_general_path():
    m = merge_intervals([0, 0, 0], [0.5, 1.25, 9.75], [1.5, 2.0, 10.0], gap=0.25)
    assert m.start.tolist() == [0.5, 9.75] and m.end.tolist() == [2.0, 10.0] and m.count.tolist() == [2, 1]

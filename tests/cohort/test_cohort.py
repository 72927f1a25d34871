"""Cohort set operations (SCALPEL semantics), hypothesis set properties and flowcharts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pathways.cohort import Cohort, Flowchart
from pathways.data import EventLog
from pathways.errors import PathwaysInputError


def _log(n: int = 6) -> EventLog:
    events = pd.DataFrame({
        "patient_id": [f"p{i}" for i in range(n) for _ in range(2)],
        "time": np.tile([1.0, 5.0], n) + np.repeat(np.arange(n), 2),
        "code": ["A", "B"] * n,
        "category": ["drug", "diagnosis"] * n,
    })
    return EventLog.from_pandas(events)


LOG = _log()


def test_set_operations_keep_the_left_events():
    base = Cohort.from_eventlog(LOG)
    drugs = Cohort("drugs", [0, 1, 2, 3], base.events).with_codes(["A"], name="drugs")
    diag = Cohort("diag", [2, 3, 4], base.events).with_codes(["B"], name="diag")
    inter = drugs & diag
    assert inter.subjects.tolist() == [2, 3]
    assert set(inter.events.code_strings()) == {"A"}              # left cohort's events only
    assert inter.events.n_events == 2
    diff = drugs - diag
    assert diff.subjects.tolist() == [0, 1] and set(diff.events.code_strings()) == {"A"}
    union = drugs | diag
    assert union.subjects.tolist() == [0, 1, 2, 3, 4]
    assert sorted(union.events.code_strings()) == ["A"] * 4 + ["B"] * 3
    assert (drugs | drugs).events.n_events == drugs.events.n_events  # identical events kept once


def test_union_merges_different_vocabularies():
    base = Cohort.from_eventlog(LOG)
    from pathways.cohort import outcomes

    out = outcomes(LOG, ["B"], name="event_B")
    both = base.with_codes(["A"], name="a") | out
    assert set(both.events.vocab.codes) == {"A", "B", "event_B"}
    assert both.n_subjects == LOG.n_patients


def test_to_eventlog_renumbers_subjects_and_intervals_table():
    c = Cohort("some", [1, 4], LOG)
    sub = c.to_eventlog()
    assert sub.n_patients == 2 and sub.patients["patient_id"].tolist() == ["p1", "p4"]
    table = c.intervals()
    assert table["patient_id"].tolist() == ["p1", "p1", "p4", "p4"]
    assert list(table.columns) == ["patient", "patient_id", "code", "start", "end", "value", "category"]


def test_population_mismatch_and_bad_subjects_raise():
    a = Cohort.from_eventlog(LOG)
    b = Cohort.from_eventlog(_log(4))
    with pytest.raises(PathwaysInputError, match="different populations"):
        a & b
    with pytest.raises(PathwaysInputError, match="outside"):
        Cohort("bad", [0, 99], LOG)


subsets = st.lists(st.integers(0, LOG.n_patients - 1), max_size=LOG.n_patients)


@settings(max_examples=60, deadline=None)
@given(subsets, subsets)
def test_subject_sets_behave_as_sets(a, b):
    ca, cb = Cohort("a", a, LOG), Cohort("b", b, LOG)
    sa, sb = set(a), set(b)
    assert set((ca | cb).subjects.tolist()) == sa | sb
    assert set((ca & cb).subjects.tolist()) == sa & sb
    assert set((ca - cb).subjects.tolist()) == sa - sb
    assert set((ca & cb).subjects.tolist()) == set((cb & ca).subjects.tolist())
    # events always belong to the cohort's subjects
    for c in (ca | cb, ca & cb, ca - cb):
        assert set(np.unique(c.events.patient).tolist()) <= set(c.subjects.tolist())


def test_flowchart_counts_successive_intersections():
    base = Cohort.from_eventlog(LOG)
    older = Cohort("late", [2, 3, 4, 5], LOG, "late entrants")
    even = Cohort("even", [0, 2, 4], LOG, "even index")
    chart = Flowchart([base, older, even])
    frame = chart.to_frame()
    assert frame["n_subjects"].tolist() == [6, 4, 2]
    assert frame["n_excluded"].tolist() == [0, 2, 2]
    assert chart.final.subjects.tolist() == [2, 4]
    assert chart.final.events.n_events == 4            # base events of the final subjects
    md = chart.to_markdown()
    assert "| 2 | even | 2 | 2 | 33.3 |" in md
    assert len(chart.append(Cohort("none", [], LOG))) == 4
    with pytest.raises(PathwaysInputError):
        Flowchart([])


def test_derived_events_reject_code_indices_outside_the_names():
    import numpy as np
    import pandas as pd

    from pathways.cohort.cohort import derived_events
    from pathways.data import EventLog
    from pathways.errors import PathwaysInputError

    base = EventLog.from_pandas(pd.DataFrame({"patient_id": ["a"], "time": [1.0], "code": ["x"]}))
    with pytest.raises(PathwaysInputError, match=r"codes: indices must lie in \[0, 2\)"):
        derived_events(base, np.array([0]), np.array([1.0]), np.array([2]), code_names=np.array(["u", "v"]))
    out = derived_events(base, np.array([0, 0]), np.array([1.0, 1.0]), np.array([1, 1]),
                         code_names=np.array(["u", "v"]))
    assert out.vocab.codes.tolist() == ["v"] and out.code.tolist() == [0, 0]

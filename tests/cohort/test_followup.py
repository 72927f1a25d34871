"""Follow-up start/end and end reasons, hand-computed."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from study_fixture import study_log

from pathways.cohort import Cohort, follow_up, outcomes
from pathways.errors import PathwaysDataWarning, PathwaysInputError

LOG = study_log()
OUT = outcomes(LOG, ["X"], first_only=False)


def _table(fu):
    t = fu.intervals()
    return list(zip(t["patient"].tolist(), t["start"].tolist(), t["end"].tolist(), t["category"].astype(str)))


def test_end_at_first_of_death_observation_study_end_outcome():
    fu = follow_up(LOG, study_end=300.0, outcome=OUT)
    assert _table(fu) == [(0, 0.0, 150.0, "outcome"), (1, 0.0, 60.0, "outcome"), (2, 50.0, 200.0, "observation_end"),
                          (3, 0.0, 10.0, "outcome")]
    no_outcome = follow_up(LOG, study_end=300.0, end_on=("death", "observation_end", "study_end"))
    assert _table(no_outcome) == [(0, 0.0, 300.0, "study_end"), (1, 0.0, 100.0, "death"),
                                  (2, 50.0, 200.0, "observation_end"), (3, 0.0, 300.0, "study_end")]


def test_ties_go_to_the_first_listed_reason():
    fu = follow_up(LOG, study_end=365.0)
    assert _table(fu)[0] == (0, 0.0, 365.0, "observation_end")
    fu = follow_up(LOG, study_end=365.0, end_on=("study_end", "observation_end"))
    assert _table(fu)[0] == (0, 0.0, 365.0, "study_end")


def test_delay_entry_cohort_and_outcome_after_start():
    fu = follow_up(LOG, delay=20.0, outcome=OUT)
    # p3's outcome at 10 precedes the start (20): the next one (200) ends the follow-up
    assert _table(fu) == [(0, 20.0, 150.0, "outcome"), (1, 20.0, 60.0, "outcome"),
                          (2, 70.0, 200.0, "observation_end"), (3, 20.0, 200.0, "outcome")]
    first_drug = Cohort.from_eventlog(LOG).with_codes(["D"], name="drug users")
    with pytest.warns(PathwaysDataWarning, match="1 of 4"):  # p3 never buys a drug: no entry
        fu = follow_up(LOG, entry=first_drug, delay=0.0)
    assert _table(fu) == [(0, 10.0, 365.0, "observation_end"), (1, 5.0, 100.0, "death"),
                          (2, 60.0, 200.0, "observation_end")]
    assert fu.n_subjects == 3


def test_subjects_without_follow_up_are_excluded_with_a_count():
    with pytest.warns(PathwaysDataWarning, match="1 of 4 subjects excluded"):
        fu = follow_up(LOG, delay=120.0)
    assert fu.subjects.tolist() == [0, 2, 3]  # p1 died at 100 < 120


def test_dates_need_datetime_logs_and_end_on_is_checked():
    with pytest.raises(PathwaysInputError, match="numeric times"):
        follow_up(LOG, study_end="2020-01-01")
    with pytest.raises(PathwaysInputError, match="end_on"):
        follow_up(LOG, end_on=("sunset",))
    with pytest.raises(PathwaysInputError, match="entry"):
        follow_up(LOG, entry=np.zeros(2))


def test_datetime_study_end():
    from pathways.data import EventLog

    events = pd.DataFrame({"patient_id": ["a", "a"], "time": ["2020-01-01", "2020-06-01"], "code": ["x", "y"]})
    log = EventLog.from_pandas(events)
    fu = follow_up(log, study_end="2020-03-01")
    assert _table(fu) == [(0, log.time[0], log.time[0] + 60.0, "study_end")]

"""Outcomes: code sets, wash-out (look-back), first occurrence, follow-up restriction, prior exclusion."""
from __future__ import annotations

import numpy as np
import pytest
from study_fixture import spans, study_log

from pathways.cohort import Cohort, exclude_prior, follow_up, match_codes, outcomes
from pathways.errors import PathwaysInputError

LOG = study_log()


def _times(cohort):
    return [(p, t) for p, _, t, _, _ in spans(cohort)]


def test_match_codes_prefix_and_exact():
    assert LOG.vocab.codes[match_codes(LOG.vocab, ["D"])].tolist() == ["D1", "D2"]
    assert LOG.vocab.codes[match_codes(LOG.vocab, ["D"], prefix=False)].tolist() == []
    assert match_codes(LOG.vocab, None).all()
    with pytest.raises(PathwaysInputError, match="empty"):
        match_codes(LOG.vocab, [])


def test_first_occurrence_and_all_occurrences():
    first = outcomes(LOG, ["X"], name="X event")
    assert _times(first) == [(0, 150.0), (1, 60.0), (3, 10.0)]
    assert set(first.events.code_strings()) == {"X event"}
    every = outcomes(LOG, ["X"], first_only=False)
    assert _times(every) == [(0, 150.0), (1, 60.0), (3, 10.0), (3, 200.0)]


def test_washout_defines_incident_occurrences():
    assert _times(outcomes(LOG, ["X"], first_only=False, washout=365.0)) == [(0, 150.0), (1, 60.0), (3, 10.0)]
    assert _times(outcomes(LOG, ["X"], first_only=False, washout=100.0))[-1] == (3, 200.0)  # 190 days > 100
    assert _times(outcomes(LOG, ["X"], first_only=False, washout=np.inf)) == [(0, 150.0), (1, 60.0), (3, 10.0)]
    with pytest.raises(PathwaysInputError, match="washout"):
        outcomes(LOG, ["X"], washout=-1.0)


def test_outcomes_inside_follow_up_only():
    fu = follow_up(LOG, delay=20.0, end_on=("death", "observation_end"))
    # p1 dies at 100, its X at 60 is inside [20, 100]; p3's X at 10 precedes follow-up
    strict = outcomes(LOG, ["X"], washout=365.0, follow_up=fu)
    assert _times(strict) == [(0, 150.0), (1, 60.0)]                 # p3's 200 is not incident (10 is prior)
    lenient = outcomes(LOG, ["X"], washout=100.0, follow_up=fu)
    assert _times(lenient) == [(0, 150.0), (1, 60.0), (3, 200.0)]


def test_categories_restrict_the_search():
    assert outcomes(LOG, ["X"], categories=["drug"]).n_subjects == 0
    assert outcomes(LOG, ["D"], categories="drug").subjects.tolist() == [0, 1, 2]


def test_exclude_prior_wash_out_before_index():
    fu = follow_up(LOG, delay=20.0, end_on=("observation_end",))
    kept = exclude_prior(fu, LOG, ["X"], lookback=30.0)
    assert kept.subjects.tolist() == [0, 1, 2]  # p3 had X at 10, within 30 days before its start (20)
    assert exclude_prior(fu, LOG, ["X"], lookback=5.0).subjects.tolist() == [0, 1, 2, 3]
    assert isinstance(kept, Cohort)

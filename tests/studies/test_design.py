"""New-user cohorts: entry criteria, time at risk (on treatment with grace and lag, ITT), censoring, flowchart."""
import numpy as np
import pandas as pd
import pytest

from pathways.data import EventLog
from pathways.errors import PathwaysInputError
from pathways.studies.design import (
    CohortDesign,
    build_study_population,
    flowchart_by_arm,
)

# One patient per scenario; observation from day 0 to day 2000 unless stated.
EVENTS = [
    ("new_target", 500, "A01"), ("new_target", 530, "A01"), ("new_target", 575, "A01"),  # era 500-605 (grace 30)
    ("new_target", 800, "A01"), ("new_target", 700, "I21"),                               # outcome after era end
    ("comparator_outcome", 400, "B01"), ("comparator_outcome", 415, "I21"),
    ("too_early", 100, "A01"),                                                            # < 365 days observed
    ("both_same_day", 600, "A01"), ("both_same_day", 600, "B01"),
    ("prior_outcome", 300, "I21"), ("prior_outcome", 600, "B01"),
    ("switcher", 500, "A01"), ("switcher", 520, "B01"), ("switcher", 540, "A01"),
    ("dies", 500, "B01"), ("dies", 530, "B01"),
    ("never", 500, "Z99"),
]


def _log() -> EventLog:
    events = pd.DataFrame(EVENTS, columns=["patient_id", "time", "code"])
    ids = list(dict.fromkeys(events["patient_id"]))
    patients = pd.DataFrame({"patient_id": ids, "start": 0.0, "end": 2000.0,
                             "death": [np.nan if i != "dies" else 545.0 for i in ids]})
    return EventLog.from_pandas(events, patients)


def _frame(design: CohortDesign) -> pd.DataFrame:
    log = _log()
    pop = build_study_population(log, design)
    ids = log.patients["patient_id"].to_numpy()[pop.frame["patient"]]
    return pop.frame.set_index(pd.Index(ids, name="id")), pop


def test_entry_criteria_and_on_treatment_time_at_risk():
    frame, pop = _frame(CohortDesign(["A"], ["B"], ["I21"]))
    assert sorted(frame.index) == ["comparator_outcome", "dies", "new_target", "switcher"]
    row = frame.loc["new_target"]
    # Purchases at 500, 530, 575 cover 30 days each and merge (gaps <= 30): era ends at 605; 800 starts a new era.
    assert (row["treated"], row["tar_start"], row["tar_end"], row["event"]) == (1, 501.0, 605.0, 0)
    assert row["censor_reason"] == "exposure_end"
    row = frame.loc["comparator_outcome"]
    assert (row["treated"], row["event"], row["time"], row["censor_reason"]) == (0, 1, 14.0, "outcome")
    assert frame.loc["switcher", "tar_end"] == 520.0 and frame.loc["switcher", "censor_reason"] == "switch"
    assert frame.loc["dies", "tar_end"] == 545.0 and frame.loc["dies", "censor_reason"] == "death"
    chart = flowchart_by_arm(pop)
    assert chart["n_subjects"].tolist() == [8, 7, 6, 5, 4, 4]
    assert (int(chart["n_target"].iloc[-1]), int(chart["n_comparator"].iloc[-1])) == (2, 2)


def test_intention_to_treat_and_lag():
    frame, _ = _frame(CohortDesign(["A"], ["B"], ["I21"], time_at_risk="itt", risk_start=0.0,
                                   max_follow_up=365.0))
    row = frame.loc["new_target"]
    # ITT ignores the end of the era: the outcome at day 700 counts.
    assert (row["tar_start"], row["event"], row["time"]) == (500.0, 1, 200.0)
    assert frame.loc["switcher", "tar_end"] == 865.0  # no switch censoring under ITT, capped at 365 days
    switch, _ = _frame(CohortDesign(["A"], ["B"], ["I21"], time_at_risk="itt", censor_at_switch=True))
    assert switch.loc["switcher", "censor_reason"] == "switch"


def test_washout_and_outcome_lookback_settings():
    short, _ = _frame(CohortDesign(["A"], ["B"], ["I21"], washout=30.0, outcome_lookback=100.0))
    assert "too_early" in short.index and "prior_outcome" in short.index  # outcome 300 days before index


def test_design_checks():
    with pytest.raises(PathwaysInputError, match="time_at_risk"):
        build_study_population(_log(), CohortDesign(["A"], ["B"], ["I21"], time_at_risk="as_treated"))
    with pytest.raises(PathwaysInputError, match="comparator"):
        build_study_population(_log(), CohortDesign(["A"], [], ["I21"]))
    pop = build_study_population(_log(), CohortDesign(["A"], ["B"], ["I21"]), flowchart=False)
    with pytest.raises(PathwaysInputError, match="flowchart"):
        flowchart_by_arm(pop)

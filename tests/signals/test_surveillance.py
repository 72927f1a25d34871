"""Periodic surveillance: look grid, self-controlled counts, alert history, negative controls."""
import numpy as np
import pandas as pd
import pytest

from pathways.data.eventlog import EventLog
from pathways.errors import PathwaysInputError
from pathways.signals.detect import StudyDesign
from pathways.signals.negative_controls import default_negative_controls, load_negative_controls
from pathways.signals.surveillance import SurveillancePlan, alert_history, look_times, scri_counts, surveil


def _log() -> EventLog:
    # patient a: drug on 2020-06-01, outcome 10 days after (risk) and 90 days before (control); b: outcome in risk
    events = pd.DataFrame({
        "patient_id": ["a", "a", "a", "b", "b"],
        "time": ["2020-03-03", "2020-06-01", "2020-06-11", "2020-06-01", "2020-06-20"],
        "code": ["K922", "B01AA03", "K922", "B01AA03", "K922"],
        "category": ["outcome", "drug", "outcome", "drug", "outcome"],
    })
    patients = pd.DataFrame({"patient_id": ["a", "b"], "start": pd.to_datetime(["2019-01-01"] * 2),
                             "end": pd.to_datetime(["2021-01-01"] * 2)})
    return EventLog.from_pandas(events, patients)


def test_look_grid_by_quarter_and_days():
    looks = look_times(SurveillancePlan(start="2020-01-01", n_looks=3))
    assert looks["date"].dt.strftime("%m-%d").tolist() == ["04-01", "07-01", "10-01"]
    days = look_times(SurveillancePlan(start="2020-01-01", n_looks=2, period=30))
    assert np.diff(days["time"]).tolist() == [30.0]


def test_scri_counts_by_hand():
    log = _log()
    plan = SurveillancePlan()
    at = float((pd.Timestamp("2021-01-01") - pd.Timestamp("1970-01-01")).days)
    counts = scri_counts(log, at, plan, ["B01AA03"], ["K922"])
    assert counts[["n_cases", "n_risk", "n_exposures"]].iloc[0].tolist() == [3, 2, 2]
    early = scri_counts(log, at - 200, plan, ["B01AA03"], ["K922"])  # risk windows not yet complete
    assert early[["n_cases", "n_exposures"]].iloc[0].tolist() == [0, 0]


def test_surveil_on_synthetic_cohort_is_monotone_and_final():
    from pathways.synthetic.cohort import simulate_cohort
    log, truth = simulate_cohort(400, seed=0)
    plan = SurveillancePlan(start="2015-01-01", n_looks=6, methods=("maxsprt",))
    looks = surveil(log, StudyDesign(outcomes=truth.outcomes), plan)
    assert sorted(looks["look"].unique()) == list(range(1, 7))
    for _, part in looks.groupby(["exposure", "outcome"]):
        assert np.all(np.diff(part.sort_values("look")["n_cases"].to_numpy()) >= 0)  # cumulative data
        alert = part.sort_values("look")["alert_maxsprt"].to_numpy()
        assert np.all(np.diff(alert.astype(int)) >= 0)  # a sequential signal is final
    assert looks.attrs["plan"]["n_looks"] == 6


def test_alert_history_first_alert_persistence_and_drops():
    dates = pd.date_range("2020-03-31", periods=4, freq="QE")
    looks = pd.DataFrame({"look": [1, 2, 3, 4], "date": dates, "exposure": "d", "outcome": "o",
                          "n_cases": [5, 9, 14, 20], "n_risk": [4, 7, 10, 15], "estimate": 2.0,
                          "alert_maxsprt": [False, True, True, True], "alert_repeated": [False, True, False, True]})
    table = alert_history(looks).set_index("method")
    assert table.loc["maxsprt", "first_alert_look"] == 2 and table.loc["maxsprt", "n_dropped"] == 0
    assert table.loc["repeated", "persistence"] == pytest.approx(2 / 3)
    assert table.loc["repeated", "n_dropped"] == 1 and bool(table.loc["repeated", "alerted_last"])


def test_plan_checks():
    with pytest.raises(PathwaysInputError):
        SurveillancePlan(control_window=(-30.0, 10.0)).check()
    with pytest.raises(PathwaysInputError):
        SurveillancePlan(methods=("cusum",)).check()
    with pytest.raises(PathwaysInputError):
        look_times(SurveillancePlan(period="week"))


def test_negative_controls_list_and_matching(tmp_path):
    table = load_negative_controls()
    assert table["reasoning"].notna().all() and len(table) >= 20
    assert default_negative_controls(["C09AA05", "N02BE01"], ["H612", "K922"]) == [("C09AA05", "H612")]
    path = tmp_path / "controls.csv"
    pd.DataFrame({"atc": ["N02BE"], "icd10": ["K92"]}).to_csv(path, index=False)
    assert default_negative_controls(["N02BE01"], ["K922"], path) == [("N02BE01", "K922")]

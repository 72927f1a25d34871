"""Issue 21: separation, empty cells and sparse data give explained answers (real-world shapes, simulated)."""
import warnings

import numpy as np
import pandas as pd
import pytest

from pathways import EventLog
from pathways.encode.sccs import sccs_data
from pathways.models.sccs import SCCS
from pathways.signals import STATUSES, detect, pair_summary
from pathways.signals.detect import relative_incidence_curves


def real_shape(n=1500, n_cases=60, seed=0):
    """One exposure per patient, every outcome of the cases 5-89 days after it, decades of observation (from 1905)."""
    g = np.random.default_rng(seed)
    start = pd.Timestamp("1905-01-01") + pd.to_timedelta(g.integers(0, 20000, n), "D")
    length = g.integers(30 * 365, 60 * 365, n)
    drug = g.choice(["D", "N1", "N2"], n)
    day = (g.random(n) * (length - 200)).astype(int) + 50
    rows = [(f"p{i}", start[i] + pd.Timedelta(days=int(day[i])), drug[i], "drug") for i in range(n)]
    for i in g.choice(np.flatnonzero(drug == "D"), n_cases, replace=False):
        rows.append((f"p{i}", start[i] + pd.Timedelta(days=int(day[i] + g.integers(5, 90))), "AE", "diagnosis"))
    for code in ("X1", "X2"):
        for i in g.choice(n, 80, replace=False):
            rows.append((f"p{i}", start[i] + pd.Timedelta(days=int(g.integers(0, length[i]))), code, "diagnosis"))
    events = pd.DataFrame(rows, columns=["patient_id", "time", "code", "category"])
    patients = pd.DataFrame({"patient_id": [f"p{i}" for i in range(n)], "start": start,
                             "end": start + pd.to_timedelta(length, "D")})
    return EventLog.from_pandas(events, patients)


@pytest.fixture(scope="module")
def log():
    return real_shape()


@pytest.fixture(scope="module")
def table(log):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return detect(log, outcomes=["AE", "X1", "X2"], risk_window=(0, 100), methods=("SCCS", "PRR", "IC"))


def test_separated_pair_is_flagged_ranked_first_with_one_sided_interval(table):
    row = table[(table["method"] == "SCCS") & (table["outcome"] == "AE") & (table["exposure"] == "D")].iloc[0]
    assert row["status"] == "separated"
    assert np.isfinite(row["estimate"]) and row["estimate"] > 100
    assert row["ci_high"] == np.inf and 100 < row["ci_low"] <= row["estimate"]
    assert row["p"] < 1e-10 and row["flag"] and row["rank"] == 1
    prr = table[(table["method"] == "PRR") & (table["outcome"] == "AE") & (table["exposure"] == "D")].iloc[0]
    assert prr["status"] == "separated" and prr["flag"] and prr["rank"] == 1


def test_every_row_has_a_status_and_no_zero_width_interval(table):
    assert table["status"].isin(STATUSES).all()
    est = table[table["status"] != "estimated"]
    assert not ((est["ci_low"] == est["ci_high"]) & est["ci_low"].notna()).any()
    empty = table[(table["method"] == "SCCS") & (table["status"] == "no exposed outcome")]
    assert len(empty) and (empty["ci_low"] == 0).all() and np.isfinite(empty["ci_high"]).all()
    assert not table.loc[table["flag"], "outcome"].isin(["X1", "X2"]).any()
    missing = table[table["estimate"].isna()]
    assert missing["status"].isin(["too few cases", "no exposed outcome", "suppressed"]).all()


def test_pair_summary_shows_agreement(table):
    summary = pair_summary(table)
    top = summary.iloc[0]
    assert (top["exposure"], top["outcome"]) == ("D", "AE")
    assert top["n_flagged"] == 3 and top["agreement"] == "all flag"
    assert "SCCS: separated" in top["statuses"]


def test_curves_explain_empty_and_separated_steps(log):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curves = relative_incidence_curves(log, [("D", "AE"), ("D", "X1")],
                                           lag_edges_days=(0, 28, 56, 98), bucket_days=7.0)
    assert curves["status"].isin(STATUSES).all()
    ae = curves[curves["outcome"] == "AE"]
    assert (ae["status"] == "separated").all() and (ae["ri"] < 1e8).all() and (ae["ci_low"] > 1).all()
    x1 = curves[curves["outcome"] == "X1"]
    assert (x1.loc[x1["n_outcomes"] == 0, "status"] == "no exposed outcome").all()
    assert not (curves["ci_low"] == curves["ci_high"]).any()


def test_quasi_separation_keeps_finite_mle_and_profile_interval(log):
    data = sccs_data(log, {"D": ["D"]}, ["AE"], 7.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        closed = SCCS(risk_windows=[[0, 13]]).fit(data).results_.iloc[0]
        cut = SCCS(risk_windows=[[0, 11]]).fit(data).results_.iloc[0]
    assert closed["status"] == "separated" and closed["ci_high"] == np.inf
    if cut["n_outcomes"] < 60:  # some outcomes beyond the window: a finite MLE, a two-sided profile interval
        assert cut["status"] == "estimated"
        assert 1 < cut["ci_low"] < cut["ri"] < cut["ci_high"] < np.inf

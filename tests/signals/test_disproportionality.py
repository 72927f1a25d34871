import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pathways.errors import PathwaysInputError
from pathways.signals.disproportionality import (
    contingency_tables, disproportionality, ebgm, exposure_event_matrix, information_component, prr, ror,
)


def _tables_from_counts(a, b, c, d):
    """Build events whose 2x2 table for (drug 0, outcome 0) is exactly (a, b, c, d)."""
    outcome = np.array([0] * a + [1] * b + [0] * c + [1] * d)
    n = outcome.size
    patient = np.arange(n)
    time = np.full(n, 5.0)
    exposures = pd.DataFrame({"patient": np.arange(a + b), "exposure": 0, "start": 0.0, "end": 10.0})
    x = exposure_event_matrix(patient, time, exposures, 1)
    return contingency_tables(x, outcome, 2, np.array(["drug"]), np.array(["ae", "other"]))


def test_exposure_matrix_windows_half_open_and_overlaps_counted_once():
    patient = np.array([0, 0, 0, 1])
    time = np.array([1.0, 2.0, 3.0, 2.0])
    exposures = pd.DataFrame({"patient": [0, 0, 1], "exposure": [0, 0, 1], "start": [0.0, 1.5, 2.0],
                              "end": [2.0, 2.5, 3.0]})
    x = exposure_event_matrix(patient, time, exposures, 2).toarray()
    assert x.tolist() == [[1, 0], [1, 0], [0, 0], [0, 1]]


def test_counts_match_hand_table():
    t = _tables_from_counts(12, 30, 40, 500)
    assert (t.a[0, 0], t.b[0, 0], t.c[0, 0], t.d[0, 0]) == (12, 30, 40, 500)


def test_prr_ror_match_hand_computation():
    a, b, c, d = 12, 30, 40, 500
    t = _tables_from_counts(a, b, c, d)
    row = prr(t).iloc[0]
    assert row["estimate"] == pytest.approx((a / (a + b)) / (c / (c + d)))
    se = np.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))
    assert row["ci_low"] == pytest.approx(row["estimate"] * np.exp(-1.959964 * se), rel=1e-5)
    r = ror(t).iloc[0]
    assert r["estimate"] == pytest.approx(a * d / (b * c))
    se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    assert r["p"] == pytest.approx(2 * stats.norm.sf(np.log(a * d / (b * c)) / se))


def test_information_component_shrinks_small_counts():
    t = _tables_from_counts(1, 0, 0, 1000)  # one exposed event, all of it the outcome
    row = information_component(t).iloc[0]
    e = t.expected[0, 0]
    assert row["log2_estimate"] == pytest.approx(np.log2(1.5 / (e + 0.5)))
    assert row["ci_low"] < 1 < row["ci_high"]  # a single event is no credible signal


def test_ebgm_shrinks_towards_prior_and_orders_like_observed_over_expected():
    rng = np.random.default_rng(0)
    n_drugs, n_out = 30, 20
    # many random pairs + one strong pair
    outcome = rng.integers(0, n_out, 20000)
    patient = np.arange(outcome.size)
    drug = rng.integers(0, n_drugs, outcome.size)
    exposed = rng.uniform(size=outcome.size) < 0.3
    strong = exposed & (drug == 3)
    outcome[strong & (rng.uniform(size=outcome.size) < 0.5)] = 7
    ex = pd.DataFrame({"patient": patient[exposed], "exposure": drug[exposed], "start": 0.0, "end": 10.0})
    x = exposure_event_matrix(patient, np.full(outcome.size, 5.0), ex, n_drugs)
    t = contingency_tables(x, outcome, n_out, np.arange(n_drugs).astype(str), np.arange(n_out).astype(str))
    frame = ebgm(t)
    top = frame.sort_values("estimate", ascending=False).iloc[0]
    assert (top["exposure"], top["outcome"]) == ("3", "7")
    assert top["ci_low"] > 2
    raw = t.a / t.expected
    assert frame["estimate"].max() < raw.max()  # shrinkage
    assert (frame["ci_low"] <= frame["estimate"]).all() and (frame["estimate"] <= frame["ci_high"]).all()


def test_all_methods_stack_and_unknown_method():
    t = _tables_from_counts(12, 30, 40, 500)
    x = exposure_event_matrix(np.arange(582), np.full(582, 5.0),
                              pd.DataFrame({"patient": np.arange(42), "exposure": 0, "start": 0.0, "end": 10.0}), 1)
    outcome = np.array([0] * 12 + [1] * 30 + [0] * 40 + [1] * 500)
    frame = disproportionality(x, outcome, np.array(["drug"]), np.array(["ae", "other"]))
    assert set(frame["method"]) == {"PRR", "ROR", "IC", "EBGM"} and len(frame) == 8
    with pytest.raises(PathwaysInputError, match="unknown"):
        disproportionality(x, outcome, np.array(["drug"]), np.array(["ae", "other"]), methods=("XYZ",))
    assert t.a[0].tolist() == [12, 30]  # exposed events split by outcome


def test_bad_exposures():
    with pytest.raises(PathwaysInputError, match="missing column"):
        exposure_event_matrix(np.zeros(1, int), np.zeros(1), pd.DataFrame({"patient": [0]}), 1)
    bad = pd.DataFrame({"patient": [0], "exposure": [0], "start": [5.0], "end": [1.0]})
    with pytest.raises(PathwaysInputError, match="end >= start"):
        exposure_event_matrix(np.zeros(1, int), np.zeros(1), bad, 1)

"""Issue 21, continued: the issue's failures on data of its shape, ConvSCCS lag statuses, the batched profile
intervals against a one-column reference, and the SCCS diagnostic terms."""
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from pathways.encode.sccs import SCCSData, sccs_data
from pathways.models.sccs import (SCCS, ConvSCCS, add_end_of_observation, add_pre_exposure, add_season,
                                  from_first_exposure)
from pathways.models.sccs.likelihood import case_loglik, newton
from pathways.signals import STATUSES, detect
from pathways.signals.detect import relative_incidence_curves
from pathways.synthetic.signal_shapes import simulate_signal_shape
from tests.signals.test_separation import real_shape


@pytest.fixture(scope="module")
def log():
    return real_shape()


def _detect(log, window):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return detect(log, outcomes=["AE", "X1", "X2"], risk_window=window, methods=("SCCS",))


@pytest.mark.parametrize("window, status", [((0, 90), "estimated"), ((0, 100), "separated"),
                                            ((0, 900), "separated")])
def test_issue_windows_give_a_strong_flagged_first_pair(log, window, status):
    """(0, 90) used to give RI 0 [0, 0], p 0, unflagged; (0, 900) RI ~1300 for an infinite MLE; decades-long
    observation from the 1900s [inf, inf]. With 7-day buckets, (0, 90) ends on bucket 12 and a few outcomes 85-89
    days after a late-in-its-bucket exposure fall in bucket 13: a finite (quasi-separated) MLE, two-sided."""
    table = _detect(log, window)
    row = table[(table["exposure"] == "D") & (table["outcome"] == "AE")].iloc[0]
    assert row["status"] == status and row["flag"] and row["rank"] == 1
    assert np.isfinite(row["estimate"]) and row["estimate"] > row["ci_low"] > 100
    assert (row["ci_high"] == np.inf) == (status == "separated") and row["p"] < 1e-10
    assert table["status"].isin(STATUSES).all()
    assert not table.loc[table["outcome"] != "AE", "flag"].any()


def test_issue_window_short_of_the_outcomes_is_estimated_two_sided(log):
    table = _detect(log, (0, 60))  # some outcomes fall 60-89 days after: a finite MLE
    row = table[(table["exposure"] == "D") & (table["outcome"] == "AE")].iloc[0]
    assert row["status"] == "estimated" and row["flag"] and row["rank"] == 1
    assert 1 < row["ci_low"] < row["estimate"] < row["ci_high"] < np.inf


def test_curves_steps_are_explained_never_zero_width(log):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curves = relative_incidence_curves(log, [("D", "AE")], lag_edges_days=(0, 7, 28, 56, 98, 140))
    assert curves["status"].isin(STATUSES).all()
    assert (curves["ri"] < 1e12).all() and (curves["ri"] > 0).all()
    assert not ((curves["ci_low"] == curves["ci_high"]) & curves["ci_low"].notna()).any()
    late = curves[curves["lag_start"] >= 98]  # after the last outcome: an empty step, bounded above, from 0
    assert (late["status"] == "no exposed outcome").all() and (late["ci_low"] == 0).all()
    assert np.isfinite(late["ci_high"]).all()


def test_convsccs_lags_without_outcome_say_so(log):
    data = sccs_data(log, {"D": ["D"]}, ["AE"], 7.0)  # outcomes 5-89 days after: lags 0-12 of 7 days
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        free = ConvSCCS(n_lags=16, max_iter=300).fit(data).relative_incidence()
        pen = ConvSCCS(n_lags=16, C_tv=100.0, max_iter=300).fit(data).relative_incidence()
    assert free["status"].isin(STATUSES).all()
    empty, held = free[free["lag"] >= 14], free[free["lag"] < 14]
    assert (empty["status"] == "no exposed outcome").all()
    # every outcome of the exposed cases within lags 0-13: the curve is separated as a whole (infinite MLE)
    assert (held.loc[held["n_outcomes"] > 0, "status"] == "separated").all()
    assert free["ri"].isna().all()  # unpenalised: no estimate where the MLE is infinite, never a drifted value
    assert (pen["status"] == free["status"]).all() and np.isfinite(pen["ri"]).all()


def _reference_bounds(X, d, theta, k, level=0.95):
    """One column by brentq on fully refitted profiles (the slow, obvious method)."""
    crit = stats.chi2.ppf(level, 1)
    others = np.arange(theta.size) != k
    x_k = X[:, k].toarray().ravel()

    def prof(b):
        th = newton(X[:, others], d, 1e-10, 100, offset=x_k * b, theta0=theta[others])[0]
        return case_loglik(X[:, others] @ th + x_k * b, d)[0].sum()

    top = prof(theta[k])
    f = (lambda b: 2 * (top - prof(b)) - crit)
    return (optimize.brentq(f, theta[k] - 5, theta[k], xtol=1e-8),
            optimize.brentq(f, theta[k], theta[k] + 5, xtol=1e-8))


def test_batched_profile_bounds_equal_one_column_reference():
    log, _ = simulate_signal_shape("single exposure", seed=3, n_patients=800)
    data = sccs_data(log, {d: [d] for d in ("RISK", "NULL1", "NULL2")}, ["AE"], 7.0, outcome_mode="all")
    model = SCCS(risk_windows=[[0, 8]]).fit(data)
    X, d = model._design(data)
    for k in range(3):
        low, high = _reference_bounds(X, d, model.coef_, k)
        assert np.log(model.results_["ci_low"].iloc[k]) == pytest.approx(low, abs=2e-3)
        assert np.log(model.results_["ci_high"].iloc[k]) == pytest.approx(high, abs=2e-3)


def _tiny(n_buckets=8):
    return SCCSData(n_buckets=n_buckets, censoring=[8, 6], exposure_case=[0, 1], exposure_bucket=[3, 1],
                    exposure_feature=[0, 0], exposure_value=[1.0, 1.0], outcome_case=[0, 1], outcome_bucket=[4, 0],
                    outcome_count=[1, 1], feature_names=["drug"], case_start=[0.0, 400.0], time_unit="days",
                    bucket_size=30.0)


def test_terms_set_the_right_buckets():
    data = _tiny()
    pre = add_pre_exposure(data, 2)
    rows = pre.exposure_feature == 1
    assert pre.feature_kind.tolist() == ["exposure", "pre-exposure"]
    assert list(zip(pre.exposure_case[rows], pre.exposure_bucket[rows])) == [(0, 1), (0, 2), (1, 0)]
    end = add_end_of_observation(data, 3)
    rows = end.exposure_feature == 1
    assert list(zip(end.exposure_case[rows], end.exposure_bucket[rows])) == [(0, 5), (0, 6), (0, 7), (1, 3), (1, 4),
                                                                              (1, 5)]
    season = add_season(data, "2021-01-01", 4)  # 30-day buckets from Jan 1 2021 and from Feb 5 2022
    assert season.feature_names.tolist() == ["drug", "season 2", "season 3", "season 4"]
    case0 = season.exposure_case == 0
    got = dict(zip(season.exposure_bucket[case0 & (season.exposure_feature > 0)],
                   season.exposure_feature[case0 & (season.exposure_feature > 0)]))
    # middle days 15, 45, ... : Jan, Feb, Mar (ref), Apr, May, Jun (season 2), Jul, Aug (season 3)
    assert got == {3: 1, 4: 1, 5: 1, 6: 2, 7: 2}
    first = from_first_exposure(data)
    assert first.censoring.tolist() == [5, 5] and first.outcome_case.tolist() == [0]
    assert first.outcome_bucket.tolist() == [1] and first.exposure_bucket.tolist() == [0, 0]


def test_end_of_observation_probe_flags_outcomes_that_end_observation():
    results = {}
    for scenario in ("outcome ends observation", "single exposure"):
        log, _ = simulate_signal_shape(scenario, seed=5, n_patients=2000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # one-day buckets: a partial last bucket (shorter than the others) would itself lower the probe
            table = detect(log, outcomes=["AE"], risk_window=(0, 61), bucket_days=1.0, methods=("SCCS",),
                           outcome_mode="all", end_of_observation_days=28, pre_exposure_days=28)
        terms = pd.DataFrame(table.attrs["sccs_terms"]).set_index("feature")
        assert set(terms["kind"]) == {"pre-exposure", "end of observation"}
        assert terms["ci_low"].notna().all() and terms["status"].isin(STATUSES).all()
        results[scenario] = terms.loc["end of observation"]
    dead, alive = results["outcome ends observation"], results["single exposure"]
    assert dead["ri"] > 3 and dead["p"] < 1e-6
    assert alive["ri"] < 1.5 and alive["ci_low"] < 1  # no crowding at the end when outcomes do not end it


def test_observation_from_exposure_removes_the_contraindication_bias():
    log, _ = simulate_signal_shape("contraindication", seed=2, n_patients=6000, relative_incidence=1.0)
    kw = {"outcomes": ["AE"], "risk_window": (0, 61), "bucket_days": 7.0, "methods": ("SCCS",), "outcome_mode": "all"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = detect(log, **kw)
        remedy = detect(log, **kw, observe_from_exposure=True)
    gm = (lambda t: float(np.exp(np.log(t["estimate"]).mean())))
    assert gm(plain) > 1.5  # cancelled exposures leave the exposed cases' outcomes after them: biased upwards
    assert 0.75 < gm(remedy) < 1.33
    assert ((remedy["ci_low"] < 1) & (remedy["ci_high"] > 1)).sum() >= 3


def test_season_and_age_steps_come_with_intervals():
    log = real_shape(n=800, n_cases=30, seed=1)
    log.patients = log.patients.assign(birth=log.patients["start"] - 30 * 365.25)  # days, like the times
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = detect(log, outcomes=["X1"], methods=("SCCS",), season=4, age_edges_years=(0, 50, 70))
    terms = pd.DataFrame(table.attrs["sccs_terms"]).set_index("feature")
    assert set(terms["kind"]) == {"season", "age"} and len(terms) == 5
    assert (terms["ci_low"] < terms["ri"]).all() and (terms["ri"] < terms["ci_high"]).all()
    assert np.isfinite(terms[["ci_low", "ci_high"]].to_numpy(dtype=float)).all()
    assert terms["status"].eq("estimated").all()

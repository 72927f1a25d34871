"""SCCS time at risk of a short last bucket, and the modified SCCS for event-dependent observation periods."""
import warnings

import numpy as np
import pandas as pd
import pytest

from pathways.data.eventlog import EventLog
from pathways.encode.sccs import SCCSData, sccs_data
from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.models.sccs import SCCS, ConvSCCS
from pathways.models.sccs.eventdep import (ObservationModel, first_outcomes, fit_observation_model,
                                           observation_intervals, weighted_design)
from pathways.models.sccs.likelihood import case_loglik


def _two_cases_short_last_bucket() -> EventLog:
    """Two patients observed 10 days (days 0..9), a dispensation on day 0, outcomes on day 2 and day 8."""
    day0 = pd.Timestamp("2020-01-01")
    events = pd.DataFrame({"patient_id": ["a", "a", "b", "b"],
                           "time": day0 + pd.to_timedelta([0, 2, 0, 8], "D"),
                           "code": ["D", "AE", "D", "AE"], "category": ["drug", "diagnosis", "drug", "diagnosis"]})
    patients = pd.DataFrame({"patient_id": ["a", "b"], "start": [day0, day0], "end": [day0 + pd.Timedelta(9, "D")] * 2})
    return EventLog.from_pandas(events, patients)


def test_short_last_bucket_uses_its_time_at_risk():
    """Weeks of 7 days over 10 observed days: bucket 1 holds 3 days. Window = bucket 0 (7 days), one outcome inside
    and one in the 3-day bucket: the likelihood 7r/(7r+3) * 3/(7r+3) peaks at r = 3/7 (counting bucket 1 as a whole
    week gave r = 1)."""
    data = sccs_data(_two_cases_short_last_bucket(), {"D": ["D"]}, "AE", 7.0)
    assert data.censoring.tolist() == [2, 2]
    np.testing.assert_allclose(data.last_bucket_fraction, [3 / 7, 3 / 7])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SCCS(risk_windows=[[0, 0]], interval="wald").fit(data)
    assert model.results_["ri"].iloc[0] == pytest.approx(3 / 7, rel=1e-6)
    # whole weeks (the end on day 13): both buckets are 7 days, the same outcomes give r = 1
    whole = SCCSData(n_buckets=2, censoring=data.censoring, exposure_case=data.exposure_case,
                     exposure_bucket=data.exposure_bucket, exposure_feature=data.exposure_feature,
                     exposure_value=data.exposure_value, outcome_case=data.outcome_case,
                     outcome_bucket=data.outcome_bucket, outcome_count=data.outcome_count,
                     feature_names=data.feature_names, bucket_size=7.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert SCCS(risk_windows=[[0, 0]], interval="wald").fit(whole).results_["ri"].iloc[0] == pytest.approx(1.0)


def test_short_last_bucket_in_convsccs_likelihood():
    """ConvSCCS's loss sees the same time at risk: the unpenalised log-likelihood at r = e^b, buckets weighted by
    their share of a week (1 and 3/7), is b - log(r + 3/7) - log(r + 3/7) (the constant log time at risk of the
    outcome buckets left out), maximal at r = 3/7."""
    data = sccs_data(_two_cases_short_last_bucket(), {"D": ["D"]}, "AE", 7.0)
    model = ConvSCCS(n_lags=0, C_tv=None, C_group_l1=None).fit(data)
    b = float(model.coef_[0])
    r = np.exp(b)
    assert r == pytest.approx(3 / 7, rel=1e-3)
    expected = b - 2 * np.log(r + 3 / 7)
    assert model.score_samples(data).sum() == pytest.approx(expected, rel=1e-6)


def test_end_day_counts_whole_and_cut_windows_stay_whole():
    log = _two_cases_short_last_bucket()
    assert sccs_data(log, {"D": ["D"]}, "AE", 5.0).last_bucket_fraction is None  # 10 days = 2 whole buckets
    cut = sccs_data(log, {"D": ["D"]}, "AE", 7.0, n_buckets=1)  # the window cut after bucket 0: a whole bucket
    assert cut.last_bucket_fraction is None and cut.censoring.tolist() == [1]  # b's outcome (day 8) is cut


def test_observation_model_recovers_weibull_and_picks_by_aic():
    g = np.random.default_rng(3)
    d = 30.0 * g.weibull(0.6, 2500)
    end = g.uniform(0, 400, 2500)
    k, died = np.floor(np.minimum(d, end)).astype(int), d < end
    fit = fit_observation_model(k, died, "weibull")
    assert fit.params["shape"] == pytest.approx(0.6, rel=0.08)
    assert fit.params["scale"] == pytest.approx(30.0, rel=0.15)
    auto = fit_observation_model(k, died, "auto")
    assert auto.candidates["weibull"] < auto.candidates["exponential"] - 100
    assert auto.aic == min(auto.candidates.values())
    with pytest.raises(PathwaysInputError, match="no case's observation ended with death"):
        fit_observation_model(k, np.zeros(k.size, bool))
    with pytest.raises(PathwaysInputError, match="expected 'auto' or one of"):
        fit_observation_model(k, died, "lognormal")


def _small_data(case_death):
    """3 cases of 6 buckets; an exposure start at bucket 1 (window [0, 1]); several outcomes in case 0."""
    return SCCSData(n_buckets=6, censoring=[6, 5, 4], exposure_case=[0, 1, 2], exposure_bucket=[1, 2, 0],
                    exposure_feature=[0, 0, 0], exposure_value=[1.0, 1.0, 1.0], outcome_case=[0, 0, 1, 2],
                    outcome_bucket=[2, 5, 4, 3], outcome_count=[1, 2, 1, 1], feature_names=["drug"],
                    last_bucket_fraction=[1.0, 0.5, 1.0], case_death=case_death)


def test_weighted_likelihood_matches_the_hand_computed_one():
    """Each case's probabilities are exp(eta_s) w(s) / sum_s exp(eta_s) w(s), w from the law (death: P(k <= D <
    k+1), else P(D >= k+1), k buckets before the end), the short last bucket at its time at risk."""
    data = first_outcomes(_small_data(np.array([True, False, True])))
    assert data.outcome_count.tolist() == [1, 1, 1] and data.outcome_bucket.tolist() == [2, 4, 3]
    law = ObservationModel("exponential", np.array([np.log(0.4)]), 0.0, 0.0, 3, 2, {})
    model = SCCS(risk_windows=[[0, 1]])
    model._structure(data)
    X_s, design = model._design(data)
    weighted = weighted_design(design, data, law)
    theta = np.array([0.7])
    ll, p = case_loglik(X_s @ theta, weighted)
    surv = (lambda t: np.exp(-0.4 * t))
    for case, (c, died, frac) in enumerate([(6, True, 1.0), (5, False, 0.5), (4, True, 1.0)]):
        k = c - 1 - np.arange(c)
        w = surv(k) - surv(k + 1) if died else surv(k + 1)
        w[-1] *= frac
        exposed = np.zeros(c)
        start = data.exposure_bucket[case]
        exposed[start:start + 2] = 1
        share = np.exp(0.7 * exposed) * w / np.sum(np.exp(0.7 * exposed) * w)
        rows = design.row_case.numpy() == case
        np.testing.assert_allclose(p[rows], share[design.row_bucket[rows]], rtol=1e-10)
        x = data.outcome_bucket[case]
        assert ll[case] == pytest.approx(np.log(share[x] / w[x]), abs=1e-9)


def test_flat_law_gives_the_classic_first_outcome_sccs():
    """No death and a law whose survival stays ~1: every weight ~1, the classic SCCS of the first outcomes."""
    data = first_outcomes(_small_data(np.zeros(3, bool)))
    flat = ObservationModel("exponential", np.array([-25.0]), 0.0, 0.0, 3, 0, {})
    model = SCCS(risk_windows=[[0, 1]])
    model._structure(data)
    X_s, design = model._design(data)
    p_classic = case_loglik(X_s @ np.array([0.3]), design)[1]
    p_flat = case_loglik(X_s @ np.array([0.3]), weighted_design(design, data, flat))[1]
    np.testing.assert_allclose(p_flat, p_classic, rtol=1e-9)


def test_estimator_needs_death_flags_and_reports_the_law():
    with pytest.raises(PathwaysInputError, match="case_death"):
        SCCS(event_dependent_observation="exponential").fit(_small_data(None))
    with pytest.raises(PathwaysInputError, match="event_dependent_observation"):
        SCCS(event_dependent_observation="lognormal").fit(_small_data(np.array([True, False, True])))
    data = _small_data(np.zeros(3, bool))
    with pytest.warns(PathwaysDataWarning, match="no case's observation ended with death"):
        model = SCCS(risk_windows=[[0, 1]], event_dependent_observation="auto").fit(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classic = SCCS(risk_windows=[[0, 1]]).fit(first_outcomes(data))
    assert model.observation_model_ is None
    assert model.results_["ri"].iloc[0] == pytest.approx(classic.results_["ri"].iloc[0])


def _fits(seed, n_patients, bucket_days, window):
    from pathways.synthetic.signal_shapes import simulate_signal_shape

    log, _ = simulate_signal_shape("outcome ends observation", seed=seed, n_patients=n_patients, n_null_drugs=0)
    data = sccs_data(log, {"RISK": ["RISK"]}, "AE", bucket_days)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classic = SCCS(risk_windows=[window], interval="wald").fit(data)
        modified = SCCS(risk_windows=[window], interval="wald", event_dependent_observation="auto").fit(data)
    return data, classic, modified


def test_modified_sccs_on_outcomes_that_end_observation():
    """Deaths on the outcome's day (half of the outcomes): the deaths are flagged, the law found is a mixture with
    a fast exponential part (deaths within a bucket of the outcome), the estimate lies near the planted RI 3."""
    data, classic, modified = _fits(0, 4000, 7.0, [0, 8])
    assert data.case_death.any() and not data.case_death.all()
    assert np.array_equal(observation_intervals(data)[2], data.case_death)
    law = modified.observation_model_
    assert law.family.startswith("exponential-") and law.n_deaths == int(data.case_death.sum())
    assert law.params["share"] == pytest.approx(np.mean(data.case_death), abs=0.1)
    row = modified.results_.iloc[0]
    assert 1.5 < row["ri"] < 6 and row["std_err"] > classic.results_["std_err"].iloc[0]


@pytest.mark.slow
def test_modified_sccs_at_scale_and_what_limits_it():
    """Daily buckets, 2 x 30 000 patients. The classic SCCS is pulled above the planted RI 3 (about 3.4); the
    modified one corrects the deaths on the outcome's day but the simulator also kills at *later* outcomes, whose
    rate the exposure raises, so the time to death depends on the exposure, against the method's assumption: about
    2.6. Without the ~280 cases that died at a later outcome it is unbiased (near the ~2.9 of the first-outcome SCCS
    without deaths, the non-rare first-outcome shrinkage)."""
    from pathways.synthetic.signal_shapes import simulate_signal_shape

    classic, modified, without_later = [], [], []
    for seed in range(2):
        data, c, m = _fits(seed, 30000, 1.0, [0, 60])
        classic.append(c.results_["log_ri"].iloc[0])
        modified.append(m.results_["log_ri"].iloc[0])
        cases, k, died = observation_intervals(first_outcomes(data))
        keep = np.ones(data.n_cases, bool)
        keep[cases[died & (k > 0)]] = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = SCCS(risk_windows=[[0, 60]], interval="wald", event_dependent_observation="auto").fit(
                data.subset(keep))
        without_later.append(fit.results_["log_ri"].iloc[0])
    assert np.mean(classic) - np.log(3) > 0.08
    assert np.mean(modified) < np.mean(classic) - 0.15
    assert abs(np.mean(without_later) - np.log(2.9)) < 0.08

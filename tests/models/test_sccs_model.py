"""ConvSCCS and classic SCCS: likelihood against a naive reference, recovery on simulated data, CV, bootstrap."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from pathways.encode.sccs import SCCSData
from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.models.base import NotFittedError, PathwaysEstimator
from pathways.models.sccs import SCCS, ConvSCCS, ConvSCCSCV, lag_design, sccs_estimand
from pathways.models.sccs.convsccs import _normalise
from pathways.models.sccs.solver import batched_loss, penalty_prox, tv1d
from pathways.synthetic.sccs import simulate_sccs, step_effect


@pytest.fixture(autouse=True)
def one_thread():
    """The sparse products are faster single-threaded on a shared CPU; restore the setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def naive_loglik(data: SCCSData, n_lags: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Per-case conditional log-likelihood with dense lagged features, one case at a time."""
    offsets = np.concatenate([[0], np.cumsum(n_lags + 1)])
    features = data.feature_matrix().toarray().reshape(data.n_cases, data.n_buckets, data.n_features)
    labels = data.label_matrix()
    out = np.zeros(data.n_cases)
    for i in range(data.n_cases):
        c = data.censoring[i]
        lagged = np.zeros((data.n_buckets, offsets[-1]))
        for j in range(data.n_features):
            for lag in range(n_lags[j] + 1):
                lagged[lag:, offsets[j] + lag] = features[i, :data.n_buckets - lag, j]
        eta = lagged[:c] @ beta
        log_p = eta - np.log(np.exp(eta).sum())
        out[i] = labels[i, :c] @ log_p
    return out


@pytest.fixture(scope="module")
def small():
    coeffs = [step_effect(3, 2.5, 0, 2), np.array([0.4, -0.3, 0.2, 0.0]), np.zeros(4)]
    data = simulate_sccs(60, 12, coeffs, exposures_per_case="multiple", exposure_rate=1.2, censoring_prob=0.5,
                         censoring_scale=3, seed=3)
    # a second outcome for some cases, so that counts > 1 are exercised
    extra = SCCSData(n_buckets=data.n_buckets, censoring=data.censoring, exposure_case=data.exposure_case,
                     exposure_bucket=data.exposure_bucket, exposure_feature=data.exposure_feature,
                     exposure_value=data.exposure_value,
                     outcome_case=np.r_[data.outcome_case, [0, 5]], outcome_bucket=np.r_[data.outcome_bucket, [0, 1]],
                     outcome_count=np.r_[data.outcome_count, [2, 1]], feature_names=data.feature_names)
    return extra


def test_likelihood_and_gradient_match_naive_reference(small):
    n_lags = np.array([3, 3, 2])
    design = lag_design(small, n_lags)
    beta = np.random.default_rng(0).normal(scale=0.5, size=int(design.n_coeffs))
    ref = naive_loglik(small, n_lags, beta)
    w = _normalise(torch.ones(small.n_cases, 1, dtype=torch.float64), design.n_outcomes)
    loss, grad, ll = batched_loss(design, torch.tensor(beta)[:, None], w)
    np.testing.assert_allclose(ll[:, 0].numpy(), ref, rtol=1e-12, atol=1e-12)
    assert loss.item() == pytest.approx(-ref.mean(), rel=1e-12)
    eps = 1e-6
    for k in (0, 4, int(design.n_coeffs) - 1):
        step = np.zeros_like(beta)
        step[k] = eps
        fd = -(naive_loglik(small, n_lags, beta + step).mean() - naive_loglik(small, n_lags, beta - step).mean())
        assert grad[k, 0].item() == pytest.approx(fd / (2 * eps), abs=1e-7)


def test_likelihood_survives_huge_predictors(small):
    n_lags = np.array([3, 3, 2])
    design = lag_design(small, n_lags)
    beta = np.random.default_rng(1).normal(scale=400.0, size=int(design.n_coeffs))
    ll = batched_loss(design, torch.tensor(beta)[:, None], torch.zeros(small.n_cases, 1, dtype=torch.float64),
                      grad=False)[2]
    assert torch.isfinite(ll).all()
    np.testing.assert_allclose(ll[:, 0].numpy(), naive_loglik_stable(small, n_lags, beta), rtol=1e-9)


def naive_loglik_stable(data, n_lags, beta):
    from scipy.special import logsumexp
    offsets = np.concatenate([[0], np.cumsum(n_lags + 1)])
    features = data.feature_matrix().toarray().reshape(data.n_cases, data.n_buckets, data.n_features)
    labels = data.label_matrix()
    out = np.zeros(data.n_cases)
    for i in range(data.n_cases):
        c = data.censoring[i]
        lagged = np.zeros((data.n_buckets, offsets[-1]))
        for j in range(data.n_features):
            for lag in range(n_lags[j] + 1):
                lagged[lag:, offsets[j] + lag] = features[i, :data.n_buckets - lag, j]
        eta = lagged[:c] @ beta
        out[i] = labels[i, :c] @ (eta - logsumexp(eta))
    return out


def test_loss_matches_tick_model_without_censoring():
    tick_survival = pytest.importorskip("tick.survival", reason="tick (optional peer package) is not installed")
    from tick.preprocessing import LongitudinalFeaturesLagger
    coeffs = [step_effect(4, 2.0, 0, 3), np.zeros(5)]
    data = simulate_sccs(80, 15, coeffs, exposures_per_case="multiple", seed=4)
    n_lags = np.array([4, 4])
    features, labels, censoring = data.to_tick()
    lagged, _, _ = LongitudinalFeaturesLagger(n_lags=n_lags.astype("uint64")).fit_transform(features)
    model = tick_survival.ModelSCCS(n_intervals=15, n_lags=n_lags.astype("uint64")).fit(lagged, labels, censoring)
    beta = np.linspace(-0.5, 0.8, 10)
    design = lag_design(data, n_lags)
    w = _normalise(torch.ones(data.n_cases, 1, dtype=torch.float64), design.n_outcomes)
    loss, grad, _ = batched_loss(design, torch.tensor(beta)[:, None], w)
    assert loss.item() == pytest.approx(model.loss(beta), rel=1e-12)
    np.testing.assert_allclose(grad[:, 0].numpy(), model.grad(beta), atol=1e-14)


def test_tv_prox_is_exact():
    from scipy.optimize import minimize
    gen = np.random.default_rng(5)
    for _ in range(20):
        m = int(gen.integers(2, 15))
        y, lam = gen.normal(size=m) * 2, float(gen.choice([0.05, 0.5, 2.0]))
        x = np.array(tv1d(y.tolist(), lam))
        diff = np.diff(np.eye(m), axis=0)
        dual = minimize(lambda u: 0.5 * np.sum((y - diff.T @ u) ** 2), np.zeros(m - 1),
                        jac=lambda u: -diff @ (y - diff.T @ u), bounds=[(-lam, lam)] * (m - 1), method="L-BFGS-B",
                        options={"ftol": 1e-15, "gtol": 1e-12})
        np.testing.assert_allclose(x, y - diff.T @ dual.x, atol=1e-6)


def test_group_prox_zeroes_weak_blocks_only():
    beta = torch.tensor([[0.01, -0.01, 0.0, 3.0, 3.0, 3.0]], dtype=torch.float64).T
    out = penalty_prox(beta, torch.ones(6, 1, dtype=torch.float64), np.array([0, 3, 6]), np.array([True, True]),
                       None, 10.0)
    assert torch.all(out[:3] == 0)
    np.testing.assert_allclose(out[3:, 0].numpy(), 3.0 - math.sqrt(3) / 10 / math.sqrt(3), rtol=1e-12)


# -- fitting ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def simulated():
    truth = np.stack([step_effect(9, 3.0, 0, 5), step_effect(9, 1.0), step_effect(9, 2.0, 3, 10)])
    data = simulate_sccs(1500, 40, truth, exposure_prob=0.6, seed=11)
    return data, truth


def test_penalised_fit_recovers_risky_curves_and_keeps_nulls_near_zero(simulated):
    data, truth = simulated
    model = ConvSCCS(n_lags=9, C_tv=300.0, C_group_l1=1000.0).fit(data)
    assert isinstance(model, PathwaysEstimator) and model.input_kind == "sccs"
    assert model.lag_curves().shape == (3, 10)
    rmse = np.sqrt(np.mean((model.lag_curves() - truth) ** 2, axis=1))
    assert rmse[0] < 0.25 and rmse[2] < 0.25, rmse
    assert np.abs(model.lag_curves()[1]).max() < 0.1
    ri = model.relative_incidence()
    assert list(ri.columns[:6]) == ["feature", "kind", "lag", "lag_time", "log_ri", "ri"] and len(ri) == 30
    factors = model.to_factors()
    assert list(factors.columns[:7]) == ["source", "target", "lag_days", "effect", "ci_low", "ci_high", "method"]
    assert model.score(data) > -math.log(40)


def test_tick_format_and_sccsdata_give_the_same_fit(simulated):
    data, _ = simulated
    sub = data.subset(np.arange(300))
    a = ConvSCCS(n_lags=9, C_tv=100.0, C_group_l1=500.0).fit(sub)
    features, labels, censoring = sub.to_tick()
    b = ConvSCCS(n_lags=[9, 9, 9], C_tv=100.0, C_group_l1=500.0).fit(features, labels=labels, censoring=censoring)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-10)


def test_unpenalised_convsccs_equals_sccs_with_one_window_per_lag(simulated):
    data, _ = simulated
    sub = data.subset(np.arange(400))
    conv = ConvSCCS(n_lags=3, tol=1e-9, max_iter=5000).fit(sub)
    classic = SCCS(risk_windows=[[lag, lag] for lag in range(4)]).fit(sub)
    np.testing.assert_allclose(conv.coef_, classic.coef_, atol=2e-5)
    assert conv.score(sub) == pytest.approx(classic.score(sub), abs=1e-8)


def test_cross_validation_prefers_an_informative_penalty(simulated):
    data, truth = simulated
    model = ConvSCCS(n_lags=9).fit_kfold_cv(data, C_tv_grid=[1.0, 300.0], C_group_l1_grid=[1.0, 1000.0],
                                            n_folds=3)
    res = model.cv_results_
    assert len(res) == 4 and set(res.columns) >= {"C_tv", "C_group_l1", "mean_test_score", "std_test_score"}
    # the strongest penalties flatten every curve to zero; CV must not pick them here
    assert model.best_params_ == {"C_tv": 300.0, "C_group_l1": 1000.0}
    assert np.sqrt(np.mean((model.lag_curves() - truth) ** 2)) < 0.2
    cv = ConvSCCSCV(n_lags=9, C_tv_grid=[300.0], C_group_l1_grid=[1000.0], n_folds=2).fit(data)
    assert cv.best_params_ == {"C_tv": 300.0, "C_group_l1": 1000.0}


def test_bootstrap_intervals_cover_truth_and_bracket_the_refit(simulated):
    data, truth = simulated
    model = ConvSCCS(n_lags=9, C_tv=300.0, C_group_l1=1000.0, n_bootstrap=24, bootstrap_batch=12, seed=2).fit(data)
    assert model.bootstrap_coef_.shape == (24, 30)
    assert np.all(model.ci_low_ <= model.ci_high_)
    covered = (model.ci_low_ <= truth.ravel() + 1e-9) & (truth.ravel() - 1e-9 <= model.ci_high_)
    assert covered.mean() >= 0.8
    ri = model.relative_incidence()
    assert {"ri_refit", "ci_low", "ci_high"} <= set(ri.columns)


def test_classic_sccs_risk_windows_and_wald_intervals(simulated):
    data, _ = simulated
    model = SCCS(risk_windows={"drug_0": [[0, 4], [5, 9]], "drug_2": [[3, 9]]}).fit(data)
    res = model.results_.set_index(model.param_names_)
    assert res.loc["drug_0[0,4]", "ci_low"] < 3.0 < res.loc["drug_0[0,4]", "ci_high"]
    assert res.loc["drug_0[5,9]", "ci_low"] < 1.0 < res.loc["drug_0[5,9]", "ci_high"]
    assert res.loc["drug_2[3,9]", "ci_low"] < 2.0 < res.loc["drug_2[3,9]", "ci_high"]
    assert res.loc["drug_0[0,4]", "p"] < 1e-6 and res.loc["drug_0[0,4]", "n_outcomes"] > 0
    assert model.to_factors()["method"].eq("sccs").all()


def test_classic_sccs_warns_on_empty_window():
    data = simulate_sccs(50, 20, [step_effect(2, 1.0)], exposure_prob=0.0, seed=0)
    with pytest.warns(PathwaysDataWarning, match="hold no outcome"):
        model = SCCS(risk_windows=[[0, 2]]).fit(data)
    assert np.isnan(model.coef_[0])


def test_state_round_trip(simulated):
    data, _ = simulated
    model = ConvSCCS(n_lags=9, C_tv=300.0, C_group_l1=1000.0).fit(data.subset(np.arange(200)))
    restored = PathwaysEstimator.import_state(model.export_state())
    np.testing.assert_array_equal(restored.coef_, model.coef_)
    assert restored.score(data) == pytest.approx(model.score(data))



@pytest.mark.parametrize("make", [lambda: ConvSCCS(n_lags=[3, 3, 2], C_tv=50.0),
                                  lambda: SCCS(risk_windows=[[0, 1], [2, 3]])])
def test_model_protocol_scores_per_case_per_outcome_and_in_total(small, make):
    model = make()
    with pytest.raises(NotFittedError):
        model.score_samples(small)
    model.fit(small, validation=small.subset(np.arange(5)))  # full-batch: validation is ignored
    np.testing.assert_array_equal(model.coef_, make().fit(small).coef_)
    per_case = model.score_samples(small)
    assert per_case.dtype == np.float64 and per_case.shape == (small.n_cases,)
    assert model.log_likelihood(small) == pytest.approx(per_case.sum())
    assert model.score(small) == pytest.approx(per_case.sum() / small.outcomes_per_case().sum())
    pd.testing.assert_frame_equal(model.to_factors(small), model.to_factors())
    if isinstance(model, ConvSCCS):
        np.testing.assert_allclose(per_case, naive_loglik(small, model.n_lags_, model.coef_), atol=1e-10)

@pytest.mark.parametrize("kwargs, match", [
    ({"C_tv": -1.0}, "C_tv must be None or a positive"),
    ({"n_lags": 40}, "n_lags must lie in"),
    ({"ci_method": "basic"}, "ci_method"),
    ({"dtype": "float16"}, "dtype"),
])
def test_bad_parameters(simulated, kwargs, match):
    data, _ = simulated
    with pytest.raises(PathwaysInputError, match=match):
        ConvSCCS(**({"n_lags": 9} | kwargs)).fit(data.subset(np.arange(50)))


def test_bad_inputs(simulated):
    data, _ = simulated
    with pytest.raises(PathwaysInputError, match="labels: required"):
        ConvSCCS(n_lags=2).fit(data.to_tick()[0])
    with pytest.raises(PathwaysInputError, match="expected SCCSData"):
        ConvSCCS(n_lags=2).fit(np.zeros((3, 3)))
    no_outcome = SCCSData(n_buckets=4, censoring=[4], exposure_case=[0], exposure_bucket=[0], exposure_feature=[0],
                          exposure_value=[1.0], outcome_case=[], outcome_bucket=[], outcome_count=[],
                          feature_names=["a"])
    with pytest.raises(PathwaysInputError, match="no case with an outcome"):
        ConvSCCS(n_lags=2).fit(no_outcome)
    with pytest.raises(PathwaysInputError, match="overlap"):
        SCCS(risk_windows=[[0, 3], [2, 5]]).fit(data)
    with pytest.raises(PathwaysInputError, match="unknown exposures"):
        SCCS(risk_windows={"nope": [[0, 1]]}).fit(data)
    fitted = ConvSCCS(n_lags=2, C_tv=10.0).fit(data.subset(np.arange(50)))
    other = simulate_sccs(10, 40, [np.zeros(3)], seed=0)
    with pytest.raises(PathwaysInputError, match="1 features, the model was fitted on 3"):
        fitted.score(other)


@pytest.mark.gpu
def test_cuda_matches_cpu(simulated):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    data, _ = simulated
    cpu = ConvSCCS(n_lags=9, C_tv=300.0, C_group_l1=1000.0).fit(data)
    gpu = ConvSCCS(n_lags=9, C_tv=300.0, C_group_l1=1000.0, device="cuda").fit(data)
    np.testing.assert_allclose(gpu.coef_, cpu.coef_, atol=1e-6)


def test_fit_from_an_eventlog():
    import pandas as pd
    from pathways.data import EventLog
    data = simulate_sccs(400, 30, [step_effect(4, 4.0, 0, 5)], exposure_prob=0.8, seed=5)
    # write the simulated cases as an event log: exposure and outcome events at bucket starts (days)
    events = pd.DataFrame({
        "patient_id": np.r_[data.exposure_case, data.outcome_case],
        "time": np.r_[data.exposure_bucket, data.outcome_bucket].astype(float) * 7.0,
        "code": ["DRUG"] * data.exposure_case.size + ["EVENT"] * data.outcome_case.size})
    patients = pd.DataFrame({"patient_id": np.arange(400), "start": 0.0, "end": 30 * 7.0 - 1})
    log = EventLog.from_pandas(events, patients)
    from_log = ConvSCCS(n_lags=4, C_tv=100.0).fit(log, exposures=["DRUG"], outcome="EVENT", bucket_size=7.0)
    direct = ConvSCCS(n_lags=4, C_tv=100.0).fit(data)
    np.testing.assert_allclose(from_log.coef_, direct.coef_, atol=1e-8)
    assert from_log.relative_incidence()["lag_time"].tolist() == [0.0, 7.0, 14.0, 21.0, 28.0]
    with pytest.raises(PathwaysInputError, match="needs encoder arguments"):
        ConvSCCS(n_lags=4).fit(log, exposures=["DRUG"])


def test_age_features_are_unlagged_and_unpenalised():
    # a common step in the baseline (x2 from bucket 20 on) is absorbed by an "age" feature
    truth = [step_effect(4, 3.0, 0, 5), np.zeros(5)]
    base = simulate_sccs(2000, 40, truth, exposure_prob=0.6, time_drift=np.r_[np.zeros(20), np.full(20, np.log(2))],
                         seed=8)
    case = np.repeat(np.arange(base.n_cases), 20)
    bucket = np.tile(np.arange(20, 40), base.n_cases)
    data = SCCSData(n_buckets=40, censoring=base.censoring,
                    exposure_case=np.r_[base.exposure_case, case], exposure_bucket=np.r_[base.exposure_bucket, bucket],
                    exposure_feature=np.r_[base.exposure_feature, np.full(case.size, 2)],
                    exposure_value=np.r_[base.exposure_value, np.ones(case.size)], outcome_case=base.outcome_case,
                    outcome_bucket=base.outcome_bucket, outcome_count=base.outcome_count,
                    feature_names=["drug_0", "drug_1", "late"], feature_kind=["exposure", "exposure", "age"])
    model = ConvSCCS(n_lags=4, C_tv=100.0, C_group_l1=1e4).fit(data)
    assert list(model.n_lags_) == [4, 4, 0] and list(model.penalized_) == [True, True, False]
    assert model.lag_curves()[2, 0] == pytest.approx(np.log(2), abs=0.12)
    assert np.isnan(model.lag_curves()[2, 1:]).all()
    assert np.sqrt(np.mean((model.lag_curves()[0] - truth[0]) ** 2)) < 0.2


@pytest.mark.slow
def test_bootstrap_coverage_on_repeated_simulations():
    """Pointwise coverage of 95% refit intervals >= 90% over repeated simulations (also in the benchmark)."""
    truth = np.stack([step_effect(9, 2.0, 0, 5), np.zeros(10)])
    covered = []
    for s in range(8):
        data = simulate_sccs(800, 40, truth, exposure_prob=0.6, seed=200 + s)
        fit = ConvSCCS(n_lags=9, C_tv=100.0, C_group_l1=1000.0, n_bootstrap=100, bootstrap_batch=50, seed=s).fit(data)
        covered.append((fit.ci_low_ <= truth.ravel() + 1e-9) & (truth.ravel() - 1e-9 <= fit.ci_high_))
    assert np.mean(covered) >= 0.9


# ----------------------------------------------------------------------------------------------------------------
# exposure coding of the classic SCCS and its design-consistent estimand
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def overlapping():
    """Two cases with overlapping exposure windows; case 1 is censored after bucket 4."""
    return SCCSData(n_buckets=8, censoring=[8, 5], exposure_case=[0, 0, 1, 1], exposure_bucket=[1, 2, 0, 4],
                    exposure_feature=[0, 0, 0, 0], exposure_value=[1.0, 1.0, 1.0, 1.0], outcome_case=[0, 0, 1],
                    outcome_bucket=[2, 6, 1], outcome_count=[1, 1, 1], feature_names=["drug"])


def dense_design(model: SCCS, data: SCCSData) -> np.ndarray:
    """(n_cases, n_buckets, n_params) covariates of a fitted model's design (zero rows included)."""
    X_s, design = model._design(data)
    out = np.zeros((data.n_cases, data.n_buckets, X_s.shape[1]))
    out[design.row_case.numpy(), design.row_bucket] = X_s.toarray()
    return out


@pytest.mark.parametrize("windows, coding, expected", [
    # starts at buckets 1 and 2, window [0, 2]: the windows overlap at buckets 2-3
    ([[0, 2]], "starts", [[0, 1, 2, 2, 1, 0, 0, 0], [1, 1, 1, 0, 1, 0, 0, 0]]),
    ([[0, 2]], "exposed", [[0, 1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 1, 0, 0, 0]]),
    ([[1, 2]], "starts", [[0, 0, 1, 2, 1, 0, 0, 0], [0, 1, 1, 0, 0, 0, 0, 0]]),
    ([[1, 2]], "exposed", [[0, 0, 1, 1, 1, 0, 0, 0], [0, 1, 1, 0, 0, 0, 0, 0]]),
])
def test_exposure_coding_design_by_hand(overlapping, windows, coding, expected):
    model = SCCS(risk_windows=windows, exposure_coding=coding).fit(overlapping)
    np.testing.assert_array_equal(dense_design(model, overlapping)[..., 0], np.array(expected, dtype=float))


def test_exposed_coding_counts_each_window_once_per_step(overlapping):
    """Two consecutive windows: a bucket in window 1 of one start and window 2 of another is in both steps."""
    model = SCCS(risk_windows=[[0, 0], [1, 2]], exposure_coding="exposed").fit(overlapping)
    x = dense_design(model, overlapping)
    np.testing.assert_array_equal(x[0, :, 0], [0, 1, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(x[0, :, 1], [0, 0, 1, 1, 1, 0, 0, 0])


def naive_window_loglik(data: SCCSData, window: tuple[int, int], coding: str, theta: float) -> float:
    """Conditional log-likelihood of a one-window SCCS, one case and one bucket at a time."""
    starts = data.feature_matrix().toarray().reshape(data.n_cases, data.n_buckets)
    labels = data.label_matrix()
    total = 0.0
    for i in range(data.n_cases):
        c = data.censoring[i]
        x = np.array([sum(starts[i, t - lag] for lag in range(window[0], window[1] + 1) if t - lag >= 0)
                      for t in range(c)])
        if coding == "exposed":
            x = (x > 0).astype(float)
        eta = theta * x
        total += labels[i, :c] @ (eta - np.log(np.exp(eta).sum()))
    return total


@pytest.mark.parametrize("coding", ["starts", "exposed"])
def test_exposure_coding_likelihood_matches_naive_reference(coding):
    data = simulate_sccs(80, 20, [step_effect(5, 2.0, 0, 4)], exposures_per_case="multiple", exposure_rate=2.5,
                         censoring_prob=0.4, censoring_scale=4, seed=11)
    model = SCCS(risk_windows=[[1, 4]], exposure_coding=coding).fit(data)
    n_out = data.outcome_count.sum()
    for theta in (model.coef_[0], -0.7, 1.3):
        model.coef_ = np.array([theta])
        assert model.score(data) * n_out == pytest.approx(naive_window_loglik(data, (1, 4), coding, theta),
                                                            rel=1e-12)


def test_exposure_codings_differ_only_when_windows_overlap():
    data = simulate_sccs(400, 30, [step_effect(5, 2.0)], exposures_per_case="multiple", exposure_rate=3.0, seed=5)
    a = SCCS(risk_windows=[[0, 5]], exposure_coding="starts").fit(data).coef_
    b = SCCS(risk_windows=[[0, 5]], exposure_coding="exposed").fit(data).coef_
    assert abs(a[0] - b[0]) > 0.05  # frequent overlaps: different designs, different estimates
    single = simulate_sccs(400, 30, [step_effect(5, 2.0)], exposure_prob=0.8, seed=5)
    a = SCCS(risk_windows=[[0, 5]], exposure_coding="starts").fit(single).coef_
    b = SCCS(risk_windows=[[0, 5]], exposure_coding="exposed").fit(single).coef_
    np.testing.assert_allclose(a, b, rtol=1e-10)
    with pytest.raises(PathwaysInputError, match="exposure_coding"):
        SCCS(exposure_coding="ever").fit(single)


@pytest.mark.parametrize("coding", ["starts", "exposed"])
def test_estimand_of_observed_counts_is_the_fit(coding):
    """The projection of the observed counts is the maximum-likelihood estimate itself."""
    data = simulate_sccs(300, 25, [step_effect(4, 2.0), np.zeros(5)], exposures_per_case="multiple",
                         exposure_rate=1.5, censoring_prob=0.3, censoring_scale=5, seed=8)
    fit = SCCS(risk_windows=[[0, 4]], exposure_coding=coding, tol=1e-12).fit(data)
    est = sccs_estimand(data, data.label_matrix(), [[0, 4]], exposure_coding=coding)
    np.testing.assert_allclose(est["log_ri"].to_numpy(), fit.coef_, atol=1e-8)
    np.testing.assert_allclose(est["expected_outcomes"].to_numpy(), fit.results_["n_outcomes"].to_numpy())


def test_estimand_of_an_additive_intensity_by_hand(overlapping):
    """Exposed coding: the ratio of expected counts per exposed bucket to those per reference bucket."""
    one = overlapping.subset([0])
    rate = np.array([[1.0, 2.0, 3.0, 3.0, 2.0, 1.0, 1.0, 1.0]])  # 1 + #active windows: overlaps add
    est = sccs_estimand(one, rate, [[0, 2]], exposure_coding="exposed")
    assert est["ri"].iloc[0] == pytest.approx((2 + 3 + 3 + 2) / 4 / 1.0)
    assert est["expected_outcomes"].iloc[0] == pytest.approx(10.0)
    # starts coding: exp(b x) with x = 0,1,2,2,1,0,0,0 cannot fit 1,2,3,3,2,1,1,1 exactly: a projection in between
    ri = sccs_estimand(one, rate, [[0, 2]], exposure_coding="starts")["ri"].iloc[0]
    assert 1.5 < ri < 2.5 and ri ** 2 < 3.0 + 1e-9


def test_estimand_bad_inputs(overlapping):
    with pytest.raises(PathwaysInputError, match="shape"):
        sccs_estimand(overlapping, np.ones((2, 7)))
    with pytest.raises(PathwaysInputError, match="finite and >= 0"):
        sccs_estimand(overlapping, -np.ones((2, 8)))
    with pytest.raises(PathwaysInputError, match="buckets >= censoring"):
        sccs_estimand(overlapping, np.ones((2, 8)))

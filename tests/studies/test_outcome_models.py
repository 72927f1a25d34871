"""Cox, Kaplan-Meier and Poisson agree with lifelines and closed forms."""
import warnings

import numpy as np
import pandas as pd
import pytest

from pathways.errors import PathwaysInputError
from pathways.studies.outcome_models import cox_fit, kaplan_meier, poisson_rate_ratio

lifelines = pytest.importorskip("lifelines")


def _fixture(seed: int = 0, n: int = 240, ties: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 2, n).astype(float), rng.normal(size=n)
    t = rng.exponential(1 / np.exp(0.6 * a + 0.3 * b))
    return pd.DataFrame({"T": np.round(t * 4) + 1 if ties else t, "E": (rng.random(n) < 0.7).astype(int), "a": a,
                         "b": b, "w": rng.uniform(0.5, 2.0, n), "s": rng.integers(0, 4, n)})


def _lifelines(df: pd.DataFrame, strata: bool, weights: bool, robust: bool):
    cols = ["T", "E", "a", "b"] + (["w"] if weights else []) + (["s"] if strata else [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines warns about non-integer weights without robust=True
        return lifelines.CoxPHFitter(strata=["s"] if strata else None).fit(
            df[cols], "T", "E", weights_col="w" if weights else None, robust=robust)


@pytest.mark.parametrize("strata", [False, True])
@pytest.mark.parametrize("weights", [False, True])
def test_cox_matches_lifelines_with_ties(strata, weights):
    df = _fixture()
    assert df.duplicated("T").any()  # the fixture has tied event times: Efron's correction is exercised
    ref = _lifelines(df, strata, weights, robust=False)
    fit = cox_fit(df["T"], df["E"], df[["a", "b"]].to_numpy(), weight=df["w"] if weights else None,
                  strata=df["s"] if strata else None, robust=False)
    np.testing.assert_allclose(fit.coef, ref.params_.to_numpy(), atol=1e-4)
    np.testing.assert_allclose(fit.se, ref.standard_errors_.to_numpy(), atol=1e-4)
    assert fit.log_likelihood == pytest.approx(ref.log_likelihood_, abs=1e-4)


@pytest.mark.parametrize("strata", [False, True])
def test_cox_robust_variance_matches_lifelines(strata):
    # lifelines' score residuals ignore ties (its own note), so the sandwich is compared on distinct times.
    df = _fixture(1, ties=False)
    ref = _lifelines(df, strata, weights=True, robust=True)
    fit = cox_fit(df["T"], df["E"], df[["a", "b"]].to_numpy(), weight=df["w"], strata=df["s"] if strata else None)
    assert fit.robust
    np.testing.assert_allclose(fit.coef, ref.params_.to_numpy(), atol=1e-4)
    np.testing.assert_allclose(fit.se, ref.standard_errors_.to_numpy(), atol=1e-4)


def test_cox_summary_and_input_errors():
    df = _fixture(2)
    table = cox_fit(df["T"], df["E"], df["a"]).summary(["a"])
    assert table.loc["a", "ci_low"] < table.loc["a", "hr"] < table.loc["a", "ci_high"]
    with pytest.raises(PathwaysInputError, match="time"):
        cox_fit(-df["T"], df["E"], df["a"])
    with pytest.raises(PathwaysInputError, match="no event"):
        cox_fit(df["T"], np.zeros(len(df)), df["a"])
    with pytest.raises(PathwaysInputError, match="weight"):
        cox_fit(df["T"], df["E"], df["a"], weight=np.zeros(len(df)))


def test_kaplan_meier_matches_lifelines():
    df = _fixture(3)
    ours = kaplan_meier(df["T"], df["E"])
    ref = lifelines.KaplanMeierFitter().fit(df["T"], df["E"])
    surv = ref.survival_function_.iloc[:, 0]
    np.testing.assert_allclose(ours["survival"], surv.loc[ours["time"]].to_numpy(), atol=1e-10)
    ci = ref.confidence_interval_.loc[ours["time"]].to_numpy()
    np.testing.assert_allclose(ours[["ci_low", "ci_high"]].to_numpy(), ci, atol=1e-6)


def test_poisson_rate_ratio_closed_form():
    events, pt, treated = np.array([3, 2, 4, 1]), np.array([10., 20., 30., 40.]), np.array([1, 1, 0, 0])
    r = poisson_rate_ratio(events, pt, treated)
    assert r["rate_ratio"] == pytest.approx((5 / 30) / (5 / 70))
    assert r["se_log"] == pytest.approx(np.sqrt(1 / 5 + 1 / 5))
    assert np.isnan(poisson_rate_ratio(np.array([0, 2]), np.array([1., 1.]), np.array([1, 0]))["rate_ratio"])

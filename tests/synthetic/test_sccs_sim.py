"""Vectorised SCCS simulator: layout, censoring, reproducibility and the outcome law."""
import numpy as np
import pytest

from pathways.errors import PathwaysInputError
from pathways.synthetic.sccs import bell_effect, simulate_sccs, step_effect


def test_layout_and_reproducibility():
    truth = [step_effect(4, 2.0, 0, 2), np.zeros(5)]
    a = simulate_sccs(500, 30, truth, exposure_prob=[0.5, 1.0], censoring_prob=0.3, censoring_scale=5, seed=7)
    b = simulate_sccs(500, 30, truth, exposure_prob=[0.5, 1.0], censoring_prob=0.3, censoring_scale=5, seed=7)
    np.testing.assert_array_equal(a.outcome_bucket, b.outcome_bucket)
    np.testing.assert_array_equal(a.exposure_bucket, b.exposure_bucket)
    assert a.n_cases == 500 and list(a.outcomes_per_case()) == [1] * 500
    # one start at most per drug, inside the observed window; every case starts drug 1
    assert np.all(a.exposure_bucket < a.censoring[a.exposure_case])
    assert np.bincount(a.exposure_case[a.exposure_feature == 1], minlength=500).tolist() == [1] * 500
    assert 0.4 < np.mean(np.bincount(a.exposure_case[a.exposure_feature == 0], minlength=500)) < 0.6
    assert np.all(a.outcome_bucket < a.censoring) and (a.censoring < 30).mean() > 0.2
    np.testing.assert_array_equal(a.info["coeffs"], np.stack(truth))


def test_outcome_law_follows_the_relative_incidence():
    # every case exposed at bucket 0; RI 4 on buckets 0-4 of 20 -> P(outcome in 0-4) = 5*4 / (5*4 + 15)
    data = simulate_sccs(20000, 20, [step_effect(4, 4.0)], exposure_prob=1.0, seed=1)
    start = data.exposure_bucket  # uniform start; count outcomes within the 5 buckets after it
    lag = data.outcome_bucket - start
    inside = (lag >= 0) & (lag <= 4)
    width = np.minimum(5, 20 - start)  # risk buckets actually observed
    expected = np.mean(width * 4.0 / (width * 4.0 + (20 - width)))
    assert inside.mean() == pytest.approx(expected, abs=0.01)


def test_multiple_exposures_and_drift():
    data = simulate_sccs(300, 40, [bell_effect(5, 2.0, 2, 1)], exposures_per_case="multiple", exposure_rate=2.0,
                         time_drift=lambda t: np.where(t < 20, 1.0, 0.0), seed=2)
    counts = np.bincount(data.exposure_case, minlength=300)
    assert 1.7 < counts.mean() < 2.3 and counts.max() > 2
    assert np.mean(data.outcome_bucket < 20) > 0.65  # e ≈ 2.7x more likely in the first half


@pytest.mark.parametrize("kwargs, match", [
    ({"coeffs": [np.zeros(3), np.zeros(4)]}, "equal length"),
    ({"coeffs": [np.zeros(50)]}, "n_buckets"),
    ({"exposure_prob": 1.5}, "exposure_prob"),
    ({"censoring_prob": -0.1}, "censoring_prob"),
    ({"exposures_per_case": "some"}, "exposures_per_case"),
])
def test_bad_arguments(kwargs, match):
    args = {"n_cases": 10, "n_buckets": 20, "coeffs": [np.zeros(3)]} | kwargs
    with pytest.raises(PathwaysInputError, match=match):
        simulate_sccs(**args, seed=0)


# ----------------------------------------------------------------------------------------------------------------
# SCCS view of a simulated cohort with its expected outcome counts
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cohort():
    from pathways.synthetic.cohort import simulate_cohort

    return simulate_cohort(1500, seed=3, n_drugs=5, n_outcomes=2, n_strong=1, n_weak=1, frailty=0.5)


def test_cohort_sccs_data_matches_the_encoder_on_cases(cohort):
    from pathways.encode.sccs import sccs_data
    from pathways.synthetic.sccs import cohort_sccs_expected

    log, truth = cohort
    outcome = truth.drug_effects["event"].iloc[0]
    data, expected = cohort_sccs_expected(log, truth, outcome, 7.0)
    assert data.n_cases == log.n_patients and expected.shape == (log.n_patients, data.n_buckets)
    drugs = list(data.feature_names)
    ref = sccs_data(log, {d: [d] for d in drugs}, [outcome], 7.0, outcome_mode="all")
    cases = data.subset(data.outcomes_per_case() > 0)
    for name in ("censoring", "exposure_case", "exposure_bucket", "exposure_feature", "outcome_case",
                 "outcome_bucket", "outcome_count"):
        np.testing.assert_array_equal(getattr(cases, name), getattr(ref, name), err_msg=name)
    np.testing.assert_array_equal(data.case_patient[data.outcomes_per_case() > 0], ref.case_patient)
    # the observed total is a Poisson draw around the expected one
    total, observed = expected.sum(), data.outcome_count.sum()
    assert abs(observed - total) < 4 * np.sqrt(total)
    assert np.all(expected[np.arange(data.n_buckets)[None, :] >= data.censoring[:, None]] == 0)


def test_cohort_expected_counts_integrate_the_true_intensity(cohort):
    """Naive reference: the simulator's intensity summed on a fine time grid, one patient at a time."""
    from pathways.synthetic.sccs import cohort_sccs_expected

    log, truth = cohort
    outcome = truth.drug_effects["event"].iloc[0]
    steps = truth.drug_effects[truth.drug_effects["event"] == outcome]
    _, expected = cohort_sccs_expected(log, truth, outcome, 7.0)
    drug_codes = truth.index(steps["drug"].tolist())
    exposed = np.unique(log.patient[np.isin(log.code, drug_codes)])
    i = truth.index(outcome)[0]
    start, end = log.patients["start"].to_numpy(), log.patients["end"].to_numpy()
    dt = 0.002
    for p in exposed[:6]:
        n = int(np.ceil((end[p] - start[p]) / dt))
        width = np.full(n, dt)
        width[-1] = end[p] - start[p] - (n - 1) * dt  # the last cell stops at the window end
        grid = start[p] + np.arange(n) * dt + width / 2
        rate = np.ones_like(grid)
        rows = slice(log.offsets[p], log.offsets[p + 1])
        for drug, lo, hi, ri in steps[["drug", "lag_start", "lag_end", "relative_incidence"]].itertuples(index=False):
            for t_k in log.time[rows][log.code[rows] == truth.index(drug)[0]]:
                rate += (ri - 1.0) * ((grid - t_k >= lo) & (grid - t_k < hi))
        rate *= truth.baseline[i] * truth.patient_scale[p] * width
        ref = np.bincount(np.floor((grid - start[p]) / 7.0).astype(int), weights=rate,
                          minlength=expected.shape[1])
        np.testing.assert_allclose(expected[p], ref, rtol=1e-3, atol=1e-5)


def test_cohort_expected_rejects_a_foreign_truth(cohort):
    from pathways.synthetic.cohort import simulate_cohort
    from pathways.synthetic.sccs import cohort_sccs_expected

    log, _ = cohort
    _, other = simulate_cohort(20, seed=0, n_drugs=5, n_outcomes=2, n_strong=1, n_weak=1)
    with pytest.raises(PathwaysInputError, match="truth"):
        cohort_sccs_expected(log, other, other.outcomes[0], 7.0)

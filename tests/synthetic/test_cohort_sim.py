import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pathways.data.hierarchy import is_atc, is_ccam, is_icd10, rollup_log
from pathways.errors import PathwaysInputError
from pathways.models.hawkes import HawkesExpKernel
from pathways.synthetic import Truth, simulate_cohort
from pathways.synthetic.cohort import DRUGS, MISUSE_PRONE


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(3000, seed=11)


# ---------------------------------------------------------------------------------------------------------------
# helpers: independent expectations computed from the truth only
# ---------------------------------------------------------------------------------------------------------------
def _mean_intensity_counts(truth: Truth, horizons: np.ndarray, dt: float = 0.5) -> np.ndarray:
    """Expected count of every code over [0, T] for an empty-started process, summed over patients with window
    lengths ``horizons``: Volterra equation m(t) = mu + sum_j a_ij beta_ij int e^{-beta (t-s)} m_j(s) ds solved on a
    grid (exact exponential update), exponential part only (outcome steps are checked separately)."""
    mu, adj, beta = truth.baseline, truth.kernel_adjacency[0], truth.decays
    n_steps = int(np.ceil(horizons.max() / dt)) + 1
    decay = np.exp(-beta * dt)
    y = np.zeros_like(adj)
    cum = np.zeros((n_steps + 1, mu.size))
    m = mu.copy()
    for k in range(n_steps):
        cum[k + 1] = cum[k] + m * dt
        y = y * decay + (1.0 - decay) * m[None, :]
        m = mu + (adj * y).sum(axis=1)
    grid = np.arange(n_steps + 1) * dt
    return np.array([np.interp(horizons, grid, cum[:, i]).sum() for i in range(mu.size)])


def _exposure_state(log, truth, outcome):
    """Piecewise-constant number of active windows of every planted step on ``outcome`` (sweep line, vectorised).

    Returns the steps and ``rate(active)``: outcome rate in the cells where exactly ``active[s]`` windows of step s
    are open (the intensity there is ``mu (1 + sum_s (RI_s - 1) active[s])``).
    """
    steps = truth.drug_effects[truth.drug_effects["event"] == outcome].reset_index(drop=True)
    start = log.patients["start"].to_numpy()
    stop = log.patients["end"].to_numpy()
    n, n_steps = log.n_patients, len(steps)
    # window starts/ends of every patient as neutral boundaries, then +1 / -1 at each step window's edges
    pats, times, deltas = [np.arange(n), np.arange(n)], [start, stop], [np.zeros((2 * n, n_steps))]
    for s, (drug, lo, hi) in enumerate(steps[["drug", "lag_start", "lag_end"]].itertuples(index=False)):
        sel = log.code == log.vocab.encode([drug])[0]
        p, t = log.patient[sel], log.time[sel]
        a, b = t + lo, np.minimum(t + hi, stop[p])
        ok = a < b
        d = np.zeros((2 * int(ok.sum()), n_steps))
        d[: ok.sum(), s], d[ok.sum():, s] = 1.0, -1.0
        pats += [p[ok], p[ok]]
        times += [a[ok], b[ok]]
        deltas.append(d)
    pats, times, deltas = np.concatenate(pats), np.concatenate(times), np.vstack(deltas)
    key = pats * 1e5 + (times - start.min())
    order = np.argsort(key, kind="stable")
    key, pats, times, state = key[order], pats[order], times[order], np.cumsum(deltas[order], axis=0)
    same = pats[1:] == pats[:-1]
    dur = np.where(same, np.diff(times), 0.0)
    ev = log.code == log.vocab.encode([outcome])[0]
    pos = np.searchsorted(key, log.patient[ev] * 1e5 + (log.time[ev] - start.min()), side="right") - 1
    seg_state, ev_state = np.rint(state[:-1]).astype(int), np.rint(state[pos]).astype(int)

    def rate(active: tuple[int, ...]) -> tuple[float, int]:
        """Outcome rate per day while exactly ``active`` windows of each step are open, and the event count."""
        n_events = int((ev_state == active).all(axis=1).sum())
        return n_events / dur[(seg_state == active).all(axis=1)].sum(), n_events

    return steps, rate


# ---------------------------------------------------------------------------------------------------------------
# structure
# ---------------------------------------------------------------------------------------------------------------
def test_log_and_truth_are_aligned(cohort):
    log, truth = cohort
    assert log.n_patients == 3000 and log.n_events > 100_000
    np.testing.assert_array_equal(truth.codes, log.vocab.codes)
    np.testing.assert_array_equal(np.asarray(log.category, dtype=object), truth.categories[log.code])
    assert log.time_unit == "days" and str(log.origin.date()) == "1970-01-01"
    assert truth.adjacency.shape == (log.n_codes, log.n_codes)
    assert truth.anomalous.shape == (log.n_patients,) and not truth.anomalous.any()
    assert max(abs(np.linalg.eigvals(truth.kernel_adjacency.sum(axis=0)))) < 1


def test_codes_are_real_shaped_and_categorised(cohort):
    _, truth = cohort
    cat = truth.categories
    assert is_atc(truth.codes[cat == "drug"]).all()
    assert is_icd10(truth.codes[cat == "diagnosis"]).all()
    assert is_ccam(truth.codes[cat == "act"]).all()
    assert set(cat) == {"drug", "diagnosis", "act", "stay", "death"}


def test_codes_exist_in_real_nomenclatures(shared_dir):
    noms = shared_dir / "data" / "snds" / "nomenclatures"
    atc = set(pd.read_csv(noms / "OPENMEDIC" / "openmedic_ATC5.csv", sep=";", dtype=str).iloc[:, 0])
    icd = set(pd.read_csv(noms / "ORAVAL" / "IR_CIM_V.csv", sep=";", dtype=str)["CIM_COD"])
    ccam = set(pd.read_csv(noms / "ATIH" / "IR_CCAM_V63.csv", sep=";", dtype=str).iloc[:, 0])
    _, truth = simulate_cohort(10, seed=0, n_drugs=40, n_diagnoses=24, n_acts=12, n_outcomes=12)
    for category, real in (("drug", atc), ("diagnosis", icd), ("act", ccam)):
        ours = set(truth.codes[truth.categories == category])
        assert ours <= real, sorted(ours - real)


def test_events_columns_windows_and_deaths(cohort):
    log, truth = cohort
    pats = log.patients
    assert (log.time >= pats["start"].to_numpy()[log.patient]).all()
    assert (log.time <= pats["end"].to_numpy()[log.patient]).all()
    is_drug = truth.categories[log.code] == "drug"
    assert (log.extras["prescriber"][is_drug] >= 0).all() and (log.extras["prescriber"][~is_drug] == -1).all()
    assert (log.value[is_drug] >= 1).all() and np.isnan(log.value[~is_drug]).all()
    is_stay = truth.categories[log.code] == "stay"
    assert (log.end[is_stay] > log.time[is_stay]).all() and np.isnan(log.end[~is_stay]).all()
    assert (log.end[is_stay] <= pats["end"].to_numpy()[log.patient[is_stay]]).all()
    died = pats["death"].notna().to_numpy()
    death_events = log.code == truth.index("DEATH")[0]
    assert 0 < died.sum() < 0.5 * log.n_patients
    np.testing.assert_array_equal(np.sort(log.patient[death_events]), np.flatnonzero(died))
    np.testing.assert_allclose(log.time[death_events], pats["end"].to_numpy()[log.patient[death_events]])
    age = (pats["start"] - pats["birth"]) / 365.25
    assert age.between(17.9, 95.1).all() and set(pats["sex"].astype(str)) == {"F", "M"}
    follow = (pats["end"] - pats["start"]) / 365.25
    assert follow.max() <= 5.0 + 1e-9 and (follow[~died] >= 1.0 - 1e-9).all()


def test_deterministic_for_a_seed():
    a, ta = simulate_cohort(150, seed=5, anomaly_fraction=0.2, frailty=0.3)
    b, tb = simulate_cohort(150, seed=5, anomaly_fraction=0.2, frailty=0.3)
    c, _ = simulate_cohort(150, seed=6)
    for name in ("patient", "time", "code", "end", "value"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.extras["prescriber"], b.extras["prescriber"])
    pd.testing.assert_frame_equal(a.patients, b.patients)
    pd.testing.assert_frame_equal(ta.drug_effects, tb.drug_effects)
    np.testing.assert_array_equal(ta.anomaly_kind, tb.anomaly_kind)
    assert a.n_events != c.n_events or not np.array_equal(a.time, c.time)


def test_truth_does_not_depend_on_cohort_size():
    _, small = simulate_cohort(50, seed=8)
    _, large = simulate_cohort(400, seed=8)
    np.testing.assert_array_equal(small.baseline, large.baseline)
    np.testing.assert_array_equal(small.adjacency, large.adjacency)
    pd.testing.assert_frame_equal(small.drug_effects, large.drug_effects)


def test_truth_tables_and_helpers(cohort):
    _, truth = cohort
    eff = truth.drug_effects
    assert list(eff.columns) == ["drug", "event", "lag_start", "lag_end", "relative_incidence", "strength"]
    assert set(eff["drug"]) == set(truth.risky_drugs) and set(eff["event"]) <= set(truth.outcomes)
    assert (eff.loc[eff["strength"] == "strong", "relative_incidence"].max() >= 2.5)
    assert eff.loc[eff["strength"] == "weak", "relative_incidence"].between(1.3, 1.6).all()
    assert not set(truth.null_drugs) & set(truth.risky_drugs)
    pairs = truth.signal_pairs
    assert len(pairs) == len(truth.null_drugs + truth.risky_drugs) * len(truth.outcomes)
    assert (pairs["strength"] == "null").sum() == len(pairs) - eff.groupby(["drug", "event"]).ngroups
    row = eff.iloc[0]
    curve = truth.relative_incidence(row["drug"], row["event"], [row["lag_start"], row["lag_end"] + 1000])
    np.testing.assert_allclose(curve, [row["relative_incidence"], 1.0])
    i, j = truth.index([row["event"], row["drug"]])
    steps = eff[(eff["drug"] == row["drug"]) & (eff["event"] == row["event"])]
    expected = truth.baseline[i] * ((steps["relative_incidence"] - 1) * (steps["lag_end"] - steps["lag_start"])).sum()
    assert truth.adjacency[i, j] == pytest.approx(expected)
    factors = truth.factors()
    assert list(factors.columns[:7]) == ["source", "target", "lag_days", "effect", "ci_low", "ci_high", "method"]
    assert (factors["method"] == "truth_ri").sum() == len(eff)
    with pytest.raises(PathwaysInputError, match="not in this cohort"):
        truth.index("ZZZ99")


# ---------------------------------------------------------------------------------------------------------------
# statistics: empirical rates and effects vs truth
# ---------------------------------------------------------------------------------------------------------------
def test_empirical_counts_match_hawkes_truth(cohort):
    log, truth = cohort
    horizons = (log.patients["end"] - log.patients["start"]).to_numpy()
    expected = _mean_intensity_counts(truth, horizons)
    observed = np.bincount(log.code, minlength=log.n_codes).astype(float)
    hawkes = np.isin(truth.categories, ["drug", "diagnosis", "act", "stay"]) & ~np.isin(truth.codes, truth.outcomes)
    # clustered counts are over-dispersed: allow 12 % per code, 3 % on the total
    np.testing.assert_allclose(observed[hawkes], expected[hawkes], rtol=0.12)
    assert observed[hawkes].sum() == pytest.approx(expected[hawkes].sum(), rel=0.03)


def test_excitation_structure_matches_truth():
    # counts above depend on the adjacency only through the rates: check the excitation pattern itself by fitting a
    # Hawkes model (likelihood tested against a naive reference in tests/models) to the Hawkes codes of a draw.
    # One decay of 30 days for kernels whose true decays span 1 to 90 days: the support is exact, the weights biased.
    log, truth = simulate_cohort(400, seed=11)
    hawkes = np.isin(truth.categories, ["drug", "diagnosis", "act", "stay"]) & ~np.isin(truth.codes, truth.outcomes)
    model = HawkesExpKernel(decay=1 / 30).fit(log.select_codes(list(truth.codes[hawkes])))
    idx = truth.index(list(model.codes_))
    keep = hawkes[idx]
    fitted = model.adjacency_[np.ix_(keep, keep)]
    true = truth.kernel_adjacency[0][np.ix_(idx, idx)][np.ix_(keep, keep)]
    assert model.converged_ and keep.sum() == hawkes.sum() and (true > 0).sum() > 40
    assert roc_auc_score((true > 0).ravel(), fitted.ravel()) >= 0.99
    assert np.linalg.norm(fitted - true) / np.linalg.norm(true) < 0.35
    assert fitted.sum() == pytest.approx(true.sum(), rel=0.3)


def test_outcome_counts_match_baseline_plus_steps_given_exposures(cohort):
    log, truth = cohort
    stop = log.patients["end"].to_numpy()
    person_time = (log.patients["end"] - log.patients["start"]).sum()
    for outcome in truth.outcomes:
        i = truth.index(outcome)[0]
        expected = truth.baseline[i] * person_time
        for drug, lo, hi, ri in truth.drug_effects.loc[truth.drug_effects["event"] == outcome,
                                                       ["drug", "lag_start", "lag_end", "relative_incidence"]
                                                       ].itertuples(index=False):
            sel = log.code == truth.index(drug)[0]
            t, end = log.time[sel], stop[log.patient[sel]]
            width = np.clip(np.minimum(t + hi, end) - np.minimum(t + lo, end), 0, None)
            expected += truth.baseline[i] * (ri - 1) * width.sum()
        observed = (log.code == i).sum()
        assert abs(observed - expected) < 4.5 * np.sqrt(expected), (outcome, observed, expected)  # Poisson given exposures


def test_relative_incidence_of_strong_effects_recovered(cohort):
    log, truth = cohort
    strong = truth.drug_effects[truth.drug_effects["strength"] == "strong"]
    checked = 0
    for outcome in strong["event"].unique():
        steps, rate = _exposure_state(log, truth, outcome)
        base_rate, _ = rate((0,) * len(steps))
        assert base_rate == pytest.approx(truth.baseline[truth.index(outcome)[0]], rel=0.15)
        for s, row in steps.iterrows():
            if row["strength"] != "strong" or row["lag_start"] > 0:
                continue
            ri_hat = rate(tuple(int(k == s) for k in range(len(steps))))[0] / base_rate
            assert ri_hat == pytest.approx(row["relative_incidence"], rel=0.3), (row["drug"], outcome)
            checked += 1
    assert checked == strong["drug"].nunique()


@pytest.mark.slow
def test_weak_effects_recovered_on_a_large_draw():
    log, truth = simulate_cohort(40000, seed=3)
    for outcome in truth.drug_effects["event"].unique():
        steps, rate = _exposure_state(log, truth, outcome)
        base_rate, _ = rate((0,) * len(steps))
        for s, row in steps.iterrows():
            ri_hat = rate(tuple(int(k == s) for k in range(len(steps))))[0] / base_rate
            tol = 0.25 if row["strength"] == "weak" else 0.15
            assert ri_hat == pytest.approx(row["relative_incidence"], rel=tol), (row["drug"], outcome, ri_hat)


def test_sumexp_kernel_and_frailty():
    log, truth = simulate_cohort(800, seed=2, kernel="sumexp", frailty=0.5)
    assert truth.kernel == "sumexp" and truth.kernel_adjacency.shape[0] == 3 and truth.decays.shape == (3,)
    np.testing.assert_allclose(truth.patient_scale.mean(), 1.0, atol=0.1)
    np.testing.assert_allclose(truth.patient_scale.var(), 0.5, rtol=0.3)
    # frail patients have more events per day of follow-up
    days = (log.patients["end"] - log.patients["start"]).to_numpy()
    rate = np.diff(log.offsets) / days
    assert np.corrcoef(truth.patient_scale, rate)[0, 1] > 0.3
    np.testing.assert_allclose(truth.baseline_matrix()[:, 0], truth.patient_scale * truth.baseline[0])


def test_anomalous_patients_have_abnormal_dispensations():
    log, truth = simulate_cohort(1500, seed=4, anomaly_fraction=0.2, anomaly_strength=10.0)
    kinds = pd.Series(truth.anomaly_kind)
    assert set(kinds.unique()) == {"", "frequency", "prescribers"}
    assert 0.15 < truth.anomalous.mean() < 0.25
    assert set(truth.anomaly_codes) <= MISUSE_PRONE and truth.anomaly_codes
    days = (log.patients["end"] - log.patients["start"]).to_numpy()
    misuse = np.isin(log.code, truth.index(truth.anomaly_codes))
    rate = np.bincount(log.patient[misuse], minlength=log.n_patients) / days
    assert rate[kinds == "frequency"].mean() > 3 * rate[kinds == ""].mean()
    drug = truth.categories[log.code] == "drug"
    frame = pd.DataFrame({"p": log.patient[drug], "who": log.extras["prescriber"][drug]})
    distinct = frame.groupby("p")["who"].nunique().reindex(range(log.n_patients), fill_value=0).to_numpy()
    per_event = distinct / np.maximum(np.bincount(frame["p"], minlength=log.n_patients), 1)
    assert np.median(distinct[kinds == "prescribers"]) > 2 * np.median(distinct[kinds == ""])
    assert per_event[kinds == "prescribers"].mean() > per_event[kinds == ""].mean()


def test_no_deaths_without_mortality_and_rate_scale():
    low, _ = simulate_cohort(300, seed=1, mortality=0.0)
    high, _ = simulate_cohort(300, seed=1, mortality=0.0, rate_scale=2.0)
    assert low.patients["death"].isna().all()
    assert 1.6 < high.n_events / low.n_events < 2.4


def test_cohort_rolls_up_with_hierarchy():
    log, truth = simulate_cohort(100, seed=0)
    out = rollup_log(log, "atc", 1)
    drugs = truth.categories[log.code] == "drug"
    assert set(out.code_strings()[drugs]) <= set("ABCDGHJLMNPRSV")
    np.testing.assert_array_equal(out.code_strings()[~drugs], log.code_strings()[~drugs])


@pytest.mark.parametrize("kwargs,match", [
    ({"n_patients": 0}, "n_patients"),
    ({"n_patients": 2.5}, "n_patients"),
    ({"n_drugs": len(DRUGS) + 1}, "n_drugs"),
    ({"n_outcomes": 0}, "n_outcomes"),
    ({"n_strong": 15, "n_weak": 10}, "n_strong"),
    ({"kernel": "power"}, "kernel"),
    ({"max_branching": 1.0}, "max_branching"),
    ({"rate_scale": 0.0}, "rate_scale"),
    ({"follow_up_years": (3.0, 1.0)}, "follow_up_years"),
    ({"frailty": -1.0}, "frailty"),
    ({"anomaly_fraction": 1.5}, "anomaly_fraction"),
    ({"anomaly_strength": 0.5}, "anomaly_strength"),
    ({"anomaly_kinds": ("teleport",)}, "anomaly_kinds"),
    ({"n_drugs": 2, "n_strong": 1, "n_weak": 0, "anomaly_fraction": 0.1}, "misuse-prone"),
])
def test_bad_parameters_raise(kwargs, match):
    kwargs = {"n_patients": 10, **kwargs}
    with pytest.raises(PathwaysInputError, match=match):
        simulate_cohort(**kwargs)

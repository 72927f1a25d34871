"""Type I error over repeated looks, and the calendar / co-medication adjustments of the sequential SCRI test."""
import numpy as np
import pandas as pd
import pytest

from pathways.data.eventlog import EventLog
from pathways.signals.detect import StudyDesign
from pathways.signals.sequential import binomial_spending_thresholds
from pathways.signals.surveillance import SurveillancePlan, scri_counts, surveil

AT = float((pd.Timestamp("2020-01-01") - pd.Timestamp("1970-01-01")).days)
T0 = float((pd.Timestamp("2016-01-01") - pd.Timestamp("1970-01-01")).days)


def _log(drug_patient, drug_time, drug_code, out_patient, out_time, n) -> EventLog:
    """EventLog of drug dispensations and outcome events (code "K922"), everybody observed 2015-2020."""
    patient = np.concatenate([drug_patient, out_patient])
    days = np.concatenate([drug_time, out_time])
    events = pd.DataFrame({"patient_id": pd.Series(patient).map("P{:05d}".format),
                           "time": pd.Timestamp("1970-01-01") + pd.to_timedelta(days, unit="D"),
                           "code": np.concatenate([drug_code, np.full(out_patient.size, "K922")]),
                           "category": ["drug"] * len(drug_code) + ["outcome"] * out_patient.size})
    patients = pd.DataFrame({"patient_id": [f"P{i:05d}" for i in range(n)],
                             "start": pd.Timestamp("2015-01-01"), "end": pd.Timestamp("2020-01-01")})
    return EventLog.from_pandas(events, patients)


def _poisson_events(gen, patients, lo, hi, rate):
    """Outcome events at ``rate`` per day on ``[lo, hi)`` for each row (vectorised)."""
    n = gen.poisson(rate * (hi - lo))
    return np.repeat(patients, n), np.repeat(lo, n) + gen.random(n.sum()) * np.repeat(hi - lo, n)


def test_spending_keeps_type_one_error_over_twelve_looks_with_unequal_probabilities():
    # 20 000 null pairs, 12 looks, cases whose risk-window probability drifts from 0.3 to 0.6 (calendar effect)
    gen = np.random.default_rng(3)
    steps = np.full(12, 25)
    p_step = np.linspace(0.3, 0.6, 12)
    table = binomial_spending_thresholds(np.cumsum(steps), 200, 1.0, expected=np.cumsum(steps * p_step))
    k = np.cumsum(gen.binomial(steps, p_step, size=(20_000, 12)), axis=1)
    ever = (k >= table["threshold"].to_numpy()).any(axis=1).mean()
    assert ever <= 0.05 + 0.005 and ever > 0.02  # exact-size budget: neither inflated nor useless
    assert table["alpha_spent"].iloc[-1] <= 0.05 * 300 / 200 + 1e-12


def test_null_cohort_false_alerts_over_twelve_looks():
    from pathways.synthetic.cohort import simulate_cohort
    log, truth = simulate_cohort(1500, seed=7, n_strong=0, n_weak=0)
    looks = surveil(log, StudyDesign(outcomes=truth.outcomes),
                    SurveillancePlan(start="2015-07-01", n_looks=12, methods=("maxsprt",)))
    ever = looks.groupby(["exposure", "outcome"])["alert_maxsprt"].any()
    assert ever.size == 120 and ever.mean() <= 0.05


def test_calendar_adjustment_removes_a_step_in_background_incidence():
    # one incident dispensation per patient, no drug effect; the outcome's incidence triples on 2016-01-01
    gen = np.random.default_rng(0)
    n = 6000
    t = T0 + gen.uniform(-90.0, 90.0, n)  # episodes around the step: control windows before, risk after
    ids = np.arange(n)
    start = float((pd.Timestamp("2015-01-01") - pd.Timestamp("1970-01-01")).days)
    before = _poisson_events(gen, ids, np.full(n, start), np.full(n, T0), 0.002)
    after = _poisson_events(gen, ids, np.full(n, T0), np.full(n, AT), 0.006)
    log = _log(ids, t, np.full(n, "N02BE01"), np.concatenate([before[0], after[0]]),
               np.concatenate([before[1], after[1]]), n)
    raw = scri_counts(log, AT, SurveillancePlan(calendar_days=0), ["N02BE01"], ["K922"]).iloc[0]
    adjusted = scri_counts(log, AT, SurveillancePlan(calendar_days=30), ["N02BE01"], ["K922"]).iloc[0]
    assert raw["n_risk"] / raw["expected_risk"] > 1.15  # the later (risk) window gets the step: biased
    assert adjusted["n_risk"] / adjusted["expected_risk"] == pytest.approx(1.0, abs=0.06)


def test_comedication_adjustment_gives_a_bystander_its_null_expectation():
    # drug A (RI 4 over 60 days) is started with drug B in 70 % of B's episodes; B has no effect
    gen = np.random.default_rng(1)
    n = 6000
    ids = np.arange(n)
    t = gen.uniform(T0, AT - 400.0, n)
    with_a = gen.random(n) < 0.7
    a_alone = t + 200.0  # A's own later episodes, so that its effect is estimable
    drug_p = np.concatenate([ids, ids[with_a], ids])
    drug_t = np.concatenate([t, t[with_a], a_alone])
    drug_c = np.concatenate([np.full(n, "N02BE01"), np.full(with_a.sum(), "B01AA03"), np.full(n, "B01AA03")])
    order = np.lexsort((drug_t, drug_p))
    base = _poisson_events(gen, ids, np.full(n, T0 - 365.0), np.full(n, AT), 0.003)
    a_starts = np.concatenate([t[with_a], a_alone]), np.concatenate([ids[with_a], ids])
    excess = _poisson_events(gen, a_starts[1], a_starts[0], a_starts[0] + 60.0, 0.003 * 3.0)
    log = _log(drug_p[order], drug_t[order], drug_c[order], np.concatenate([base[0], excess[0]]),
               np.concatenate([base[1], excess[1]]), n)
    plain = scri_counts(log, AT, SurveillancePlan(calendar_days=0, comedication=False), None, ["K922"])
    adjusted = scri_counts(log, AT, SurveillancePlan(calendar_days=0), None, ["K922"])
    ratio = lambda t: t.set_index("exposure").eval("n_risk / expected_risk")
    assert ratio(plain)["N02BE01"] > 1.3  # the bystander inherits A's excess (1.5 expected)
    assert ratio(adjusted)["N02BE01"] == pytest.approx(1.0, abs=0.12)
    # A keeps its signal, diluted: the first stage credits B with part of it (1.59 unadjusted, 1.33 here)
    assert ratio(adjusted)["B01AA03"] > 1.2


def test_detect_signals_with_the_quarterly_surveillance_group(tmp_path):
    from hydra import compose, initialize_config_dir

    from pathways import pipelines
    from pathways.pipelines.cli import CONFIG_DIR
    from pathways.disclosure import unclassified
    from pathways.pipelines.schema import validate_config
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("detect_signals", overrides=["surveillance=quarterly", "surveillance.methods=[maxsprt]",
                                                   "surveillance.n_looks=4", "data.n_patients=150", "+data.n_drugs=8",
                                                   "report.figures=false", "report.min_cell_count=10"])
    validate_config(cfg, "detect_signals")  # the group is a known key of the script's config
    assert cfg.surveillance.calendar_days == 30.0 and cfg.surveillance.comedication
    result = pipelines.detect_signals(cfg, tmp_path)
    looks = pd.read_parquet(result.files["surveillance_looks"])
    assert sorted(looks["look"].unique()) == [1, 2, 3, 4] and "expected_risk" in looks.columns
    hidden = looks["n_cases"].isna()  # fewer than 10 cases: the null expectation would give the count away
    assert hidden.any() and looks.loc[hidden, "expected_risk"].isna().all()
    assert unclassified(looks, "surveillance_looks") == []
    assert result.files["surveillance_alerts"].exists()

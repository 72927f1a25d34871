import numpy as np
import pytest

from pathways.errors import PathwaysInputError
from pathways.signals import SIGNAL_COLUMNS, StudyDesign, detect, negative_control_pairs
from pathways.synthetic.cohort import simulate_cohort


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(3000, seed=4, n_drugs=6, n_outcomes=3, n_strong=2, n_weak=0)


def test_strong_planted_effects_flagged_by_sccs_and_nulls_not(cohort):
    log, truth = cohort
    table = detect(log, outcomes=truth.outcomes, methods=("SCCS", "PRR"))
    assert list(table.columns[: len(SIGNAL_COLUMNS)]) == list(SIGNAL_COLUMNS)
    sccs = table[table["method"] == "SCCS"].set_index(["exposure", "outcome"])
    risky = set(zip(truth.drug_effects["drug"], truth.drug_effects["event"]))
    for pair in risky:
        assert sccs.loc[pair, "flag"], pair
        assert sccs.loc[pair, "estimate"] > 1.3
    nulls = sccs[[p not in risky for p in sccs.index]]
    assert nulls["flag"].mean() <= 0.1
    assert set(table["method"]) == {"SCCS", "PRR"}


def test_design_object_and_negative_controls(cohort):
    log, truth = cohort
    known = list(zip(truth.drug_effects["drug"], truth.drug_effects["event"]))
    drugs = truth.codes[[c == "drug" for c in truth.categories]]
    controls = negative_control_pairs(drugs, truth.outcomes, known)
    assert not set(controls) & set(known)
    design = StudyDesign(outcomes=truth.outcomes, methods=("SCCS",), negative_controls=controls)
    table = detect(log, design)
    assert table["p_calibrated"].notna().all()
    assert "SCCS" in table.attrs["null"]


def test_bad_study_designs(cohort):
    log, truth = cohort
    with pytest.raises(PathwaysInputError, match="unknown"):
        detect(log, outcomes=truth.outcomes, methods=("XYZ",))
    with pytest.raises(PathwaysInputError, match="outcomes: none"):
        detect(log, outcomes=["NOPE"])
    drug = str(truth.codes[np.array([c == "drug" for c in truth.categories])][0])
    with pytest.raises(PathwaysInputError, match="both drugs and outcomes"):
        detect(log, outcomes=[drug], methods=("PRR",))


def test_disproportionality_counts_follow_the_right_patients():
    import pandas as pd

    from pathways import EventLog

    # only p3 takes the drug; p0 has outcome events at the same dates but is never exposed
    events = pd.DataFrame({
        "patient_id": ["p0", "p0", "p3", "p3", "p3", "p1"],
        "time": [5.0, 50.0, 1.0, 5.0, 50.0, 7.0],
        "code": ["AE1", "AE2", "DRUG", "AE1", "AE2", "AE1"],
        "category": ["diagnosis", "diagnosis", "drug", "diagnosis", "diagnosis", "diagnosis"],
    })
    patients = pd.DataFrame({"patient_id": ["p0", "p1", "p2", "p3"], "start": 0.0, "end": 100.0})
    log = EventLog.from_pandas(events, patients, time_unit="days")
    table = detect(log, outcomes=["AE1", "AE2"], methods=("PRR",), exposure_days=30, min_events=1)
    counts = table.set_index("outcome")["n_exposed_events"]
    assert counts["AE1"] == 1 and counts["AE2"] == 0  # only p3's AE1 at day 5 lies in [1, 31)


def test_sccs_recovers_isolated_ri():
    """Isolated dispensations, AE rate doubled for 60 days after each: detect's SCCS estimates RI = 2."""
    import pandas as pd

    from pathways import EventLog, Vocabulary
    from pathways.synthetic import KernelComponent, simulate_hawkes

    mu_ae, ri = 1 / 200, 2.0
    step = KernelComponent(np.array([[0.0, 0.0], [mu_ae * (ri - 1) * 60, 0.0]]), "uniform", low=0.0, high=60.0)
    n = 6000
    seq = simulate_hawkes(np.array([1 / 2000, mu_ae]), start=0.0, end=1000.0, n_sequences=n, components=[step],
                          seed=0)
    log = EventLog.from_arrays(seq.sequence_ids, seq.times, seq.marks, Vocabulary(["DRUG", "AE"]),
                               pd.DataFrame({"patient_id": np.arange(n), "start": 0.0, "end": 1000.0}),
                               category=np.where(seq.marks == 0, "drug", "diagnosis"))
    row = detect(log, outcomes=["AE"], methods=("SCCS",), outcome_mode="all", bucket_days=5,
                 risk_window=(0, 60)).iloc[0]
    assert row["ci_low"] < ri < row["ci_high"] or abs(row["estimate"] - ri) < 0.1
    assert row["flag"]


def test_sccs_estimates_its_design_consistent_truth_under_each_exposure_coding(cohort):
    """Overlapping dispensations: each coding estimates its own projection of the simulator's additive truth."""
    from pathways.models.sccs import sccs_estimand
    from pathways.synthetic.sccs import cohort_sccs_expected

    log, truth = cohort
    drug, outcome = truth.drug_effects[["drug", "event"]].iloc[0]
    design = StudyDesign(outcomes=[outcome], methods=("SCCS",), outcome_mode="all")
    data, expected = cohort_sccs_expected(log, truth, outcome, design.bucket_days)
    estimates = {}
    for coding in ("exposed", "starts"):
        target = sccs_estimand(data, expected, design.sccs_windows(), exposure_coding=coding)
        true_log_ri = target.set_index("feature").loc[drug, "log_ri"]
        design.exposure_coding = coding
        row = detect(log, design).set_index("exposure").loc[drug]
        assert abs(np.log(row["estimate"]) - true_log_ri) < 3 * row["se_log"], coding
        estimates[coding] = (row["estimate"], np.exp(true_log_ri))
    # the risk-period ratio counts overlapping windows once: above the per-dispensation multiplicative effect
    assert estimates["exposed"][1] > estimates["starts"][1] * 1.1
    with pytest.raises(PathwaysInputError, match="exposure_coding"):
        detect(log, outcomes=[outcome], methods=("SCCS",), exposure_coding="ever")

"""Regression allocation (recovers planted attributable costs on noiseless data, adds up to the cent), dynamics
on the fixture, and input errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pathways import EventLog
from pathways.cartography import PatientYears, allocate, identify, patient_year_costs
from pathways.cartography.dynamics import (
    time_to_death,
    transition_factors,
    transitions,
    wilson,
)
from pathways.errors import PathwaysInputError
from tests.cartography.cartography_fixtures import fixture_log, fixture_rules  # noqa: F401 (fixtures)


def _noiseless_log(n: int = 400, seed: int = 0) -> EventLog:
    """Patients with A10 (diabetes) and/or JVJF (dialysis) in 2020; spending = 50 + 300 diabetes + 2000 dialysis
    + 20 for men, exactly."""
    rng = np.random.default_rng(seed)
    diab, dial, male = rng.random(n) < 0.3, rng.random(n) < 0.1, rng.random(n) < 0.5
    rows = []
    for i in range(n):
        if diab[i]:
            rows += [(i, f"2020-0{m}-01", "A10BA02", "drug", 0.0) for m in (1, 2, 3)]
        if dial[i]:
            rows += [(i, f"2020-0{m}-02", "JVJF008", "act", 0.0) for m in (1, 2)]
        rows.append((i, "2020-06-01", "YYYY001", "act", 50 + 300 * diab[i] + 2000 * dial[i] + 20 * male[i]))
    events = pd.DataFrame(rows, columns=["patient_id", "time", "code", "category", "paid"])
    patients = pd.DataFrame({"patient_id": np.arange(n), "birth": "1960-01-01",
                             "sex": np.where(male, "M", "F"), "start": "2020-01-01", "end": "2020-12-31"})
    return EventLog.from_pandas(events, patients, extra_columns=["paid"])


def test_regression_recovers_attributable_costs(fixture_rules):
    log = _noiseless_log()
    py = identify(log, fixture_rules)
    costs = patient_year_costs(log, py, amounts=["paid"])
    alloc = allocate(py, costs)
    coef = alloc.coefficients.set_index("term")["coefficient"]
    assert coef["group:diabetes"] == pytest.approx(300) and coef["group:dialysis"] == pytest.approx(2000)
    assert coef["intercept"] == pytest.approx(50) and coef["sex:M"] == pytest.approx(20)
    # each patient's groups get exactly their planted cost, the rest is unattributed
    got = alloc.cents.toarray()
    j = py.groups.index("diabetes")
    assert set(np.unique(got[:, j])) <= {0, 30000}
    assert int(got.sum() + alloc.unattributed.sum()) == int(costs["paid_total"].sum())


def test_costs_need_their_columns(fixture_log, fixture_rules):
    py = identify(fixture_log, fixture_rules, years=[2020, 2021])
    with pytest.raises(PathwaysInputError, match=r"amount column\(s\) \['PRS_PAI_MNT'\] not in the log's extras"):
        patient_year_costs(fixture_log, py, amounts=["PRS_PAI_MNT"])
    with pytest.raises(PathwaysInputError, match=r"coefficients for unknown group\(s\) \['cancer'\]"):
        allocate(py, patient_year_costs(fixture_log, py), coefficients={"cancer": 1.0})


def test_transitions_on_the_fixture(fixture_log, fixture_rules):
    py = identify(fixture_log, fixture_rules, years=[2020, 2021])
    table = transitions(py)
    pairs = {(r.from_state, r.to_state): (r.n, r.n_from) for r in table.itertuples()}
    assert pairs == {("acute_mi", "chronic_cad"): (1, 1), ("chronic_cad", "chronic_cad"): (1, 1),
                     ("diabetes", "dialysis"): (1, 1), ("none", "diabetes"): (1, 1)}
    lo, hi = wilson(np.array([1]), np.array([1]))
    assert table["ci_low"].iloc[0] == pytest.approx(lo[0]) and hi[0] == pytest.approx(1.0)
    factors = transition_factors(table)
    assert factors.columns[:7].tolist() == ["source", "target", "lag_days", "effect", "ci_low", "ci_high", "method"]
    survival = time_to_death(py).set_index("group")
    assert survival.loc["dialysis", ["at_risk", "deaths", "survival"]].tolist() == [1, 1, 0.0]


def test_death_and_lost_states(fixture_log, fixture_rules):
    py = identify(fixture_log, fixture_rules, years=[2020, 2021])
    keep = np.array([True, False, True, True, True, True, True, True, True])  # P1 leaves after 2020
    py = PatientYears(py.patient[keep], py.year[keep], py.flags[keep], py.groups, py.age[keep], py.sex[keep],
                      py.department[keep], py.died[keep].copy())
    py.died[3] = True  # P3 dies during 2020 in this variant
    table = transitions(py)
    assert set(zip(table["from_state"], table["to_state"])) == {
        ("acute_mi", "lost"), ("chronic_cad", "chronic_cad"), ("diabetes", "death"), ("none", "diabetes")}

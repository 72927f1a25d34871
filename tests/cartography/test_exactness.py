"""Exactness on the hand-built fixture (tests/cartography/conftest.py): every flag, cost, allocated cent and
table cell equals the value computed by hand in the comments."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pathways.cartography import (
    allocate,
    cartography_table,
    identify,
    patient_year_costs,
)
from tests.cartography.cartography_fixtures import COEFFICIENTS, fixture_log, fixture_rules  # noqa: F401 (fixtures)

GROUPS = ["acute_mi", "chronic_cad", "diabetes", "dialysis"]


def _run(log, rules):
    py = identify(log, rules, years=[2020, 2021])
    costs = patient_year_costs(log, py)
    return py, costs, allocate(py, costs, coefficients=COEFFICIENTS)


def test_flags_every_rule_type(fixture_log, fixture_rules):
    py = identify(fixture_log, fixture_rules, years=[2020, 2021])
    frame = py.frame()
    got = {(int(r.patient), int(r.year)): [g for g in GROUPS if r[g]] for _, r in frame.iterrows()}
    assert got == {
        (0, 2020): ["acute_mi", "diabetes"],  # I21 main; 3 dispensations. chronic_cad excluded by acute_mi
        (0, 2021): ["chronic_cad"],           # I21 of 2020 within the 2-year look-back; acute only the year
        (1, 2020): ["chronic_cad"],           # ALD period overlapping 2020
        (1, 2021): ["chronic_cad"],           # associated I21: not acute (main/linked only), chronic (any role)
        (2, 2020): ["diabetes"],              # 4 dispensations - 1 regularisation = 3
        (2, 2021): ["dialysis"],              # 3 - 1 = 2 dispensations: no diabetes; 2 JVJF acts
        (3, 2020): [],                        # A10BX excluded
        (3, 2021): ["diabetes"],
        (4, 2021): [],                        # P5 enters in March 2021: no 2020 row
    }
    assert frame["died"].tolist() == [False, False, False, False, False, True, False, False, False]
    assert frame["age"].tolist() == [70, 71, 40, 41, 80, 81, 20, 21, 31]
    assert frame["department"].tolist() == ["75"] * 6 + ["13", "13", "75"]


def test_costs_by_care_category_net_regularisations(fixture_log, fixture_rules):
    _, costs, _ = _run(fixture_log, fixture_rules)
    assert costs["paid_hospital"].tolist() == [500000, 0, 0, 0, 0, 0, 0, 0, 0]
    assert costs["paid_drugs"].tolist() == [3000, 0, 4000, 0, 6000, 4000, 4500, 4500, 0]
    assert costs["paid_consultations_acts"].tolist() == [0, 2500, 0, 3000, 0, 30000, 0, 0, 2300]
    assert costs["paid_other"].tolist() == [0] * 9
    assert costs["paid_total"].tolist() == [503000, 2500, 4000, 3000, 6000, 34000, 4500, 4500, 2300]
    assert (costs["base_total"] == 2 * costs["paid_total"]).all()


def test_allocation_to_the_cent(fixture_log, fixture_rules):
    _, costs, alloc = _run(fixture_log, fixture_rules)
    cents = alloc.cents.toarray()
    # P1 2020: 503000 by 4000:300:100 -> floors 457272, 34295, 11431 (+2 cents to the largest remainders:
    # unattributed .818, acute_mi .727)
    expected = np.array([
        [457273, 0, 34295, 0], [0, 2273, 0, 0], [0, 3636, 0, 0], [0, 2727, 0, 0], [0, 0, 4500, 0],
        [0, 0, 0, 32381], [0, 0, 0, 0], [0, 0, 3375, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(cents, expected)
    np.testing.assert_array_equal(alloc.unattributed, [11432, 227, 364, 273, 1500, 1619, 4500, 1125, 2300])
    np.testing.assert_array_equal(cents.sum(axis=1) + alloc.unattributed, costs["paid_total"].to_numpy())
    assert int(cents.sum() + alloc.unattributed.sum()) == int(costs["paid_total"].sum()) == 563800


def _cell(table: pd.DataFrame, year: int, group: str) -> pd.Series:
    rows = table[(table["year"] == year) & (table["group"] == group)]
    assert len(rows) == 1
    return rows.iloc[0]


EXPECTED = {  # (year, group): population, prevalent, incident, total cost (euros)
    (2020, "acute_mi"): (4, 1, np.nan, 4572.73), (2020, "chronic_cad"): (4, 1, np.nan, 36.36),
    (2020, "diabetes"): (4, 2, np.nan, 387.95), (2020, "dialysis"): (4, 0, np.nan, 0.0),
    (2020, "unattributed"): (4, 4, np.nan, 177.96), (2020, "total"): (4, 4, np.nan, 5175.00),
    (2021, "acute_mi"): (5, 0, 0, 0.0), (2021, "chronic_cad"): (5, 2, 1, 50.00),
    (2021, "diabetes"): (5, 1, 1, 33.75), (2021, "dialysis"): (5, 1, 1, 323.81),
    (2021, "unattributed"): (5, 5, np.nan, 55.44), (2021, "total"): (5, 5, np.nan, 463.00),
}


def test_group_table_every_cell(fixture_log, fixture_rules):
    py, _, alloc = _run(fixture_log, fixture_rules)
    table = cartography_table(py, alloc, by=())
    assert len(table) == len(EXPECTED)
    for (year, group), (pop, n, inc, cost) in EXPECTED.items():
        row = _cell(table, year, group)
        assert (row["population"], row["prevalent"]) == (pop, n), (year, group)
        np.testing.assert_equal(row["incident"], inc)
        assert row["total_cost"] == pytest.approx(cost, abs=1e-9), (year, group)
        assert row["prevalence_rate"] == pytest.approx(n / pop)
        np.testing.assert_allclose(row["mean_cost"], cost / n if n else np.nan)
    for year in (2020, 2021):  # groups + unattributed add up to total spending, to the cent
        t = table[table["year"] == year]
        assert round(t.loc[t["group"] != "total", "total_cost"].sum() * 100) == round(
            _cell(table, year, "total")["total_cost"] * 100)


def test_year_on_year_decomposition(fixture_log, fixture_rules):
    py, _, alloc = _run(fixture_log, fixture_rules)
    table = cartography_table(py, alloc, by=())
    diabetes = _cell(table, 2021, "diabetes")  # N 2 -> 1, mean 193.975 -> 33.75
    assert diabetes["cost_change"] == pytest.approx(-354.20)
    assert diabetes["volume_effect"] == pytest.approx(-1 * (33.75 + 193.975) / 2)
    assert diabetes["cost_per_patient_effect"] == pytest.approx((33.75 - 193.975) * 3 / 2)
    acute = _cell(table, 2021, "acute_mi")  # the group empties: all volume
    assert acute["volume_effect"] == pytest.approx(-4572.73) and acute["cost_per_patient_effect"] == 0
    dialysis = _cell(table, 2021, "dialysis")  # appears: all volume
    assert dialysis["volume_effect"] == pytest.approx(323.81) and dialysis["cost_per_patient_effect"] == 0
    assert np.isnan(_cell(table, 2020, "diabetes")["cost_change"])


def test_strata_cells(fixture_log, fixture_rules):
    py, _, alloc = _run(fixture_log, fixture_rules)
    by_sex = cartography_table(py, alloc, by=("sex",))
    women = by_sex[(by_sex["year"] == 2020) & (by_sex["sex"] == "F")].set_index("group")
    assert women.loc["chronic_cad", "population"] == 2 and women.loc["chronic_cad", "prevalent"] == 1
    assert women.loc["chronic_cad", "total_cost"] == pytest.approx(36.36)
    assert women.loc["total", "total_cost"] == pytest.approx(85.00)  # P2 40.00 + P4 45.00
    full = cartography_table(py, alloc)
    assert set(full.columns[:5]) == {"year", "group", "age_band", "sex", "department"}
    cell = full[(full["year"] == 2021) & (full["group"] == "diabetes") & (full["prevalent"] > 0)]
    assert cell[["age_band", "sex", "department", "population", "prevalent"]].values.tolist() == [
        ["15-24", "F", "13", 1, 1]]
    # every stratified table adds up to the group table
    groups = cartography_table(py, alloc, by=())
    summed = full.groupby(["year", "group"])[["population", "prevalent", "total_cost"]].sum().reset_index()
    merged = groups.merge(summed, on=["year", "group"], suffixes=("", "_sum"))
    np.testing.assert_array_equal(merged["prevalent"], merged["prevalent_sum"])
    np.testing.assert_allclose(merged["total_cost"], merged["total_cost_sum"])


def test_suppression_blanks_every_recomputing_column(fixture_log, fixture_rules):
    py, _, alloc = _run(fixture_log, fixture_rules)
    table = cartography_table(py, alloc, by=(), min_cell_count=2)
    acute = _cell(table, 2020, "acute_mi")
    assert acute["suppressed"]
    for col in ("prevalent", "prevalence_rate", "mean_cost"):
        assert np.isnan(acute[col]), col
    assert acute["population"] == 4 and acute["total_cost"] == pytest.approx(4572.73)
    later = _cell(table, 2021, "acute_mi")  # zero kept, but the change discloses last year's count
    assert later["prevalent"] == 0 and np.isnan(later["volume_effect"]) and later["suppressed"]
    kept = _cell(table, 2020, "diabetes")
    assert kept["prevalent"] == 2 and not kept["suppressed"]

"""A hospital stay's amounts belong to the year of its discharge (its ``end``), as the PMSI books a stay in the
annual file of the year it ended; other events, and stays without an end, to the year of their ``time``."""
from __future__ import annotations

import pandas as pd

from pathways.cartography import identify, patient_year_costs
from pathways.data import EventLog
from tests.cartography.cartography_fixtures import _events, _patients, fixture_rules  # noqa: F401 (fixture)

EXTRA = [("P1", "2020-12-28", "MCO:stay", "stay", 4000.00, "2021-01-03"),    # spans New Year: 2021
         ("P2", "2021-03-01", "MCO:stay", "stay", 700.00, None),             # no discharge date: its entry, 2021
         ("P4", "2020-12-15", "ATC:A10BA02", "drug", 12.00, "2021-01-14")]   # a drug keeps its time's year: 2020


def _log(extra: list[tuple]) -> EventLog:
    events = _events()
    if extra:
        more = pd.DataFrame(extra, columns=["patient_id", "time", "code", "category", "paid", "end"])
        events = pd.concat([events, more.assign(base=more["paid"] * 2)], ignore_index=True)
    return EventLog.from_pandas(events, _patients(), extra_columns=["paid", "base"])


def _by_patient_year(log: EventLog, py, costs: pd.DataFrame) -> pd.DataFrame:
    pid = log.patients["patient_id"].to_numpy()[py.patient]
    return costs.set_index(pd.MultiIndex.from_arrays([pid, py.year], names=["patient_id", "year"]))


def test_stay_costs_go_to_the_discharge_year(fixture_rules):
    before, after = _log([]), _log(EXTRA)
    py = identify(after, fixture_rules, years=[2020, 2021])
    py0 = identify(before, fixture_rules, years=[2020, 2021])
    assert py.frame().equals(py0.frame())  # same patient-years and groups: only the amounts differ
    diff = (_by_patient_year(after, py, patient_year_costs(after, py))
            - _by_patient_year(before, py0, patient_year_costs(before, py0)))
    assert diff.loc[("P1", 2020), "paid_hospital"] == 0 and diff.loc[("P1", 2021), "paid_hospital"] == 400000
    assert diff.loc[("P1", 2021), "base_hospital"] == 800000
    assert diff.loc[("P2", 2021), "paid_hospital"] == 70000 and diff.loc[("P2", 2020), "paid_hospital"] == 0
    assert diff.loc[("P4", 2020), "paid_drugs"] == 1200 and diff.loc[("P4", 2021), "paid_drugs"] == 0
    assert int(diff["paid_total"].sum()) == 400000 + 70000 + 1200
    # the admission year instead, on request: the New Year stay falls in 2020
    entry = _by_patient_year(after, py, patient_year_costs(after, py, discharge_categories=()))
    base = _by_patient_year(before, py0, patient_year_costs(before, py0))
    assert entry.loc[("P1", 2020), "paid_hospital"] - base.loc[("P1", 2020), "paid_hospital"] == 400000
    assert entry.loc[("P1", 2021), "paid_hospital"] == base.loc[("P1", 2021), "paid_hospital"]

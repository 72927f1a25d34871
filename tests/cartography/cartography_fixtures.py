"""The hand-built fixture of the cartography tests: five patients, two years, every rule type.

Rules: acute_mi (PMSI I21 main/linked, the year), chronic_cad (ALD I25, or PMSI I20-I25 any role with a 2-year
look-back; excluded by acute_mi), diabetes (>= 3 net A10 dispensations, A10BX excluded), dialysis (>= 2 JVJF acts).
Patients (observed from 2019-01-01 to 2021-12-31 unless noted; tables for 2020-2021):
  P1 M 1950 dept 75: 2020 stay with I21 main (5000.00), 3 A10BA02 (10.00 each); 2021 one consultation (25.00).
  P2 F 1980 dept 75: ALD I25 2019-06-01..2020-06-30; 2020 drug N02BE01 (40.00); 2021 act (30.00) and an I21
     associated diagnosis.
  P3 M 1940 dept 75, died 2021-08-01: 2020 4 A10BA02 (20.00) + 1 regularisation (-20.00): net 3; 2021 3 A10BA02
     + 1 regularisation (net 2: not diabetes) and 2 JVJF008 acts (150.00 each).
  P4 F 2000 dept 13: 2020 3 A10BX02 (excluded code, 15.00 each); 2021 3 A10BA02 (15.00 each).
  P5 M 1990 dept 75, observed from 2021-03-01: 2021 one consultation (23.00).
"""
from __future__ import annotations

import pandas as pd
import pytest

from pathways import EventLog
from pathways.cartography import load_rules

RULES = {
    "name": "fixture", "version": "1",
    "groups": [
        {"id": "acute_mi", "hospital": {"codes": ["I21"], "roles": ["main", "linked"], "lookback_years": 1}},
        {"id": "chronic_cad", "ald": {"codes": ["I25"]},
         "hospital": {"codes": ["I20", "I21", "I22", "I23", "I24", "I25"], "roles": ["main", "linked", "associated"],
                      "lookback_years": 2},
         "excluded_by": ["acute_mi"]},
        {"id": "diabetes", "drugs": {"codes": ["A10"], "exclude": ["A10BX"], "min_dispensations": 3}},
        {"id": "dialysis", "acts": {"codes": ["JVJF"], "min_count": 2}},
    ],
}


def _events() -> pd.DataFrame:
    rows = [
        ("P1", "2020-02-01", "MCO:stay", "stay", 5000.00, "2020-02-05"),
        ("P1", "2020-02-01", "CIM10:I21", "main_diagnosis", None, None),
        *[("P1", f"2020-0{m}-10", "ATC:A10BA02", "drug", 10.00, None) for m in (3, 4, 5)],
        ("P1", "2021-03-01", "CCAM:YYYY001", "act", 25.00, None),
        ("P2", "2019-06-01", "CIM10:I25", "ald", None, "2020-06-30"),
        ("P2", "2020-04-01", "ATC:N02BE01", "drug", 40.00, None),
        ("P2", "2021-05-01", "CCAM:YYYY002", "act", 30.00, None),
        ("P2", "2021-06-01", "CIM10:I21", "associated_diagnosis", None, None),
        *[("P3", f"2020-0{m}-15", "ATC:A10BA02", "drug", 20.00, None) for m in (1, 2, 3, 4)],
        ("P3", "2020-05-15", "ATC:A10BA02", "drug", -20.00, None),
        *[("P3", f"2021-0{m}-15", "ATC:A10BA02", "drug", 20.00, None) for m in (1, 2, 3)],
        ("P3", "2021-04-15", "ATC:A10BA02", "drug", -20.00, None),
        ("P3", "2021-05-02", "CCAM:JVJF008", "act", 150.00, None),
        ("P3", "2021-06-02", "CCAM:JVJF008", "act", 150.00, None),
        *[("P4", f"2020-0{m}-20", "ATC:A10BX02", "drug", 15.00, None) for m in (1, 2, 3)],
        *[("P4", f"2021-0{m}-20", "ATC:A10BA02", "drug", 15.00, None) for m in (1, 2, 3)],
        ("P5", "2021-04-01", "CCAM:YYYY001", "act", 23.00, None),
    ]
    frame = pd.DataFrame(rows, columns=["patient_id", "time", "code", "category", "paid", "end"])
    frame["base"] = frame["paid"] * 2
    return frame


def _patients() -> pd.DataFrame:
    return pd.DataFrame({
        "patient_id": ["P1", "P2", "P3", "P4", "P5"],
        "birth": ["1950-05-01", "1980-01-01", "1940-01-01", "2000-07-01", "1990-01-01"],
        "sex": ["M", "F", "M", "F", "M"],
        "death": [None, None, "2021-08-01", None, None],
        "start": ["2019-01-01"] * 4 + ["2021-03-01"],
        "end": ["2021-12-31", "2021-12-31", "2021-08-01", "2021-12-31", "2021-12-31"],
        "department": ["75", "75", "75", "13", "75"],
    })


@pytest.fixture
def fixture_log() -> EventLog:
    return EventLog.from_pandas(_events(), _patients(), extra_columns=["paid", "base"])


@pytest.fixture
def fixture_rules():
    return load_rules(RULES)


#: fixed attributable costs (euros) used to hand-compute the allocation
COEFFICIENTS = {"acute_mi": 4000.0, "chronic_cad": 1000.0, "diabetes": 300.0, "dialysis": 2000.0,
                "unattributed": 100.0}

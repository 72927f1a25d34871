"""Costs of ``service`` events (DCIR lines without detail, codes ``PRS:<PRS_NAT_REF>``): each goes to the care
category of its PRS_NAT_REF family (SERVICE_FAMILIES, or the user's), on top of the hand-built fixture's costs."""
from __future__ import annotations

import pandas as pd
import pytest

from pathways.cartography import identify, patient_year_costs
from pathways.data import EventLog
from pathways.errors import PathwaysInputError
from tests.cartography.cartography_fixtures import _events, _patients, fixture_rules  # noqa: F401 (fixture)

SERVICES = [("P1", "2020-06-01", "PRS:1111", "service", 25.00, None),   # GP consultation: consultations_acts
            ("P1", "2020-06-01", "PRS:3336", "service", 1.02, None),    # dispensing fee: drugs
            ("P1", "2020-07-01", "PRS:7001", "service", 5.00, None),    # no family: other
            ("P2", "2021-02-01", "PRS:1112", "service", 50.00, None)]   # specialist consultation


def _log(with_services: bool) -> EventLog:
    events = _events()
    if with_services:
        extra = pd.DataFrame(SERVICES, columns=["patient_id", "time", "code", "category", "paid", "end"])
        events = pd.concat([events, extra.assign(base=extra["paid"] * 2)], ignore_index=True)
    return EventLog.from_pandas(events, _patients(), extra_columns=["paid", "base"])


def test_services_go_to_the_care_category_of_their_family(fixture_rules):
    before, after = _log(False), _log(True)
    py = identify(after, fixture_rules, years=[2020, 2021])
    diff = patient_year_costs(after, py) - patient_year_costs(before, identify(before, fixture_rules,
                                                                                years=[2020, 2021]))
    # rows: (P1, 2020), (P1, 2021), (P2, 2020), (P2, 2021), ...
    assert diff["paid_consultations_acts"].tolist()[:4] == [2500, 0, 0, 5000]
    assert diff["paid_drugs"].tolist()[:4] == [102, 0, 0, 0]
    assert diff["paid_other"].tolist()[:4] == [500, 0, 0, 0]
    assert diff["paid_total"].sum() == 2500 + 102 + 500 + 5000 and diff["base_total"].sum() == 2 * 8102
    # the user's families: the longest prefix wins
    custom = patient_year_costs(after, py, service_families={"PRS:": "other", "PRS:1112": "consultations_acts"})
    base = patient_year_costs(before, py)
    assert (custom["paid_other"] - base["paid_other"]).tolist()[:4] == [2500 + 102 + 500, 0, 0, 0]
    assert (custom["paid_consultations_acts"] - base["paid_consultations_acts"]).tolist()[:4] == [0, 0, 0, 5000]
    with pytest.raises(PathwaysInputError, match="unknown care categories"):
        patient_year_costs(after, py, service_families={"PRS:1": "nursing"})

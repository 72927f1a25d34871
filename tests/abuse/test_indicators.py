"""Transparent indicators, peer groups and the network on hand-built event logs (values computed by hand)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pathways.abuse import (
    Reasons,
    build_network,
    communities,
    impossible_dates,
    patient_indicators,
    pharmacy_indicators,
    prescriber_indicators,
    rank_entities,
    robust_z,
    suppress_small_counts,
)
from pathways.data.eventlog import EventLog
from pathways.errors import PathwaysInputError

EXTRAS = ["prescriber", "provider", "institution", "paid", "base"]


def _log(rows: list[tuple], deaths: dict[str, float] | None = None) -> EventLog:
    """rows: (patient, day, code, category, end, boxes, prescriber, provider, paid)."""
    frame = pd.DataFrame(rows, columns=["patient_id", "time", "code", "category", "end", "value", "prescriber",
                                        "provider", "paid"])
    frame["institution"], frame["base"] = -1, frame["paid"]
    ids = sorted(frame["patient_id"].unique())
    patients = pd.DataFrame({"patient_id": ids, "death": [(deaths or {}).get(p, np.nan) for p in ids],
                             "start": 0.0, "end": 1000.0})
    return EventLog.from_pandas(frame, patients, extra_columns=EXTRAS, time_unit="days")


# patient "s" shops opioids: 3 prescribers, 3 pharmacies, overlapping 28-day boxes; "r" refills regularly
SHOPPER = [("s", 10.0, "N02AA05", "drug", np.nan, 1.0, 1, 101, 12.0),
           ("s", 20.0, "N02AA05", "drug", np.nan, 1.0, 2, 102, 12.0),   # overlaps 18 days, new prescriber
           ("s", 30.0, "N02AA05", "drug", np.nan, 3.0, 3, 103, 36.0),   # overlaps 8 + 18 = 26 days... see below
           ("r", 10.0, "N02AA05", "drug", np.nan, 1.0, 1, 101, 12.0),
           ("r", 40.0, "N02AA05", "drug", np.nan, 1.0, 1, 101, 12.0),
           ("r", 70.0, "N05BA01", "drug", np.nan, 1.0, 1, 101, 3.0)]


def _value(reasons: Reasons, entity, reason: str, klass: str = "") -> float:
    f = reasons.frame
    row = f[(f["entity"] == entity) & (f["reason"] == reason) & (f["drug_class"] == klass)]
    assert len(row) == 1
    return float(row["value"].iloc[0])


def test_patient_indicators_match_hand_computed_values():
    reasons = patient_indicators(_log(SHOPPER))
    assert _value(reasons, "s", "prescribers", "opioids") == 3
    assert _value(reasons, "s", "pharmacies", "opioids") == 3
    # supplies end at 38, 48 then 114: the 2nd starts 18 days before 38, the 3rd min(48, 114) - 30 = 18 days
    assert _value(reasons, "s", "overlap", "opioids") == 36
    assert _value(reasons, "s", "overlap_prescribers", "opioids") == 36  # both overlaps change prescriber
    assert _value(reasons, "s", "above_max", "opioids") == 1            # 3 boxes > 2
    assert _value(reasons, "r", "overlap", "opioids") == 0
    assert _value(reasons, "r", "prescribers", "benzodiazepines") == 1
    table = rank_entities(reasons)
    assert table["entity"].iloc[0] == "s" and "doctor shopping (opioids)" in table["top_reasons"].iloc[0]


def test_impossible_dates_inside_stays_and_after_death():
    rows = [("a", 100.0, "MCO", "stay", 110.0, np.nan, -1, -1, np.nan),
            ("a", 100.0, "X", "drug", np.nan, 1.0, 1, 101, 5.0),   # entry day: possible
            ("a", 105.0, "X", "drug", np.nan, 1.0, 1, 101, 5.0),   # inside: impossible
            ("a", 110.0, "X", "drug", np.nan, 1.0, 1, 101, 5.0),   # discharge day: possible
            ("b", 300.0, "X", "drug", np.nan, 1.0, 1, 102, 5.0),   # one day after death
            ("b", 299.2, "X", "drug", np.nan, 1.0, 1, 102, 5.0)]   # the day of death
    log = _log(rows, deaths={"b": 299.0})
    flags = impossible_dates(log)
    got = {(p, t) for p, t, f in zip(log.patient_ids(), log.time, flags) if f}
    assert got == {("a", 105.0), ("b", 300.0)}
    pharm = pharmacy_indicators(log)
    f = pharm.frame[pharm.frame["reason"] == "impossible_dates"].set_index("entity")
    assert f.loc[101, "n_events"] == 1 and f.loc[102, "n_events"] == 1


def test_billing_without_prescription_needs_a_consultation_of_the_named_prescriber():
    rows = [("a", 50.0, "CONSULTATION", "consultation", np.nan, np.nan, -1, 7, 25.0),
            ("a", 60.0, "X", "drug", np.nan, 1.0, 7, 201, 5.0),    # covered (10 days after)
            ("a", 200.0, "X", "drug", np.nan, 1.0, 7, 201, 5.0),   # 150 days after: not covered
            ("a", 61.0, "X", "drug", np.nan, 1.0, 8, 202, 5.0),    # prescriber 8 never saw a
            ("a", 62.0, "X", "drug", np.nan, 1.0, -1, 202, 5.0)]   # no prescriber
    reasons = pharmacy_indicators(_log(rows), pseudo_count=0.0)
    f = reasons.frame[reasons.frame["reason"] == "no_prescription"].set_index("entity")
    assert f.loc[201, "n_events"] == 1 and f.loc[202, "n_events"] == 2
    assert f.loc[202, "value"] == 1.0 and f.loc[201, "value"] == 0.5


def test_prescriber_peers_compare_within_specialty_and_region():
    # ten GPs each with 10 patients, one opioid patient each; GP 0 treats all ten
    rows = []
    for doc in range(10):
        for k in range(10):
            pid = f"p{doc}_{k}"
            rows.append((pid, 5.0, "CONSULTATION", "consultation", np.nan, np.nan, -1, doc, 25.0))
            if doc == 0 or k == 0:
                rows.append((pid, 6.0, "N02AA05", "drug", np.nan, 1.0, doc, 500, 12.0))
    providers = pd.DataFrame({"provider": range(10), "specialty": "general practice", "region": 1})
    reasons = prescriber_indicators(_log(rows), providers, pseudo_count=0.0)
    share = reasons.frame[(reasons.frame["reason"] == "class_share") & (reasons.frame["drug_class"] == "opioids")]
    share = share.set_index("entity")
    assert share.loc[0, "value"] == 1.0 and share.loc[3, "value"] == 0.1 and share.loc[3, "reference"] == 0.1
    table = rank_entities(reasons)
    assert table["entity"].iloc[0] == 0 and table["behaviours"].iloc[0] == "over-prescribing"


def test_robust_z_floor_and_groups():
    z, med = robust_z(np.array([0.0, 0.0, 0.0, 5.0, 1.0, 1.0, 1.0, 1.0]), np.array([0, 0, 0, 0, 1, 1, 1, 1]),
                      floor=1.0)
    assert med.tolist() == [0.0] * 4 + [1.0] * 4
    assert z[4:].tolist() == [0.0] * 4 and z[3] > 0


def test_network_shared_patients_and_ring_community():
    # patients 0..5 all see prescribers 1, 2 and pharmacies 101, 102 (a ring); patient 9 sees 3 and 103
    rows = [(f"p{i}", 10.0 + j, "N02AA05", "drug", np.nan, 1.0, d, f, 12.0)
            for i in range(6) for j, (d, f) in enumerate([(1, 101), (2, 102)])]
    rows.append(("p9", 10.0, "N02AA05", "drug", np.nan, 1.0, 3, 103, 12.0))
    net = build_network(_log(rows))
    shared = net.shared_patients().toarray()
    assert net.prescriber_ids.tolist() == [1, 2, 3] and net.pharmacy_ids.tolist() == [101, 102, 103]
    assert shared.tolist() == [[6, 6, 0], [6, 6, 0], [0, 0, 1]]
    ring = communities(net, min_shared=3, min_size=3)
    assert set(ring["entity"]) == {1, 2, 101, 102} and ring["community"].nunique() == 1


def test_small_counts_are_blanked_and_missing_columns_named():
    table = pd.DataFrame({"entity": ["a", "b", "c"], "n_events": [3, 0, 12], "n_flags": [1, 0, 2]})
    out = suppress_small_counts(table, 10)
    assert np.isnan(out["n_events"].iloc[0]) and out["n_events"].iloc[1:].tolist() == [0, 12]
    assert out["n_flags"].tolist() == [1, 0, 2]
    log = EventLog.from_pandas(pd.DataFrame({"patient_id": ["secret-id"], "time": [1.0], "code": ["N02AA05"],
                                             "category": ["drug"]}))
    with pytest.raises(PathwaysInputError, match="prescriber") as err:
        patient_indicators(log)
    assert "secret-id" not in str(err.value)

"""Limited and unlimited exposures and eras on hand-computed intervals."""
from __future__ import annotations

import numpy as np
import pytest
from study_fixture import spans, study_log

from pathways.cohort import (
    condition_eras, drug_eras, follow_up, limited_exposures, merge_intervals, outcomes, unlimited_exposures,
)
from pathways.errors import PathwaysInputError

LOG = study_log()
FU = follow_up(LOG, study_end=300.0, outcome=outcomes(LOG, ["X"]))  # ends 150, 60, 200, 10


def test_limited_overlaps_merge_and_gaps_split():
    ex = limited_exposures(LOG, codes=["D1"], duration=30.0)
    assert spans(ex) == [(0, "D1", 10.0, 50.0, 2.0), (0, "D1", 100.0, 130.0, 1.0), (0, "D1", 135.0, 165.0, 1.0),
                         (1, "D1", 5.0, 35.0, 1.0), (2, "D1", 60.0, 90.0, 1.0)]
    assert ex.subjects.tolist() == [0, 1, 2]


def test_limited_grace_end_delay_and_units():
    grace = limited_exposures(LOG, codes=["D1"], duration=30.0, grace=5.0)
    assert spans(grace)[1] == (0, "D1", 100.0, 165.0, 2.0)
    delayed = limited_exposures(LOG, codes=["D1"], duration=30.0, end_delay=10.0)
    assert spans(delayed)[:2] == [(0, "D1", 10.0, 60.0, 2.0), (0, "D1", 100.0, 175.0, 2.0)]
    boxes = limited_exposures(LOG, codes=["D1"], duration=30.0, per_unit=True)
    assert spans(boxes)[-1] == (2, "D1", 60.0, 150.0, 1.0)  # 3 boxes x 30 days


def test_limited_duration_mapping_longest_prefix_wins():
    ex = limited_exposures(LOG, categories=["drug"], duration={"D": 60.0, "D1": 30.0})
    assert (1, "D2", 5.0, 65.0, 1.0) in spans(ex) and (1, "D1", 5.0, 35.0, 1.0) in spans(ex)
    with pytest.raises(PathwaysInputError, match="no duration"):
        limited_exposures(LOG, categories=["drug"], duration={"D1": 30.0})
    ex = limited_exposures(LOG, categories=["drug"], duration={"D1": 30.0}, default_duration=7.0)
    assert (1, "D2", 5.0, 12.0, 1.0) in spans(ex)


def test_limited_clipped_to_follow_up_and_rollup():
    ex = limited_exposures(LOG, codes=["D1"], duration=30.0, follow_up=FU)
    assert spans(ex) == [(0, "D1", 10.0, 50.0, 2.0), (0, "D1", 100.0, 130.0, 1.0), (0, "D1", 135.0, 150.0, 1.0),
                         (1, "D1", 5.0, 35.0, 1.0), (2, "D1", 60.0, 90.0, 1.0)]
    rolled = limited_exposures(LOG, categories=["drug"], duration=30.0, rollup=lambda c: c[0])
    assert [s for s in spans(rolled) if s[0] == 1] == [(1, "D", 5.0, 35.0, 2.0)]  # D1 and D2 merged


def test_unlimited_from_nth_purchase_within_window():
    ex = unlimited_exposures(LOG, codes=["D1"], min_purchases=2, purchase_window=15.0)
    assert spans(ex) == [(0, "D1", 20.0, 365.0, 2.0)]
    assert unlimited_exposures(LOG, codes=["D1"], min_purchases=2, purchase_window=5.0).n_subjects == 0
    first = unlimited_exposures(LOG, codes=["D1"], start_delay=3.0, follow_up=FU)
    assert spans(first) == [(0, "D1", 13.0, 150.0, 1.0), (1, "D1", 8.0, 60.0, 1.0), (2, "D1", 63.0, 200.0, 1.0)]
    with pytest.raises(PathwaysInputError, match="min_purchases"):
        unlimited_exposures(LOG, min_purchases=0)


def test_drug_and_condition_eras():
    eras = drug_eras(LOG, gap=30.0)
    ev, _ = eras.to_pandas()
    p0 = ev[ev["patient_id"] == "p0"]
    assert p0[["time", "end", "value"]].to_numpy().tolist() == [[10.0, 21.0, 2.0], [100.0, 101.0, 1.0],
                                                                [135.0, 136.0, 1.0]]
    wide = drug_eras(LOG, gap=35.0).to_pandas()[0]
    assert wide[wide["patient_id"] == "p0"]["time"].tolist() == [10.0, 100.0]
    cond = condition_eras(LOG).to_pandas()[0]
    assert cond[cond["patient_id"] == "p3"][["time", "end"]].to_numpy().tolist() == [[10.0, 10.0], [200.0, 200.0]]
    assert set(cond["category"]) == {"condition_era"}


@pytest.mark.parametrize("seed", [0, 1])
def test_limited_exposures_equal_a_per_patient_reference(seed):
    """Vectorised exposures agree with a plain loop over random purchases."""
    import pandas as pd
    from pathways.data import EventLog

    rng = np.random.default_rng(seed)
    n = 400
    events = pd.DataFrame({"patient_id": rng.integers(0, 30, n), "time": rng.integers(0, 1000, n).astype(float),
                           "code": rng.choice(["a", "b"], n)})
    log = EventLog.from_pandas(events, duplicates="keep")
    ex = spans(limited_exposures(log, duration=30.0, grace=7.0))
    expected = []
    for (p, c), grp in events.assign(p=log.patients.set_index("patient_id").index.get_indexer(events["patient_id"]))\
            .groupby(["p", "code"]):
        m = merge_intervals(np.zeros(len(grp), int), grp["time"].to_numpy(), grp["time"].to_numpy() + 30.0, gap=7.0)
        expected += [(int(p), c, s, e, float(k)) for s, e, k in zip(m.start, m.end, m.count)]
    assert sorted(ex) == sorted(expected)


def test_rolled_up_exposures_come_back_in_eventlog_order():
    """Exposures are reordered by their first purchase's row; a roll-up that reorders codes still sorts right."""
    import pandas as pd
    from pathways.data import EventLog

    events = pd.DataFrame({"patient_id": ["p", "p", "p", "q"], "time": [5.0, 5.0, 1.0, 2.0],
                           "code": ["a1", "b1", "b2", "a1"]})
    log = EventLog.from_pandas(events)
    # 'a*' -> 'z' and 'b*' -> 'c': the rolled-up codes sort the other way round from the purchases
    ex = limited_exposures(log, duration=1.0, rollup=lambda c: "z" if c.startswith("a") else "c").events
    frame, _ = ex.to_pandas()
    # at time 5 the purchases' order (a1 before b1) is the reverse of the exposure codes' order (c before z)
    assert frame[["patient_id", "time", "code"]].values.tolist() == [["p", 1.0, "c"], ["p", 5.0, "c"],
                                                                       ["p", 5.0, "z"], ["q", 2.0, "z"]]
    assert frame["end"].tolist() == [2.0, 6.0, 6.0, 3.0]  # b2 [1, 2] and b1 [5, 6] do not overlap: not merged

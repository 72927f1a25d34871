"""Peer formats: EasyTPP (both directions), tick's lists of arrays, SCALPEL3 flat events, OHDSI results and cohorts."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import polars as pl
import pytest

from pathways.encode import Sequences, to_sequences
from pathways.errors import PathwaysInputError
from pathways.io.easytpp import (
    from_easytpp,
    read_easytpp,
    to_easytpp,
    to_easytpp_records,
    write_easytpp,
)
from pathways.io.ohdsi import (
    from_ohdsi_cohort,
    signals_from_ohdsi,
    signals_to_ohdsi,
    to_ohdsi_cohort,
)
from pathways.io.scalpel import from_scalpel, to_scalpel
from tests.data.test_arrow import assert_same_log
from tests.io.format_fixtures import cohort, snds_log  # noqa: F401 (fixtures)


def assert_same_sequences(a: Sequences, b: Sequences) -> None:
    for name in ("times", "marks", "offsets", "start", "end"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.n_codes == b.n_codes


# -- EasyTPP --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["cohort", "snds_log"])
def test_easytpp_round_trips_are_lossless(which, request):
    log = request.getfixturevalue(which)
    seqs = to_sequences(log)
    for rows in (to_easytpp(seqs), to_easytpp_records(seqs)):
        back = from_easytpp(rows, seqs.n_codes, start=seqs.start, end=seqs.end, vocab=log.vocab)
        assert_same_sequences(back, seqs)


def test_easytpp_pickle_matches_the_loader_format(cohort, tmp_path):
    seqs = to_sequences(cohort)
    splits = {"train": seqs[np.arange(60)], "dev": seqs[np.arange(60, 80)], "test": seqs[np.arange(80, 100)]}
    write_easytpp(splits, tmp_path / "data.pkl")
    with open(tmp_path / "data.pkl", "rb") as fh:
        payload = pickle.load(fh)
    assert payload["dim_process"] == seqs.n_codes and set(payload) == {"dim_process", "train", "dev", "test"}
    first = payload["train"][0]
    assert set(first[0]) == {"time_since_start", "time_since_last_event", "type_event"}
    assert first[0]["time_since_last_event"] == 0.0
    gaps = np.diff([e["time_since_start"] for e in first])
    np.testing.assert_allclose([e["time_since_last_event"] for e in first[1:]], gaps)
    back = read_easytpp(tmp_path / "data.pkl")
    train = splits["train"]
    np.testing.assert_array_equal(back["train"].marks, train.marks)
    np.testing.assert_array_equal(back["train"].times, train.relative_times())  # windows start at 0 without them


def test_easytpp_records_carry_dim_process_and_errors():
    rows = [{"dim_process": 3, "seq_len": 2, "seq_idx": 0, "time_since_start": [0.0, 1.5],
             "time_since_last_event": [0.0, 1.5], "type_event": [2, 0]}]
    seqs = from_easytpp(rows)
    assert seqs.n_codes == 3 and seqs.end.tolist() == [1.5]
    with pytest.raises(PathwaysInputError, match="empty"):
        from_easytpp([])
    with pytest.raises(PathwaysInputError, match="each event needs"):
        from_easytpp([[{"time": 1.0}]])
    with pytest.raises(PathwaysInputError, match="same number of codes"):
        write_easytpp({"a": seqs, "b": from_easytpp(rows, 5)}, "unused.pkl")


def test_tick_lists_of_arrays_are_kept(cohort):
    seqs = to_sequences(cohort)
    back = Sequences.from_tick(seqs.to_tick(), seqs.tick_end_times())
    np.testing.assert_array_equal(back.marks, seqs.marks)
    np.testing.assert_allclose(back.times, seqs.relative_times())


# -- SCALPEL3 -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["cohort", "snds_log"])
def test_scalpel_round_trip_is_lossless(which, request):
    log = request.getfixturevalue(which)
    group = next(iter(log.extras))
    events, patients = to_scalpel(log, group_id=group)
    assert list(events.columns[:7]) == ["patientID", "category", "groupID", "value", "weight", "start", "end"]
    assert list(patients.columns[:4]) == ["patientID", "gender", "birthDate", "deathDate"]
    others = tuple(k for k in log.extras if k != group)
    back = from_scalpel(events, patients, group_id=group, extra_columns=others, vocab=log.vocab, duplicates="keep",
                        outside_life="keep")
    assert_same_log(back, log)


def test_scalpel_flat_events_from_polars():
    events = pl.DataFrame({
        "patientID": ["p1", "p1", "p2", "p1"], "category": ["drug_purchase", "diagnosis", "drug_purchase",
                                                            "observation_period"],
        "groupID": ["rx1", None, "rx2", None], "value": ["N02BE01", "I10", "N02BE01", "observation_period"],
        "weight": [2.0, None, 1.0, None],
        "start": pd.to_datetime(["2020-01-02", "2020-01-05", "2020-03-01", "2020-01-01"]),
        "end": pd.to_datetime([None, None, None, "2020-12-31"]),
    })
    patients = pd.DataFrame({"patientID": ["p1", "p2"], "gender": [2, 1],
                             "birthDate": pd.to_datetime(["1950-05-01", "1960-01-01"]), "deathDate": [None, None]})
    log = from_scalpel(events, patients)
    assert log.code_strings().tolist() == ["N02BE01", "I10", "N02BE01"]
    assert log.patients["sex"].tolist() == ["F", "M"] and log.value[0] == 2.0
    assert log.patients["start"].tolist()[0] == 18262.0 and log.patients["end"].tolist()[0] == 18627.0
    group = log.extras["groupID"]
    assert group[[0, 2]].tolist() == ["rx1", "rx2"] and pd.isna(group[1])
    with pytest.raises(PathwaysInputError, match="missing column"):
        from_scalpel(events.drop("weight"))
    with pytest.raises(PathwaysInputError, match="not an extra column"):
        to_scalpel(log, group_id="prescriber")


# -- OHDSI ----------------------------------------------------------------------------------------------------------
def test_signal_table_to_ohdsi_and_back():
    table = pd.DataFrame({
        "exposure": ["A", "B", "C"], "outcome": ["Y", "Y", "Y"], "method": ["sccs", "sccs", "IC"],
        "estimate": [2.0, 0.9, 1.5], "ci_low": [1.2, 0.6, 1.1], "ci_high": [3.3, 1.35, 2.0],
        "p": [0.01, 0.6, np.nan], "q": [0.02, 0.6, np.nan], "p_calibrated": [0.04, 0.7, np.nan],
        "ci_low_calibrated": [1.05, 0.5, np.nan], "ci_high_calibrated": [3.8, 1.6, np.nan],
        "n_exposed_events": [12, 30, 8], "se_log": [0.25, 0.2, np.nan], "flag": [True, False, True],
    })
    ohdsi = signals_to_ohdsi(table)
    assert list(ohdsi.columns[:9]) == ["exposureId", "outcomeId", "analysis", "rr", "ci95Lb", "ci95Ub", "p", "logRr",
                                       "seLogRr"]
    np.testing.assert_allclose(ohdsi["logRr"], np.log(table["estimate"]))
    assert ohdsi["calibratedP"].tolist()[:2] == [0.04, 0.7] and "q" in ohdsi and "flag" in ohdsi
    back = signals_from_ohdsi(ohdsi)
    pd.testing.assert_frame_equal(back[table.columns], table)
    no_se = signals_to_ohdsi(table.drop(columns="se_log"))
    np.testing.assert_allclose(no_se["seLogRr"][0], (np.log(3.3) - np.log(1.2)) / (2 * 1.959963984540054))


def test_sccs_summary_shape_reads_as_estimates():
    summary = pd.DataFrame({"covariateId": [1001], "outcomeId": [5], "rr": [1.8], "ci95Lb": [1.1], "ci95Ub": [2.9],
                            "p": [0.02], "logRr": [np.log(1.8)], "seLogRr": [0.25]})
    est = signals_from_ohdsi(summary, method="sccs")
    assert est.loc[0, ["exposure", "outcome", "method", "estimate", "se_log"]].tolist() == [1001, 5, "sccs", 1.8, 0.25]
    with pytest.raises(PathwaysInputError, match="exposureId"):
        signals_from_ohdsi(summary.drop(columns="covariateId"))
    with pytest.raises(PathwaysInputError, match="missing column"):
        signals_to_ohdsi(summary)


@pytest.mark.parametrize("which", ["cohort", "snds_log"])
def test_ohdsi_cohort_table_round_trip(which, request):
    log = request.getfixturevalue(which)
    table = to_ohdsi_cohort(log, {1: np.arange(log.n_patients), 7: np.arange(log.n_patients) % 2 == 0})
    assert list(table.columns) == ["cohort_definition_id", "subject_id", "cohort_start_date", "cohort_end_date"]
    back = from_ohdsi_cohort(table, log)
    assert sorted(back) == [1, 7] and back[7]["patient"].tolist() == list(range(0, log.n_patients, 2))
    np.testing.assert_array_equal(back[1]["start"], np.floor(log.patients["start"]))  # dates: the day of the instant
    np.testing.assert_array_equal(back[1]["end"], np.floor(log.patients["end"]))
    bad = table.assign(subject_id="nobody")
    with pytest.raises(PathwaysInputError, match="absent from the log"):
        from_ohdsi_cohort(bad, log)

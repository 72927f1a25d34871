import warnings

import numpy as np
import pandas as pd
import pytest

from pathways import EventLog, PathwaysDataWarning, PathwaysInputError, Vocabulary


def _events(**overrides):
    base = {
        "patient_id": ["p1", "p1", "p2", "p2", "p3"],
        "time": ["2020-01-10", "2020-01-01", "2020-03-01", "2020-03-05", "2021-06-01"],
        "code": ["N02BE01", "I10", "I10", "Z00", "N02BE01"],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_datetimes_become_days_sorted_by_patient_time():
    log = EventLog.from_pandas(_events())
    assert log.time_unit == "days" and log.origin == pd.Timestamp("1970-01-01")
    assert log.n_events == 5 and log.n_patients == 3 and log.n_codes == 3
    assert np.all(np.diff(log.patient) >= 0)
    first = log.time[log.offsets[0]:log.offsets[1]]
    assert first.tolist() == [18262.0, 18271.0]  # 2020-01-01 then 2020-01-10
    assert log.code_strings()[:2].tolist() == ["I10", "N02BE01"]
    assert log.patients["start"].tolist()[0] == 18262.0 and log.patients["end"].tolist()[0] == 18271.0


def test_numeric_times_keep_user_unit():
    ev = pd.DataFrame({"patient_id": [1, 1, 2], "time": [3.0, 1.5, 0.0], "code": ["a", "b", "a"]})
    log = EventLog.from_pandas(ev, time_unit="hours")
    assert log.time_unit == "hours" and log.origin is None
    assert log.time.tolist() == [1.5, 3.0, 0.0]


def test_column_mapping_and_missing_column_named():
    ev = _events().rename(columns={"patient_id": "BEN_NIR_PSA"})
    log = EventLog.from_pandas(ev, columns={"patient_id": "BEN_NIR_PSA"})
    assert log.n_patients == 3
    with pytest.raises(PathwaysInputError, match="missing column.*patient_id"):
        EventLog.from_pandas(ev)


def test_placeholder_date_rejected_with_row_and_count():
    ev = _events(time=["2020-01-10", "1600-01-01", "2020-03-01", "2020-03-05", "2021-06-01"])
    with pytest.raises(PathwaysInputError, match=r"column 'time': 1 of 5 rows .*out-of-range.*row 1"):
        EventLog.from_pandas(ev)


def test_drop_invalid_warns_and_counts():
    ev = _events(time=["2020-01-10", None, "2020-03-01", "not a date", "2021-06-01"])
    with pytest.warns(PathwaysDataWarning, match="2 of 5 rows"):
        log = EventLog.from_pandas(ev, on_invalid="drop")
    assert log.n_events == 3


def test_nan_numeric_time_and_end_before_time():
    ev = pd.DataFrame({"patient_id": [1, 1], "time": [1.0, np.nan], "code": ["a", "b"]})
    with pytest.raises(PathwaysInputError, match="column 'time'"):
        EventLog.from_pandas(ev)
    ev = pd.DataFrame({"patient_id": [1, 1], "time": [1.0, 5.0], "end": [3.0, 4.0], "code": ["a", "b"]})
    with pytest.raises(PathwaysInputError, match="end < time.*1 of 2"):
        EventLog.from_pandas(ev)


def test_duplicates_dropped_with_warning_or_raised():
    ev = pd.concat([_events(), _events().iloc[[0]]], ignore_index=True)
    with pytest.warns(PathwaysDataWarning, match="duplicate"):
        assert EventLog.from_pandas(ev).n_events == 5
    with pytest.raises(PathwaysInputError, match="duplicate"):
        EventLog.from_pandas(ev, duplicates="raise")


def test_empty_log_rejected():
    with pytest.raises(PathwaysInputError, match="empty"):
        EventLog.from_pandas(_events().iloc[:0])


def test_patients_table_windows_sex_and_empty_patients():
    patients = pd.DataFrame({
        "patient_id": ["p1", "p2", "p3", "p4"], "sex": [1, 2, "F", None],
        "birth": ["1950-05-01", "1960-01-01", "1970-01-01", "1980-01-01"],
        "start": ["2019-01-01", "2019-01-01", "2019-01-01", "2019-01-01"],
        "end": ["2022-01-01", "2022-01-01", "2022-01-01", "2022-01-01"],
    })
    log = EventLog.from_pandas(_events(), patients)
    assert log.n_patients == 4
    assert log.patients["sex"].astype(object).tolist()[:3] == ["M", "F", "F"]
    assert pd.isna(log.patients["sex"].iloc[3])
    assert np.diff(log.offsets).tolist() == [2, 2, 1, 0]
    with pytest.raises(PathwaysInputError, match="1 of 4 patients have no events"):
        EventLog.from_pandas(_events(), patients, empty_patients="raise")
    with pytest.warns(PathwaysDataWarning):
        assert EventLog.from_pandas(_events(), patients, empty_patients="drop").n_patients == 3


def test_unknown_sex_code_and_unknown_patient():
    patients = pd.DataFrame({"patient_id": ["p1", "p2", "p3"], "sex": ["M", "X", "F"]})
    with pytest.raises(PathwaysInputError, match="patients.sex.*1 of 3 rows are not a known sex code.*row 1"):
        EventLog.from_pandas(_events(), patients)
    with pytest.raises(PathwaysInputError, match="absent from the patients table"):
        EventLog.from_pandas(_events(), pd.DataFrame({"patient_id": ["p1", "p2"]}))


def test_events_outside_observation_window():
    patients = pd.DataFrame({"patient_id": ["p1", "p2", "p3"], "start": ["2020-01-05"] * 3,
                             "end": ["2022-01-01"] * 3})
    with pytest.raises(PathwaysInputError, match="outside the patient's observation window"):
        EventLog.from_pandas(_events(), patients)
    with pytest.warns(PathwaysDataWarning):
        assert EventLog.from_pandas(_events(), patients, outside_window="drop").n_events == 4
    with pytest.warns(PathwaysDataWarning):
        log = EventLog.from_pandas(_events(), patients, outside_window="extend")
    assert log.patients["start"].iloc[0] == 18262.0


def test_given_vocab_unknown_codes():
    vocab = Vocabulary(["I10", "N02BE01"], oov_token="<OOV>")
    with pytest.raises(PathwaysInputError, match="unknown to the vocabulary.*Z00"):
        EventLog.from_pandas(_events(), vocab=vocab)
    log = EventLog.from_pandas(_events(), vocab=vocab, unknown_codes="oov")
    assert (log.code == 0).sum() == 1


def test_parquet_round_trip_is_lossless(tmp_path):
    ev = _events(end=["2020-01-20", None, None, "2020-03-09", None], value=[1.0, None, 2.5, None, None],
                 category=["drug", "diagnosis", "diagnosis", "act", "drug"], prescriber=["a", "b", "c", "d", "e"])
    log = EventLog.from_pandas(ev, extra_columns=["prescriber"])
    path = tmp_path / "log.parquet"
    log.to_parquet(path)
    back = EventLog.read_parquet(path)
    for name in ("patient", "time", "code", "end", "value"):
        np.testing.assert_array_equal(getattr(back, name), getattr(log, name))
    assert back.vocab == log.vocab and back.origin == log.origin and back.time_unit == log.time_unit
    assert list(back.category) == list(log.category)
    assert back.extras["prescriber"].tolist() == log.extras["prescriber"].tolist()
    pd.testing.assert_frame_equal(back.patients, log.patients)


def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    log = EventLog.from_pandas(_events())
    path = tmp_path / "log.parquet"
    log.to_parquet(path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    import pyarrow.parquet as pq

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError, match="disk full"):
        log.to_parquet(path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert sorted(before) == ["log.codes.parquet", "log.parquet", "log.patients.parquet"]


def test_read_csv_with_mapping_and_bad_file(tmp_path):
    path = tmp_path / "ev.csv"
    _events().rename(columns={"code": "ATC"}).to_csv(path, index=False)
    log = EventLog.read_csv(path, columns={"code": "ATC"})
    assert log.n_events == 5
    with pytest.raises(PathwaysInputError, match="file not found"):
        EventLog.read_csv(tmp_path / "missing.csv")
    with pytest.raises(PathwaysInputError, match="cannot read parquet"):
        EventLog.read_parquet(path)


def test_filters_keep_vocabulary_meaning():
    log = EventLog.from_pandas(_events())
    sub = log.select_codes(["I10"])
    assert sub.vocab == log.vocab and set(sub.code_strings()) == {"I10"}
    two = log.select_patients([2, 0])
    assert two.patients["patient_id"].tolist() == ["p3", "p1"]
    assert two.patient.tolist() == [0, 1, 1]
    win = log.window(18262.0, 18300.0)
    assert win.n_events == 2 and win.patients["end"].max() <= 18300.0


def test_from_arrays_sorts_and_validates():
    vocab = Vocabulary(["a", "b"])
    log = EventLog.from_arrays([1, 0, 0], [2.0, 5.0, 1.0], [0, 1, 0], vocab)
    assert log.patient.tolist() == [0, 0, 1] and log.time.tolist() == [1.0, 5.0, 2.0]
    with pytest.raises(PathwaysInputError, match="outside the vocabulary"):
        EventLog.from_arrays([0], [1.0], [5], vocab)
    with pytest.raises(PathwaysInputError, match="not finite"):
        EventLog.from_arrays([0], [np.inf], [0], vocab)


def test_summary_has_counts_not_identifiers():
    log = EventLog.from_pandas(_events())
    summary = log.summary()
    assert summary["n_events"] == 5 and summary["n_patients"] == 3
    assert "p1" not in repr(summary)


def test_sortedness_check_compares_pairs_across_chunk_edges():
    from pathways.data.order import is_sorted as _is_sorted

    patient = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    time = np.array([1.0, 2.0, 2.0, 0.0, 3.0, 3.0, 1.0, 1.0])
    code = np.array([0, 0, 1, 5, 0, 2, 1, 1])
    assert _is_sorted(patient, time, code, chunk=3)
    for i in range(patient.size - 1):  # swap each adjacent unequal pair: found whichever chunk it straddles
        p = patient.copy(); t = time.copy(); c = code.copy()
        if (p[i], t[i], c[i]) == (p[i + 1], t[i + 1], c[i + 1]):
            continue
        for a in (p, t, c):
            a[[i, i + 1]] = a[[i + 1, i]]
        assert not _is_sorted(p, t, c, chunk=3), i


def test_from_arrays_sorts_unsorted_input_and_keeps_sorted_input_without_copy():
    vocab = Vocabulary(["a", "b"])
    patient, time, code = np.array([0, 0, 1]), np.array([1.0, 2.0, 0.5]), np.array([1, 0, 0])
    log = EventLog.from_arrays(patient, time, code, vocab)
    assert np.shares_memory(log.time, time)
    log = EventLog.from_arrays(patient[::-1].copy(), time[::-1].copy(), code[::-1].copy(), vocab)
    assert log.patient.tolist() == [0, 0, 1] and log.time.tolist() == [1.0, 2.0, 0.5]

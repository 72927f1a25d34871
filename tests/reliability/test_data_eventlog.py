"""Bad-input corpus of EventLog (issue 12): ids and codes exactly as written, plausibility, raw exceptions turned
into PathwaysInputError naming column and row, never an identifier. Each case asserts the exact outcome."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from corpus_readers import A, B, assert_no_id

from pathways.data import EventLog, Vocabulary
from pathways.errors import PathwaysDataWarning, PathwaysInputError


def _csv(tmp_path, text: str, name: str = "events.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _events(**columns) -> pd.DataFrame:
    base = {"patient_id": [A, A, B], "time": [1.0, 2.0, 3.0], "code": ["x", "y", "x"]}
    base.update(columns)
    return pd.DataFrame(base)


# -- ids and codes exactly as written --------------------------------------------------------------------------
@pytest.mark.parametrize("ids, n_patients", [(("0123", "123"), 2), (("007", "7"), 2), (("1E10", "1E10"), 1)])
def test_read_csv_keeps_patient_ids_as_written(tmp_path, ids, n_patients):
    path = _csv(tmp_path, f"patient_id,time,code\n{ids[0]},1,x\n{ids[1]},2,x\n")
    log = EventLog.read_csv(path)
    assert log.n_patients == n_patients
    assert sorted(log.patients["patient_id"]) == sorted(set(ids))


@pytest.mark.parametrize("codes", [("0410", "410"), ("1E10", "1E5"), ("NA", "N/A"), ("0", "00")])
def test_read_csv_keeps_codes_as_written(tmp_path, codes):
    path = _csv(tmp_path, f"patient_id,time,code\np,1,{codes[0]}\np,2,{codes[1]}\n")
    assert sorted(EventLog.read_csv(path).vocab.codes.tolist()) == sorted(codes)


def test_read_csv_cip13_with_a_blank_cell_is_not_a_float(tmp_path):
    path = _csv(tmp_path, "patient_id,time,code\np,1,3400921605068\np,2,\nq,3,3400930000001\n")
    with pytest.warns(PathwaysDataWarning, match=r"column 'code': 1 of 3 rows have a missing"):
        log = EventLog.read_csv(path, on_invalid="drop")
    assert sorted(log.vocab.codes.tolist()) == ["3400921605068", "3400930000001"]


def test_read_csv_mapped_and_extra_columns_are_text(tmp_path):
    path = _csv(tmp_path, "pid,t,atc,prescriber\n0123,1,0410,00042\n")
    log = EventLog.read_csv(path, columns={"patient_id": "pid", "time": "t", "code": "atc"},
                            extra_columns=["prescriber"])
    assert log.patients["patient_id"].tolist() == ["0123"] and log.vocab.codes.tolist() == ["0410"]
    assert log.extras["prescriber"].tolist() == ["00042"]


def test_read_csv_patients_file_ids_match_as_text(tmp_path):
    events = _csv(tmp_path, "patient_id,time,code\n0123,1,x\n123,2,x\n")
    patients = _csv(tmp_path, "patient_id,sex\n0123,F\n123,M\n", "patients.csv")
    log = EventLog.read_csv(events, patients=patients)
    assert log.patients.set_index("patient_id")["sex"].astype(str).to_dict() == {"0123": "F", "123": "M"}


@pytest.mark.parametrize("values", [[410, 410.0], [np.int64(410), 410.0], [410.0, 410]])
def test_from_pandas_int_and_float_code_are_one_code(values):
    log = EventLog.from_pandas(pd.DataFrame({"patient_id": ["p", "p"], "time": [1.0, 2.0],
                                             "code": pd.Series(values, dtype=object)}))
    assert log.vocab.codes.tolist() == ["410"] and log.n_events == 2


def test_from_pandas_float_code_column_loses_no_digit_and_no_dot():
    log = EventLog.from_pandas(pd.DataFrame({"patient_id": ["p", "p"], "time": [1.0, 2.0],
                                             "code": [3400921605068.0, 1.5]}))
    assert sorted(log.vocab.codes.tolist()) == ["1.5", "3400921605068"]


# -- plausibility ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("blank", ["", " ", "\t", "   "])
def test_blank_codes_are_rejected_then_counted(blank):
    events = _events(code=["x", blank, "x"])
    with pytest.raises(PathwaysInputError, match=r"column 'code': 1 of 3 rows have a missing, empty or whitespace"):
        EventLog.from_pandas(events)
    with pytest.warns(PathwaysDataWarning, match=r"dropped: column 'code': 1 of 3 rows"):
        assert EventLog.from_pandas(events, on_invalid="drop").n_events == 2


def _patients(**columns) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": [A, B], **columns})


def test_events_before_birth_are_rejected_named_and_counted():
    events = _events()
    patients = _patients(birth=[1.5, 0.0])
    with pytest.raises(PathwaysInputError, match=r"column 'time': 1 of 3 rows are before the patient's birth.*"
                                                  r"outside_life='drop'") as info:
        EventLog.from_pandas(events, patients, outside_life="raise")
    assert_no_id(str(info.value))
    with pytest.warns(PathwaysDataWarning, match="dropped: column 'time': 1 of 3 rows are before"):
        assert EventLog.from_pandas(events, patients, outside_life="drop").n_events == 2


def test_events_after_death_are_rejected_or_kept_and_counted():
    patients = _patients(death=[1.5, np.nan])
    with pytest.raises(PathwaysInputError, match=r"1 of 3 rows are after the patient's death"):
        EventLog.from_pandas(_events(), patients, outside_life="raise")
    with pytest.warns(PathwaysDataWarning, match="kept: column 'time': 1 of 3 rows are after the patient's death"):
        assert EventLog.from_pandas(_events(), patients).n_events == 3  # the default: kept, counted, warned


def test_dated_birth_after_every_event():
    events = _events(time=["2020-01-01", "2020-02-01", "2020-03-01"])
    patients = _patients(birth=["2021-01-01", "1990-01-01"])
    with pytest.raises(PathwaysInputError, match=r"2 of 3 rows are before the patient's birth"):
        EventLog.from_pandas(events, patients, outside_life="raise")


@pytest.mark.parametrize("outlier", [float(np.iinfo(np.int64).max), 1e12, -1e12, 5e6])
def test_implausible_numeric_times_are_rejected_not_allocated(outlier):
    with pytest.raises(PathwaysInputError, match=r"column 'time': 1 of 3 rows have a missing, unparseable, "
                                                  r"out-of-range or implausible time; first at row 1"):
        EventLog.from_pandas(_events(time=[1.0, outlier, 3.0]))
    with pytest.warns(PathwaysDataWarning, match="dropped: column 'time': 1 of 3"):
        log = EventLog.from_pandas(_events(time=[1.0, outlier, 3.0]), on_invalid="drop")
    assert log.time.max() == 3.0  # the span a binned encoding allocates stays three days


def test_implausible_time_unit_limits():
    assert EventLog.from_pandas(_events(time=[1.0, 8e10, 3.0]), time_unit="seconds").n_events == 3
    with pytest.raises(PathwaysInputError, match="implausible"):
        EventLog.from_pandas(_events(time=[1.0, 8e10, 3.0]), time_unit="days")


@pytest.mark.parametrize("outlier", [1e12, float(np.iinfo(np.int64).max)])
def test_from_arrays_rejects_implausible_times_and_ends(outlier):
    vocab = Vocabulary(["x"])
    with pytest.raises(PathwaysInputError, match=r"column 'time': 1 of 2 rows are implausible"):
        EventLog.from_arrays([0, 0], [0.0, outlier], [0, 0], vocab)
    with pytest.raises(PathwaysInputError, match=r"column 'end': 1 of 2 rows are implausible"):
        EventLog.from_arrays([0, 0], [0.0, 1.0], [0, 0], vocab, end=[np.nan, outlier])


def test_nat_end_with_numeric_times_gets_a_true_message():
    end = pd.to_datetime([None, "2020-01-05", None])
    with pytest.raises(PathwaysInputError, match=r"column 'end' holds datetimes but 'time' holds numbers"):
        EventLog.from_pandas(_events(end=end))


def test_all_nat_end_with_numeric_times_means_no_end():
    log = EventLog.from_pandas(_events(end=pd.to_datetime([None, None, None])))
    assert np.isnan(log.end).all()


def test_numeric_end_with_datetime_times_is_named():
    with pytest.raises(PathwaysInputError, match=r"column 'end' holds numbers but 'time' holds datetimes"):
        EventLog.from_pandas(_events(time=["2020-01-01"] * 3, end=[1.0, 2.0, 3.0]))


# -- raw exceptions turned into clear errors -------------------------------------------------------------------
@pytest.mark.parametrize("column, value", [("patient_id", [A, "x"]), ("code", ["a", "b"]),
                                           ("patient_id", {"id": A}), ("code", np.array([1, 2]))])
def test_list_valued_cells_name_column_and_row(column, value):
    cells = {"patient_id": [A, A, B], "code": ["x", "y", "x"]}
    cells[column] = list(cells[column])
    cells[column][1] = value
    events = pd.DataFrame({"patient_id": pd.Series(cells["patient_id"], dtype=object), "time": [1.0, 2.0, 3.0],
                           "code": pd.Series(cells["code"], dtype=object)})
    with pytest.raises(PathwaysInputError, match=rf"column '{column}': 1 of 3 rows hold a list, dict or array; "
                                                  r"first at row 1|column '" + column + r"': 1 of 3 rows hold") as info:
        EventLog.from_pandas(events)
    assert_no_id(str(info.value))


def test_to_parquet_onto_a_directory_is_refused_and_writes_nothing(tmp_path):
    log = EventLog.from_pandas(_events())
    target = tmp_path / "out.parquet"
    target.mkdir()
    with pytest.raises(PathwaysInputError, match=r"is a directory; give a file path"):
        log.to_parquet(target)
    assert list(tmp_path.iterdir()) == [target] and not any(target.iterdir())


@pytest.mark.parametrize("text, words", [
    ("patient_id,time,code\np,1,x\nq,2,\"y\n", r"EOF inside string|cannot read csv file"),
    (f"patient_id,time,code\n{A},1,x\n{B},2,x,EXTRA,MORE\n", r"Expected 3 fields in line 3, saw 5"),
    ("", r"No columns to parse"),
])
def test_truncated_ragged_or_empty_csv_name_the_file_never_a_value(tmp_path, text, words):
    path = _csv(tmp_path, text)
    with pytest.raises(PathwaysInputError, match=r"cannot read csv file .*events\.csv") as info:
        EventLog.read_csv(path)
    assert pytest.importorskip("re").search(words, str(info.value))
    assert_no_id(str(info.value))


def test_short_row_is_a_missing_code_named_by_row(tmp_path):
    path = _csv(tmp_path, f"patient_id,time,code\n{A},1,x\n{B},2\n")
    with pytest.raises(PathwaysInputError, match=r"column 'code': 1 of 2 rows have a missing.*first at row 1") as info:
        EventLog.read_csv(path)
    assert_no_id(str(info.value))


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "utf-8-sig", "cp1252"])
def test_encodings_are_detected(tmp_path, encoding):
    path = _csv(tmp_path, "patient_id,time,code\nRené,1,Éthanol\n", encoding=encoding)
    log = EventLog.read_csv(path)
    assert log.patients["patient_id"].tolist() == ["René"] and log.vocab.codes.tolist() == ["Éthanol"]


def test_non_utf8_byte_beyond_the_sample_is_a_clear_error(tmp_path):
    head = "patient_id,time,code\n" + "p,1,x\n" * 20_000
    path = tmp_path / "events.csv"
    path.write_bytes(head.encode() + "q,2,caf\xe9\n".encode("latin-1"))
    with pytest.raises(PathwaysInputError, match=r"not valid utf-8 at byte \d+; pass read_kwargs=\{'encoding'"):
        EventLog.read_csv(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(PathwaysInputError, match=r"file not found: .*nothere\.csv"):
        EventLog.read_csv(tmp_path / "nothere.csv")


def test_swapped_columns_never_echo_an_identifier():
    events = pd.DataFrame({"patient_id": ["2020-01-01", "2020-01-02"], "time": [A, B], "code": ["x", "y"]})
    with pytest.raises(PathwaysInputError, match=r"column 'time': 2 of 2 rows .*first at row 0") as info:
        EventLog.from_pandas(events)
    assert_no_id(str(info.value))


@pytest.mark.parametrize("column", ["birth", "death", "sex"])
def test_swapped_patient_columns_never_echo_an_identifier(column):
    events = pd.DataFrame({"patient_id": ["p1", "p2"], "time": ["2020-01-01", "2020-01-02"], "code": ["x", "y"]})
    patients = pd.DataFrame({"patient_id": ["p1", "p2"], column: [A, B]})
    with pytest.raises(PathwaysInputError, match=rf"column 'patients.{column}': 2 of 2 rows") as info:
        EventLog.from_pandas(events, patients)
    assert_no_id(str(info.value))


def test_reversed_window_names_window():
    with pytest.raises(PathwaysInputError, match=r"window: start 5.0 after end 1.0"):
        EventLog.from_pandas(_events()).window(5, 1)


def test_nothing_is_lost_silently_when_rows_are_dropped():
    events = _events(code=["x", " ", "x"], time=[1.0, 2.0, 1e13])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log = EventLog.from_pandas(events, on_invalid="drop")
    counted = sum(int(str(w.message).split(": ")[2].split(" of ")[0]) for w in caught
                  if issubclass(w.category, PathwaysDataWarning))
    assert log.n_events + counted == len(events)


def test_headerless_csv_never_lists_its_first_row(tmp_path):
    path = _csv(tmp_path, f"{A},1,x\n{B},2,y\n")
    with pytest.raises(PathwaysInputError, match=r"events: missing column\(s\) patient_id, time, code; none found "
                                                  r"among the 3 columns") as info:
        EventLog.read_csv(path)
    assert_no_id(str(info.value))


def test_partly_wrong_header_lists_the_columns():
    with pytest.raises(PathwaysInputError, match=r"missing column\(s\) code; available: \['patient_id', 'time', "
                                                  r"'atc'\]"):
        EventLog.from_pandas(pd.DataFrame({"patient_id": [A], "time": [1.0], "atc": ["x"]}))

"""Bad-input corpus of read_omop (issue 12): malformed optional tables reported and skipped, required tables one
clear error, vendor columns, upper-case names, text dates, raw CSV errors without values."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from corpus_readers import OMOP_EVENTS, assert_no_id, events_of, omop_tables, write_omop_csv, write_omop_duckdb

duckdb = pytest.importorskip("duckdb", reason="duckdb is the optional 'omop' extra")

from pathways.errors import PathwaysDataWarning, PathwaysInputError  # noqa: E402
from pathways.io import read_omop  # noqa: E402


def _read(source, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log, report = read_omop(source, return_report=True, **kwargs)
    return log, report, [str(w.message) for w in caught if issubclass(w.category, PathwaysDataWarning)]


def test_clean_duckdb_file_gives_the_hand_computed_events(tmp_path):
    log, _, _ = _read(write_omop_duckdb(tmp_path / "cdm.duckdb"))
    assert events_of(log) == OMOP_EVENTS


@pytest.mark.parametrize("death_events", [True, False])
def test_malformed_optional_death_table_is_reported_and_skipped(tmp_path, death_events):
    db = write_omop_duckdb(tmp_path / "cdm.duckdb", malformed=("death",))
    log, report, warned = _read(db, death_events=death_events)
    step = "death: optional table malformed (missing column(s) ['person_id', 'death_date'])"
    assert report.count(step) == 1
    assert any("death: optional table malformed" in m and "table skipped" in m for m in warned)
    assert events_of(log) == {e for e in OMOP_EVENTS if e[2] != "death"}
    assert log.patients["death"].isna().all()


def test_malformed_optional_table_raises_with_errors_raise(tmp_path):
    db = write_omop_duckdb(tmp_path / "cdm.duckdb", malformed=("death",))
    with pytest.raises(PathwaysInputError, match=r"death: optional table malformed .* table skipped"):
        read_omop(db, errors="raise")


def test_malformed_observation_period_is_skipped(tmp_path):
    log, report, _ = _read(write_omop_duckdb(tmp_path / "cdm.duckdb", malformed=("observation_period",)))
    assert report.count("observation_period: optional table malformed (missing column(s) ['person_id', "
                        "'observation_period_start_date', 'observation_period_end_date'])") == 1
    assert events_of(log) == OMOP_EVENTS


def test_malformed_concept_table_leaves_concept_ids(tmp_path):
    log, report, _ = _read(write_omop_duckdb(tmp_path / "cdm.duckdb", malformed=("concept",)))
    assert sorted(log.vocab.codes.tolist()) == ["1125315", "201826", "320128", "death"]
    assert report.count("concept: optional table malformed (missing column(s) ['concept_id', 'vocabulary_id', "
                        "'concept_code'])") == 1


def test_empty_optional_death_table_is_no_death(tmp_path):
    tables = omop_tables()
    tables["death"] = tables["death"].iloc[:0]
    log, report, _ = _read(write_omop_csv(tmp_path / "cdm", tables))
    assert report.count("death rows") == 0 and log.patients["death"].isna().all()


def test_empty_zero_byte_death_file_is_reported_and_skipped(tmp_path):
    folder = write_omop_csv(tmp_path / "cdm")
    (folder / "death.csv").write_bytes(b"")
    log, report, _ = _read(folder)
    assert report.count("death: optional table malformed (missing column(s) ['person_id', 'death_date'])") == 1
    assert events_of(log) == {e for e in OMOP_EVENTS if e[2] != "death"}


def test_missing_person_table_is_one_clear_error(tmp_path):
    tables = omop_tables()
    del tables["person"]
    with pytest.raises(PathwaysInputError, match=r"table 'person' not found; available tables"):
        read_omop(write_omop_duckdb(tmp_path / "cdm.duckdb", tables))


def test_malformed_person_table_is_one_clear_error(tmp_path):
    with pytest.raises(PathwaysInputError, match=r"table 'person': missing column\(s\) \['person_id', "
                                                  r"'year_of_birth'\]"):
        read_omop(write_omop_duckdb(tmp_path / "cdm.duckdb", malformed=("person",)))


def test_malformed_explicit_domain_is_one_clear_error(tmp_path):
    with pytest.raises(PathwaysInputError, match=r"table 'condition_occurrence': missing column\(s\)"):
        read_omop(write_omop_duckdb(tmp_path / "cdm.duckdb", malformed=("condition_occurrence",)))


def test_extra_vendor_columns_change_nothing(tmp_path):
    tables = omop_tables()
    for name, frame in tables.items():
        frame["vendor_batch_id"] = "B-17"
        frame["x_source_system"] = 3
    log, _, _ = _read(write_omop_duckdb(tmp_path / "cdm.duckdb", tables))
    assert events_of(log) == OMOP_EVENTS


@pytest.mark.parametrize("writer", ["csv", "duckdb"])
def test_upper_case_column_names(tmp_path, writer):
    tables = {k: v.rename(columns=str.upper) for k, v in omop_tables().items()}
    source = (write_omop_csv(tmp_path / "cdm", tables) if writer == "csv"
              else write_omop_duckdb(tmp_path / "cdm.duckdb", tables))
    log, _, _ = _read(source)
    assert events_of(log) == OMOP_EVENTS


@pytest.mark.parametrize("fmt", ["%Y-%m-%d", "%Y-%m-%d 00:00:00", "%Y/%m/%d"])
def test_string_typed_dates_in_a_database(tmp_path, fmt):
    tables = omop_tables()
    for frame in tables.values():
        for col in [c for c in frame.columns if c.endswith("_date")]:
            frame[col] = pd.to_datetime(frame[col]).dt.strftime(fmt).astype(str)
    log, _, _ = _read(write_omop_duckdb(tmp_path / "cdm.duckdb", tables))
    assert events_of(log) == OMOP_EVENTS


@pytest.mark.parametrize("year", ["abc", "19x0", "1,950"])
def test_non_numeric_year_of_birth_is_counted(tmp_path, year):
    tables = omop_tables()
    tables["person"]["year_of_birth"] = [year, "1980"]
    log, report, _ = _read(write_omop_csv(tmp_path / "cdm", tables))
    assert report.count("person: birth date invalid or out of date_range") == 1
    assert np.isnan(log.patients["birth"].iloc[0]) and np.isfinite(log.patients["birth"].iloc[1])


def test_non_numeric_year_of_birth_raises_with_errors_raise(tmp_path):
    tables = omop_tables()
    tables["person"]["year_of_birth"] = ["abc", "1980"]
    with pytest.raises(PathwaysInputError, match=r"person: birth date invalid or out of date_range: 1 of 2"):
        read_omop(write_omop_csv(tmp_path / "cdm", tables), errors="raise")


SECRET = "SECRETPERSON99"


@pytest.mark.parametrize("tail, words", [
    (f"{SECRET},1950,1,1,8507,EXTRA\n", r"person.csv: line 4: expected 5 columns, found 6"),
    (f'"{SECRET},1950\n', r"person.csv: .*(quote|line)"),
    (f"{SECRET},1950\n", r"person.csv: line 4: expected 5 columns, found 2"),
])
def test_raw_csv_errors_name_file_and_line_never_the_line(tmp_path, tail, words):
    folder = write_omop_csv(tmp_path / "cdm")
    path = folder / "person.csv"
    path.write_text(path.read_text() + tail)
    with pytest.raises(PathwaysInputError, match=words) as info:
        read_omop(folder)
    assert_no_id(str(info.value), (SECRET,))


def test_duplicate_person_files_are_ambiguous(tmp_path):
    folder = write_omop_csv(tmp_path / "cdm")
    (folder / "old").mkdir()
    omop_tables()["person"].to_csv(folder / "old" / "person.csv", index=False)
    with pytest.raises(PathwaysInputError, match=r"table 'person': several candidate files \['old/person.csv', "
                                                  r"'person.csv'\]"):
        read_omop(folder)


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_encodings_are_detected(tmp_path, encoding):
    tables = omop_tables()
    tables["concept"]["vocabulary_id"] = ["SNOMÉD", "SNOMÉD", "RxNorm"]
    folder = tmp_path / "cdm"
    folder.mkdir()
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False, encoding=encoding)
    log, _, _ = _read(folder)
    assert {c for c in log.vocab.codes if c.startswith("SNOM")} == {"SNOMÉD:44054006", "SNOMÉD:38341003"}


def test_list_cells_in_a_dataframe_table_name_table_column_and_row():
    tables = omop_tables()
    tables["person"]["person_id"] = pd.Series([[1, 2], 2], dtype=object)
    with pytest.raises(PathwaysInputError, match=r"tables\['person'\]: column 'person_id': 1 of 2 rows hold a "
                                                  r"list, dict or array instead of a single value; first at row 0"):
        read_omop(None, tables=tables)


def test_mixed_type_year_of_birth_in_a_dataframe_is_counted():
    tables = omop_tables()
    tables["person"]["year_of_birth"] = pd.Series([1950, "abc"], dtype=object)
    log, report, _ = _read(None, tables=tables)
    assert report.count("person: birth date invalid or out of date_range") == 1
    assert np.isfinite(log.patients["birth"].iloc[0]) and np.isnan(log.patients["birth"].iloc[1])


def test_headerless_person_file_never_lists_its_first_row(tmp_path):
    folder = write_omop_csv(tmp_path / "cdm")
    (folder / "person.csv").write_text(f"{SECRET},1950,6,15,8507\nSECRETPERSON98,1980,7,16,8532\n")
    with pytest.raises(PathwaysInputError, match=r"table 'person': missing column\(s\) \['person_id', "
                                                  r"'year_of_birth'\]; none of them among the 5 columns found: does "
                                                  r"the first line hold the column names\?") as info:
        read_omop(folder)
    assert_no_id(str(info.value), (SECRET, "SECRETPERSON98"))


def test_headerless_file_with_repeated_values_names_positions_only(tmp_path):
    folder = write_omop_csv(tmp_path / "cdm")
    (folder / "person.csv").write_text(f"{SECRET},1,1,1,8507\n")
    with pytest.raises(PathwaysInputError, match=r"person.csv: header line has repeated column name\(s\) at "
                                                  r"positions \[1, 2, 3\]") as info:
        read_omop(folder)
    assert_no_id(str(info.value), (SECRET,))


@pytest.mark.parametrize("when, step", [("1940-01-01", "events before birth"), ("2022-06-01", "events after death")])
def test_events_outside_life_are_kept_and_counted(tmp_path, when, step):
    tables = omop_tables()
    tables["condition_occurrence"].loc[1, ["condition_start_date", "condition_end_date"]] = when
    tables["observation_period"]["observation_period_start_date"] = "1930-01-01"
    tables["observation_period"]["observation_period_end_date"] = "2023-01-01"
    log, report, warned = _read(write_omop_duckdb(tmp_path / "cdm.duckdb", tables))
    assert report.count(step) == 1 and log.n_events == len(OMOP_EVENTS)
    assert any(step in m and "1 of 4" in m for m in warned)

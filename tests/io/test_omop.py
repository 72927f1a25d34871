"""read_omop on a messy OMOP CDM written by the tests: exact EventLog, counted decisions, sources, errors."""
from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
import pytest

duckdb = pytest.importorskip("duckdb", reason="duckdb is the optional 'omop' extra")
pytestmark = pytest.mark.filterwarnings("ignore::pathways.errors.PathwaysDataWarning")

from omop_fixture import (  # noqa: E402
    EXPECTED_COUNTS, EXPECTED_EVENTS, EXPECTED_PATIENTS, TABLES, day, write_csv_folder, write_parquet_folder,
)

from pathways.data import EventLog  # noqa: E402
from pathways.errors import PathwaysDataWarning, PathwaysInputError  # noqa: E402
from pathways.io import ReadReport, read_omop  # noqa: E402


def _read(source, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PathwaysDataWarning)
        return read_omop(source, return_report=True, **kwargs)


def _events(log: EventLog) -> list[tuple]:
    ev, _ = log.to_pandas()
    return [
        (int(log.patient[i]), float(ev["time"].iloc[i]), str(ev["code"].iloc[i]),
         None if np.isnan(ev["end"].iloc[i]) else float(ev["end"].iloc[i]),
         None if np.isnan(ev["value"].iloc[i]) else float(ev["value"].iloc[i]), str(ev["category"].iloc[i]))
        for i in range(len(ev))
    ]


def _expected() -> list[tuple]:
    return [(p, day(t), c, None if e is None else day(e), v, cat) for p, t, c, e, v, cat in EXPECTED_EVENTS]


@pytest.fixture()
def csv_folder(tmp_path):
    return write_csv_folder(tmp_path / "omop_csv")


def test_csv_folder_gives_the_hand_computed_eventlog(csv_folder):
    log, report = _read(csv_folder)
    assert _events(log) == _expected()
    pts = log.patients
    exp = EXPECTED_PATIENTS
    assert pts["patient_id"].tolist() == exp["patient_id"].tolist()
    for col in ("birth", "death", "start", "end"):
        np.testing.assert_array_equal(pts[col].to_numpy(float), exp[col].to_numpy(float), err_msg=col)
    assert [None if pd.isna(s) else s for s in pts["sex"]] == [None if pd.isna(s) else s for s in exp["sex"]]
    assert pts["n_observation_periods"].tolist() == exp["n_observation_periods"].tolist()
    assert pts.loc[3, "death_cause"] == "SNOMED:44054006"
    assert log.origin == pd.Timestamp("1970-01-01") and log.time_unit == "days"


def test_every_messy_case_is_a_counted_decision(csv_folder):
    _, report = _read(csv_folder)
    assert isinstance(report, ReadReport)
    for step, count in EXPECTED_COUNTS.items():
        assert report.count(step) == count, step
    frame = report.to_frame()
    assert list(frame.columns) == ["step", "decision", "count", "total", "detail"]


def test_report_attached_to_patients_attrs_and_warnings_emitted(csv_folder):
    with pytest.warns(PathwaysDataWarning, match="duplicate person_id"):
        log = read_omop(csv_folder)
    attached = log.patients.attrs["read_report"]
    assert isinstance(attached, pd.DataFrame)
    assert int(attached.loc[attached["step"] == "duplicate events", "count"].iloc[0]) == 1


def test_parquet_folder_duckdb_file_and_connection_agree(csv_folder, tmp_path):
    ref, _ = _read(csv_folder)
    parquet = write_parquet_folder(tmp_path / "omop_parquet")
    from_parquet, _ = _read(parquet)
    db_path = tmp_path / "cdm.duckdb"
    con = duckdb.connect(str(db_path))
    for name in TABLES:
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{parquet / (name + '.parquet')}')")
    con.close()
    from_file, _ = _read(db_path)
    con = duckdb.connect(str(db_path), read_only=True)
    from_con, _ = _read(con)
    con.execute("SELECT 1").fetchall()  # a connection passed in stays open
    con.close()
    for other in (from_parquet, from_file, from_con):
        assert _events(other) == _events(ref)
        np.testing.assert_array_equal(other.patients["end"].to_numpy(float), ref.patients["end"].to_numpy(float))


def test_dataframe_tables_without_a_folder():
    log, _ = _read(None, tables=TABLES)
    assert _events(log) == _expected()


def test_drug_ingredients_expand_combination_drugs(csv_folder):
    log, report = _read(csv_folder, drug_ingredients=True)
    ev = _events(log)
    combo_day = day("2011-04-01")
    assert sorted(c for p, t, c, *_ in ev if p == 1 and t == combo_day) == ["RxNorm:1191", "RxNorm:161"]
    assert report.count("drug_exposure: combination drugs") == 1
    assert "RxNorm:12345" not in log.vocab


def test_outside_observation_keep_keeps_the_event(csv_folder):
    log, report = _read(csv_folder, outside_observation="keep")
    assert (0, day("2013-06-01"), "RxNorm:161", day("2013-06-30"), 1.0, "drug") in _events(log)
    assert report.count("events outside every observation period") == 1


def test_no_concept_table_uses_concept_ids(tmp_path):
    folder = write_csv_folder(tmp_path / "no_concept", skip=("concept", "concept_ancestor"))
    log, _ = _read(folder)
    assert set(log.vocab.codes) == {"1125315", "19019073", "201826", "3004249", "death"}


def test_domains_select_tables_and_header_only_table_is_empty(csv_folder):
    log, report = _read(csv_folder, domains=["procedure"])
    assert set(pd.Series(log.category).dropna()) == {"death"}
    assert report.count("procedure_occurrence rows") == 0


def test_missing_drug_table_falls_back_to_drug_era(tmp_path):
    folder = write_csv_folder(tmp_path / "eras", skip=("drug_exposure",))
    pd.DataFrame({"drug_era_id": [1], "person_id": [1], "drug_concept_id": [1125315],
                  "drug_era_start_date": ["2010-02-01"], "drug_era_end_date": ["2010-04-01"]}).to_csv(
        folder / "drug_era.csv", index=False)
    log, _ = _read(folder)
    drugs = [e for e in _events(log) if e[5] == "drug"]
    assert drugs == [(0, day("2010-02-01"), "RxNorm:161", day("2010-04-01"), None, "drug")]


def test_errors_raise_turns_a_decision_into_an_error(csv_folder):
    with pytest.raises(PathwaysInputError, match="duplicate person_id"):
        read_omop(csv_folder, errors="raise")


def test_missing_table_column_and_domain_are_named(tmp_path, csv_folder):
    folder = write_csv_folder(tmp_path / "no_person", skip=("person",))
    with pytest.raises(PathwaysInputError, match="'person' not found"):
        read_omop(folder)
    broken = dict(TABLES, drug_exposure=TABLES["drug_exposure"].drop(columns="drug_concept_id"))
    with pytest.raises(PathwaysInputError, match="drug_concept_id"):
        _read(None, tables=broken)
    with pytest.raises(PathwaysInputError, match="visit_occurrence"):
        read_omop(csv_folder, domains=["visit"])
    with pytest.raises(PathwaysInputError, match="unknown domain"):
        read_omop(csv_folder, domains=["genome"])
    with pytest.raises(PathwaysInputError, match="not found"):
        read_omop(tmp_path / "nowhere")


def test_no_patient_identifier_in_warnings(csv_folder):
    tables = {k: v.copy() for k, v in TABLES.items()}
    for frame in tables.values():
        if "person_id" in frame:
            frame["person_id"] = frame["person_id"].map(lambda i: f"SECRET{i:04d}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log = read_omop(None, tables=tables)
    assert log.patients["patient_id"].tolist() == ["SECRET0001", "SECRET0002", "SECRET0003", "SECRET0004"]
    assert caught and not any("SECRET" in str(w.message) for w in caught)


def test_missing_duckdb_names_the_extra(monkeypatch, csv_folder):
    monkeypatch.setitem(sys.modules, "duckdb", None)
    with pytest.raises(ImportError, match=r"pathways\[omop\]"):
        read_omop(csv_folder)


def test_keep_unmapped_keeps_concept_zero_as_code_0(csv_folder):
    log, report = _read(csv_folder, keep_unmapped=True)
    assert (0, day("2010-05-01"), "0", day("2010-05-30"), 1.0, "drug") in _events(log)
    assert report.count("drug_exposure: concept id 0 or NULL") == 1


def test_no_module_level_duckdb_import_in_pathways_io():
    """duckdb is optional: pathways.io may import it only inside functions."""
    import ast
    from pathlib import Path

    import pathways.io

    for path in Path(pathways.io.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "duckdb" for n in names), path.name

"""Bad-input corpus of read_snds (issue 12, issue 17's amounts): ambiguous tables, counted decisions, DuckDB
errors rewritten without raw lines, encodings, windows checked first, net amounts of re-billed services."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from corpus_readers import A, B, assert_no_id, day, events_of, snds_tables, write_snds

duckdb = pytest.importorskip("duckdb", reason="duckdb is the optional 'omop' extra")

from pathways.errors import PathwaysDataWarning, PathwaysInputError  # noqa: E402
from pathways.io import read_snds  # noqa: E402

DRUGS = ("dcir_drugs",)


def _read(folder, sources=DRUGS, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log, report = read_snds(folder, sources=sources, return_report=True, **kwargs)
    for w in caught:
        assert_no_id(str(w.message))
    assert_no_id(report.to_frame().to_string())
    return log, report


BASE = {(A, day("2020-01-10"), "CIP13:3400930000001"), (B, day("2020-03-05"), "CIP13:3400930000002")}


def test_clean_extract_gives_the_hand_computed_events(tmp_path):
    log, _ = _read(write_snds(tmp_path))
    assert events_of(log) == BASE


# -- ambiguity --------------------------------------------------------------------------------------------------
def test_several_candidate_files_are_an_error_naming_them(tmp_path):
    folder = write_snds(tmp_path)
    (folder / "A_backup").mkdir()
    snds_tables()["ER_PHA_F"].iloc[:1].to_csv(folder / "A_backup" / "ER_PHA_F.csv", index=False)
    with pytest.raises(PathwaysInputError, match=r"table 'ER_PHA_F': several candidate files "
                                                  r"\['A_backup/ER_PHA_F.csv', 'DCIR/ER_PHA_F.csv'\].*tables="):
        read_snds(folder, sources=DRUGS)


def test_an_explicit_table_settles_the_ambiguity(tmp_path):
    folder = write_snds(tmp_path)
    (folder / "A_backup").mkdir()
    snds_tables()["ER_PHA_F"].iloc[:1].to_csv(folder / "A_backup" / "ER_PHA_F.csv", index=False)
    log, _ = _read(folder, tables={"ER_PHA_F": folder / "DCIR" / "ER_PHA_F.csv"})
    assert events_of(log) == BASE


def test_csv_and_parquet_copies_of_one_table_are_ambiguous(tmp_path):
    folder = write_snds(tmp_path)
    snds_tables()["ER_PHA_F"].to_parquet(folder / "DCIR" / "ER_PHA_F.parquet")
    with pytest.raises(PathwaysInputError, match=r"DCIR/ER_PHA_F.csv', 'DCIR/ER_PHA_F.parquet'"):
        read_snds(folder, sources=DRUGS)


# -- counted decisions --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("qty, step, value", [
    ("abc", "ER_PHA_F: PHA_ACT_QSN not a number", None),
    ("1,5", "ER_PHA_F: PHA_ACT_QSN with a decimal comma", 1.5),
    (" 2 ", None, 2.0),
])
def test_quantities_are_parsed_or_counted(tmp_path, qty, step, value):
    tables = snds_tables(pha=[("1", "3400930000001", qty), ("2", "3400930000002", "1")])
    log, report = _read(write_snds(tmp_path, tables, sep=";"))
    got = dict(zip(log.patient_ids(), log.value))
    assert (np.isnan(got[A]) if value is None else got[A] == value)
    if step:
        assert report.count(step) == 1
    assert log.n_events == 2  # kept, not silently lost


def test_non_numeric_quantity_raises_with_errors_raise(tmp_path):
    tables = snds_tables(pha=[("1", "3400930000001", "abc"), ("2", "3400930000002", "1")])
    with pytest.raises(PathwaysInputError, match=r"PHA_ACT_QSN not a number: 1 of 2 \(50.0%\) rows"):
        read_snds(write_snds(tmp_path, tables), sources=DRUGS, errors="raise")


def test_death_before_birth_is_counted_and_death_unknown(tmp_path):
    tables = snds_tables(ben=[(A, "1", "1950", "1", "1", "1940-05-01"), (B, "1", "1960", "6", "2", "1600-01-01")])
    log, report = _read(write_snds(tmp_path, tables))
    assert report.count("IR_BEN_R: BEN_DCD_DTE before birth") == 1
    assert log.patients["death"].isna().all()


@pytest.mark.parametrize("rule, n_events", [("drop", 1), ("keep", 2)])
def test_events_before_birth_are_counted(tmp_path, rule, n_events):
    tables = snds_tables(ben=[(A, "1", "2021", "1", "1", "1600-01-01"), (B, "1", "1960", "6", "2", "1600-01-01")])
    log, report = _read(write_snds(tmp_path, tables), events_before_birth=rule)
    assert report.count("events before birth") == 1 and log.n_events == n_events


def test_events_before_birth_raise_with_errors_raise(tmp_path):
    tables = snds_tables(ben=[(A, "1", "2021", "1", "1", "1600-01-01"), (B, "1", "1960", "6", "2", "1600-01-01")])
    with pytest.raises(PathwaysInputError, match=r"events before birth: 1 of 2"):
        read_snds(write_snds(tmp_path, tables), sources=DRUGS, errors="raise")


@pytest.mark.parametrize("empty", ["", "   "])
def test_empty_ben_nir_psa_is_counted_with_the_right_reason(tmp_path, empty):
    tables = snds_tables(prs=[(empty, "2020-01-10", "0", "1", "PHA1", "10.0", "15.0"),
                              (B, "2020-03-05", "0", "2", "PHA2", "7.5", "11.0")])
    log, report = _read(write_snds(tmp_path, tables))
    assert report.count("ER_PHA_F: BEN_NIR_PSA empty in the matching ER_PRS_F line") == 1
    assert report.count("ER_PHA_F: no matching ER_PRS_F line on the 9 DCIR keys") == 0
    assert log.n_events == 1


# -- arguments checked before any table is read ---------------------------------------------------------------
@pytest.mark.parametrize("window, words", [
    (("abc", "2020-12-31"), r"window: expected \(start, end\) dates"),
    (("2020-12-31", "2020-01-01"), r"window: start 2020-12-31 after end 2020-01-01 \(reversed\)"),
    (("2020-01-01",), r"window: expected \(start, end\) dates"),
    ("2020", r"window: expected \(start, end\) dates"),
    ((None, "2020-01-01"), r"window: start and end must both be dates"),
])
def test_bad_windows_are_named_before_reading(tmp_path, window, words):
    with pytest.raises(PathwaysInputError, match=words):
        read_snds(tmp_path / "does-not-exist", window=window)  # no table is opened first


def test_bad_date_range_is_named(tmp_path):
    with pytest.raises(PathwaysInputError, match=r"date_range: expected \(start, end\) dates"):
        read_snds(tmp_path / "does-not-exist", date_range=("x", "y"))


# -- raw files: DuckDB errors rewritten ---------------------------------------------------------------------------
def _prs_text(tmp_path, lines: list[str]):
    folder = write_snds(tmp_path)
    path = folder / "DCIR" / "ER_PRS_F.csv"
    header = path.read_text().splitlines()[0]
    path.write_text("\n".join([header, *lines]) + "\n")
    return folder


def _prs_line(pid: str, extra: str = "") -> str:
    row = snds_tables()["ER_PRS_F"].iloc[0].copy()
    row["BEN_NIR_PSA"] = pid
    return ",".join(map(str, row.tolist())) + extra


@pytest.mark.parametrize("lines, words", [
    ([_prs_line(A), _prs_line(B, ",EXTRA")], r"DCIR/ER_PRS_F.csv: line 3: expected \d+ columns, found \d+"),
    ([_prs_line(B, ",X")], r"DCIR/ER_PRS_F.csv: line 2: expected \d+ columns, found \d+"),
    ([_prs_line(A), _prs_line(B)[:25]], r"DCIR/ER_PRS_F.csv: line 3: expected \d+ columns, found \d+"),
    ([_prs_line(A), '"' + _prs_line(B)], r"DCIR/ER_PRS_F.csv: .*(quote|line)"),
])
def test_ragged_or_truncated_csv_names_file_and_line_never_the_line(tmp_path, lines, words):
    with pytest.raises(PathwaysInputError, match=words) as info:
        read_snds(_prs_text(tmp_path, lines), sources=DRUGS)
    assert_no_id(str(info.value)) and "Original Line" not in str(info.value)
    assert info.value.__cause__ is None or "Original Line" not in str(info.value.__cause__ or "")


def test_repeated_header_names_are_an_error(tmp_path):
    folder = write_snds(tmp_path)
    path = folder / "DCIR" / "ER_PHA_F.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0].replace("PHA_ACT_QSN", "PHA_PRS_C13"), *lines[1:]]) + "\n")
    with pytest.raises(PathwaysInputError, match=r"ER_PHA_F.csv: header line has repeated column name\(s\) at positions \[1, 2\]"):
        read_snds(folder, sources=DRUGS)


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "utf-8-sig"])
def test_encodings_are_detected(tmp_path, encoding):
    tables = snds_tables()
    tables["ER_PRS_F"]["PFS_EXE_NUM"] = ["PHARMACIE_É1", "PHARMACIE_È2"]
    log, _ = _read(write_snds(tmp_path, tables, encoding=encoding))
    assert events_of(log) == BASE
    assert sorted(log.extras["provider"]) == ["PHARMACIE_È2", "PHARMACIE_É1"]


def test_header_only_detail_table_gives_no_events_of_it(tmp_path):
    folder = write_snds(tmp_path)
    pd.DataFrame(columns=["DCT_ORD_NUM", "CAM_PRS_IDE", *snds_tables()["ER_PHA_F"].columns[3:]]).to_csv(
        folder / "DCIR" / "ER_CAM_F.csv", index=False)
    log, report = _read(folder, sources=("dcir_drugs", "dcir_acts"))
    assert report.count("ER_CAM_F rows") == 0 and events_of(log) == BASE


# -- issue 17: net amount per service ---------------------------------------------------------------------------
PRS_REBILL = [(A, "2020-01-10", "0", "1", "PHA1", "10.0", "15.0"),    # dispensation
              (A, "2020-01-10", "0", "2", "PHA1", "-10.0", "-15.0"),  # its cancellation
              (A, "2020-01-10", "0", "3", "PHA1", "10.0", "15.0"),    # the identical re-billing
              (B, "2020-03-05", "0", "4", "PHA2", "7.5", "11.0")]
PHA_REBILL = [("1", "3400930000001", "2"), ("2", "3400930000001", "-2"), ("3", "3400930000001", "2"),
              ("4", "3400930000002", "1")]


@pytest.mark.parametrize("duplicates, n_events", [("drop", 2), ("keep", 3)])
def test_cancel_and_rebill_keep_the_whole_net_amount(tmp_path, duplicates, n_events):
    log, report = _read(write_snds(tmp_path, snds_tables(PRS_REBILL, PHA_REBILL)), duplicates=duplicates)
    ev, _ = log.to_pandas()
    assert len(ev) == n_events
    assert ev.groupby("patient_id")["paid"].sum().to_dict() == {A: 10.0, B: 7.5}  # 10 - 10 + 10
    assert ev.groupby("patient_id")["base"].sum().to_dict() == {A: 15.0, B: 11.0}
    assert report.count("ER_PHA_F: PHA_ACT_QSN <= 0 (regularisation)") == 1


def test_two_identical_dispensations_sum_their_amounts(tmp_path):
    prs = [(A, "2020-01-10", "0", "1", "PHA1", "10.0", "15.0"), (A, "2020-01-10", "0", "2", "PHA1", "10.0", "15.0")]
    pha = [("1", "3400930000001", "2"), ("2", "3400930000001", "2")]
    log, report = _read(write_snds(tmp_path, snds_tables(prs, pha)))
    assert log.n_events == 1 and log.extras["paid"].tolist() == [20.0] and log.extras["base"].tolist() == [30.0]
    assert report.count("duplicate events") == 1


def test_synthetic_snds_amounts_and_providers_match_the_tables(tmp_path):
    from pathways.synthetic.snds import write_snds as write_synthetic

    write_synthetic(tmp_path, 150, seed=5)
    log, _ = _read(tmp_path)
    con = duckdb.connect()
    keys = " AND ".join(f"h.{k} = p.{k}" for k in ("DCT_ORD_NUM", "FLX_DIS_DTD", "FLX_EMT_NUM", "FLX_EMT_ORD",
                                                   "FLX_EMT_TYP", "FLX_TRT_DTD", "ORG_CLE_NUM", "PRS_ORD_NUM",
                                                   "REM_TYP_AFF"))
    want = con.execute(
        f"SELECT p.BEN_NIR_PSA AS patient_id, CAST(date_diff('day', DATE '1970-01-01', p.EXE_SOI_DTD) AS DOUBLE) "
        f"AS time, 'CIP13:' || CAST(h.PHA_PRS_C13 AS VARCHAR) AS code, p.PFS_EXE_NUM AS provider, "
        f"sum(p.PRS_PAI_MNT) AS paid, sum(p.BSE_REM_MNT) AS base, bool_or(h.PHA_ACT_QSN > 0) AS dispensed, "
        f"string_agg(DISTINCT p.PFS_PRE_NUM) FILTER (WHERE h.PHA_ACT_QSN > 0) AS prescriber "
        f"FROM read_parquet('{tmp_path}/DCIR/ER_PHA_F/*.parquet') h "
        f"JOIN read_parquet('{tmp_path}/DCIR/ER_PRS_F/*.parquet') p ON {keys} WHERE p.DPN_QLF <> 71 GROUP BY ALL"
    ).df()
    want = want[want["dispensed"]].set_index(["patient_id", "time", "code", "provider"]).sort_index()
    ev, _ = log.to_pandas()
    got = ev.groupby(["patient_id", "time", "code", "provider"]).agg(
        paid=("paid", "sum"), base=("base", "sum"), prescriber=("prescriber", lambda s: ",".join(sorted(set(s.dropna())))))
    got = got.sort_index()
    assert got.index.equals(want.index) and len(got) > 100
    np.testing.assert_allclose(got[["paid", "base"]].to_numpy(), want[["paid", "base"]].to_numpy(), atol=1e-6)
    agg = want["prescriber"].map(lambda s: ",".join(sorted(s.split(","))) if isinstance(s, str) else "")
    assert (got["prescriber"] == agg).all()


@pytest.mark.parametrize("nir", ["", "  "])
def test_empty_nir_ano_17_is_counted_with_the_right_reason(tmp_path, nir):
    folder = write_snds(tmp_path)
    (folder / "PMSI").mkdir()
    pd.DataFrame({"ETA_NUM": ["1", "1"], "RSA_NUM": ["1", "2"], "DGN_PAL": ["I10", "K35"]}).to_csv(
        folder / "PMSI" / "T_MCOaaB.csv", index=False)
    pd.DataFrame({"ETA_NUM": ["1", "1"], "RSA_NUM": ["1", "2"], "NIR_ANO_17": [A, nir],
                  "EXE_SOI_DTD": ["2020-02-02", "2020-02-03"], "EXE_SOI_DTF": ["2020-02-04", "2020-02-05"]}).to_csv(
        folder / "PMSI" / "T_MCOaaC.csv", index=False)
    log, report = _read(folder, sources=("mco",))
    assert report.count("T_MCOaaB: NIR_ANO_17 empty in T_MCOaaC") == 1
    assert report.count("T_MCOaaB: no patient link in T_MCOaaC (ETA_NUM, RSA_NUM)") == 0
    assert events_of(log) == {(A, day("2020-02-02"), "MCO:stay"), (A, day("2020-02-02"), "CIM10:I10")}

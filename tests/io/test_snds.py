"""read_snds on the shared SNDS schemas and on a hand-computed extract written by the tests."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

duckdb = pytest.importorskip("duckdb", reason="duckdb is the optional 'omop' extra")
pytestmark = pytest.mark.filterwarnings("ignore::pathways.errors.PathwaysDataWarning")

import snds_fixture as fx  # noqa: E402

from pathways.errors import PathwaysDataWarning, PathwaysInputError  # noqa: E402
from pathways.io import read_snds  # noqa: E402
from pathways.io.snds import DCIR_KEYS  # noqa: E402

SNDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "snds"


@pytest.fixture(scope="module")
def shared_snds() -> Path:
    if not SNDS.is_dir():
        pytest.skip(f"shared SNDS schemas not found at {SNDS} (../shared is beside the project checkout only)")
    return SNDS


def _events(log) -> set[tuple]:
    ev, _ = log.to_pandas()
    return {
        (r.patient_id, r.time, r.code, None if np.isnan(r.end) else r.end,
         None if np.isnan(r.value) else r.value, str(r.category))
        for r in ev.itertuples(index=False)
    }


def _expected() -> set[tuple]:
    return {(p, fx.day(t), c, None if e is None else fx.day(e), v, cat) for p, t, c, e, v, cat in fx.EXPECTED_EVENTS}


# -- own fixture: exact expectations ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_fixture_gives_the_hand_computed_eventlog(tmp_path, kind):
    folder = fx.write(tmp_path / kind, kind)
    log, report = read_snds(folder, cip_to_atc=fx.CIP_TO_ATC, return_report=True)
    assert _events(log) == _expected()
    assert log.n_events == len(fx.EXPECTED_EVENTS)
    pts = log.patients
    exp = fx.EXPECTED_PATIENTS
    assert pts["patient_id"].tolist() == exp["patient_id"].tolist()
    np.testing.assert_array_equal(pts["birth"].to_numpy(float), exp["birth"].to_numpy(float))
    np.testing.assert_array_equal(pts["death"].to_numpy(float), exp["death"].to_numpy(float))
    assert [None if pd.isna(s) else s for s in pts["sex"]] == [None if pd.isna(s) else s for s in exp["sex"]]
    assert [None if pd.isna(s) else s for s in pts["death_cause"]] == ["C679", None, None, None]
    for step, count in fx.EXPECTED_COUNTS.items():
        assert report.count(step) == count, step


def test_events_are_sorted_and_times_are_days_since_1970(tmp_path):
    log = read_snds(fx.write(tmp_path / "csv"), cip_to_atc=fx.CIP_TO_ATC)
    assert np.all(np.diff(log.patient) >= 0)
    assert log.origin == pd.Timestamp("1970-01-01") and log.time_unit == "days"
    assert np.all(log.time >= log.patients["start"].to_numpy()[log.patient])


def test_options_switch_the_documented_rules(tmp_path):
    folder = fx.write(tmp_path / "csv")
    kept = _events(read_snds(folder, cip_to_atc=fx.CIP_TO_ATC, exclude_information_lines=False,
                             drop_nonpositive_quantity=False, mco_exclude_errors=False,
                             events_after_death="keep", duplicates="keep"))
    A, B = fx.A, fx.B
    assert (A, fx.day("2021-06-01"), "ATC:N02BE01", None, 1.0, "drug") in kept      # after death
    assert (B, fx.day("2020-03-05"), "ATC:N02BE01", None, -1.0, "drug") in kept     # negative quantity
    assert (A, fx.day("2020-01-10"), "ATC:N02BE01", None, 1.0, "drug") in kept      # information line
    assert (B, fx.day("2020-02-01"), "CIM10:I10", None, None, "main_diagnosis") in kept  # error GHM stay
    assert (B, fx.day("2020-05-01"), "CIM10:A41", None, None, "main_diagnosis") in kept  # RET check stay


def test_atc_level_no_mapping_and_source_selection(tmp_path):
    folder = fx.write(tmp_path / "csv")
    level3 = read_snds(folder, cip_to_atc=fx.CIP_TO_ATC, atc_level=3, sources=["dcir_drugs"])
    assert "ATC:N02B" in level3.vocab and "ATC:N02BE01" not in level3.vocab
    assert set(pd.Series(level3.category).dropna()) == {"drug"}
    raw = read_snds(folder, sources=["dcir_drugs"])
    assert set(raw.vocab.codes) == {"CIP13:3400930000001", "CIP13:3400930000002"}


def test_unknown_patients_drop_and_window(tmp_path):
    folder = fx.write(tmp_path / "csv")
    log = read_snds(folder, cip_to_atc=fx.CIP_TO_ATC, unknown_patients="drop",
                    window=("2020-02-01", "2020-12-31"))
    assert fx.C not in set(log.patients["patient_id"])
    assert log.time.min() >= fx.day("2020-02-01")
    assert log.patients["start"].eq(fx.day("2020-02-01")).all()
    a = log.patients.index[log.patients["patient_id"] == fx.A][0]
    assert log.patients.loc[a, "end"] == fx.day("2020-12-31")  # A dies after the window


def test_mco_year_tables_are_found(tmp_path):
    log = read_snds(fx.write(tmp_path / "y19", rename_mco="19"), cip_to_atc=fx.CIP_TO_ATC)
    assert _events(log) == _expected()


def test_cip_mapping_from_a_semicolon_csv(tmp_path):
    path = tmp_path / "IR_PHA_R.csv"
    fx.CIP_TO_ATC.to_csv(path, sep=";", index=False)
    log = read_snds(fx.write(tmp_path / "csv"), cip_to_atc=path, sources=["dcir_drugs"])
    assert "ATC:N02BE01" in log.vocab


def test_bad_input_is_named(tmp_path):
    folder = fx.write(tmp_path / "csv")
    with pytest.raises(PathwaysInputError, match="no matching ER_PRS_F line"):
        read_snds(folder, cip_to_atc=fx.CIP_TO_ATC, errors="raise")
    with pytest.raises(PathwaysInputError, match="PHA_ATC_C07"):
        read_snds(folder, cip_to_atc=fx.CIP_TO_ATC.drop(columns="PHA_ATC_C07"))
    with pytest.raises(PathwaysInputError, match="unknown source"):
        read_snds(folder, sources=["ssr"])
    prs = fx.tables()["ER_PRS_F"].drop(columns="DCT_ORD_NUM")
    with pytest.raises(PathwaysInputError, match="DCT_ORD_NUM"):
        read_snds(folder, tables={"ER_PRS_F": prs})
    with pytest.raises(PathwaysInputError, match="duplicate events"):
        read_snds(folder, cip_to_atc=fx.CIP_TO_ATC, duplicates="raise", exclude_information_lines=False)


def test_warnings_count_and_never_name_patients(tmp_path):
    folder = fx.write(tmp_path / "csv")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_snds(folder, cip_to_atc=fx.CIP_TO_ATC)
    messages = [str(w.message) for w in caught if issubclass(w.category, PathwaysDataWarning)]
    assert any("no matching ER_PRS_F line" in m and "1 of 9" in m for m in messages)
    assert not any(pid in m for m in messages for pid in (fx.A, fx.B, fx.C, fx.D))


# -- shared SNDS schemas ------------------------------------------------------------------------------------------
def test_shared_schemas_are_read_and_dcir_join_matches_pandas(shared_snds):
    log, report = read_snds(shared_snds, events_after_death="keep", death_events=False, events_before_birth="keep",
                            mco_exclude_errors=False, date_range=None, duplicates="keep", return_report=True)
    prs = pd.read_csv(shared_snds / "DCIR" / "ER_PRS_F.csv", dtype=str)
    pha = pd.read_csv(shared_snds / "DCIR" / "ER_PHA_F.csv", dtype=str)
    joined = pha.merge(prs, on=list(DCIR_KEYS), how="inner")
    joined = joined[(joined["DPN_QLF"].astype(int) != 71) & (joined["PHA_ACT_QSN"].astype(int) > 0)]
    expected = {(r.BEN_NIR_PSA, fx.day(r.EXE_SOI_DTD), "CIP13:" + r.PHA_PRS_C13) for r in joined.itertuples()}
    got = {(p, t, c) for p, t, c, _, _, cat in _events(log) if cat == "drug"}
    assert got == expected and len(expected) > 0
    assert report.count("ER_PHA_F rows") == len(pha)
    # PMSI: every kept stay's main diagnosis is a real DGN_PAL of T_MCOaaB
    stays = pd.read_csv(shared_snds / "PMSI" / "PMSI_MCO" / "T_MCOaaB.csv", dtype=str)
    dp = {"CIM10:" + c for c in stays["DGN_PAL"]}
    main = [c for _, _, c, _, _, cat in _events(log) if cat == "main_diagnosis"]
    assert main and set(main) <= dp
    assert report.count("T_MCOaaC: several patient-link rows per stay (ETA_NUM, RSA_NUM)") == 3


def test_shared_schemas_patients_and_causes_of_death(shared_snds):
    log = read_snds(shared_snds)
    ben = pd.read_csv(shared_snds / "BENEFICIAIRE" / "IR_BEN_R.csv", dtype=str)
    assert set(ben["BEN_NIR_PSA"]) <= set(log.patients["patient_id"])
    sex = log.patients.set_index("patient_id")["sex"]
    for row in ben.itertuples():
        assert (sex[row.BEN_NIR_PSA] if not pd.isna(sex[row.BEN_NIR_PSA]) else None) == \
            {"1": "M", "2": "F"}.get(row.BEN_SEX_COD)
    assert log.patients["death_cause"].notna().sum() > 0
    assert log.patients["death_cause"].dropna().str.match(r"^C5\d").all()


def test_memory_limit_and_threads_are_applied(tmp_path):
    folder = fx.write(tmp_path / "csv")
    log = read_snds(folder, cip_to_atc=fx.CIP_TO_ATC, memory_limit="200MB", threads=1)
    assert _events(log) == _expected()
    with pytest.raises(PathwaysInputError, match="DuckDB settings"):
        read_snds(folder, memory_limit="lots")
    with pytest.raises(PathwaysInputError, match="threads"):
        read_snds(folder, threads=0)


@pytest.mark.parametrize("whole_days", [True, False])
def test_fetch_streams_batches_then_sort_orders_every_field(whole_days):
    from pathways.data import Vocabulary
    from pathways.io.build import _fetch_encoded, _sort_events
    from pathways.io.tabular import TableSet

    shift = 0.0 if whole_days else 0.25  # fractional times take the rank path
    con = duckdb.connect()
    con.execute(f"CREATE TABLE ev AS SELECT pid, t + {shift} AS t, e, value, code, cat FROM (VALUES "
                "('b', 3.0, NULL, 2.0, 'x', 1), ('a', 5.0, 6.0, NULL, 'y', 0), ('a', 5.0, NULL, NULL, 'x', 0), "
                "('b', 1.0, 1.5, 1.0, 'z', 1), ('a', 2.0, NULL, 7.0, 'x', 0), ('a', 5.0, NULL, 3.0, 'x', 0)) "
                "t(pid, t, e, value, code, cat)")
    patients = pd.DataFrame({"patient_id": ["a", "b"]})
    with TableSet(con) as ts:
        arrays = _fetch_encoded(ts, "ev", patients, Vocabulary(["x", "y", "z"]), 6, batch_rows=2)  # 3 batches
    assert sorted(arrays[0].tolist()) == [0, 0, 0, 0, 1, 1] and np.isnan(arrays[3]).sum() == 4
    patient, time, code, end, value, cat = _sort_events(*arrays)
    assert patient.tolist() == [0, 0, 0, 0, 1, 1]
    assert (time - shift).tolist() == [2.0, 5.0, 5.0, 5.0, 1.0, 3.0]
    assert code.tolist() == [0, 0, 0, 1, 2, 0] and cat.tolist() == [0, 0, 0, 0, 1, 1]
    np.testing.assert_array_equal(end, [np.nan, np.nan, np.nan, 6.0, 1.5, np.nan])
    np.testing.assert_array_equal(value, [7.0, np.nan, 3.0, np.nan, 1.0, 2.0])  # tie (0, 5, 0): missing first


def test_events_of_patients_missing_from_the_patients_table_are_an_error():
    from pathways.io.build import build_eventlog
    from pathways.io.report import ReadReport
    from pathways.io.tabular import TableSet

    con = duckdb.connect()
    con.execute("CREATE TABLE ev AS SELECT * FROM (VALUES ('a', 1.0, NULL::DOUBLE, NULL::DOUBLE, 'x', 0), "
                "('zz', 2.0, NULL, NULL, 'x', 0)) t(pid, t, e, value, code, cat)")
    patients = pd.DataFrame({"patient_id": ["a"]})
    with TableSet(con) as ts, pytest.raises(PathwaysInputError, match="1 of 2 rows have a patient id absent"):
        build_eventlog(ts, "ev", patients, ["drug"], ReadReport("test"))


def test_rows_tied_on_patient_time_code_are_ordered_by_category_end_value():
    from pathways.io.build import _order_ties

    patient = np.array([0, 0, 0, 0, 1, 1])
    time = np.array([1.0, 1.0, 1.0, 1.0, 2.0, 2.0])
    code = np.array([3, 3, 3, 4, 0, 0])
    end = np.array([5.0, np.nan, 5.0, 9.0, np.nan, np.nan])
    value = np.array([2.0, 1.0, np.nan, 0.0, 7.0, 7.0])
    cat = np.array([0, 0, 0, 1, 2, 1], dtype=np.int8)
    _order_ties(patient, time, code, end, value, cat)
    # run (0, 1, 3): NaN end first, then end 5 with NaN value before 2; code 4 alone; run (1, 2, 0): cat 1 first
    np.testing.assert_array_equal(end, [np.nan, 5.0, 5.0, 9.0, np.nan, np.nan])
    np.testing.assert_array_equal(value, [1.0, np.nan, 2.0, 0.0, 7.0, 7.0])
    assert cat.tolist() == [0, 0, 0, 1, 1, 2]


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_dcir_join_by_flux_ranges_gives_the_same_eventlog_and_counts(tmp_path, kind):
    folder = fx.write(tmp_path / kind, kind)
    whole, whole_report = read_snds(folder, cip_to_atc=fx.CIP_TO_ATC, return_report=True, join_partition_rows=None)
    ranged, ranged_report = read_snds(folder, cip_to_atc=fx.CIP_TO_ATC, return_report=True, join_partition_rows=2)
    assert _events(ranged) == _events(whole) == _expected()
    pd.testing.assert_frame_equal(ranged_report.to_frame(), whole_report.to_frame())
    with pytest.raises(PathwaysInputError, match="join_partition_rows"):
        read_snds(folder, join_partition_rows=0)


def test_duckdb_out_of_memory_becomes_an_error_with_advice(tmp_path):
    from pathways.io.tabular import TableSet

    with pytest.raises(PathwaysInputError, match=r"ran out of memory \(memory_limit=1MB\).*threads=1"):
        with TableSet(None, tables={"x": pd.DataFrame({"a": [1]})}, config={"memory_limit": "1MB"}) as ts:
            ts.con.execute("SELECT list(range) FROM range(10000000)").fetchall()


def test_duckdb_database_and_user_connection_sources_give_the_same_eventlog(tmp_path):
    folder = fx.write(tmp_path / "parquet", "parquet")
    db = tmp_path / "snds.duckdb"
    con = duckdb.connect(str(db))
    for path in sorted(Path(folder).rglob("*.parquet")):
        con.execute(f"CREATE TABLE {path.stem} AS SELECT * FROM read_parquet('{path}')")
    con.close()
    from_file = read_snds(db, cip_to_atc=fx.CIP_TO_ATC, join_partition_rows=2)  # opened read-only
    user = duckdb.connect(str(db), read_only=True)
    from_connection = read_snds(user, cip_to_atc=fx.CIP_TO_ATC, join_partition_rows=2)
    assert _events(from_file) == _events(from_connection) == _expected()
    # the user's connection is left as it was: no scratch database, no temp tables
    assert {r[0] for r in user.execute("SELECT database_name FROM duckdb_databases()").fetchall()} == \
        {"snds", "system", "temp"}
    assert user.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall()[0][0] == 0

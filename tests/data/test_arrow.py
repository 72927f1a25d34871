"""EventLog.from_arrow / to_arrow / __arrow_c_stream__ and the parquet format 2 (readable by DuckDB and polars)."""
from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pathways.data import EventLog
from pathways.data.parquet import write_parquet_format1
from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.synthetic import simulate_cohort

SNDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "snds"
EVENTS = {"patient_id": ["007", "007", "b", "b", "c"],
          "time": ["2020-01-01", "2020-01-11", "2020-02-01", "2020-02-01", "2020-03-01"],
          "code": ["N02BE01", "I10", "N02BE01", "N02BE01", "Z00"]}


def assert_same_log(a: EventLog, b: EventLog) -> None:
    for name in ("patient", "time", "code", "end", "value"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.code_strings(), b.code_strings())
    assert a.vocab == b.vocab and a.origin == b.origin and a.time_unit == b.time_unit
    assert list(a.category) == list(b.category) or pd.isna(np.asarray(a.category, object)).all()
    assert set(a.extras) == set(b.extras)
    for k in a.extras:
        assert a.extras[k].dtype == b.extras[k].dtype or a.extras[k].dtype.kind in "OUT", k
        pd.testing.assert_series_equal(_missing_as_none(pd.DataFrame({k: a.extras[k]}))[k],
                                       _missing_as_none(pd.DataFrame({k: b.extras[k]}))[k], check_dtype=False)
    # string covariates may come back as pandas' str dtype (NaN) where they were objects (None): same values
    pd.testing.assert_frame_equal(_missing_as_none(a.patients), _missing_as_none(b.patients), check_dtype=False)


def _missing_as_none(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(object).where(frame.notna(), None)


@pytest.fixture(scope="module")
def cohort() -> EventLog:
    return simulate_cohort(120, seed=3)[0]


@pytest.fixture(scope="module")
def snds_log() -> EventLog:
    if not SNDS.is_dir():
        pytest.skip(f"shared SNDS sample not found at {SNDS} (../shared is beside the project checkout only)")
    from pathways.io import read_snds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PathwaysDataWarning)
        return read_snds(SNDS, events_before_birth="keep")  # the sample's random births follow events


def test_pyarrow_polars_duckdb_give_the_pandas_log():
    with pytest.warns(PathwaysDataWarning):
        expected = EventLog.from_pandas(pd.DataFrame(EVENTS))
    con = duckdb.connect()
    con.register("frame", pd.DataFrame(EVENTS))
    sources = [lambda: pa.table(EVENTS), lambda: pl.DataFrame(EVENTS), lambda: con.sql("select * from frame"),
               lambda: con.sql("select * from frame").arrow(), lambda: pa.table(EVENTS).to_batches()[0]]
    for source in sources:
        with pytest.warns(PathwaysDataWarning, match="1 of 5 rows duplicate"):  # counted as from_pandas does
            log = EventLog.from_arrow(source())
        assert_same_log(log, expected)
        assert log.patients["patient_id"].tolist() == ["007", "b", "c"]  # ids kept as strings, as written


class SparkLikeFrame:
    """What Spark 4 hands over: a DataFrame whose ``toArrow()`` returns a pyarrow table."""

    def toArrow(self) -> pa.Table:
        return pa.table({"patient_id": ["a", "b"], "time": [1.0, 2.0], "code": ["x", "y"]})


def test_spark_to_arrow_result():
    log = EventLog.from_arrow(SparkLikeFrame(), time_unit="hours")
    assert log.patients["patient_id"].tolist() == ["a", "b"] and log.time_unit == "hours"


def test_polars_native_types_and_mapping():
    frame = pl.DataFrame({"pid": [3, 3, 1], "date": [date(2020, 1, 1), date(2020, 1, 3), date(2020, 1, 2)],
                          "atc": pl.Series(["A", "B", "A"], dtype=pl.Categorical)})
    log = EventLog.from_arrow(frame, columns={"patient_id": "pid", "time": "date", "code": "atc"})
    assert log.patients["patient_id"].tolist() == [1, 3] and log.code_strings().tolist() == ["A", "A", "B"]
    assert log.time.tolist() == [18263.0, 18262.0, 18264.0] and log.time_unit == "days"


def test_validation_and_counted_drops_match_from_pandas():
    bad = {"patient_id": ["a", None, "b"], "time": ["2020-01-01", "2020-01-02", "1500-01-01"], "code": ["x", "y", "z"]}
    with pytest.raises(PathwaysInputError, match="missing patient id"):
        EventLog.from_arrow(pa.table(bad))
    with pytest.warns(PathwaysDataWarning) as caught:
        log = EventLog.from_arrow(pl.DataFrame(bad), on_invalid="drop")
    with pytest.warns(PathwaysDataWarning) as caught_pd:
        ref = EventLog.from_pandas(pd.DataFrame(bad), on_invalid="drop")
    assert [str(w.message) for w in caught] == [str(w.message) for w in caught_pd]
    assert_same_log(log, ref)
    with pytest.raises(PathwaysInputError, match="missing column"):
        EventLog.from_arrow(pa.table({"patient_id": ["a"], "time": [1.0]}))
    with pytest.raises(PathwaysInputError, match="__arrow_c_stream__"):
        EventLog.from_arrow([1, 2, 3])
    with pytest.raises(PathwaysInputError, match="absent from the patients table"):
        EventLog.from_arrow(pa.table(EVENTS), patients=pa.table({"patient_id": ["007"]}))


@pytest.mark.parametrize("which", ["cohort", "snds_log"])
def test_arrow_round_trip_is_lossless(which, request):
    log = request.getfixturevalue(which)
    back = EventLog.from_arrow(log.to_arrow(), log.to_arrow("patients"), vocab=log.vocab, duplicates="keep",
                               extra_columns=list(log.extras), outside_life="keep")
    assert_same_log(back, log)
    via_polars = EventLog.from_arrow(pl.from_arrow(log.to_arrow()), pl.from_arrow(log.to_arrow("patients")), vocab=log.vocab,
                                     duplicates="keep", extra_columns=list(log.extras), outside_life="keep")
    assert via_polars.origin is None  # polars drops schema metadata: float days, origin unknown
    via_polars.origin = log.origin
    assert_same_log(via_polars, log)


def test_pycapsule_export_feeds_polars_and_duckdb(cohort):
    frame = pl.DataFrame(pa.table(cohort))  # pa.table reads the PyCapsule stream
    assert frame.height == cohort.n_events and frame["code"].to_list()[:5] == cohort.code_strings()[:5].tolist()
    events = pa.table(cohort)
    assert events.column("patient_id").type.value_type == pa.string()
    n = duckdb.sql("select count(*) from cohort").fetchall()[0][0]  # DuckDB scans the EventLog's stream
    assert n == cohort.n_events


@pytest.mark.parametrize("which", ["cohort", "snds_log"])
def test_parquet_round_trip_and_foreign_readers(which, request, tmp_path):
    log = request.getfixturevalue(which)
    path = tmp_path / "log.parquet"
    log.to_parquet(path)
    assert_same_log(EventLog.read_parquet(path), log)
    meta = pq.read_schema(path).metadata
    assert sum(len(v) for k, v in meta.items() if k.startswith(b"pathways")) < 1000  # no big blob
    assert pq.read_schema(path).field("code").type == pa.dictionary(pa.int32(), pa.string())
    events = pl.read_parquet(path)
    assert events["code"].cast(pl.String).to_list() == log.code_strings().tolist()
    patients = duckdb.sql(f"select patient_id from read_parquet('{tmp_path / 'log.patients.parquet'}')").fetchall()
    assert [p[0] for p in patients] == log.patients["patient_id"].tolist()
    codes = duckdb.sql(f"select code, count from read_parquet('{tmp_path / 'log.codes.parquet'}')").df()
    assert codes["code"].tolist() == log.vocab.codes.tolist()


def test_format1_files_still_read(cohort, tmp_path):
    write_parquet_format1(cohort, tmp_path / "old.parquet")  # the writer of pathways 0.1
    assert_same_log(EventLog.read_parquet(tmp_path / "old.parquet"), cohort)


def test_mismatched_sidecar_is_named(cohort, tmp_path):
    cohort.to_parquet(tmp_path / "a.parquet")
    cohort.select_patients([0, 1]).to_parquet(tmp_path / "b.parquet")
    (tmp_path / "b.patients.parquet").replace(tmp_path / "a.patients.parquet")
    with pytest.raises(PathwaysInputError, match="a.patients.parquet: 2 patients"):
        EventLog.read_parquet(tmp_path / "a.parquet")


def test_buffers_and_validity_of_sliced_arrays():
    from pathways.data.arrow import buffer_values, validity

    values = [None if i % 3 == 0 else float(i) for i in range(40)]
    array = pa.array(values, type=pa.float32()).slice(11, 20)  # an offset inside a bitmap byte
    valid = validity(array)
    assert valid.tolist() == [v is not None for v in values[11:31]]
    np.testing.assert_array_equal(buffer_values(array, np.float32)[valid], [v for v in values[11:31] if v is not None])
    assert validity(pa.array([1.0, 2.0])) is None
    assert not validity(pa.nulls(3)).any()
    stamps = pa.array([0, 86_400_000_000], type=pa.timestamp("us"))
    assert buffer_values(stamps, np.int64).tolist() == [0, 86_400_000_000]
    with pytest.raises(PathwaysInputError, match="no int32 buffer"):
        buffer_values(stamps, np.int32)


def test_dictionary_lookup_resolves_each_dictionary_once():
    from pathways.data.arrow import DictionaryLookup, dictionary_positions

    calls = []
    lookup = DictionaryLookup(lambda d: calls.append(d) or pd.Index(["x", "y", "z"]).get_indexer(d.to_pylist()))
    first, second = pa.array(["z", "x", "z"]).dictionary_encode(), pa.array(["x", "z"]).dictionary_encode()
    same = pa.array(["z", "x"]).dictionary_encode()  # an equal dictionary in another object: no second lookup
    assert lookup(first.dictionary).tolist() == [2, 0] and lookup(same.dictionary).tolist() == [2, 0]
    assert len(calls) == 1
    assert lookup(second.dictionary).tolist() == [0, 2] and len(calls) == 2
    out = np.full(7, -9, dtype=np.int64)
    column = pa.chunked_array([first, pa.array(["y", "x"]).dictionary_encode()])
    dictionary_positions(column, pd.Index(["x", "y", "z"]), "code", out=out[2:])
    assert out.tolist() == [-9, -9, 2, 0, 2, 1, 0]
    with pytest.raises(PathwaysInputError, match="code: 1 values are absent"):
        dictionary_positions(column, pd.Index(["x", "z"]), "code")
    with pytest.raises(PathwaysInputError, match="out must be an int64 array"):
        dictionary_positions(column, pd.Index(["x", "y", "z"]), "code", out=np.zeros(5, np.int32))

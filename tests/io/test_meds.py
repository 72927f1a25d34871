"""MEDS datasets: write_meds / read_meds layout, lossless round trips, splits, and a foreign MEDS dataset."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pathways.data import EventLog, Vocabulary
from pathways.errors import PathwaysInputError
from pathways.io import read_meds, write_meds
from pathways.io.meds import from_ticks, shard_bounds, to_ticks
from tests.data.test_arrow import assert_same_log
from tests.io.format_fixtures import cohort, snds_log  # noqa: F401 (fixtures)


@pytest.mark.parametrize("which", ["cohort", "snds_log"])
def test_round_trip_is_lossless(which, request, tmp_path):
    log = request.getfixturevalue(which)
    write_meds(log, tmp_path, shard_size=1000)  # more than 10 shards: 10.parquet comes after 9.parquet
    assert_same_log(read_meds(tmp_path), log)


def test_layout_follows_the_meds_schema(cohort, tmp_path):
    write_meds(cohort, tmp_path, shard_size=3000)
    shards = sorted((tmp_path / "data").glob("*.parquet"))
    assert len(shards) > 1
    schema = pq.read_schema(shards[0])
    assert schema.field("subject_id").type == pa.int64() and schema.field("time").type == pa.timestamp("us")
    assert schema.field("code").type == pa.string() and schema.field("numeric_value").type == pa.float32()
    seen: set[int] = set()
    for shard in shards:  # each subject in one shard; rows sorted by subject then time (static rows first)
        frame = pd.read_parquet(shard)
        subjects = set(frame["subject_id"])
        assert not subjects & seen
        seen |= subjects
        key = frame["time"].astype("int64").where(frame["time"].notna(), np.iinfo(np.int64).min)
        assert (frame.assign(k=key).sort_values(["subject_id", "k"], kind="stable").index == frame.index).all()
    assert seen == set(range(cohort.n_patients))
    frame = pl.read_parquet(tmp_path / "data" / "*.parquet")
    births = frame.filter(pl.col("code") == "MEDS_BIRTH")
    assert births.height == cohort.patients["birth"].notna().sum()
    assert frame.filter(pl.col("code") == "sex//F").height == (cohort.patients["sex"] == "F").sum()
    meta = json.loads((tmp_path / "metadata" / "dataset.json").read_text())
    assert {"dataset_name", "dataset_version", "etl_name", "etl_version", "meds_version", "created_at"} <= set(meta)
    codes = pq.read_table(tmp_path / "metadata" / "codes.parquet")
    assert codes.column_names[:3] == ["code", "description", "parent_codes"]
    splits = duckdb.sql(f"select split, count(*) from read_parquet('{tmp_path}/metadata/subject_splits.parquet') "
                        "group by split").fetchall()
    assert splits == [("train", cohort.n_patients)]


def test_splits_select_subjects(cohort, tmp_path):
    ids = cohort.patients["patient_id"]
    write_meds(cohort, tmp_path, splits={ids[0]: "held_out", ids[3]: "held_out"})
    held = read_meds(tmp_path, split="held_out")
    assert held.patients["patient_id"].tolist() == [ids[0], ids[3]]
    assert_same_log(held, cohort.select_patients([0, 3]))


def test_integer_ids_and_day_times_need_no_extra_columns(tmp_path):
    events = pd.DataFrame({"patient_id": [42, 42, 7], "time": ["2020-01-01", "2020-01-05", "2020-02-01"],
                           "code": ["a", "b", "a"], "value": [1.5, np.nan, 2.0]})
    patients = pd.DataFrame({"patient_id": [7, 42], "birth": ["1950-01-01", "1960-06-01"], "sex": ["F", "M"]})
    log = EventLog.from_pandas(events, patients)
    write_meds(log, tmp_path)
    table = pq.read_table(tmp_path / "data" / "0.parquet")
    assert sorted(set(table.column("subject_id").to_pylist())) == [7, 42]
    assert not [c for c in table.column_names if c.startswith("pathways_")]
    assert_same_log(read_meds(tmp_path), log)
    hours = EventLog.from_arrays([0], [1.25], [0], log.vocab, time_unit="hours")
    write_meds(hours, tmp_path / "h")
    assert_same_log(read_meds(tmp_path / "h"), hours)
    with pytest.raises(PathwaysInputError, match="time_unit must be one of"):
        write_meds(EventLog.from_arrays([0], [1.0], [0], log.vocab, time_unit="visits"), tmp_path / "v")


def test_foreign_meds_dataset(tmp_path):
    """A dataset another ETL wrote: no pathways metadata, births, deaths and static rows become the patients."""
    us = pa.timestamp("us")
    data = pa.table({
        "subject_id": pa.array([1, 1, 1, 1, 2, 2, 2], pa.int64()),
        "time": pa.array([None, "1980-01-01", "2020-01-01 12:00", "2020-01-03", None, "2020-01-02", "2021-01-01"],
                         pa.string()).cast(us),
        "code": ["GENDER//F", "MEDS_BIRTH", "LAB//K", "ICD10//I10", "GENDER//M", "ICD10//I10", "MEDS_DEATH"],
        "numeric_value": pa.array([None, None, 4.5, None, None, None, None], pa.float32()),
    })
    (tmp_path / "data").mkdir()
    pq.write_table(data, tmp_path / "data" / "train_0.parquet")
    log = read_meds(tmp_path)
    assert log.code_strings().tolist() == ["LAB//K", "ICD10//I10", "ICD10//I10"]
    assert log.patients["patient_id"].tolist() == [1, 2] and log.patients["GENDER"].tolist() == ["F", "M"]
    assert log.patients["birth"].iloc[0] == 3652.0 and log.patients["death"].iloc[1] == 18628.0
    np.testing.assert_array_equal(log.time, [18262.5, 18264.0, 18263.0])
    assert log.value[0] == 4.5 and log.origin == pd.Timestamp("1970-01-01") and log.vocab.counts.tolist() == [2, 1]
    with pytest.raises(PathwaysInputError, match="no data"):
        read_meds(tmp_path / "empty")


def test_microsecond_conversion_is_exact_at_microsecond_resolution():
    rng = np.random.default_rng(0)
    us = rng.integers(-10**15, 10**15, size=10_000)
    day = 86_400_000_000
    np.testing.assert_array_equal(to_ticks(from_ticks(us, day, 0), day, 0), us)
    assert shard_bounds(np.array([0, 0, 0, 1]), 1) == [(0, 3), (3, 4)]
    with pytest.raises(PathwaysInputError, match="shard_size"):
        shard_bounds(np.zeros(3), 0)


def test_split_keeps_subjects_without_events_across_shards(tmp_path):
    # subject 11 has only a birth row, alone in its shard: it stays in its split though it has no event
    patients = pd.DataFrame({"patient_id": [10, 11, 12], "birth": [-100.0, -200.0, -300.0]})
    log = EventLog.from_arrays(np.array([0, 0, 2]), np.array([1.0, 2.0, 3.0]), np.array([0, 1, 0]),
                               Vocabulary(["A", "B"]), patients)
    write_meds(log, tmp_path, shard_size=1, splits={11: "held_out", 12: "held_out"})
    assert len(list((tmp_path / "data").glob("*.parquet"))) == 3
    held = read_meds(tmp_path, split="held_out")
    assert held.patients["patient_id"].tolist() == [11, 12]
    assert held.patient.tolist() == [1] and held.time.tolist() == [3.0]
    assert_same_log(read_meds(tmp_path), log)


def _gappy_log() -> EventLog:
    """Nulls everywhere the reader must keep them: ends, values, categories, extras; hours since an origin."""
    rng = np.random.default_rng(1)
    n, n_patients = 400, 30
    patient = np.sort(rng.integers(0, n_patients, n))
    time_ = np.round(rng.uniform(0, 5000, n), 2)
    end = np.where(rng.random(n) < 0.5, time_ + 3.0, np.nan)
    value = np.where(rng.random(n) < 0.3, rng.normal(size=n).astype(np.float32).astype(np.float64), np.nan)
    category = pd.Categorical(rng.choice(["drug", "diagnosis", None], n), categories=["drug", "diagnosis", "lab"])
    patients = pd.DataFrame({"patient_id": np.arange(n_patients) * 7 + 3,
                             "birth": np.where(rng.random(n_patients) < 0.8, -1000.0, np.nan),
                             "sex": rng.choice(["F", "M"], n_patients)})
    log = EventLog.from_arrays(patient, time_, rng.integers(0, 9, n), Vocabulary([f"c{i}" for i in range(9)]),
                               patients, end, value, category, time_unit="hours",
                               origin=pd.Timestamp("2001-02-03 04:00"), extras={"dose": rng.integers(0, 5, n)})
    return log


@pytest.mark.parametrize("workers", [1, 3])
def test_shards_read_concurrently_land_in_order(tmp_path, workers):
    log = _gappy_log()
    write_meds(log, tmp_path, shard_size=37)  # a dozen shards: each one's rows start where the previous ended
    assert len(list((tmp_path / "data").glob("*.parquet"))) > 8
    back = read_meds(tmp_path, workers=workers)
    assert_same_log(back, log)
    assert np.isnan(back.end).sum() == np.isnan(log.end).sum() > 0
    assert pd.isna(np.asarray(back.category, object)).sum() == pd.isna(np.asarray(log.category, object)).sum() > 0
    assert list(back.category.categories) == ["drug", "diagnosis", "lab"]  # the log's order, unused ones too
    meta = tmp_path / "metadata" / "dataset.json"
    info = json.loads(meta.read_text())
    del info["pathways"]["categories"]  # written before the categories were kept: found in the shards, sorted
    meta.write_text(json.dumps(info))
    older = read_meds(tmp_path, workers=workers)
    assert list(older.category.categories) == ["diagnosis", "drug"]
    assert_same_log(older, log)
    with pytest.raises(PathwaysInputError, match="workers must be >= 1"):
        read_meds(tmp_path, workers=0)


@pytest.mark.timeout(120)  # a hang (a task waiting forever on a failed shard) fails instead of blocking the suite
def test_a_broken_shard_raises_instead_of_hanging(tmp_path):
    write_meds(_gappy_log(), tmp_path, shard_size=37)
    bad = tmp_path / "data" / "3.parquet"
    raw = bytearray(bad.read_bytes())
    raw[4:24] = b"\xff" * 20  # the first page header: the footer still reads, decoding the shard fails
    bad.write_bytes(bytes(raw))
    assert pq.ParquetFile(bad).metadata.num_rows > 0
    # shards 4.. wait for the row where shard 3's events end, which never comes: they fail with it
    with pytest.raises(PathwaysInputError, match="cannot read a shard"):
        read_meds(tmp_path, workers=2)


def test_all_null_optional_columns_are_not_decoded(tmp_path):
    from pathways.io.meds_shards import _read_columns

    log = EventLog.from_arrays(np.array([0, 0, 1]), np.array([1.0, 2.0, 3.0]), np.array([0, 1, 0]),
                               Vocabulary(["A", "B"]))
    write_meds(log, tmp_path)
    shard = tmp_path / "data" / "0.parquet"
    assert {"end", "numeric_value", "category"} <= set(pq.read_schema(shard).names)
    assert _read_columns(pq.ParquetFile(shard).metadata) == ["subject_id", "time", "code"]
    back = read_meds(tmp_path)
    assert_same_log(back, log)
    assert np.isnan(back.value).all() and np.isnan(back.end).all()


def test_shards_rewritten_with_other_arrow_types_read_the_same(tmp_path):
    """What another tool may write: large strings for codes, int32 ids, nanosecond times, float64 values."""
    log = _gappy_log()
    write_meds(log, tmp_path, shard_size=100)
    for shard in (tmp_path / "data").glob("*.parquet"):
        table = pq.read_table(shard)
        types = {"code": pa.large_string(), "subject_id": pa.int32(), "time": pa.timestamp("ns"),
                 "end": pa.timestamp("ns"), "numeric_value": pa.float64(), "category": pa.large_string()}
        pq.write_table(table.cast(pa.schema([pa.field(f.name, types.get(f.name, f.type)) for f in table.schema])),
                       shard)
    assert pq.read_schema(tmp_path / "data" / "0.parquet").field("code").type == pa.large_string()
    assert_same_log(read_meds(tmp_path, workers=2), log)


def test_values_keep_their_bits_and_nulls(tmp_path):
    """numeric_value's nulls become NaN and every float32 value comes back bit for bit (-0.0, infinities, a
    subnormal), with nulls, static rows and births in the same record batch."""
    special = np.array([-0.0, np.inf, -np.inf, float(np.float32(1e-45)), float(np.finfo(np.float32).max), 1.5,
                        np.nan, 0.0])
    n = special.size * 3
    log = EventLog.from_arrays(np.repeat([0, 1, 2], special.size), np.arange(n, dtype=float), np.arange(n) % 3,
                               Vocabulary(["a", "b", "c"]),
                               pd.DataFrame({"patient_id": [0, 1, 2], "birth": [-5.0, np.nan, -9.0],
                                             "sex": ["F", "M", "F"]}),
                               value=np.tile(special, 3))
    write_meds(log, tmp_path)
    assert pq.read_table(tmp_path / "data" / "0.parquet").column("numeric_value").null_count > 0
    assert "pathways_value" not in pq.read_schema(tmp_path / "data" / "0.parquet").names
    back = read_meds(tmp_path)
    assert_same_log(back, log)
    np.testing.assert_array_equal(np.signbit(back.value), np.signbit(log.value))


@pytest.mark.parametrize("workers", [1, 2])
def test_shards_longer_than_a_record_batch(tmp_path, workers):
    """Shards of several record batches (each a slice deep into the row group's arrays): the null masks, static
    rows and gaps of every batch are read from its own offset."""
    rng = np.random.default_rng(3)
    n, n_patients = 300_000, 5_000
    patient = np.sort(rng.integers(0, n_patients, n))
    category = pd.Categorical(rng.choice(["drug", "diagnosis", None], n, p=[0.5, 0.45, 0.05]))
    value = np.where(rng.random(n) < 0.3, rng.integers(0, 50, n).astype(float), np.nan)
    patients = pd.DataFrame({"patient_id": np.arange(n_patients),
                             "birth": np.where(rng.random(n_patients) < 0.9, -1000.0, np.nan),
                             "sex": rng.choice(["F", "M"], n_patients)})
    log = EventLog.from_arrays(patient, np.floor(rng.uniform(0, 3000, n)), rng.integers(0, 40, n),
                               Vocabulary([f"c{i}" for i in range(40)]), patients, value=value, category=category)
    write_meds(log, tmp_path, shard_size=200_000)
    assert pq.ParquetFile(tmp_path / "data" / "0.parquet").metadata.num_rows > 200_000
    back = read_meds(tmp_path, workers=workers)
    assert_same_log(back, log)
    assert pd.isna(np.asarray(back.category, object)).sum() == pd.isna(np.asarray(log.category, object)).sum() > 0


def test_codes_missing_from_the_codes_file_are_named(tmp_path):
    log = EventLog.from_arrays(np.array([0, 0, 1]), np.array([1.0, 2.0, 3.0]), np.array([0, 1, 2]),
                               Vocabulary(["A", "B", "C"]))
    write_meds(log, tmp_path)
    codes = tmp_path / "metadata" / "codes.parquet"
    pq.write_table(pq.read_table(codes).slice(0, 2), codes)  # "C" dropped
    with pytest.raises(PathwaysInputError, match="1 rows carry codes absent from codes.parquet"):
        read_meds(tmp_path)

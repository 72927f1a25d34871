"""The Spark engine of read_snds against the DuckDB engine: exactly the same EventLog (events, order, patients,
vocabulary, extras) and read report, on the shared SNDS sample and on write_snds tables with their planted quirks;
the sharded dataset it writes (hash shards, sorted, atomic replacement)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pathways.data.dataset import EventDataset
from pathways.errors import PathwaysInputError
from pathways.io import read_snds
from pathways.synthetic.snds import write_snds
from tests.io.spark_fixtures import (
    SHARED_SNDS,
    assert_same_eventlog,
    assert_same_report,
    local_spark,
    quiet,
    write_identical_claim_lines,
)

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark():
    return local_spark()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("snds_spark")
    write_snds(folder, 400, years=(2021,), seed=11, chunk_patients=200, truth_events=False)
    return folder


@pytest.mark.skipif(not SHARED_SNDS.is_dir(), reason="the shared SNDS sample is not on this machine")
def test_spark_engine_equals_duckdb_on_the_shared_sample(spark):
    duck, duck_report = quiet(read_snds, SHARED_SNDS, return_report=True)
    log, report = quiet(read_snds, SHARED_SNDS, return_report=True, engine="spark", spark=spark)
    assert_same_eventlog(duck, log)
    assert_same_report(duck_report.to_frame(), report.to_frame())


def test_spark_engine_equals_duckdb_on_synthetic_tables(spark, synthetic, tmp_path):
    from pathways.io import write_snds_dataset
    from pathways.io.spark import shard_of

    mapping = next(synthetic.rglob("IR_PHA_R*"))
    from pathways.io.snds_tables import ALL_SOURCES

    kwargs = {"cip_to_atc": mapping, "window": ("2021-01-01", "2021-12-31"), "sources": ALL_SOURCES}
    duck, duck_report = quiet(read_snds, synthetic, return_report=True, **kwargs)
    out = tmp_path / "dataset"
    report = quiet(write_snds_dataset, synthetic, out, spark=spark, n_shards=3, **kwargs)
    data = EventDataset(out)
    log = data.to_eventlog()
    assert_same_eventlog(duck, log)
    assert_same_report(duck_report.to_frame(), report.to_frame())
    assert_same_report(report.to_frame(), data.read_report())
    # the planted quirks were met: the comparison is not between two empty decisions
    counts = report.to_frame().set_index("step")["count"]
    assert counts["ER_PHA_F: information line (DPN_QLF = 71)"] > 0 and counts["duplicate events"] > 0
    assert counts["ER_PRS_F: information line (DPN_QLF = 71)"] > 0 and (np.asarray(log.category) == "service").any()
    # every patient in the shard of its hash, each shard sorted by (patient, time, code)
    for k in data.shard_ids():
        people = data.patients(k)
        assert (shard_of(people["patient_id"].to_numpy(object), 3) == k).all()
        table = data.events(k)
        ids = table.column("patient_id").to_numpy(zero_copy_only=False).astype(str)
        codes = table.column("code").to_numpy(zero_copy_only=False).astype(str)
        order = np.lexsort((codes, table.column("time").to_numpy(), ids))
        assert (order == np.arange(order.size)).all()
    assert sum(s.n_events for s in data.iter_shards()) == log.n_events
    # a folder that is no dataset is never overwritten
    (tmp_path / "precious").mkdir()
    with pytest.raises(PathwaysInputError, match="no pathways event dataset"):
        write_snds_dataset(synthetic, tmp_path / "precious", spark=spark)


def test_identical_claim_lines_merge_and_sort_alike_in_both_engines(spark, tmp_path):
    folder = write_identical_claim_lines(tmp_path)
    duck, duck_report = quiet(read_snds, folder, sources=("dcir_drugs",), return_report=True)
    log, report = quiet(read_snds, folder, sources=("dcir_drugs",), return_report=True, engine="spark", spark=spark)
    assert_same_eventlog(duck, log)
    assert_same_report(duck_report.to_frame(), report.to_frame())
    assert report.count("duplicate events") == 1
    # the two identical lines are one event with twice the amounts, sorted by the amounts it carries
    np.testing.assert_allclose(log.extras["paid"], [6.0, 12.0])
    np.testing.assert_allclose(log.extras["base"], [7.05, 7.8])


def test_a_new_dataset_replaces_the_old_one_whole(tmp_path):
    from pathways.io.spark.shards import publish, staging_folder

    out = tmp_path / "dataset"
    for n in (1, 2):
        staging = staging_folder(out)
        (staging / "metadata").mkdir(parents=True)
        (staging / "metadata" / "dataset.json").write_text(json.dumps({"n": n}))
        publish(staging, out)
        assert json.loads((out / "metadata" / "dataset.json").read_text()) == {"n": n}
    assert [p.name for p in tmp_path.iterdir()] == ["dataset"]  # no staging or old copy left


def test_spark_engine_checks_arguments_before_reading(spark, synthetic):
    with pytest.raises(PathwaysInputError, match="engine"):
        read_snds(synthetic, engine="polars")
    with pytest.raises(PathwaysInputError, match="sources"):
        read_snds(synthetic, engine="spark", spark=spark, sources=("pharmacy",))


def test_the_spark_writer_takes_read_snds_options_and_their_defaults(tmp_path):
    import inspect

    from pathways.io import write_snds_dataset
    from pathways.io.snds import snds_options

    duck = inspect.signature(read_snds).parameters
    resolved = snds_options({"atc_level": 3})
    assert resolved["atc_level"] == 3
    # every other option has read_snds' default, and the writer declares none of its own
    assert all(value == duck[name].default for name, value in resolved.items() if name != "atc_level")
    assert not set(inspect.signature(write_snds_dataset).parameters) & set(resolved)
    # the Spark engine reads exactly read_snds' engine-independent options (a new read_snds option must reach it)
    from pathways.io.spark.snds import SPARK_OPTIONS, write_snds_shards

    assert set(resolved) == set(SPARK_OPTIONS)
    with pytest.raises(PathwaysInputError, match="missing"):
        write_snds_shards(tmp_path, tmp_path / "out", {"atc_level": 3}, n_shards=2)
    # DuckDB-only and unknown options are refused before any Spark session starts
    for bad in ({"memory_limit": "1GB"}, {"windows": ("2020-01-01", "2020-12-31")}):
        with pytest.raises(PathwaysInputError, match=next(iter(bad))):
            write_snds_dataset(tmp_path, tmp_path / "out", **bad)


def test_text_dates_and_numbers_parse_as_in_duckdb(spark):
    import duckdb
    import pyarrow as pa

    from pathways.io.snds_tables import DT_FORMATS
    from pathways.io.spark.tables import days, number
    from pathways.io.tabular import days_sql

    texts = ["02Jan2007:22:12:17", "2JAN2007:22:12:17", "2015-01-05", "2015-1-5", "20150105", "2015", "05052015",
             "5/5/2015", "05/05/2015", " 2015-01-05", "2015-01-05 10:00:00", "abc", "", "1600-01-01", "2015-02-30",
             "1.5", "2.5", "-1.5", "1e2", " 7 ", "9999999999", None]
    table = pa.table({"x": pa.array(texts, pa.string())})
    sql = (f"SELECT {days_sql('x', DT_FORMATS)} AS d, {days_sql('x', DT_FORMATS, 8)} AS p, "
           f"TRY_CAST(x AS INTEGER) AS i, TRY_CAST(x AS DOUBLE) AS f FROM tab")
    con = duckdb.connect()
    con.register("tab", table)
    expected = dict(zip("dpif", zip(*con.execute(sql).fetchall())))
    df = spark.createDataFrame([(t,) for t in texts], "x string")
    got = df.select(days(df["x"], "string", DT_FORMATS).alias("d"), days(df["x"], "string", DT_FORMATS, 8).alias("p"),
                    number(df["x"], "int").alias("i"), number(df["x"], "double").alias("f")).toArrow()
    for name in ("d", "p", "i", "f"):
        assert got.column(name).to_pylist() == list(expected[name]), name


def test_without_the_beneficiary_referential_both_engines_give_the_same_patients(spark, synthetic, tmp_path):
    import shutil

    folder = tmp_path / "no_ir_ben_r"
    shutil.copytree(synthetic, folder, ignore=shutil.ignore_patterns("IR_BEN_R*"))
    assert not list(folder.rglob("IR_BEN_R*"))
    duck, duck_report = quiet(read_snds, folder, sources=("dcir_acts",), return_report=True)
    log, report = quiet(read_snds, folder, sources=("dcir_acts",), return_report=True, engine="spark", spark=spark)
    assert_same_eventlog(duck, log)  # BEN_RNG_GEM included: nullable Int32 in both, every rank missing
    assert_same_report(duck_report.to_frame(), report.to_frame())
    assert str(duck.patients["BEN_RNG_GEM"].dtype) == "Int32" and duck.patients["BEN_RNG_GEM"].isna().all()

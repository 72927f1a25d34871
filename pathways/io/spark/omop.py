"""The Spark engine of ``read_omop``: ``read_omop(..., engine="spark")``.

Same semantics as the DuckDB engine (:mod:`pathways.io.omop`): domains and their era fallbacks, concept codes and the
ingredient roll-up through ``concept_ancestor``, provider ids and costs, persons, deaths, observation periods, and
the same counted decisions in the same order. The joins, filters and counts run as Spark DataFrame operations (no
Python function per row); the counts of each stretch of steps are computed in one Spark action
(:class:`~pathways.io.spark.pending.PendingCounts`). This reader returns an in-memory EventLog: the persons, deaths,
observation windows and the final events come back to the driver through Arrow, and the events are assembled by
the DuckDB engine's own :func:`~pathways.io.build.build_eventlog` (duplicates, events before birth / after death,
vocabulary, order), so both engines give the same EventLog.

A DuckDB database file or connection stays DuckDB-only (``engine="spark"`` refuses it).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pathways.data import EventLog
from pathways.data.dates import date_bounds
from pathways.errors import PathwaysInputError
from pathways.io.build import build_eventlog, life_filters
from pathways.io.omop_tables import CATEGORIES, clean_deaths, clean_persons, patients_frame, resolve_domains
from pathways.io.report import ReadReport
from pathways.io.spark.omop_events import SparkOmopEvents, bigint, days_of, null
from pathways.io.spark.pending import PendingCounts
from pathways.io.spark.session import configure, spark_session
from pathways.io.spark.tables import SparkTables, in_range, number, text
from pathways.io.tabular import TableSet, duckdb_config, import_duckdb


def read_omop_spark(source: Any, *, spark: Any = None, domains: Sequence[str] | None, tables: Mapping[str, Any] | None,
                    schema: str | None, concept_codes: bool, drug_ingredients: bool, outside_observation: str,
                    keep_unmapped: bool, death_events: bool, duplicates: str, date_range: tuple[str, str] | None,
                    errors: str, return_report: bool, memory_limit: str | None = None,
                    threads: int | None = None) -> EventLog | tuple[EventLog, ReadReport]:
    """``read_omop(..., engine="spark")`` (which checks the options and passes every one of them).

    ``source``: a folder of CSV/parquet tables or None (``tables`` only); ``tables`` may hold paths, pandas or
    Spark DataFrames. ``memory_limit`` and ``threads`` apply to the final in-memory assembly (DuckDB).
    """
    if schema is not None:
        raise PathwaysInputError("schema: names a schema inside a DuckDB database; the Spark engine reads a folder "
                                 "of CSV/parquet tables (use engine='duckdb' for a database)")
    if source is not None and not (isinstance(source, (str, Path)) and Path(source).is_dir()):
        kind = "a DuckDB connection" if type(source).__name__ == "DuckDBPyConnection" else (
            "a file (a DuckDB database)" if isinstance(source, (str, Path)) and Path(source).is_file() else
            "not a folder")
        raise PathwaysInputError(f"source: engine='spark' reads a folder of CSV/parquet tables (or tables=); the "
                                 f"source given is {kind}: read a DuckDB database with engine='duckdb'")
    if source is None and not tables:
        raise PathwaysInputError("source: expected a folder of CSV/parquet tables or tables= (engine='spark')")
    bounds = date_bounds(date_range)
    spark = spark_session() if spark is None else configure(spark)
    report = ReadReport("read_omop")
    pending = PendingCounts()
    try:
        named = {name: _spark_frame(spark, value) if isinstance(value, pd.DataFrame) else value
                 for name, value in (tables or {}).items()}
        reader = _SparkOmopReader(SparkTables(spark, source, named), report, errors, bounds, pending)
        persons, pid_is_int = reader.persons()
        events = reader.events.events(resolve_domains(reader.tables, domains, report), concept_codes, drug_ingredients,
                                      keep_unmapped)
        deaths = reader.deaths(persons["pid"])
        if death_events and len(deaths):
            events = reader.add_death_events(events, deaths)
        persons = persons.merge(deaths, on="pid", how="left") if len(deaths) else persons.assign(death=np.nan)
        events = reader.drop_unknown_persons(events)
        persons, events = reader.observation(persons, events, outside_observation)
        pending.flush()
        patients = patients_frame(persons, pid_is_int)
        extras = reader.events.extra_names
        arrow = events.select("pid", "t", "e", "value", "code", "cat", *extras).toArrow()
    finally:
        pending.release()
    return _assemble(arrow, patients, report, duplicates, errors, extras, memory_limit, threads, return_report)


def _spark_frame(spark: Any, frame: pd.DataFrame) -> Any:
    """A pandas table as a Spark DataFrame through Arrow (missing values as NULL, as DuckDB reads them); columns
    without any value (an empty table, an all-missing column) as text, whose type Spark cannot infer."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
    return spark.createDataFrame(table.cast(pa.schema(fields)))


def _assemble(arrow: Any, patients: pd.DataFrame, report: ReadReport, duplicates: str, errors: str,
              extras: Sequence[str], memory_limit: str | None, threads: int | None,
              return_report: bool) -> EventLog | tuple[EventLog, ReadReport]:
    """The collected events through the DuckDB engine's assembly (same duplicates, filters, vocabulary, order)."""
    duckdb = import_duckdb()
    con = duckdb.connect(config=duckdb_config(memory_limit, threads))
    try:
        con.register("pw_spark_events", arrow)
        with TableSet(con) as ts:
            casts = "".join(f", CAST({n} AS {'VARCHAR' if n in ('prescriber', 'provider') else 'DOUBLE'}) AS {n}"
                            for n in extras)
            table = ts.temp_table(
                "SELECT CAST(pid AS VARCHAR) AS pid, CAST(t AS DOUBLE) AS t, CAST(e AS DOUBLE) AS e, "
                f"CAST(value AS DOUBLE) AS value, CAST(code AS VARCHAR) AS code, CAST(cat AS INTEGER) AS cat{casts} "
                "FROM pw_spark_events", "omop_events")
            con.unregister("pw_spark_events")
            log = build_eventlog(ts, table, patients, CATEGORIES, report, duplicates, errors,
                                 filters=life_filters(patients), extra_columns=list(extras))
    finally:
        con.close()
    return (log, report) if return_report else log


class _SparkOmopReader:
    """The steps of the DuckDB engine's ``_OmopReader`` as Spark DataFrames."""

    def __init__(self, tables: SparkTables, report: ReadReport, errors: str, bounds: tuple[float, float],
                 pending: PendingCounts):
        self.tables, self.report, self.errors, self.bounds, self.pending = tables, report, errors, bounds, pending
        self.events = SparkOmopEvents(tables, report, errors, bounds, pending)
        self.spark = tables.spark

    def decide(self, step: str, decision: str, count: int, total: int | None = None, detail: str = "") -> None:
        self.report.decide(step, decision, count, total, detail, errors=self.errors)

    def persons(self) -> tuple[pd.DataFrame, bool]:
        """The DuckDB engine's raw person columns, collected, then cleaned by the same code."""
        from pyspark.sql import functions as F

        cols = self.tables.require("person", ["person_id", "year_of_birth"])
        pid_is_int = "INT" in cols["PERSON_ID"].upper()
        frame = self.tables.frame("person")

        def integer(name: str, kind: str = "int") -> Any:
            key = name.upper()
            if key not in cols:
                return null(kind)
            return number(F.col(key), kind, cols[key]) if kind == "int" else bigint(F.col(key), cols[key])

        year = integer("year_of_birth")
        y_bad = F.coalesce(F.trim(text(F.col("YEAR_OF_BIRTH"))) != "", F.lit(False)) & year.isNull()
        raw = frame.select(text(F.col("PERSON_ID")).alias("pid"), year.alias("y"), y_bad.alias("y_bad"),
                           integer("month_of_birth").alias("m"), integer("day_of_birth").alias("d"),
                           integer("gender_concept_id", "bigint").alias("g"),
                           days_of(frame, "birth_datetime", cols).alias("bdt"))
        table = raw.toArrow()
        data = pd.DataFrame({name: table.column(name).to_pandas() for name in table.column_names})
        data["pid"] = data["pid"].astype(object).where(data["pid"].notna(), None)
        for name in ("y", "m", "d", "g", "bdt"):
            data[name] = data[name].astype(float)
        return clean_persons(data, pid_is_int, self.report, self.errors, self.bounds)

    def deaths(self, known: pd.Series) -> pd.DataFrame:
        """One row per person with a valid death date (the DuckDB engine's rule, on the collected rows)."""
        from pyspark.sql import functions as F

        cols = self.events.optional("death", ["person_id", "death_date"])
        self.pending.flush()  # the counts so far, in order, before the deaths' own decisions
        if cols is None:
            return pd.DataFrame({"pid": pd.Series([], dtype=object), "death": pd.Series([], dtype=float)})
        d = self.tables.frame("death")
        cause = null("string")
        if "CAUSE_CONCEPT_ID" in cols:
            cause_id = bigint(F.col("CAUSE_CONCEPT_ID"), cols["CAUSE_CONCEPT_ID"])
            cause = text(cause_id)
            if self.events.concept_ok:
                k = self.events.concept_codes()
                d = d.join(k, cause_id == k["_cid"], "left")
                cause = F.coalesce(F.col("_kcode"), cause)
        table = d.select(text(F.col("PERSON_ID")).alias("pid"), days_of(d, "death_date", cols).alias("death"),
                         cause.alias("cause")).toArrow()
        frame = pd.DataFrame({"pid": table.column("pid").to_pylist(),
                              "death": table.column("death").to_numpy(zero_copy_only=False).astype(float),
                              "cause": pd.Series(table.column("cause").to_pylist(), dtype=object)})
        return clean_deaths(frame, known, self.report, self.errors, self.bounds)

    def add_death_events(self, events: Any, deaths: pd.DataFrame) -> Any:
        """Append one ``death`` event per death date."""
        from pyspark.sql import functions as F
        from pyspark.sql.types import DoubleType, StringType, StructField, StructType

        schema = StructType([StructField("pid", StringType()), StructField("death", DoubleType())])
        rows = self.spark.createDataFrame(list(zip(deaths["pid"].astype(str), deaths["death"].astype(float))), schema)
        extras = [null("string" if n in ("prescriber", "provider") else "double").alias(n)
                  for n in self.events.extra_names]
        return events.unionByName(rows.select("pid", F.col("death").alias("t"), null("double").alias("e"),
                                              null("double").alias("value"), F.lit("death").alias("code"),
                                              F.lit(CATEGORIES.index("death")).alias("cat"), *extras))

    def drop_unknown_persons(self, events: Any) -> Any:
        from pyspark.sql import functions as F

        known = self.tables.frame("person").select(text(F.col("PERSON_ID")).alias("_pid"), F.lit(True).alias("_known")
                                                   ).distinct()
        flagged = events.join(known, events["pid"] == known["_pid"], "left")
        self.pending.count(flagged, [F.col("_known").isNull()], lambda c: self.decide(
            "events of persons absent from person", "dropped", c[1], c[0]))
        return flagged.where(F.col("_known").isNotNull()).drop("_pid", "_known")

    # -- observation periods ------------------------------------------------------------------------------------
    def observation(self, persons: pd.DataFrame, events: Any, rule: str) -> tuple[pd.DataFrame, Any]:
        """Observation windows and ``outside_observation``, as the DuckDB engine."""
        from pyspark.sql import functions as F
        from pyspark.sql.types import StringType, StructField, StructType

        persons = persons.assign(start=np.nan, end=np.nan, n_observation_periods=0)
        cols = self.events.optional("observation_period", ["person_id", "observation_period_start_date",
                                                           "observation_period_end_date"])
        if cols is None:
            return persons, events
        bounds = self.bounds
        op = self.tables.frame("observation_period")
        known = self.spark.createDataFrame([(p,) for p in persons["pid"].astype(str)],
                                           StructType([StructField("_pid", StringType())])
                                           ).withColumn("_known", F.lit(True))
        raw = op.select(text(F.col("PERSON_ID")).alias("pid"),
                        days_of(op, "observation_period_start_date", cols).alias("s"),
                        days_of(op, "observation_period_end_date", cols).alias("e"))
        raw = raw.join(F.broadcast(known), raw["pid"] == known["_pid"], "left")
        s, e = F.col("s"), F.col("e")

        def decide(c: list[int]) -> None:
            n = c[0]
            self.report.note("observation_period rows", n)
            self.decide("observation_period: person absent from person", "dropped", c[1], n)
            self.decide("observation_period: start missing or invalid", "dropped", c[2], n)
            self.decide("observation_period: end missing or invalid", "end = last date in the database", c[3], n,
                        "open period")
            self.decide("observation_period: end before start", "dropped", c[4], n)

        self.pending.count(raw, [F.col("pid").isNotNull() & F.col("_known").isNull(),
                                 s.isNull() | ~in_range(s, bounds),
                                 s.isNotNull() & (e.isNull() | ~in_range(e, bounds)), e < s], decide)
        last = events.agg(F.max(F.coalesce(F.col("e"), F.col("t"))).alias("_a")).crossJoin(
            raw.where(in_range(e, bounds)).agg(F.max("e").alias("_b")))
        fill = F.greatest(F.col("_a"), F.col("_b"))
        periods = raw.where(F.col("_known").isNotNull() & s.isNotNull() & in_range(s, bounds)
                            & ~F.coalesce(e < s, F.lit(False))).crossJoin(last).select(
            "pid", "s", F.when(e.isNull() | ~in_range(e, bounds), F.greatest(s, fill)).otherwise(e).alias("e"))
        periods = self.pending.persist(periods)
        self.pending.flush()
        windows = periods.groupBy("pid").agg(F.min("s").alias("start"), F.max("e").alias("end"),
                                             F.count(F.lit(1)).alias("n")).toPandas()
        merged = persons.drop(columns=["start", "end", "n_observation_periods"]).merge(windows, on="pid", how="left")
        persons = persons.assign(start=merged["start"].to_numpy(float), end=merged["end"].to_numpy(float),
                                 n_observation_periods=merged["n"].fillna(0).to_numpy(np.int64))
        self.report.note("persons without observation period (window = first/last event)",
                         int((persons["n_observation_periods"] == 0).sum()))
        spans = periods.groupBy(F.col("pid").alias("_opid")).agg(
            F.collect_list(F.struct(F.col("s"), F.col("e"))).alias("_ops"))
        flagged = events.join(spans, events["pid"] == spans["_opid"], "left")
        has_op = F.col("_ops").isNotNull()
        inside = F.coalesce(F.exists("_ops", lambda p: (F.col("t") >= p["s"]) & (F.col("t") <= p["e"])),
                            F.lit(False))
        flagged = flagged.select(*events.columns, has_op.alias("_has_op"), inside.alias("_inside"))
        flagged = self.pending.persist(flagged)
        outside = F.col("_has_op") & ~F.col("_inside")
        if rule == "drop":
            self.pending.count(flagged, [outside], lambda c: self.decide(
                "events outside every observation period", "dropped", c[1], c[0]))
            return persons, flagged.where(~outside).drop("_has_op", "_inside")
        self.pending.count(flagged, [outside], lambda c: self.decide(
            "events outside every observation period", "kept, window extended", c[1], c[0]))
        self.pending.flush()
        span = flagged.groupBy("pid").agg(F.min("t").alias("lo"), F.max("t").alias("hi")).toPandas()
        span = persons[["pid"]].merge(span, on="pid", how="left")
        has_window = persons["n_observation_periods"].to_numpy() > 0
        start, end = persons["start"].to_numpy(float), persons["end"].to_numpy(float)
        persons["start"] = np.where(has_window, np.fmin(start, span["lo"].to_numpy(float)), start)
        persons["end"] = np.where(has_window, np.fmax(end, span["hi"].to_numpy(float)), end)
        return persons, flagged.drop("_has_op", "_inside")


__all__ = ["read_omop_spark"]

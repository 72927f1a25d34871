"""The Spark engine of ``read_snds``: SNDS extracts -> a sharded event dataset (and, for ``read_snds(...,
engine="spark")``, the EventLog read back from it).

Same semantics as the DuckDB engine (:mod:`pathways.io.snds`): DCIR 9-key joins, PMSI MCO stacks, IR_BEN_R and
KI_CCI_R, exclusion rules, duplicates, study window, events after death, and the same counted decisions in the read
report. Everything runs as Spark DataFrame operations (no Python function per row; the one vectorised Arrow step is
the patient hash choosing the shard); only counts, the vocabulary and the report come back to the driver.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pathways.data import EventLog
from pathways.data.dataset import EventDataset
from pathways.data.dates import date_bounds
from pathways.data.validate import check_choice
from pathways.errors import PathwaysInputError
from pathways.io.report import ReadReport, check_errors_arg
from pathways.io.snds_tables import ALL_SOURCES, ATC_LEVELS, CATEGORIES, load_cip_to_atc
from pathways.io.spark.session import configure, spark_session
from pathways.io.spark.shards import (
    publish,
    staging_folder,
    with_shard,
    write_metadata,
    write_shards,
)
from pathways.io.spark.pending import PendingCounts
from pathways.io.spark.snds_patients import SparkSndsReader
from pathways.io.spark.tables import SparkTables, count_if


#: the read_snds options the Spark engine reads (every one must be given: the defaults live in read_snds' signature)
SPARK_OPTIONS = ("sources", "tables", "cip_to_atc", "cip_column", "atc_column", "atc_level",
                 "exclude_information_lines", "drop_nonpositive_quantity", "mco_exclude_errors", "window",
                 "unknown_patients", "events_after_death", "events_before_birth", "death_events", "duplicates",
                 "date_range", "errors")


def write_snds_shards(folder: Any, output: str | Path, options: Mapping[str, Any], *, spark: Any = None,
                      n_shards: int) -> ReadReport:
    """The Spark engine behind :func:`pathways.io.write_snds_dataset`: ``options`` holds every option of
    :func:`pathways.io.read_snds` (resolved against its defaults by :func:`pathways.io.snds.snds_options`).

    Returns
    -------
    The read report (also in ``<output>/metadata/read_report.parquet``).
    """
    missing = sorted(set(SPARK_OPTIONS) - set(options))
    if missing:
        raise PathwaysInputError(f"options: missing {missing}; call pathways.io.write_snds_dataset, which fills in "
                                 "read_snds' defaults")
    o = options
    sources, window, errors, duplicates = o["sources"], o["window"], o["errors"], o["duplicates"]
    unknown_patients, events_after_death = o["unknown_patients"], o["events_after_death"]
    events_before_birth, atc_level = o["events_before_birth"], o["atc_level"]
    check_errors_arg(errors)
    check_choice("unknown_patients", unknown_patients, ("keep", "drop"))
    check_choice("events_after_death", events_after_death, ("keep", "drop"))
    check_choice("events_before_birth", events_before_birth, ("keep", "drop"))
    check_choice("duplicates", duplicates, ("drop", "keep", "raise"))
    bad_sources = [s for s in sources if s not in ALL_SOURCES]
    if bad_sources:
        raise PathwaysInputError(f"sources: unknown source(s) {bad_sources}; choose among {list(ALL_SOURCES)}")
    if atc_level is not None and atc_level not in ATC_LEVELS:
        raise PathwaysInputError(f"atc_level: expected one of {sorted(ATC_LEVELS)}, got {atc_level!r}")
    if int(n_shards) < 1:
        raise PathwaysInputError(f"n_shards: expected >= 1, got {n_shards!r}")
    bounds = date_bounds(o["date_range"])  # both checked before any table is read
    if window is not None:
        date_bounds(window, "window")
    from pyspark.sql import functions as F

    spark = spark_session() if spark is None else configure(spark)
    output = Path(output)
    staging = staging_folder(output)
    report = ReadReport("read_snds")
    reader = SparkSndsReader(SparkTables(spark, folder, o["tables"]), report, errors, bounds)
    reader.use_provider_columns(sources)
    if "dcir_drugs" in sources:
        reader.dcir_drugs(o["exclude_information_lines"], o["drop_nonpositive_quantity"],
                          load_cip_to_atc(o["cip_to_atc"], o["cip_column"], o["atc_column"]), atc_level)
    if "dcir_acts" in sources:
        reader.dcir_acts(o["exclude_information_lines"])
    if "dcir_services" in sources:
        reader.dcir_services(o["exclude_information_lines"], o["drop_nonpositive_quantity"])
    if "mco" in sources:
        reader.mco(o["mco_exclude_errors"])
    patients = reader.patients()
    if "deaths" in sources and o["death_events"]:
        reader.death_events(patients)
    if not reader.events:
        raise PathwaysInputError("sources: no event source selected")
    pending = reader.pending
    events = reader.stacked_events()
    patients = reader.complete_patients(events, patients, unknown_patients)
    if window is not None:
        patients = _apply_window(patients, window, events_after_death)
    patients = pending.persist(with_shard(patients, n_shards))
    try:
        staging.mkdir(parents=True)
        # Each source's join ran once into its persisted stage; the events are merged (duplicates), joined to
        # their patient (birth, death, shard) and written once: the counts below and the shards read that.
        _merge_duplicates(events, reader.extra_names, duplicates).join(
            patients.select(F.col("patient_id").alias("pid"), "birth", "death", "shard", "_listed"), "pid", "left"
        ).write.parquet(str(staging / "_stage"))
        staged = spark.read.parquet(str(staging / "_stage"))
        reader.count_unknown(staged, unknown_patients)
        if unknown_patients == "drop":
            staged = staged.where(F.col("_listed").isNotNull())
        if events_after_death == "keep":
            pending.later(lambda: report.note("events after death kept (events_after_death='keep')", 0))
        vocabulary: dict[str, pd.DataFrame] = {}
        # the DuckDB engine's vocabulary: codes counted before duplicates and filters
        pending.add(staged.groupBy("code").agg(F.sum("_k").alias("count")),
                    F.collect_list(F.struct("code", "count")),
                    lambda rows: vocabulary.update(codes=_codes(rows)))
        totals: dict[str, int] = {}
        events = _final_events(staged, pending, report, duplicates, errors, window, events_after_death,
                               events_before_birth, reader.extra_names, totals)
        pending.sums(patients, [F.count(F.lit(1))], lambda c: totals.update(patients=c[0]))
        pending.flush()  # every count of the report in one Spark action (errors='raise' raises here)
        report.note("events in EventLog", totals["events"])
        report.note("patients in EventLog", totals["patients"])
        write_shards(events, patients.drop("_listed"), staging, n_shards, CATEGORIES, reader.extra_names)
        shutil.rmtree(staging / "_stage", ignore_errors=True)
        write_metadata(staging, vocabulary["codes"], report, {
            "n_shards": int(n_shards), "hash": "pathways.encode.split.patient_uniforms(seed=0)",
            "time_unit": "days", "origin": "1970-01-01", "categories": list(CATEGORIES),
            "extras": list(reader.extra_names), "n_events": totals["events"], "n_patients": totals["patients"],
            "patient_columns": ["patient_id", "birth", "sex", "death", *(["start", "end"] if window else []),
                                "BEN_RNG_GEM", "death_cause"],
            "source": "read_snds(engine='spark')"})
        publish(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        pending.release()
    return report


def _apply_window(patients: Any, window: tuple[str, str], after_death: str) -> Any:
    """Observation window = study window, ended at death (unless events after death are kept)."""
    from pyspark.sql import functions as F

    lo, hi = date_bounds(window)
    end = F.lit(float(hi))
    if after_death != "keep":
        end = F.when(F.col("death") >= lo, F.least(F.col("death"), F.lit(float(hi)))).otherwise(F.lit(float(hi)))
    return patients.select("patient_id", "birth", "sex", "death", F.lit(float(lo)).alias("start"), end.alias("end"),
                           "BEN_RNG_GEM", "death_cause", "_listed")


def _merge_duplicates(events: Any, extras: Sequence[str], duplicates: str) -> Any:
    """Identical events (every column) as one row with ``_k``, their number of lines, and their amounts summed
    (``k`` identical lines of one service: ``k`` times the amount); with ``duplicates="keep"`` one row per line."""
    from pyspark.sql import functions as F

    if duplicates == "keep":
        return events.withColumn("_k", F.lit(1).cast("long"))  # identical lines stay separate events
    summed = [c for c in ("paid", "base") if c in extras]
    merged = events.groupBy(*events.columns).agg(F.count(F.lit(1)).alias("_k"))
    return merged.select(*[(F.col(c) * F.col("_k")).alias(c) if c in summed else F.col(c)
                           for c in events.columns], "_k")


def _final_events(staged: Any, pending: PendingCounts, report: ReadReport, duplicates: str, errors: str,
                  window: tuple[str, str] | None, after_death: str, before_birth: str, extras: Sequence[str],
                  totals: dict[str, int]) -> Any:
    """Duplicates, events before birth, study window and events after death, counted as the DuckDB engine counts
    them (registered with ``pending``; ``totals["events"]`` set at its flush); the kept events in the dataset's
    columns, with their patient's shard."""
    from pyspark.sql import functions as F

    summed = [c for c in ("paid", "base") if c in extras]
    early = F.coalesce(F.col("t") < F.col("birth"), F.lit(False))
    dropped_early = early if before_birth == "drop" else F.lit(False)
    outside = F.lit(False)
    if window is not None:
        lo, hi = date_bounds(window)
        outside = (F.col("t") < lo) | (F.col("t") > hi)
    after = F.coalesce(F.col("t") > F.col("death"), F.lit(False)) if after_death == "drop" else F.lit(False)

    def decide(c: list[int]) -> None:
        # rows of ``staged`` are distinct events (_k lines each)
        n_lines, n, n_early, n_out, n_after = c
        if duplicates != "keep":
            report.decide("duplicate events", "dropped" if duplicates == "drop" else "error", n_lines - n, n_lines,
                          "identical patient, time, end, code, value and category"
                          + (f"; their {', '.join(summed)} summed into the kept event" if summed else ""),
                          errors="raise" if duplicates == "raise" else errors)
        else:
            n = n_lines
        kept_early = n - (n_early if before_birth == "drop" else 0)
        report.decide("events before birth", "dropped" if before_birth == "drop" else "kept", n_early, n, "",
                      errors=errors if before_birth == "drop" else "warn")
        if window is not None:
            report.decide("events outside the study window", "dropped", n_out, kept_early, "documented rule")
        if after_death == "drop":
            report.decide("events after death", "dropped", n_after, kept_early - n_out, "documented rule")
        totals["events"] = kept_early - n_out - n_after

    pending.sums(staged, [F.sum("_k"), F.count(F.lit(1)), count_if(early), count_if(~dropped_early & outside),
                          count_if(~dropped_early & ~outside & after)], decide)
    return staged.where(~dropped_early & ~outside & ~after).select(
        F.col("pid").alias("patient_id"), F.col("t").alias("time"), F.col("e").alias("end"), "value", "code", "cat",
        "shard", *extras)


def _codes(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Vocabulary frame (code, count) from the collected ``{code, count}`` rows."""
    return pd.DataFrame({"code": [r["code"] for r in rows],
                         "count": np.array([r["count"] for r in rows], dtype=np.int64)})


def read_snds_spark(folder: Any, *, spark: Any = None, output: str | Path | None = None, n_shards: int = 16,
                    return_report: bool = False, **options: Any) -> EventLog | tuple[EventLog, ReadReport]:
    """``read_snds(..., engine="spark")`` (which passes every option): :func:`write_snds_shards` then the whole
    dataset as one EventLog.

    ``output``: where the sharded dataset stays (None: a temporary folder, removed once read). For data larger
    than the driver's memory, use :func:`pathways.io.write_snds_dataset` and :class:`EventDataset` shard by shard instead.
    """
    with tempfile.TemporaryDirectory(prefix="pathways-spark-") as tmp:
        target = Path(output) if output is not None else Path(tmp) / "dataset"
        report = write_snds_shards(folder, target, options, spark=spark, n_shards=n_shards)
        log = EventDataset(target).to_eventlog()
    log.patients.attrs["read_report"] = report.to_frame()
    return (log, report) if return_report else log


__all__ = ["SPARK_OPTIONS", "read_snds_spark", "write_snds_shards"]

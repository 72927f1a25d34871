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
from pathways.data.dates import DEFAULT_DATE_RANGE, date_bounds
from pathways.data.validate import check_choice
from pathways.errors import PathwaysInputError
from pathways.io.report import ReadReport, check_errors_arg
from pathways.io.snds_tables import ATC_LEVELS, CATEGORIES, SOURCES, load_cip_to_atc
from pathways.io.spark.session import configure, spark_session
from pathways.io.spark.shards import (
    publish,
    staging_folder,
    with_shard,
    write_metadata,
    write_shards,
)
from pathways.io.spark.snds_patients import SparkSndsReader
from pathways.io.spark.tables import SparkTables, count_if


def write_snds_dataset(
    folder: Any,
    output: str | Path,
    *,
    spark: Any = None,
    n_shards: int = 16,
    sources: Sequence[str] = SOURCES,
    tables: Mapping[str, Any] | None = None,
    cip_to_atc: pd.DataFrame | str | Path | None = None,
    cip_column: str = "PHA_CIP_C13",
    atc_column: str = "PHA_ATC_C07",
    atc_level: int | None = None,
    exclude_information_lines: bool = True,
    drop_nonpositive_quantity: bool = True,
    mco_exclude_errors: bool = True,
    window: tuple[str, str] | None = None,
    unknown_patients: str = "keep",
    events_after_death: str = "drop",
    events_before_birth: str = "drop",
    death_events: bool = True,
    duplicates: str = "drop",
    date_range: tuple[str, str] | None = DEFAULT_DATE_RANGE,
    errors: str = "warn",
) -> ReadReport:
    """Read SNDS tables with Spark into a sharded event dataset at ``output`` (see :class:`EventDataset`).

    Parameters
    ----------
    folder : folder of CSV/parquet SNDS tables (found as the DuckDB engine finds them).
    output : dataset folder (local path); built beside it and swapped in whole, so an existing dataset is
        replaced only once the new one is complete. A folder that is no pathways dataset is never replaced.
    spark : a SparkSession (any master); None starts :func:`~pathways.io.spark.session.spark_session`.
    n_shards : number of shards (patient hash buckets): a shard's events must fit one worker's memory downstream.
    others : as :func:`pathways.io.read_snds`.

    Returns
    -------
    The read report (also in ``<output>/metadata/read_report.parquet``).
    """
    check_errors_arg(errors)
    check_choice("unknown_patients", unknown_patients, ("keep", "drop"))
    check_choice("events_after_death", events_after_death, ("keep", "drop"))
    check_choice("events_before_birth", events_before_birth, ("keep", "drop"))
    check_choice("duplicates", duplicates, ("drop", "keep", "raise"))
    bad_sources = [s for s in sources if s not in SOURCES]
    if bad_sources:
        raise PathwaysInputError(f"sources: unknown source(s) {bad_sources}; choose among {list(SOURCES)}")
    if atc_level is not None and atc_level not in ATC_LEVELS:
        raise PathwaysInputError(f"atc_level: expected one of {sorted(ATC_LEVELS)}, got {atc_level!r}")
    if int(n_shards) < 1:
        raise PathwaysInputError(f"n_shards: expected >= 1, got {n_shards!r}")
    bounds = date_bounds(date_range)  # both checked before any table is read
    if window is not None:
        date_bounds(window, "window")
    spark = spark_session() if spark is None else configure(spark)
    output = Path(output)
    staging = staging_folder(output)
    report = ReadReport("read_snds")
    reader = SparkSndsReader(SparkTables(spark, folder, tables), report, errors, bounds)
    reader.use_provider_columns(sources)
    if "dcir_drugs" in sources:
        reader.dcir_drugs(exclude_information_lines, drop_nonpositive_quantity,
                          load_cip_to_atc(cip_to_atc, cip_column, atc_column), atc_level)
    if "dcir_acts" in sources:
        reader.dcir_acts(exclude_information_lines)
    if "mco" in sources:
        reader.mco(mco_exclude_errors)
    patients = reader.patients()
    if "deaths" in sources and death_events:
        reader.death_events(patients)
    if not reader.events:
        raise PathwaysInputError("sources: no event source selected")
    events, patients = reader.complete_patients(reader.stacked_events(), patients, unknown_patients)
    if events_after_death == "keep":
        report.note("events after death kept (events_after_death='keep')", 0)
    if window is not None:
        patients = _apply_window(patients, window, events_after_death)
    patients = with_shard(patients, n_shards).cache()
    try:
        staging.mkdir(parents=True)
        # the stacked events once on disk: the counts below and the shards then read them, not the joins again
        events.write.parquet(str(staging / "_stage"))
        events = spark.read.parquet(str(staging / "_stage"))
        codes = _codes(events)  # the DuckDB engine's vocabulary: codes counted before duplicates and filters
        events, n_events = _final_events(events, patients, report, duplicates, errors, window,
                                         events_after_death, events_before_birth, reader.extra_names)
        write_shards(events, patients, staging, n_shards, CATEGORIES, reader.extra_names)
        shutil.rmtree(staging / "_stage", ignore_errors=True)
        n_patients = patients.count()
        report.note("events in EventLog", n_events)
        report.note("patients in EventLog", n_patients)
        write_metadata(staging, codes, report, {
            "n_shards": int(n_shards), "hash": "pathways.encode.split.patient_uniforms(seed=0)",
            "time_unit": "days", "origin": "1970-01-01", "categories": list(CATEGORIES),
            "extras": list(reader.extra_names), "n_events": n_events, "n_patients": int(n_patients),
            "patient_columns": ["patient_id", "birth", "sex", "death", *(["start", "end"] if window else []),
                                "BEN_RNG_GEM", "death_cause"],
            "source": "read_snds(engine='spark')"})
        publish(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        patients.unpersist()
    return report


def _apply_window(patients: Any, window: tuple[str, str], after_death: str) -> Any:
    """Observation window = study window, ended at death (unless events after death are kept)."""
    from pyspark.sql import functions as F

    lo, hi = date_bounds(window)
    end = F.lit(float(hi))
    if after_death != "keep":
        end = F.when(F.col("death") >= lo, F.least(F.col("death"), F.lit(float(hi)))).otherwise(F.lit(float(hi)))
    return patients.select("patient_id", "birth", "sex", "death", F.lit(float(lo)).alias("start"), end.alias("end"),
                           "BEN_RNG_GEM", "death_cause")


def _final_events(events: Any, patients: Any, report: ReadReport, duplicates: str, errors: str,
                  window: tuple[str, str] | None, after_death: str, before_birth: str,
                  extras: Sequence[str]) -> tuple[Any, int]:
    """Duplicates (amounts summed into the kept event), events before birth, study window and events after death,
    counted as the DuckDB engine counts them; the events with their patient's shard, in the dataset's columns."""
    from pyspark.sql import functions as F

    summed = [c for c in ("paid", "base") if c in extras]
    if duplicates != "keep":
        merged = events.groupBy(*events.columns).agg(F.count(F.lit(1)).alias("_k"))
        events = merged.select(*[(F.col(c) * F.col("_k")).alias(c) if c in summed else F.col(c)
                                 for c in events.columns], "_k")
    else:
        events = events.withColumn("_k", F.lit(1))  # identical lines stay separate events
    joined = events.join(patients.select(F.col("patient_id").alias("pid"), "birth", "death", "shard"), "pid", "left")
    early = F.coalesce(F.col("t") < F.col("birth"), F.lit(False))
    dropped_early = early if before_birth == "drop" else F.lit(False)
    outside = F.lit(False)
    if window is not None:
        lo, hi = date_bounds(window)
        outside = (F.col("t") < lo) | (F.col("t") > hi)
    after = F.coalesce(F.col("t") > F.col("death"), F.lit(False)) if after_death == "drop" else F.lit(False)
    # one pass counts the duplicates and every filter (rows of ``joined`` are distinct events, _k lines each)
    n_lines, n, n_early, n_out, n_after = [int(v or 0) for v in joined.agg(
        F.sum("_k"), F.count(F.lit(1)), count_if(early), count_if(~dropped_early & outside),
        count_if(~dropped_early & ~outside & after)).collect()[0]]
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
    out = joined.where(~dropped_early & ~outside & ~after).select(
        F.col("pid").alias("patient_id"), F.col("t").alias("time"), F.col("e").alias("end"), "value", "code", "cat",
        "shard", *extras)
    return out, kept_early - n_out - n_after


def _codes(events: Any) -> pd.DataFrame:
    """Vocabulary: each code with its number of events (one aggregation over the code column only)."""
    from pyspark.sql import functions as F

    table = events.groupBy("code").agg(F.count(F.lit(1)).alias("count")).toArrow()
    return pd.DataFrame({"code": table.column("code").to_pylist(),
                         "count": table.column("count").to_numpy().astype(np.int64)})


def read_snds_spark(folder: Any, *, spark: Any = None, output: str | Path | None = None, n_shards: int = 16,
                    return_report: bool = False, **kwargs: Any) -> EventLog | tuple[EventLog, ReadReport]:
    """``read_snds(..., engine="spark")``: :func:`write_snds_dataset` then the whole dataset as one EventLog.

    ``output``: where the sharded dataset stays (None: a temporary folder, removed once read). For data larger
    than the driver's memory, use :func:`write_snds_dataset` and :class:`EventDataset` shard by shard instead.
    """
    with tempfile.TemporaryDirectory(prefix="pathways-spark-") as tmp:
        target = Path(output) if output is not None else Path(tmp) / "dataset"
        report = write_snds_dataset(folder, target, spark=spark, n_shards=n_shards, **kwargs)
        log = EventDataset(target).to_eventlog()
    log.patients.attrs["read_report"] = report.to_frame()
    return (log, report) if return_report else log


__all__ = ["read_snds_spark", "write_snds_dataset"]

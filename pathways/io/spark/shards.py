"""Writing a sharded event dataset from Spark: parquet shards partitioned by the patient hash of
:func:`pathways.encode.split.patient_uniforms` (the hash of ``split_patients``), each sorted by (patient, time,
code), with the vocabulary, the patients and the read report beside them. :class:`pathways.data.EventDataset`
reads it (layout in :mod:`pathways.data.dataset`)."""
from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pathways.data.dataset import (
    CODES_FILE,
    DATA_DIR,
    FORMAT_NAME,
    FORMAT_VERSION,
    META_FILE,
    PATIENTS_DIR,
    REPORT_FILE,
)
from pathways.encode.split import patient_uniforms
from pathways.errors import PathwaysInputError
from pathways.io.report import ReadReport


def shard_of(ids: np.ndarray, n_shards: int, seed: int = 0) -> np.ndarray:
    """Shard of each patient id: ``floor(patient_uniforms(ids, seed) * n_shards)``, a function of the id alone.

    Examples
    --------
    >>> s = shard_of(np.array(["a", "b", "c"], dtype=object), 4)
    >>> bool(((0 <= s) & (s < 4)).all()), s.dtype.name
    (True, 'int32')
    """
    if len(ids) == 0:
        return np.empty(0, dtype=np.int32)
    u = patient_uniforms(np.asarray(ids, dtype=object), seed)
    return np.minimum((u * n_shards).astype(np.int32), n_shards - 1)


def _shard_batches(batches: Iterator[pa.RecordBatch], n_shards: int, seed: int) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: appends the shard column to batches of patients (vectorised, one call per batch)."""
    for batch in batches:
        ids = batch.column(batch.schema.get_field_index("patient_id")).to_numpy(zero_copy_only=False)
        shard = shard_of(ids, n_shards, seed)
        yield pa.RecordBatch.from_arrays([*batch.columns, pa.array(shard, pa.int32())],
                                         names=[*batch.schema.names, "shard"])


def with_shard(patients: Any, n_shards: int, seed: int = 0) -> Any:
    """Patients DataFrame plus an int ``shard`` column (the hash computed in Arrow batches on the executors)."""
    from pyspark.sql.types import IntegerType, StructField, StructType

    schema = StructType([*patients.schema.fields, StructField("shard", IntegerType(), False)])
    return patients.mapInArrow(partial(_shard_batches, n_shards=int(n_shards), seed=int(seed)), schema)


def event_sort_keys(extras: Sequence[str]) -> list[Any]:
    """Row order inside a shard: (patient, time, code), then category, end, value and extras with missing first,
    the tie order of the DuckDB engine's EventLog (identical events end up adjacent)."""
    from pyspark.sql import functions as F

    return [F.col("patient_id"), F.col("time"), F.col("code"), F.col("cat"), F.col("end").asc_nulls_first(),
            F.col("value").asc_nulls_first(), *[F.col(x).asc_nulls_first() for x in extras]]


def write_shards(events: Any, patients: Any, folder: Path, n_shards: int, categories: Sequence[str],
                 extras: Sequence[str]) -> None:
    """Write events (``patient_id, time, end, value, code, cat, shard, <extras>``) and patients (with ``shard``)
    as hive-partitioned parquet (``shard=<k>``), each shard sorted."""
    from pyspark.sql import functions as F

    names = F.array(*[F.lit(c) for c in categories])
    columns = ["patient_id", "time", "end", "value", "code",
               F.element_at(names, F.col("cat") + 1).alias("category"), *extras, "shard"]
    (events.repartition(int(n_shards), "shard").sortWithinPartitions("shard", *event_sort_keys(extras))
     .select(*columns).write.partitionBy("shard").parquet(str(folder / DATA_DIR)))
    (patients.repartition(int(n_shards), "shard").sortWithinPartitions("shard", "patient_id")
     .write.partitionBy("shard").parquet(str(folder / PATIENTS_DIR)))


def write_metadata(folder: Path, codes: pd.DataFrame, report: ReadReport, meta: dict[str, Any]) -> None:
    """Vocabulary (code, count; sorted by code), read report and ``dataset.json`` (driver side, small)."""
    meta_dir = folder / Path(META_FILE).parent
    meta_dir.mkdir(parents=True, exist_ok=True)
    codes = codes.sort_values("code", kind="stable").reset_index(drop=True)
    pq.write_table(pa.table({"code": pa.array(codes["code"].astype(str).tolist(), pa.string()),
                             "count": pa.array(codes["count"].to_numpy(np.int64))}), folder / CODES_FILE)
    frame = report.to_frame()
    pq.write_table(pa.table({"step": pa.array(frame["step"].astype(str).tolist()),
                             "decision": pa.array(frame["decision"].astype(str).tolist()),
                             "count": pa.array(frame["count"].to_numpy(np.int64)),
                             "total": pa.array([None if pd.isna(v) else int(v) for v in frame["total"]], pa.int64()),
                             "detail": pa.array(frame["detail"].astype(str).tolist())}), folder / REPORT_FILE)
    (folder / META_FILE).write_text(json.dumps({"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **meta},
                                               indent=1))


def staging_folder(output: Path) -> Path:
    """A fresh sibling of ``output`` to build the dataset in (swapped in whole by :func:`publish`)."""
    if output.exists() and not (output / META_FILE).exists():
        raise PathwaysInputError(f"output: {str(output)!r} exists and is no pathways event dataset: not replaced")
    return output.with_name(f".{output.name}.partial-{uuid.uuid4().hex[:8]}")


def publish(staging: Path, output: Path) -> None:
    """Replace ``output`` by the finished ``staging`` folder: a reader sees the old dataset or the new one."""
    if output.exists():
        old = output.with_name(f".{output.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(output, old)
        os.replace(staging, output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, output)


__all__ = ["event_sort_keys", "publish", "shard_of", "staging_folder", "with_shard", "write_metadata",
           "write_shards"]

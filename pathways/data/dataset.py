"""``EventDataset``: a sharded event dataset opened lazily, read shard by shard with one global vocabulary.

Layout (written by :func:`pathways.io.write_snds_dataset`; any tool writing it is read the same)::

    <root>/data/shard=<k>/*.parquet       events: patient_id (string), time, end, value (float64; days since
                                          1970-01-01), code (string), category (string), extras; each file sorted
                                          by (patient, time, code); every event of a patient in one shard
    <root>/patients/shard=<k>/*.parquet   patients: patient_id, birth, sex, death, [start, end], covariates
    <root>/metadata/codes.parquet         vocabulary: code, count (sorted by code)
    <root>/metadata/read_report.parquet   the reader's counted decisions
    <root>/metadata/dataset.json          format, n_shards, hash, time unit, origin, categories, extras, counts

The shard of a patient is ``floor(patient_uniforms(id) * n_shards)``, the hash of
:func:`pathways.encode.split.split_patients`: shards are stable when patients are added. Filters on patients,
codes and dates are pushed down to the parquet scan (row groups whose statistics exclude them are skipped).
Paths may be local or any URI pyarrow opens (``hdfs://``, ``s3://``, ``gs://``), or an fsspec filesystem.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pathways.data.arrow import patients_to_arrow
from pathways.data.dates import EPOCH, date_bounds
from pathways.data.eventlog import EventLog
from pathways.data.vocabulary import Vocabulary
from pathways.errors import PathwaysInputError
from pathways.progress import progress_bar

FORMAT_NAME = "pathways.sharded-events"
FORMAT_VERSION = 1
DATA_DIR, PATIENTS_DIR = "data", "patients"
META_FILE, CODES_FILE, REPORT_FILE = "metadata/dataset.json", "metadata/codes.parquet", "metadata/read_report.parquet"


class EventDataset:
    """A sharded event dataset (layout in the module docstring), opened lazily.

    Parameters
    ----------
    path : dataset root: local path or URI (``hdfs://``, ``s3://``, ...).
    filesystem : a pyarrow ``FileSystem`` or an fsspec filesystem (default: inferred from ``path``).

    Examples
    --------
    >>> import tempfile
    >>> from pathways.data.dataset import write_event_dataset
    >>> log = EventLog.from_pandas(pd.DataFrame({"patient_id": ["a", "a", "b"], "time": [1.0, 2.0, 3.0],
    ...                                          "code": ["X", "Y", "X"]}))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     data = EventDataset(write_event_dataset(log, d + "/ds", n_shards=2, shard=np.array([0, 1])))
    ...     [shard.n_events for shard in data], data.to_eventlog(codes=["X"]).n_events
    ([2, 1], 2)
    """

    def __init__(self, path: Any, filesystem: Any = None):
        self.filesystem, self.root = _filesystem(path, filesystem)
        try:
            with self.filesystem.open_input_stream(f"{self.root}/{META_FILE}") as fh:
                self.meta = json.loads(fh.read().decode())
        except (OSError, FileNotFoundError, ValueError) as exc:
            raise PathwaysInputError(f"path: {str(path)!r} is no pathways event dataset (no readable "
                                     f"{META_FILE}): {exc}") from exc
        if self.meta.get("format") != FORMAT_NAME:
            raise PathwaysInputError(f"path: {META_FILE} names format {self.meta.get('format')!r}, "
                                     f"expected {FORMAT_NAME!r}")
        codes = ds.dataset(f"{self.root}/{CODES_FILE}", filesystem=self.filesystem, format="parquet").to_table()
        self.vocab = Vocabulary(codes.column("code").to_pylist(), codes.column("count").to_numpy())
        self.extras: list[str] = list(self.meta.get("extras", []))
        self.categories: list[str] = list(self.meta.get("categories", []))
        self.n_shards = int(self.meta["n_shards"])

    def __repr__(self) -> str:
        return (f"EventDataset({self.root!r}: {self.meta.get('n_events')} events, {self.meta.get('n_patients')} "
                f"patients, {self.n_shards} shards, {len(self.vocab)} codes)")

    def _dataset(self, sub: str) -> ds.Dataset:
        return ds.dataset(f"{self.root}/{sub}", filesystem=self.filesystem, format="parquet", partitioning="hive")

    def read_report(self) -> pd.DataFrame:
        """The reader's counted decisions (step, decision, count, total, detail)."""
        path = f"{self.root}/{REPORT_FILE}"
        return ds.dataset(path, filesystem=self.filesystem, format="parquet").to_table().to_pandas()

    def patients(self, shard: int | None = None, patients: Iterable[Any] | None = None) -> pd.DataFrame:
        """Patients (of one shard or all), sorted by patient id, as the EventLog holds them."""
        table = self._dataset(PATIENTS_DIR).to_table(filter=_and(_shard_filter(shard), _isin("patient_id", patients)))
        frame = _patients_frame(table, self.meta.get("patient_columns"))
        return frame.sort_values("patient_id", kind="stable").reset_index(drop=True)

    def events(self, shard: int | None = None, *, patients: Iterable[Any] | None = None,
               codes: Iterable[str] | None = None, start: Any = None, end: Any = None,
               columns: Sequence[str] | None = None) -> pa.Table:
        """The events table (of one shard or all) with the filters pushed down to the parquet scan.

        ``start`` / ``end``: dates (text or Timestamp) or days since 1970; events with ``start <= time <= end``.
        """
        lo, hi = _days(start, -np.inf), _days(end, np.inf)
        cond = _and(_shard_filter(shard), _isin("patient_id", patients), _isin("code", codes),
                    None if not np.isfinite(lo) else pc.field("time") >= lo,
                    None if not np.isfinite(hi) else pc.field("time") <= hi)
        cols = None if columns is None else list(columns)
        return self._dataset(DATA_DIR).to_table(columns=cols, filter=cond)

    def shard_ids(self) -> list[int]:
        """Shards holding patients (empty hash buckets are absent)."""
        table = self._dataset(PATIENTS_DIR).to_table(columns=["shard"])
        return sorted(int(s) for s in pc.unique(table.column("shard")).to_pylist())

    def shard_sizes(self) -> dict[int, int]:
        """Patients per shard (shards holding patients), from the patients files' shard column only."""
        table = self._dataset(PATIENTS_DIR).to_table(columns=["shard"])
        counts = pc.value_counts(table.column("shard")).to_pylist()
        return {int(c["values"]): int(c["counts"]) for c in sorted(counts, key=lambda c: int(c["values"]))}

    def shard(self, k: int, **filters: Any) -> EventLog:
        """Shard ``k`` as an EventLog (its patients, the global vocabulary); ``filters`` as :meth:`events`."""
        return self._eventlog(k, **filters)

    def iter_shards(self, **filters: Any) -> Iterator[EventLog]:
        """One EventLog per shard, in shard order: memory holds one shard at a time."""
        for k in progress_bar(self.shard_ids(), desc="shards", unit="shard"):  # streaming encoders and fits
            yield self._eventlog(k, **filters)

    def __iter__(self) -> Iterator[EventLog]:
        return self.iter_shards()

    def to_eventlog(self, **filters: Any) -> EventLog:
        """The whole dataset (or its filtered part) as one EventLog (it must fit in memory)."""
        return self._eventlog(None, **filters)

    def _eventlog(self, shard: int | None, patients: Iterable[Any] | None = None, **filters: Any) -> EventLog:
        ids = None if patients is None else list(patients)
        people = self.patients(shard, ids)
        table = self.events(shard, patients=ids, **filters)
        patient = _positions(table.column("patient_id"), people["patient_id"])
        if (patient < 0).any():
            raise PathwaysInputError(f"dataset: {int((patient < 0).sum())} events have a patient absent from the "
                                     f"patients files")
        # shards are sorted by (patient id, time, code, ties): a stable sort on the patient index merges them
        order = np.argsort(patient, kind="stable") if shard is None else None
        codes = table.column("code").combine_chunks().dictionary_encode()
        code = pd.Index(self.vocab.codes).get_indexer(codes.dictionary.to_numpy(zero_copy_only=False))
        if (code < 0).any():
            raise PathwaysInputError("dataset: events hold codes absent from metadata/codes.parquet")
        code = code[codes.indices.to_numpy(zero_copy_only=False)]
        columns = {name: table.column(name).to_numpy(zero_copy_only=False) for name in ("time", "end", "value")}
        category = _categorical(table.column("category"), self.categories)
        extras = {name: _extra(table.column(name)) for name in self.extras if name in table.column_names}
        if order is not None:
            patient, code, category = patient[order], code[order], category[order]
            columns = {k: v[order] for k, v in columns.items()}
            extras = {k: v[order] for k, v in extras.items()}
        return EventLog.from_arrays(patient, columns["time"], code, self.vocab, people, end=columns["end"],
                                    value=columns["value"], category=category,
                                    time_unit=self.meta.get("time_unit", "days"),
                                    origin=self.meta.get("origin", EPOCH), extras=extras)


def write_event_dataset(log: EventLog, path: str | Path, n_shards: int, shard: np.ndarray) -> Path:
    """Write an EventLog in the sharded layout with a given shard per patient (small data, tests, examples).

    The Spark engine writes large datasets; this writer is its pure-pyarrow counterpart.
    """
    root = Path(path)
    shard = np.asarray(shard, dtype=np.int32)
    events = pa.table({"patient_id": pa.array(log.patients["patient_id"].to_numpy()[log.patient].astype(str).tolist()),
                       "time": log.time, "end": log.end, "value": log.value,
                       "code": pa.array(log.code_strings().astype(str).tolist()),
                       "category": pa.array(log.category).cast(pa.string()),
                       **{k: v for k, v in log.extras.items()}, "shard": shard[log.patient]})
    people = patients_to_arrow(log)
    people = people.append_column("shard", pa.array(shard))
    for k in np.unique(shard):
        for sub, table, key in ((DATA_DIR, events, "shard"), (PATIENTS_DIR, people, "shard")):
            part = table.filter(pc.equal(table.column(key), int(k))).drop_columns([key])
            (root / sub / f"shard={int(k)}").mkdir(parents=True, exist_ok=True)
            pq.write_table(part, root / sub / f"shard={int(k)}" / "part-0.parquet")
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"code": pa.array(log.vocab.codes.astype(str).tolist()), "count": log.vocab.counts}),
                   root / CODES_FILE)
    (root / META_FILE).write_text(json.dumps({
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "n_shards": int(n_shards), "time_unit": log.time_unit,
        "origin": None if log.origin is None else str(log.origin.date()),
        "categories": [str(c) for c in log.category.categories], "extras": list(log.extras),
        "n_events": log.n_events, "n_patients": log.n_patients, "patient_columns": list(log.patients.columns)}))
    return root


def _filesystem(path: Any, filesystem: Any) -> tuple[pafs.FileSystem, str]:
    if filesystem is not None and not isinstance(filesystem, pafs.FileSystem):
        filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))  # an fsspec filesystem
    if filesystem is not None:
        return filesystem, str(path).rstrip("/")
    text = str(path)
    if "://" in text:
        try:
            return pafs.FileSystem.from_uri(text)
        except (pa.ArrowInvalid, OSError) as exc:
            raise PathwaysInputError(f"path: cannot open {text!r}: {exc}") from exc
    return pafs.LocalFileSystem(), str(Path(text).resolve())


def _and(*conds: Any) -> Any:
    out = None
    for c in conds:
        if c is not None:
            out = c if out is None else out & c
    return out


def _shard_filter(shard: int | None) -> Any:
    return None if shard is None else pc.field("shard") == int(shard)


def _isin(column: str, values: Iterable[Any] | None) -> Any:
    if values is None:
        return None
    return pc.field(column).isin(pa.array([str(v) for v in values], pa.string()))


def _days(value: Any, default: float) -> float:
    """A date (text, Timestamp) or a number of days since 1970 as float days."""
    if value is None:
        return default
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return date_bounds((str(pd.Timestamp(value).date()),) * 2, "start/end")[0]


def _positions(column: pa.ChunkedArray, values: Any) -> np.ndarray:
    """Position in ``values`` of each entry of a text column (-1: absent or null), looked up once per distinct entry
    (the column's dictionary), not once per event.

    >>> _positions(pa.chunked_array([["b", "b", None, "z", "a"]]), ["a", "b"]).tolist()
    [1, 1, -1, -1, 0]
    """
    encoded = column.cast(pa.string()).combine_chunks().dictionary_encode()
    position = pd.Index(values).get_indexer(encoded.dictionary.to_numpy(zero_copy_only=False))
    indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return np.append(position, -1)[indices]


def _categorical(column: pa.ChunkedArray, categories: list[str]) -> pd.Categorical:
    """A text column as a Categorical over ``categories`` (others and nulls: missing), through its dictionary: no
    Python object per event.

    >>> _categorical(pa.chunked_array([["b", None, "a", "z"]]), ["a", "b"]).codes.tolist()
    [1, -1, 0, -1]
    """
    return pd.Categorical.from_codes(_positions(column, categories), categories=categories)


def _extra(column: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.to_numpy(zero_copy_only=False).astype(object)
    return column.to_numpy(zero_copy_only=False).astype(np.float64)


def _patients_frame(table: pa.Table, order: Sequence[str] | None) -> pd.DataFrame:
    """Arrow patients -> the EventLog's pandas frame: text as objects with None, floats with NaN, integers as
    numpy int32/int64 (pandas' nullable Int when some are missing), sex as a Categorical of F, M."""
    names = [c for c in (order or table.column_names) if c in table.column_names and c != "shard"]
    out = {}
    for name in names:
        col = table.column(name)
        if name == "sex":
            out[name] = pd.Categorical(col.cast(pa.string()).to_pylist(), categories=["F", "M"])
        elif pa.types.is_integer(col.type):
            dtype = pd.Int32Dtype() if col.type == pa.int32() else pd.Int64Dtype()
            out[name] = col.to_pandas().astype(dtype)
            if col.null_count == 0:
                out[name] = out[name].to_numpy(col.type.to_pandas_dtype())
        elif pa.types.is_floating(col.type):
            out[name] = col.to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            out[name] = col.to_numpy(zero_copy_only=False).astype(object)
    return pd.DataFrame(out)


__all__ = [
    "CODES_FILE",
    "DATA_DIR",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "META_FILE",
    "PATIENTS_DIR",
    "REPORT_FILE",
    "EventDataset",
    "write_event_dataset",
]

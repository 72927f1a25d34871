"""Reading MEDS shards: the shard files of a dataset, and the parallel reader of datasets written by ``write_meds``.

A pathways dataset is read by a pool of threads, one shard per task: pyarrow decodes the shard (GIL released),
the shard's event rows are found from its dictionary-encoded codes (one lookup per distinct dictionary) and the
validity bitmap of its times, then each record batch (about 128 k rows: cache-sized temporaries) goes converted
straight into its slice of the preallocated event arrays: ids copied, codes gathered through the dictionary, int64
microseconds turned into float times in place, float32 values widened in place. A shard's slice starts where the
previous shard's events end, known as soon as that shard has counted its events, so shards convert concurrently
and the events keep the order of the files.
"""
from __future__ import annotations

import os
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pathways.data import EventLog, Vocabulary
from pathways.data.arrow import DictionaryLookup, buffer_values, index_lookup, validity
from pathways.data.order import event_order
from pathways.errors import PathwaysInputError
from pathways.progress import progress_bar

BIRTH, DEATH = "MEDS_BIRTH", "MEDS_DEATH"
_FIELDS = ("patient", "time", "code", "end", "value")
_US = pa.timestamp("us")
_BATCH = 131_072  # rows converted at a time: the temporaries stay in cache
# a null slot's undefined value times NaN is NaN, a value times 1 itself (exactly: -0.0, inf, subnormals too): one
# vectorised multiply through a two-entry table, 3-4x cheaper than np.where(valid, raw, nan) or pc.fill_null
_NAN_OR_ONE = {t: np.array([np.nan, 1.0], dtype=t) for t in (np.float32, np.float64)}


def pool_empty(n: int, dtype: Any) -> np.ndarray:
    """An uninitialised array in pyarrow's memory pool. The pool keeps the pages it frees mapped, so a process
    that reads again writes into memory already paged in (as read_parquet's decoded columns do), where
    ``np.empty`` maps fresh pages that fault on first touch (~10 ms per 80 MB here)."""
    dtype = np.dtype(dtype)
    return np.frombuffer(pa.allocate_buffer(n * dtype.itemsize), dtype=dtype)


def from_ticks(us: np.ndarray, unit_us: int, origin_us: int) -> np.ndarray:
    """Float times in the unit since the origin of ticks since 1970 (inverse of :func:`pathways.io.meds.to_ticks`).

    Below 2**53 ticks from the origin (285 years of microseconds) the offsets convert to float exactly and one
    division gives the float nearest to the true time; beyond, whole units are split off first.

    Examples
    --------
    >>> from_ticks(np.array([43_200_000_000]), 86_400_000_000, 0).tolist()
    [0.5]
    """
    offset = np.asarray(us, dtype=np.int64)
    offset = offset - origin_us if origin_us else offset
    out = np.empty(offset.shape)
    _ticks_to_float(offset, out, unit_us)
    return out


def _ticks_to_float(offset: np.ndarray, out: np.ndarray, unit_us: int) -> None:
    """``out`` = ``offset`` / ``unit_us`` exactly rounded; ``out`` may be ``offset``'s own memory (in place)."""
    if offset.size == 0 or max(-int(offset.min()), int(offset.max())) < 2**53:
        np.true_divide(offset, unit_us, out=out)  # one pass: int64 -> float64 is exact below 2**53
        return
    whole, rest = np.divmod(offset, unit_us)
    out[...] = whole.astype(np.float64) + rest / unit_us


# ----------------------------------------------------------------------------------------------------------------
# shard files
# ----------------------------------------------------------------------------------------------------------------
def shard_paths(folder: Path) -> list[Path]:
    """The ``data/**.parquet`` shards in natural order (shard 10 after shard 9: write_meds' order)."""
    shards = sorted((folder / "data").rglob("*.parquet"),
                    key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.as_posix())])
    if not shards:
        raise PathwaysInputError(f"MEDS folder {str(folder)!r}: no data/*.parquet shards")
    return shards


def read_shard(folder: Path, path: Path, split: pa.Array | None, threads: bool = True,
               columns: list[str] | None = None, metadata: pq.FileMetaData | None = None) -> pa.Table:
    """One shard (codes and categories kept dictionary-encoded), with the subjects of the split only; ``threads``:
    decode its columns concurrently (off where shards are read concurrently); ``columns``: these only;
    ``metadata``: the shard's footer when already read."""
    try:  # the file's own reader: pq.read_table's dataset layer costs ~5 % more CPU for a single file
        metadata = metadata or pq.read_metadata(path)
        encoded = [name for name in ("code", "category") if name in metadata.schema.names]
        table = pq.ParquetFile(path, metadata=metadata, read_dictionary=encoded).read(columns=columns,
                                                                                     use_threads=threads)
    except (OSError, pa.ArrowInvalid) as exc:
        raise PathwaysInputError(f"MEDS folder {str(folder)!r}: cannot read a shard: {exc}") from exc
    if missing := {"subject_id", "time", "code"} - set(table.column_names):
        raise PathwaysInputError(f"MEDS shards lack column(s) {sorted(missing)}")
    return table if split is None else table.filter(pc.is_in(table.column("subject_id"), value_set=split))


def split_subjects(folder: Path, split: str | None) -> pa.Array | None:
    """The subject ids of one split of ``metadata/subject_splits.parquet`` (None: every subject)."""
    if split is None:
        return None
    splits = pq.read_table(folder / "metadata" / "subject_splits.parquet")
    return splits.filter(pc.equal(splits["split"], split))["subject_id"].combine_chunks()


# ----------------------------------------------------------------------------------------------------------------
# the parallel reader of a pathways dataset
# ----------------------------------------------------------------------------------------------------------------
class _Reader:
    """The preallocated event arrays and what the shard tasks share."""

    def __init__(self, folder: Path, keep: pa.Array | None, n_rows: int, n_codes: int, lookup: pd.Index,
                 extras: list[str], units: tuple[str, int, int], categories: list[str] | None = None):
        self.folder, self.keep, self.n_rows, self.n_codes, self.lookup = folder, keep, n_rows, n_codes, lookup
        self.extras, self.unit_us, self.origin_us = extras, units[1], units[2]
        self.threads = True  # pyarrow's own decoding threads: off when several shards are read at once
        # uninitialised: only the event rows written by the tasks are ever paged in
        self.out = {k: pool_empty(n_rows, np.int64 if k in ("patient", "code") else np.float64) for k in _FIELDS}
        self.category = pool_empty(n_rows, np.int32)
        # category -> code: the written log's categories (dataset.json), then others in order of discovery (shared
        # by the tasks: under the lock)
        self.categories: dict[Any, int] = {c: i for i, c in enumerate(categories or [])}
        self.n_known = len(self.categories)
        self._lock = threading.Lock()
        lookup.get_indexer(lookup[:1])  # builds the index's hash table before the tasks share it

    def _category_codes(self, dictionary: pa.Array) -> np.ndarray:
        with self._lock:
            return np.array([self.categories.setdefault(v, len(self.categories)) for v in dictionary.to_pylist()],
                            dtype=np.int32)  # the dtype of the codes written: np.take casts nothing

    def shard(self, path: Path, metadata: pq.FileMetaData, start: Future, after: Future) -> dict[str, Any]:
        """Read one shard (``metadata``: its footer) into the event arrays from the row ``start`` resolves to;
        resolve ``after`` to its end."""
        try:
            table = read_shard(self.folder, path, self.keep, self.threads, _read_columns(metadata), metadata)
            if missing := [name for name in self.extras if name not in table.column_names]:
                raise PathwaysInputError(f"MEDS shard {path.name}: lacks the extra column(s) {missing} of "
                                         "metadata/dataset.json")
            codes = index_lookup(self.lookup)
            # cache-sized batches (zero-copy slices of the row group's one chunk)
            batches = [b for b in table.to_batches(max_chunksize=_BATCH) if b.num_rows]
            plans = [self._plan(batch, codes) for batch in batches]
            at = start.result()
            end = at + sum(plan[1] for plan in plans)
            if end > self.n_rows:
                raise PathwaysInputError(f"MEDS shard {path.name}: more rows than its parquet metadata states")
            after.set_result(end)
        except BaseException as exc:
            if not after.done():
                after.set_exception(exc)
            raise
        result: dict[str, Any] = {name: [table.column(name).type] for name in self.extras}
        result["present"] = None if self.keep is None else pc.unique(table.column("subject_id")).to_numpy()
        result["sorted"], result["first"], result["last"], result["absent"] = True, None, None, 0
        categories = DictionaryLookup(self._category_codes)
        for batch, (event, count, positions, indices, mask) in zip(batches, plans):
            rows = slice(at, at + count)
            self._convert(batch, event, rows, positions, indices, categories, mask)
            if positions.size and positions.min() < 0:  # codes absent from codes.parquet, if events carry them
                result["absent"] += int(np.count_nonzero(self.out["code"][rows] < 0))
            if count:
                patient = self.out["patient"][rows]
                result["sorted"] &= bool((patient[1:] >= patient[:-1]).all())
                result["first"] = patient[0] if result["first"] is None else result["first"]
                result["last"] = patient[-1]
            for name in self.extras:
                column = batch.column(name)
                result[name].append(column if event is None else column.take(pa.array(event)))
            at += count
        return result

    def _plan(self, batch: pa.RecordBatch, codes: DictionaryLookup) -> tuple[np.ndarray | None, int, np.ndarray,
                                                                             np.ndarray, np.ndarray]:
        """(event row indices or None for all, their count, code positions per dictionary entry, dictionary
        indices, the event rows as a mask)."""
        code = batch.column("code")
        if not pa.types.is_dictionary(code.type):
            code = pc.dictionary_encode(code)
        if code.null_count:
            raise PathwaysInputError(f"MEDS code: {code.null_count} values are missing")
        positions, indices = codes(code.dictionary), code.indices.to_numpy()
        if "pathways_time" in batch.schema.names:
            event = ~np.isnan(batch.column("pathways_time").to_numpy(zero_copy_only=False))
        else:  # static rows have no time
            event = validity(batch.column("time"))
            event = np.ones(len(indices), dtype=bool) if event is None else event
        # births and deaths (the lookup's entries past the vocabulary) are no events; codes absent from the
        # vocabulary (-1) count as events: they raise in build. The dictionary holds at most one entry of each:
        # comparing the indices with them is several times cheaper than a gather through a per-entry table.
        for entry in np.flatnonzero(positions >= self.n_codes):
            event &= indices != entry
        count = int(np.count_nonzero(event))
        # the event rows' indices, found once: np.take(..., mode="clip") with them is several times faster than
        # np.compress (which finds them again for every column and buffers its output)
        return (None if count == batch.num_rows else np.flatnonzero(event)), count, positions, indices, event

    def _convert(self, batch: pa.RecordBatch, event: np.ndarray | None, rows: slice, positions: np.ndarray,
                 indices: np.ndarray, categories: DictionaryLookup, mask: np.ndarray) -> None:
        """The event rows (``event``: their indices, None for all; ``mask``: the same as a mask) of a batch into
        the ``rows`` of the event arrays."""
        names = batch.schema.names
        subject = batch.column("subject_id")
        if subject.null_count:
            raise PathwaysInputError(f"MEDS subject_id: {subject.null_count} values are missing")
        subject = subject if subject.type == pa.int64() else subject.cast(pa.int64())  # a cast call costs ~1 %
        _put(buffer_values(subject, np.int64), event, self.out["patient"][rows])
        np.take(positions, _rows(indices, event), out=self.out["code"][rows], mode="clip")
        self._times(batch, "time", "pathways_time", event, self.out["time"][rows])
        self._times(batch, "end", "pathways_end", event, self.out["end"][rows])
        value = next((batch.column(n) for n in ("pathways_value", "numeric_value") if n in names), None)
        out = self.out["value"][rows]
        if value is None or value.null_count == len(value):
            out[...] = np.nan
        else:
            if value.type not in (pa.float32(), pa.float64()):
                value = value.cast(pa.float64())
            raw = buffer_values(value, np.float32 if value.type == pa.float32() else np.float64)
            if (valid := validity(value)) is not None:  # NaN in the batch's nulls first: fewer rows than after
                raw = raw * np.take(_NAN_OR_ONE[raw.dtype.type], valid.view(np.uint8))
            np.copyto(out, _rows(raw, event))  # MEDS' float32 numeric_value widened on the way
        out = self.category[rows]
        category = batch.column("category") if "category" in names else None
        if category is None or category.null_count == len(category):
            out[...] = -1
            return
        if not pa.types.is_dictionary(category.type):
            category = pc.dictionary_encode(category)
        codes = buffer_values(category.indices, category.indices.type.to_pandas_dtype())
        lookup = categories(category.dictionary)
        if codes.dtype == out.dtype and np.array_equal(lookup, np.arange(lookup.size)):
            _put(codes, event, out)  # the dictionary in the log's category order: its indices are the codes
        else:
            np.take(lookup, _rows(codes, event), out=out, mode="clip")
        if (valid := validity(category)) is not None and np.count_nonzero(valid & mask) < out.size:
            np.copyto(out, -1, where=~_rows(valid, event))  # events without a category (static rows have none)

    def _times(self, batch: pa.RecordBatch, name: str, exact: str, event: np.ndarray | None, out: np.ndarray) -> None:
        """Float times of a timestamp column into ``out`` (NaN where null); the exact float64 column if written."""
        if exact in batch.schema.names:
            _put(batch.column(exact).to_numpy(zero_copy_only=False).astype(np.float64, copy=False), event, out)
            return
        column = batch.column(name) if name in batch.schema.names else None
        if column is None or column.null_count == len(column):
            out[...] = np.nan
            return
        column = column if column.type == _US else column.cast(_US)
        ticks = out.view(np.int64)  # the int64 microseconds land in the output's memory, then turn float in place
        _put(buffer_values(column, np.int64), event, ticks)
        if self.origin_us:
            np.subtract(ticks, self.origin_us, out=ticks)
        _ticks_to_float(ticks, out, self.unit_us)
        if name != "time":  # the event rows are the timed rows: their times are never null
            _fill_nulls(column, event, out, np.nan)

    def categorical(self, n: int) -> pd.Categorical:
        """The category of the first ``n`` events: the written log's categories in their order, others (a dataset
        without them in dataset.json) sorted, as the discovery order depends on the threads."""
        names = list(self.categories)
        if names[:self.n_known] + sorted(names[self.n_known:]) == names:  # the codes are final: no remapping pass
            return pd.Categorical.from_codes(self.category[:n], categories=names, validate=False)
        names = names[:self.n_known] + sorted(names[self.n_known:])
        rank = np.empty(len(names) + 1, dtype=np.int64)
        rank[[self.categories[v] for v in names]] = np.arange(len(names))
        rank[-1] = -1  # code -1 (missing) indexes the last entry
        small = np.int8 if len(names) < 127 else np.int16 if len(names) < 32_767 else np.int32
        return pd.Categorical.from_codes(rank.astype(small)[self.category[:n]], categories=names, validate=False)


def _rows(values: np.ndarray, event: np.ndarray | None) -> np.ndarray:
    """The event rows of a batch's values (``event``: their indices, None for all rows)."""
    return values if event is None else np.take(values, event, mode="clip")


def _put(values: np.ndarray, event: np.ndarray | None, out: np.ndarray) -> None:
    """The event rows of ``values`` written into ``out``."""
    if event is None:
        out[...] = values
    else:
        np.take(values, event, out=out, mode="clip")


def _fill_nulls(column: pa.Array, event: np.ndarray | None, out: np.ndarray, fill: float) -> None:
    """``fill`` where the event rows of ``column`` are null."""
    valid = validity(column)
    if valid is not None and not (valid := _rows(valid, event)).all():
        np.copyto(out, fill, where=~valid)


def _extra(results: list[dict[str, Any]], name: str) -> np.ndarray:
    """An extra column of the event rows; each shard's parts start with the column's type (typed when empty)."""
    try:
        return pa.chunked_array([c for r in results for c in r[name][1:]], type=results[0][name][0]).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise PathwaysInputError(f"MEDS shards: the type of column {name!r} differs between shards: {exc}") from exc


def _read_columns(metadata: pq.FileMetaData) -> list[str]:
    """The columns of a shard to decode: all but the optional ones whose statistics say they hold nulls only (an
    all-null ``end``, ``numeric_value`` or ``category`` costs a full-length decode for nothing; read as absent)."""
    empty = set()
    for i in range(metadata.num_columns):
        name = metadata.schema.column(i).path
        if name in ("end", "numeric_value", "category") and all(
                (stats := metadata.row_group(r).column(i).statistics) is not None and stats.has_null_count
                and stats.null_count == metadata.row_group(r).num_rows for r in range(metadata.num_row_groups)):
            empty.add(name)
    return [name for name in metadata.schema.to_arrow_schema().names if name not in empty]


def read_own(folder: Path, info: dict, split: str | None, origin: pd.Timestamp | None,
             units: tuple[str, int, int], workers: int | None = None) -> EventLog:
    """A dataset written by ``write_meds``, its shards read concurrently by ``workers`` threads (default: one per
    CPU, at most 8) straight into the event arrays (see the module docstring)."""
    meta = folder / "metadata"
    code_table = pq.read_table(meta / "codes.parquet")
    vocab = Vocabulary(code_table.column("code").to_pylist(), code_table.column("pathways_count").to_numpy(),
                       info["oov_token"])
    shards, keep = shard_paths(folder), split_subjects(folder, split)
    try:
        metadata = [pq.ParquetFile(p).metadata for p in shards]
    except (OSError, pa.ArrowInvalid) as exc:
        raise PathwaysInputError(f"MEDS folder {str(folder)!r}: cannot read a shard: {exc}") from exc
    n_rows = sum(meta.num_rows for meta in metadata)
    reader = _Reader(folder, keep, n_rows, len(vocab), pd.Index([*vocab.codes, BIRTH, DEATH]), info["extras"], units,
                     info.get("categories"))
    if workers is not None and workers < 1:
        raise PathwaysInputError(f"workers must be >= 1, got {workers}")
    workers = workers or min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    workers = max(1, min(workers, len(shards)))
    reader.threads = workers == 1
    starts = [Future() for _ in range(len(shards) + 1)]
    starts[0].set_result(0)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        tasks = [pool.submit(reader.shard, path, shard_meta, starts[i], starts[i + 1])
                 for i, (path, shard_meta) in enumerate(zip(shards, metadata))]
        patients_task = pool.submit(lambda: pq.read_table(meta / "subjects.parquet").to_pandas())
        try:
            results = [task.result() for task in progress_bar(tasks, desc="reading MEDS shards", unit="shard")]
        except BaseException:
            pool.shutdown(cancel_futures=True)  # shards not started yet are not read for nothing
            raise
        patients = patients_task.result()
    n = starts[-1].result()
    arrays = {k: v[:n] for k, v in reader.out.items()}
    extras = {k: _extra(results, k) for k in info["extras"]}
    bounds = [(r["first"], r["last"]) for r in results if r["first"] is not None]
    in_order = all(r["sorted"] for r in results) and all(a[1] <= b[0] for a, b in zip(bounds, bounds[1:]))
    subject = arrays["patient"]
    index = patients.pop("subject_id").to_numpy()
    info = {**info, "sorted": in_order and split is None and np.array_equal(index, np.arange(index.size))}
    patient = subject if info["sorted"] else pd.Index(index).get_indexer(subject)
    absent = "MEDS subject_id: rows name subjects absent from metadata/subjects.parquet"
    # sorted: the first and last subjects bound them all (no pass over the rows)
    if (bool(bounds) and (bounds[0][0] < 0 or bounds[-1][1] >= index.size)) if info["sorted"] else (patient < 0).any():
        raise PathwaysInputError(absent)
    if keep is not None:  # the split's subjects include those without events (birth or static rows only)
        kept = np.unique(pd.Index(index).get_indexer(np.concatenate([r["present"] for r in results])))
        if kept.size and kept[0] < 0:
            raise PathwaysInputError(absent)
        patient, patients = keep_split(patient, patients, kept)
    return build(patient, arrays["time"], arrays["code"], arrays["end"], arrays["value"], reader.categorical(n), extras,
                 vocab, patients, info, origin, units[0], absent=sum(r["absent"] for r in results))


def keep_split(patient: np.ndarray, patients: pd.DataFrame, kept: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Patient indices and table restricted to the patients at ``kept`` (sorted positions)."""
    new = np.full(len(patients), -1, dtype=np.int64)
    new[kept] = np.arange(kept.size)
    return new[patient], patients.iloc[kept].reset_index(drop=True)


def build(patient: np.ndarray, time: np.ndarray, code: np.ndarray, end: np.ndarray, value: np.ndarray,
          category: pd.Categorical, extras: dict[str, np.ndarray], vocab: Vocabulary, patients: pd.DataFrame,
          info: dict | None, origin: pd.Timestamp | None, time_unit: str, absent: int | None = None) -> EventLog:
    """The EventLog of the event rows; a pathways dataset is trusted as read_parquet trusts its files.

    ``absent``: the number of codes absent from the vocabulary (-1) when the caller counted them (else a pass over
    ``code`` counts them)."""
    if absent is None:
        absent = int((code < 0).sum()) if code.size and code.min() < 0 else 0  # one pass, no temporary
    if absent:
        raise PathwaysInputError(f"MEDS code: {absent} rows carry codes absent from codes.parquet")
    if info is None:
        vocab = Vocabulary(vocab.codes, np.bincount(code, minlength=len(vocab)))
        return EventLog.from_arrays(patient, time, code, vocab, patients, end, value, category,
                                    time_unit=time_unit, origin=origin, extras=extras)
    # write_meds sorted the rows by subject and time, stably from the log's order: when subjects are the patient
    # indices the events are in the log's order (trusted as read_parquet trusts its files), else sort them
    order = None if info.get("sorted") else event_order(patient, time, code)
    if order is not None:
        patient, time, code, end, value = (a[order] for a in (patient, time, code, end, value))
        category, extras = category[order], {k: v[order] for k, v in extras.items()}
    return EventLog(patient, time, code, end, value, category, patients, vocab, time_unit, origin, extras)


__all__ = ["BIRTH", "DEATH", "build", "from_ticks", "keep_split", "read_own", "read_shard", "shard_paths",
           "split_subjects"]

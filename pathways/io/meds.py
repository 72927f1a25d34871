"""MEDS (Medical Event Data Standard) datasets in and out: ``read_meds`` / ``write_meds``.

Layout written (MEDS 0.3): ``data/<i>.parquet`` shards (each subject in one shard, rows sorted by subject and time)
with ``subject_id`` (int64), ``time`` (timestamp[us], null for static rows), ``code`` (string) and
``numeric_value`` (float32, null), plus the extra columns MEDS allows: ``end`` (timestamp[us]), ``category`` and the
log's extras; ``metadata/dataset.json``, ``metadata/codes.parquet`` (code, description, parent_codes) and
``metadata/subject_splits.parquet`` (subject_id, split).

Patients: birth and death become ``MEDS_BIRTH`` / ``MEDS_DEATH`` events, static covariates static rows (``sex//F``
for text, ``BEN_RNG_GEM`` with its numeric_value for numbers). ``metadata/subjects.parquet`` keeps the whole
patients table (ids as written, observation windows, exact covariates); other MEDS tools ignore it.

Lossless: where microsecond timestamps or float32 values cannot hold the log's float64 times or values exactly,
``pathways_time`` / ``pathways_end`` / ``pathways_value`` float64 columns carry them (only then). subject_id is the
patient id when ids are integers, else the patient index (the id itself stays in subjects.parquet). A foreign MEDS
dataset (without pathways' files) reads with patients built from its birth, death and static rows.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import pathways
from pathways.data import EventLog, Vocabulary
from pathways.data.arrow import dictionary_positions
from pathways.data.dates import EPOCH
from pathways.data.order import event_order
from pathways.errors import PathwaysInputError
from pathways.progress import progress_bar
from pathways.utils import atomic_path

BIRTH, DEATH = "MEDS_BIRTH", "MEDS_DEATH"
MEDS_VERSION = "0.3.3"
#: Microseconds per time unit the MEDS timestamps can express.
UNIT_US = {"days": 86_400_000_000, "hours": 3_600_000_000, "minutes": 60_000_000, "seconds": 1_000_000}
_WINDOW = ("patient_id", "birth", "death", "start", "end")


# ----------------------------------------------------------------------------------------------------------------
# times: float times in a unit since an origin <-> int64 microseconds since 1970
# ----------------------------------------------------------------------------------------------------------------
def to_ticks(times: np.ndarray, unit_us: int, origin_us: int) -> np.ndarray:
    """Ticks (microseconds here; any integer tick such as nanoseconds works) since 1970 of float times in a unit of
    ``unit_us`` ticks since ``origin_us`` (NaN -> 0; mask them). Whole units are split off first so the rounding
    error stays below half a tick however large the times.

    Examples
    --------
    >>> to_ticks(np.array([0.5, 1.0]), 86_400_000_000, 0).tolist()
    [43200000000, 86400000000]
    """
    finite = np.where(np.isfinite(times), times, 0.0)
    whole = np.floor(finite)
    return whole.astype(np.int64) * unit_us + np.rint((finite - whole) * unit_us).astype(np.int64) + origin_us


def from_ticks(us: np.ndarray, unit_us: int, origin_us: int) -> np.ndarray:
    """Float times in the unit since the origin of ticks since 1970 (inverse of :func:`to_ticks`).

    Below 2**53 ticks from the origin (285 years of microseconds) the offsets convert to float exactly and one
    division gives the float nearest to the true time; beyond, whole units are split off first.
    """
    offset = np.asarray(us, dtype=np.int64)
    offset = offset - origin_us if origin_us else offset
    if offset.size == 0 or max(-int(offset.min()), int(offset.max())) < 2**53:
        return offset / unit_us  # one pass: int64 -> float64 is exact below 2**53
    whole, rest = np.divmod(offset, unit_us)
    return whole.astype(np.float64) + rest / unit_us


def _unit_us(time_unit: str) -> int:
    if time_unit not in UNIT_US:
        raise PathwaysInputError(f"MEDS times are timestamps: time_unit must be one of {sorted(UNIT_US)}, "
                                 f"got {time_unit!r}")
    return UNIT_US[time_unit]


def _origin_us(origin: pd.Timestamp | None) -> int:
    return int(((EPOCH if origin is None else pd.Timestamp(origin)) - EPOCH) // pd.Timedelta(microseconds=1))


# ----------------------------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------------------------
def _subject_ids(patients: pd.DataFrame) -> np.ndarray:
    ids = patients["patient_id"]
    if pd.api.types.is_integer_dtype(ids):
        return ids.to_numpy(np.int64)
    return np.arange(len(patients), dtype=np.int64)


def _static_rows(patients: pd.DataFrame, subject: np.ndarray) -> dict[str, np.ndarray]:
    """Static covariates as (subject, code, numeric_value) rows: ``col//text`` or ``col`` with its number."""
    subjects, codes, values = [], [], []
    for col in [c for c in patients.columns if c not in _WINDOW]:
        column = patients[col]
        present = column.notna().to_numpy()
        subjects.append(subject[present])
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            codes.append(np.full(present.sum(), col, dtype=object))
            values.append(column.to_numpy(np.float64, na_value=np.nan)[present])
        else:
            codes.append((col + "//" + column[present].astype(str)).to_numpy(dtype=object))
            values.append(np.full(present.sum(), np.nan))
    if not codes:
        return {"subject": np.zeros(0, np.int64), "code": np.zeros(0, object), "value": np.zeros(0)}
    return {"subject": np.concatenate(subjects), "code": np.concatenate(codes), "value": np.concatenate(values)}


def _timestamps(times: np.ndarray, unit_us: int, origin_us: int) -> tuple[pa.Array, bool]:
    """Timestamp[us] column of float times (null where NaN) and whether it holds them exactly."""
    us = to_ticks(times, unit_us, origin_us)
    nan = np.isnan(times)
    exact = bool(np.array_equal(from_ticks(us, unit_us, origin_us)[~nan], times[~nan]))
    return pa.array(us, type=pa.timestamp("us"), mask=nan), exact


def meds_table(log: EventLog) -> tuple[pa.Table, list[str]]:
    """All MEDS rows of ``log`` (events, births, deaths, static rows) sorted by subject and time, and the names of
    the exact float64 columns added."""
    unit_us, origin_us = _unit_us(log.time_unit), _origin_us(log.origin)
    subject_of = _subject_ids(log.patients)
    patients = log.patients
    birth = patients["birth"].to_numpy(np.float64)
    death = patients["death"].to_numpy(np.float64)
    static = _static_rows(patients, subject_of)
    has_birth, has_death = np.flatnonzero(~np.isnan(birth)), np.flatnonzero(~np.isnan(death))
    n_static, n_birth, n_death = static["subject"].size, has_birth.size, has_death.size
    subject = np.concatenate([static["subject"], subject_of[has_birth], subject_of[log.patient],
                              subject_of[has_death]])
    times = np.concatenate([np.full(n_static, np.nan), birth[has_birth], log.time, death[has_death]])
    pad = np.full(n_static + n_birth, np.nan), np.full(n_death, np.nan)
    codes = np.concatenate([static["code"], np.full(n_birth, BIRTH, dtype=object), log.code_strings(),
                            np.full(n_death, DEATH, dtype=object)])
    value = np.concatenate([static["value"], pad[0][n_static:], log.value, pad[1]])
    end = np.concatenate([pad[0], log.end, pad[1]])
    time_col, time_exact = _timestamps(times, unit_us, origin_us)
    end_col, end_exact = _timestamps(end, unit_us, origin_us)
    value32 = value.astype(np.float32)
    columns: dict[str, Any] = {
        "subject_id": subject, "time": time_col, "code": pa.array(codes, type=pa.string()),
        "numeric_value": pa.array(value32, mask=np.isnan(value)), "end": end_col,
        "category": pa.array(np.concatenate([np.full(n_static + n_birth, None, object),
                                             np.asarray(log.category, dtype=object), np.full(n_death, None, object)]),
                             type=pa.string(), from_pandas=True),
    }
    for name, values in log.extras.items():
        if name in columns or name.startswith("pathways_"):
            raise PathwaysInputError(f"extra column {name!r} clashes with a MEDS column")
        columns[name] = _padded(values, n_static + n_birth, n_death)
    exact = {"pathways_time": (times, time_exact), "pathways_end": (end, end_exact),
             "pathways_value": (value, np.array_equal(value32.astype(np.float64), value, equal_nan=True))}
    added = [name for name, (_, ok) in exact.items() if not ok]
    columns.update({name: exact[name][0] for name in added})
    # static rows first, then by time; stable so events keep the log's (time, code) order
    order = np.lexsort((np.where(np.isnan(times), -np.inf, times), subject))
    return pa.table(columns).take(pa.array(order)), added


def _padded(values: np.ndarray, before: int, after: int) -> pa.Array:
    arr = pa.array(values)
    return pa.concat_arrays([pa.nulls(before, arr.type), arr, pa.nulls(after, arr.type)])


def shard_bounds(subject: np.ndarray, shard_size: int) -> list[tuple[int, int]]:
    """Row ranges of shards of about ``shard_size`` rows that never split a subject.

    Examples
    --------
    >>> shard_bounds(np.array([0, 0, 1, 1, 1, 2]), 3)
    [(0, 5), (5, 6)]
    """
    if shard_size < 1:
        raise PathwaysInputError(f"shard_size must be >= 1, got {shard_size}")
    starts = np.flatnonzero(np.diff(subject) != 0) + 1
    cuts, lo = [], 0
    while lo < subject.size:
        k = np.searchsorted(starts, lo + shard_size)  # == starts.size inside the last subject: the shard ends there
        nxt = starts[k] if lo + shard_size < subject.size and k < starts.size else subject.size
        nxt = subject.size if nxt <= lo else int(nxt)
        cuts.append((lo, nxt))
        lo = nxt
    return cuts


def write_meds(log: EventLog, folder: str | PathLike, *, shard_size: int = 1_000_000,
               splits: Mapping[Any, str] | None = None, dataset_name: str = "pathways") -> Path:
    """Write ``log`` as a MEDS dataset in ``folder`` (see the module docstring); returns the folder.

    Parameters
    ----------
    shard_size : rows per ``data/<i>.parquet`` shard (a subject is never split across shards).
    splits : patient id -> split name (``train``, ``tuning``, ``held_out``); default: every subject in ``train``.
    dataset_name : ``dataset_name`` of ``metadata/dataset.json``.
    """
    folder = Path(folder)
    table, exact = meds_table(log)
    subject = table.column("subject_id").to_numpy()
    for old in (folder / "data").glob("*.parquet"):
        old.unlink()  # a rewrite with fewer shards must not leave stale ones
    for i, (lo, hi) in enumerate(shard_bounds(subject, shard_size)):
        with atomic_path(folder / "data" / f"{i}.parquet") as tmp:
            pq.write_table(table.slice(lo, hi - lo), tmp)
    _write_metadata(log, folder / "metadata", splits, dataset_name, exact)
    return folder


def _write_metadata(log: EventLog, meta: Path, splits: Mapping[Any, str] | None, dataset_name: str,
                    exact: list[str]) -> None:
    subject = _subject_ids(log.patients)
    split = (np.full(subject.size, "train", dtype=object) if splits is None
             else log.patients["patient_id"].map(dict(splits)).fillna("train").to_numpy(dtype=object))
    subjects = log.patients.copy(deep=False)
    subjects.attrs = {}
    subjects.insert(0, "subject_id", subject)
    n = len(log.vocab)
    tables = {
        "codes": pa.table({"code": pa.array(log.vocab.codes.astype(str)), "description": pa.nulls(n, pa.string()),
                           "parent_codes": pa.nulls(n, pa.list_(pa.string())), "pathways_count": log.vocab.counts}),
        "subject_splits": pa.table({"subject_id": subject, "split": pa.array(split, type=pa.string())}),
        "subjects": pa.Table.from_pandas(subjects, preserve_index=False),
    }
    for name, table in tables.items():
        with atomic_path(meta / f"{name}.parquet") as tmp:
            pq.write_table(table, tmp)
    dataset = {
        "dataset_name": dataset_name, "dataset_version": "1", "etl_name": "pathways", "etl_version": pathways.__version__,
        "meds_version": MEDS_VERSION, "created_at": datetime.now(UTC).isoformat(),
        "pathways": {"time_unit": log.time_unit, "origin": None if log.origin is None else log.origin.isoformat(),
                     "oov_token": log.vocab.oov_token, "extras": list(log.extras), "exact": exact},
    }
    with atomic_path(meta / "dataset.json") as tmp:
        tmp.write_text(json.dumps(dataset, indent=1))


# ----------------------------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------------------------
def _shard_paths(folder: Path) -> list[Path]:
    # natural order: shard 10 after shard 9 (write_meds' order, which the trusted read relies on)
    shards = sorted((folder / "data").rglob("*.parquet"),
                    key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.as_posix())])
    if not shards:
        raise PathwaysInputError(f"MEDS folder {str(folder)!r}: no data/*.parquet shards")
    return shards


def _read_shard(folder: Path, path: Path, split: pa.Array | None) -> pa.Table:
    """One shard (codes and categories kept dictionary-encoded), with the subjects of the split only."""
    try:
        table = pq.read_table(path, read_dictionary=["code", "category"])
    except (OSError, pa.ArrowInvalid) as exc:
        raise PathwaysInputError(f"MEDS folder {str(folder)!r}: cannot read a shard: {exc}") from exc
    if missing := {"subject_id", "time", "code"} - set(table.column_names):
        raise PathwaysInputError(f"MEDS shards lack column(s) {sorted(missing)}")
    return table if split is None else table.filter(pc.is_in(table.column("subject_id"), value_set=split))


def _split_subjects(folder: Path, split: str | None) -> pa.Array | None:
    splits = None if split is None else pq.read_table(folder / "metadata" / "subject_splits.parquet")
    return None if split is None else splits.filter(pc.equal(splits["split"], split))["subject_id"].combine_chunks()


def _read_shards(folder: Path, split: str | None) -> pa.Table:
    keep = _split_subjects(folder, split)
    try:
        return pa.concat_tables([_read_shard(folder, p, keep) for p in progress_bar(
            _shard_paths(folder), desc="reading MEDS shards", unit="shard")], promote_options="default")
    except pa.ArrowInvalid as exc:
        raise PathwaysInputError(f"MEDS folder {str(folder)!r}: shards with clashing columns: {exc}") from exc


def _float_times(table: pa.Table, name: str, exact: str, unit_us: int, origin_us: int) -> np.ndarray:
    if exact in table.column_names:
        return table.column(exact).to_numpy()
    if name not in table.column_names or table.column(name).null_count == table.num_rows:
        return np.full(table.num_rows, np.nan)
    column = table.column(name)
    if column.type != pa.timestamp("us"):
        column = column.cast(pa.timestamp("us"))
    out = from_ticks(_int64_values(column), unit_us, origin_us)
    if column.null_count:
        out[column.is_null().to_numpy(zero_copy_only=False)] = np.nan
    return out


def _int64_values(column: pa.ChunkedArray) -> np.ndarray:
    """The 64-bit storage of a timestamp column, nulls included (masked by the caller): no fill, no cast."""
    parts = [np.frombuffer(c.buffers()[1], dtype=np.int64, count=len(c), offset=c.offset * 8) for c in column.chunks]
    return np.concatenate(parts) if len(parts) != 1 else parts[0]


def _foreign_patients(subject: np.ndarray, rows: dict[str, np.ndarray], times: np.ndarray, codes: pa.ChunkedArray,
                      values: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Patients of a MEDS dataset not written by pathways: ids = subject ids, birth / death / static rows."""
    ids, patient = np.unique(subject, return_inverse=True)
    patients = pd.DataFrame({"patient_id": ids})
    for col, mask in (("birth", rows["birth"]), ("death", rows["death"])):
        out = np.full(ids.size, np.nan)
        np.fmin.at(out, patient[mask], times[mask])
        patients[col] = out
    static = np.flatnonzero(rows["static"])
    texts = codes.take(pa.array(static)).cast(pa.string()).to_pylist()
    for code, pid, value in zip(texts, patient[static], values[static]):
        col, sep, text = code.partition("//")
        if col not in patients:
            patients[col] = pd.Series([None] * ids.size, dtype=object if sep else np.float64)
        patients.loc[pid, col] = text if sep else value
    return patient, patients


def _foreign_vocab(codes: pa.ChunkedArray, event: np.ndarray) -> Vocabulary:
    """The codes of a foreign dataset's timed rows, sorted, with their counts."""
    distinct = pc.unique(codes.filter(pa.array(event)).cast(pa.string())).to_numpy(zero_copy_only=False)
    return Vocabulary(sorted(str(c) for c in distinct))


def read_meds(folder: str | PathLike, *, split: str | None = None) -> EventLog:
    """Read a MEDS dataset into an EventLog (lossless for a dataset written by :func:`write_meds`).

    ``split`` keeps the subjects of one split of ``metadata/subject_splits.parquet``. A foreign dataset's times
    become float days since 1970-01-01, its patients come from its MEDS_BIRTH / MEDS_DEATH and static rows
    (``col//text`` codes and numeric codes), and its vocabulary holds the codes of its timed rows. The codes
    MEDS_BIRTH and MEDS_DEATH are reserved for births and deaths.
    """
    folder = Path(folder)
    meta = folder / "metadata"
    info = json.loads((meta / "dataset.json").read_text()).get("pathways") if (meta / "dataset.json").exists() else None
    own = info is not None and (meta / "subjects.parquet").exists()
    time_unit = info["time_unit"] if own else "days"
    origin = (pd.Timestamp(info["origin"]) if info["origin"] is not None else None) if own else EPOCH
    units = (time_unit, _unit_us(time_unit), _origin_us(origin))
    if own:
        return _read_own(folder, info, split, origin, units)
    table = _read_shards(folder, split)
    times = _float_times(table, "time", "pathways_time", *units[1:])
    codes = table.column("code")
    # 0: any other code, 1: birth, 2: death
    position = dictionary_positions(codes, pd.Index([BIRTH, DEATH]), "MEDS code", absent="keep") + 1
    timed = ~np.isnan(times)
    event = timed & (position < 1)
    rows = {"birth": position == 1, "death": position == 2, "static": ~timed}
    subject = table.column("subject_id").to_numpy()
    patient, patients = _foreign_patients(subject, rows, times, codes, _values(table, "numeric_value"))
    vocab = _foreign_vocab(codes, event)
    position = dictionary_positions(codes, pd.Index(vocab.codes), "MEDS code", absent="keep")
    whole = bool(event.all())
    if not whole:
        table, patient, times, position = table.filter(pa.array(event)), patient[event], times[event], position[event]
    unit_us, origin_us = units[1:]
    end = _float_times(table, "end", "pathways_end", unit_us, origin_us)
    value = _values(table, "numeric_value")
    category = (pd.Categorical(table.column("category").to_pandas()) if "category" in table.column_names
                else pd.Categorical(np.full(times.size, np.nan, dtype=object)))
    return _build(patient, times, position, end, value, category, {}, vocab, patients, None, origin, time_unit)


def _timed(table: pa.Table) -> np.ndarray:
    """Rows with a time (static rows have none), from the validity bitmap: no timestamp conversion."""
    if "pathways_time" in table.column_names:
        return ~np.isnan(table.column("pathways_time").to_numpy())
    return table.column("time").is_valid().to_numpy(zero_copy_only=False)


def _read_own(folder: Path, info: dict, split: str | None, origin: pd.Timestamp | None,
              units: tuple[str, int, int]) -> EventLog:
    """A dataset written by :func:`write_meds`, shard by shard: each shard's event rows go converted straight into
    preallocated event arrays (one shard's temporaries at a time, no full-length copies of every column)."""
    meta = folder / "metadata"
    code_table = pq.read_table(meta / "codes.parquet")
    vocab = Vocabulary(code_table.column("code").to_pylist(), code_table.column("pathways_count").to_numpy(),
                       info["oov_token"])
    lookup = pd.Index([*vocab.codes, BIRTH, DEATH])
    shards, keep = _shard_paths(folder), _split_subjects(folder, split)
    try:
        n_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in shards)
    except (OSError, pa.ArrowInvalid) as exc:
        raise PathwaysInputError(f"MEDS folder {str(folder)!r}: cannot read a shard: {exc}") from exc
    # np.empty touches no memory: only the event rows written below are ever paged in
    out = {k: np.empty(n_rows, np.int64 if k in ("patient", "code") else np.float64)
           for k in ("patient", "time", "code", "end", "value")}
    columns: dict[str, list] = {k: [] for k in ("category", *info["extras"])}
    present, at = [], 0
    for path, table in _prefetched(folder, shards, keep):
        if keep is not None:  # the split's subjects include those without events (birth or static rows only)
            present.append(pc.unique(table.column("subject_id")).to_numpy())
        position = dictionary_positions(table.column("code"), lookup, "MEDS code", absent="keep")
        event = _timed(table) & (position < len(vocab))  # codes absent from the vocabulary (-1) raise in _build
        whole = bool(event.all())
        hi = at + (table.num_rows if whole else int(event.sum()))
        if hi > n_rows:
            raise PathwaysInputError(f"MEDS shard {path.name}: more rows than its parquet metadata states")
        shard = {"patient": table.column("subject_id").to_numpy().astype(np.int64, copy=False), "code": position,
                 "time": _float_times(table, "time", "pathways_time", *units[1:]),
                 "end": _float_times(table, "end", "pathways_end", *units[1:]),
                 "value": _values(table, "pathways_value" if "pathways_value" in table.column_names
                                  else "numeric_value")}
        for key, values in shard.items():  # the event rows straight into place: no filtered copy
            if whole:
                out[key][at:hi] = values
            else:
                np.compress(event, values, out=out[key][at:hi])
        mask = None if whole else pa.array(event)
        for name, chunks in columns.items():
            column = _shard_column(table, name, path)
            chunks.append(column if whole else column.filter(mask))
        at = hi
    arrays = {k: v[:at] for k, v in out.items()}
    category = pd.Categorical(_chunked(columns.pop("category")).to_pandas() if at else [])
    extras = {k: _chunked(v).to_numpy() for k, v in columns.items()}
    subject = arrays["patient"]
    patients = pq.read_table(meta / "subjects.parquet").to_pandas()
    index = patients.pop("subject_id").to_numpy()
    info = {**info, "sorted": np.array_equal(index, np.arange(index.size)) and split is None
            and bool((subject[1:] >= subject[:-1]).all())}  # shards renamed or reordered: sort the events
    patient = subject if info["sorted"] else pd.Index(index).get_indexer(subject)
    absent = "MEDS subject_id: rows name subjects absent from metadata/subjects.parquet"
    if info["sorted"] and subject.size and (subject.min() < 0 or subject.max() >= index.size) or (patient < 0).any():
        raise PathwaysInputError(absent)
    if present:
        kept = np.unique(pd.Index(index).get_indexer(np.concatenate(present)))
        if kept.size and kept[0] < 0:
            raise PathwaysInputError(absent)
        patient, patients = _keep_split(patient, patients, kept)
    return _build(patient, arrays["time"], arrays["code"], arrays["end"], arrays["value"], category, extras, vocab,
                  patients, info, origin, units[0])


def _prefetched(folder: Path, shards: list[Path], keep: pa.Array | None):
    """(path, table) of every shard; the next one decodes in a thread (GIL released) while the caller converts."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_read_shard, folder, shards[0], keep)
        for i, path in enumerate(progress_bar(shards, desc="reading MEDS shards", unit="shard")):
            table = pending.result()
            if i + 1 < len(shards):
                pending = pool.submit(_read_shard, folder, shards[i + 1], keep)
            yield path, table


def _shard_column(table: pa.Table, name: str, path: Path) -> pa.ChunkedArray:
    if name in table.column_names:
        return table.column(name)
    if name == "category":
        return pa.chunked_array([pa.nulls(table.num_rows, pa.dictionary(pa.int32(), pa.string()))])
    raise PathwaysInputError(f"MEDS shard {path.name}: lacks the extra column {name!r} of metadata/dataset.json")


def _chunked(parts: list[pa.ChunkedArray]) -> pa.ChunkedArray:
    chunks = [c for part in parts for c in part.chunks]
    try:
        return pa.chunked_array(chunks, type=None if chunks else parts[0].type)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise PathwaysInputError(f"MEDS shards: a column's type differs between shards: {exc}") from exc


def _values(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return table.column(name).to_numpy().astype(np.float64, copy=False)  # nulls read as NaN


def _keep_split(patient: np.ndarray, patients: pd.DataFrame, kept: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    new = np.full(len(patients), -1, dtype=np.int64)
    new[kept] = np.arange(kept.size)
    return new[patient], patients.iloc[kept].reset_index(drop=True)


def _build(patient: np.ndarray, time: np.ndarray, code: np.ndarray, end: np.ndarray, value: np.ndarray,
           category: pd.Categorical, extras: dict[str, np.ndarray], vocab: Vocabulary, patients: pd.DataFrame,
           info: dict | None, origin: pd.Timestamp | None, time_unit: str) -> EventLog:
    """The EventLog of the event rows; a pathways dataset is trusted as read_parquet trusts its files."""
    if (code < 0).any():
        raise PathwaysInputError(f"MEDS code: {int((code < 0).sum())} rows carry codes absent from codes.parquet")
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


__all__ = ["BIRTH", "DEATH", "MEDS_VERSION", "from_ticks", "meds_table", "read_meds", "shard_bounds", "to_ticks",
           "write_meds"]

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
from collections.abc import Mapping
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
from pathways.errors import PathwaysInputError
from pathways.io.meds_shards import (BIRTH, DEATH, build, from_ticks, read_own, read_shard, shard_paths,
                                     split_subjects)
from pathways.progress import progress_bar
from pathways.utils import atomic_path

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
                     "oov_token": log.vocab.oov_token, "extras": list(log.extras), "exact": exact,
                     "categories": [str(c) for c in pd.Categorical(log.category).categories]},
    }
    with atomic_path(meta / "dataset.json") as tmp:
        tmp.write_text(json.dumps(dataset, indent=1))


# ----------------------------------------------------------------------------------------------------------------
# reading (a dataset written by write_meds: meds_shards.read_own; here, a foreign dataset)
# ----------------------------------------------------------------------------------------------------------------
def _read_shards(folder: Path, split: str | None) -> pa.Table:
    keep = split_subjects(folder, split)
    try:
        return pa.concat_tables([read_shard(folder, p, keep) for p in progress_bar(
            shard_paths(folder), desc="reading MEDS shards", unit="shard")], promote_options="default")
    except pa.ArrowInvalid as exc:
        raise PathwaysInputError(f"MEDS folder {str(folder)!r}: shards with clashing columns: {exc}") from exc


def _values(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return table.column(name).to_numpy().astype(np.float64, copy=False)  # nulls read as NaN


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


def read_meds(folder: str | PathLike, *, split: str | None = None, workers: int | None = None) -> EventLog:
    """Read a MEDS dataset into an EventLog (lossless for a dataset written by :func:`write_meds`).

    A dataset written by :func:`write_meds` is read by ``workers`` threads, one shard each, straight into the event
    arrays (default: one thread per CPU, at most 8; see :mod:`pathways.io.meds_shards`).

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
        return read_own(folder, info, split, origin, units, workers)
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
    return build(patient, times, position, end, value, category, {}, vocab, patients, None, origin, time_unit)


__all__ = ["BIRTH", "DEATH", "MEDS_VERSION", "from_ticks", "meds_table", "read_meds", "shard_bounds", "to_ticks",
           "write_meds"]

"""Arrow in and out of an EventLog: any Arrow-speaking table (pyarrow, polars, DuckDB, Spark 4 ``toArrow()``).

Input columns cross into the EventLog builder without a row-wise pandas detour: string ids and codes become
dictionary-encoded (one Python string per distinct value, never one per row), timestamps stay datetime64 arrays.
The validation is the one of :meth:`EventLog.from_pandas`, so drops are counted and warned the same way.
Output is one events table whose ``patient_id`` and ``code`` columns are dictionary-encoded strings (ids and codes
exactly as written), float times in the log's unit, and a small schema metadata entry with the unit and origin.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pathways.data.columns import EventColumns
from pathways.data.validate import EVENT_COLUMNS, OPTIONAL_EVENT_COLUMNS
from pathways.errors import PathwaysInputError

#: Schema metadata key holding {"time_unit", "origin"} of an events table written by :func:`events_to_arrow`.
TIME_KEY = b"pathways.time"
_ENCODED = ("patient_id", "code", "category")


def as_arrow_table(data: Any) -> pa.Table:
    """A ``pa.Table`` from a pyarrow table / batch / reader, anything with ``__arrow_c_stream__`` (polars, DuckDB
    relations), a DuckDB relation's ``.arrow()`` or a Spark DataFrame's ``toArrow()``.

    Examples
    --------
    >>> as_arrow_table(pa.record_batch({"a": [1, 2]})).num_rows
    2
    """
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data).read_all()
    for method in ("arrow", "toArrow"):  # DuckDB relations of old versions, Spark 4 DataFrames
        if callable(getattr(data, method, None)):
            return as_arrow_table(getattr(data, method)())
    raise PathwaysInputError(f"expected an Arrow table or an object exporting __arrow_c_stream__, got "
                             f"{type(data).__name__}")


def _plain_type(kind: pa.DataType) -> pa.DataType | None:
    """The type to cast a column to before pandas sees it (None: keep it)."""
    if kind == pa.string_view():
        return pa.large_string()
    if pa.types.is_dictionary(kind) and kind.value_type == pa.string_view():
        return pa.dictionary(kind.index_type, pa.large_string())
    if pa.types.is_date(kind):
        return pa.timestamp("ms")
    if pa.types.is_timestamp(kind) and kind.tz is not None:  # same instants, naive UTC (as from_pandas does)
        return pa.timestamp(kind.unit)
    return None


def column_series(column: pa.ChunkedArray, encode: bool) -> pd.Series:
    """One Arrow column as a pandas Series; strings become a Categorical when ``encode`` (ids, codes)."""
    target = _plain_type(column.type)
    if target is not None:
        column = column.cast(target)
    if encode and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = pc.dictionary_encode(column)
    return column.to_pandas()


def arrow_events_frame(table: pa.Table, columns: Mapping[str, str] | None,
                       extra_columns: Iterable[str]) -> pd.DataFrame:
    """The event columns :meth:`EventLog.from_pandas` reads, under the user's names, ids and codes dictionary-encoded.

    Absent columns are left out: from_pandas names every missing required column.
    """
    mapping = dict(columns or {})
    names = {c: mapping.get(c, c) for c in (*EVENT_COLUMNS, *OPTIONAL_EVENT_COLUMNS, *extra_columns)}
    present = {c: n for c, n in names.items() if n in table.column_names}
    return pd.DataFrame({n: column_series(table.column(n), c in _ENCODED) for c, n in present.items()})


def arrow_patients_frame(patients: Any) -> pd.DataFrame | None:
    """A patients table given as Arrow (or already as pandas) as the DataFrame from_pandas reads."""
    if patients is None or isinstance(patients, pd.DataFrame):
        return patients
    table = as_arrow_table(patients)
    return pd.DataFrame({n: column_series(table.column(n), False) for n in table.column_names})


def stored_time(table: pa.Table) -> dict[str, Any]:
    """``time_unit`` and ``origin`` stored by :func:`events_to_arrow` (empty for foreign tables)."""
    raw = (table.schema.metadata or {}).get(TIME_KEY)
    return {} if raw is None else json.loads(raw)


def dictionary(indices: np.ndarray, values: Any) -> pa.DictionaryArray:
    """A dictionary-encoded Arrow column from integer indices into ``values``."""
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(indices, dtype=np.int32)), pa.array(values))


def events_to_arrow(log: EventColumns) -> pa.Table:
    """The events of ``log`` as an Arrow table (see the module docstring)."""
    table = pa.table({
        "patient_id": dictionary(log.patient, log.patients["patient_id"].to_numpy()),
        "time": log.time,
        "code": dictionary(log.code, log.vocab.codes.astype(str)),
        "end": log.end,
        "value": log.value,
        "category": pa.DictionaryArray.from_pandas(pd.Categorical(log.category)),
        **{k: v for k, v in log.extras.items()},
    })
    meta = {"time_unit": log.time_unit, "origin": None if log.origin is None else log.origin.isoformat()}
    return table.replace_schema_metadata({TIME_KEY: json.dumps(meta).encode()})


def patients_to_arrow(log: EventColumns) -> pa.Table:
    """The patients table of ``log`` as Arrow (row i = patient index i)."""
    frame = log.patients.copy(deep=False)
    frame.attrs = {}  # pandas attrs (a reader's notes) are not part of the table and need not be JSON
    return pa.Table.from_pandas(frame, preserve_index=False)


class DictionaryLookup:
    """Positions of a dictionary's values, computed by ``resolve`` once per distinct dictionary: the chunks of a
    parquet column repeat their row group's dictionary, so a column costs one lookup per row group at most.

    Examples
    --------
    >>> lookup = DictionaryLookup(lambda d: pd.Index(["a", "b"]).get_indexer(d.to_pylist()))
    >>> chunk = pa.array(["b", "a", "b"]).dictionary_encode()
    >>> lookup(chunk.dictionary).tolist()
    [1, 0]
    """

    def __init__(self, resolve: Callable[[pa.Array], np.ndarray]):
        self.resolve = resolve
        self._dictionary: pa.Array | None = None
        self._positions = np.zeros(0, dtype=np.int64)

    def __call__(self, dictionary: pa.Array) -> np.ndarray:
        if self._dictionary is None or not (dictionary is self._dictionary or (
                dictionary.type == self._dictionary.type and dictionary.equals(self._dictionary))):
            self._positions = np.asarray(self.resolve(dictionary))
            self._dictionary = dictionary
        return self._positions


def index_lookup(index: pd.Index) -> DictionaryLookup:
    """A :class:`DictionaryLookup` of positions in ``index`` (-1 for values absent from it)."""
    return DictionaryLookup(lambda d: index.get_indexer(pd.Index(d.to_numpy(zero_copy_only=False))))


def buffer_values(array: pa.Array, dtype: Any) -> np.ndarray:
    """The fixed-width data buffer of ``array`` as a numpy view (no copy), null slots included with undefined
    values: mask them with :func:`validity`. Timestamps read as int64.

    Examples
    --------
    >>> buffer_values(pa.array([1.5, None, 2.5]).slice(1), np.float64)[1:].tolist()
    [2.5]
    """
    dtype = np.dtype(dtype)
    data = array.buffers()[1]
    if data is None or dtype.itemsize * 8 != array.type.bit_width:
        raise PathwaysInputError(f"an Arrow column of type {array.type} has no {dtype} buffer")
    return np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def validity(array: pa.Array) -> np.ndarray | None:
    """True where ``array`` holds a value, from its validity bitmap; None when it has no null.

    Examples
    --------
    >>> validity(pa.array([1, None, 3])).tolist()
    [True, False, True]
    """
    if not array.null_count:
        return None
    bitmap = array.buffers()[0]
    if bitmap is None:  # null-typed arrays carry no bitmap
        return np.zeros(len(array), dtype=bool)
    # from the byte holding the first slot: a batch sliced deep into a chunk unpacks its own bits only, not the
    # whole bitmap before it (batches of a 1 M-row row group paid up to 8x)
    skip, first = divmod(array.offset, 8)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8, offset=skip), count=first + len(array),
                         bitorder="little")
    return bits[first:].view(bool)


def dictionary_positions(column: pa.ChunkedArray, index: pd.Index, what: str, *, absent: str = "raise",
                         out: np.ndarray | None = None) -> np.ndarray:
    """Positions in ``index`` of every value of a (dictionary-encoded) column, chunk by chunk: one lookup per
    distinct dictionary, never one per row. Values absent from ``index`` raise, or give -1 with ``absent="keep"``.
    ``out``: an int64 array of the column's length to write into (a slice of a larger array).

    Examples
    --------
    >>> column = pa.chunked_array([pa.array(["b", "a"]).dictionary_encode(), pa.array(["a"]).dictionary_encode()])
    >>> dictionary_positions(column, pd.Index(["a", "b"]), "code").tolist()
    [1, 0, 0]
    """
    out = np.empty(len(column), dtype=np.int64) if out is None else out
    if out.shape != (len(column),) or out.dtype != np.int64:
        raise PathwaysInputError(f"{what}: out must be an int64 array of the column's length {len(column)}")
    lookup, start = index_lookup(index), 0
    for chunk in column.chunks:
        if not pa.types.is_dictionary(chunk.type):
            chunk = pc.dictionary_encode(chunk)
        if chunk.null_count:
            raise PathwaysInputError(f"{what}: {chunk.null_count} values are missing")
        positions, indices = lookup(chunk.dictionary), chunk.indices.to_numpy()
        if positions.size == len(index) and (positions == np.arange(positions.size)).all():
            out[start:start + len(chunk)] = indices  # pathways' own files: the dictionary is the index itself
        else:
            np.take(positions, indices, out=out[start:start + len(chunk)], mode="clip")
        start += len(chunk)
    if absent == "raise" and (out < 0).any():
        raise PathwaysInputError(f"{what}: {int((out < 0).sum())} values are absent from its table")
    return out


__all__ = ["TIME_KEY", "DictionaryLookup", "arrow_events_frame", "arrow_patients_frame", "as_arrow_table",
           "buffer_values", "column_series", "dictionary", "dictionary_positions", "events_to_arrow", "index_lookup",
           "patients_to_arrow", "stored_time", "validity"]

"""EventLog files: the lossless parquet format (flat events; patients, vocabulary and units in the metadata) and
the reading of user CSV / parquet tables."""
from __future__ import annotations

import io
import json
from os import PathLike
from typing import TYPE_CHECKING, Any, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pathways.data.vocabulary import Vocabulary
from pathways.errors import PathwaysInputError
from pathways.utils import atomic_path

if TYPE_CHECKING:
    from pathways.data.eventlog import EventLog

META_KEY = b"pathways.eventlog"
PATIENTS_KEY = b"pathways.patients"
FORMAT_VERSION = 1


def write_parquet(log: "EventLog", path: str | PathLike) -> None:
    """Write ``log`` as one parquet file, atomically (see :meth:`EventLog.to_parquet`)."""
    table = pa.table({
        "patient": log.patient, "time": log.time, "code": log.code, "end": log.end, "value": log.value,
        "category": pa.DictionaryArray.from_pandas(pd.Categorical(log.category)),
        **{f"extra.{k}": v for k, v in log.extras.items()},
    })
    buf = io.BytesIO()
    log.patients.to_parquet(buf, index=False)
    meta = {
        "format_version": FORMAT_VERSION, "vocab": log.vocab.to_dict(), "time_unit": log.time_unit,
        "origin": None if log.origin is None else log.origin.isoformat(),
    }
    table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode(), PATIENTS_KEY: buf.getvalue()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet_table(path: str | PathLike) -> pa.Table:
    """The arrow table of a parquet file; unreadable files raise :class:`PathwaysInputError`."""
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise PathwaysInputError(f"cannot read parquet file {str(path)!r}: {exc}") from exc


def is_own_parquet(table: pa.Table) -> bool:
    """Whether ``table`` was written by :func:`write_parquet`."""
    return META_KEY in (table.schema.metadata or {})


def own_parquet_fields(table: pa.Table) -> dict[str, Any]:
    """The EventLog constructor arguments stored in a table written by :func:`write_parquet`."""
    meta = table.schema.metadata
    info = json.loads(meta[META_KEY])
    if info.get("format_version", 0) > FORMAT_VERSION:
        raise PathwaysInputError(f"parquet written by a newer pathways (format {info['format_version']})")
    cols = {name: table.column(name) for name in table.column_names}
    return {
        "patient": cols["patient"].to_numpy(), "time": cols["time"].to_numpy(), "code": cols["code"].to_numpy(),
        "end": cols["end"].to_numpy(), "value": cols["value"].to_numpy(),
        "category": pd.Categorical(cols["category"].to_pandas()),
        "patients": pd.read_parquet(io.BytesIO(meta[PATIENTS_KEY])),
        "vocab": Vocabulary.from_dict(info["vocab"]), "time_unit": info["time_unit"],
        "origin": None if info["origin"] is None else pd.Timestamp(info["origin"]),
        "extras": {n[6:]: cols[n].to_numpy() for n in cols if n.startswith("extra.")},
    }


def read_table(path: str | PathLike, kind: str, kwargs: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """A user's ``kind`` ("csv" or "parquet") table as a DataFrame; read errors name the file."""
    try:
        if kind == "csv":
            return pd.read_csv(path, **dict(kwargs or {}))
        return pd.read_parquet(path)
    except FileNotFoundError as exc:
        raise PathwaysInputError(f"file not found: {str(path)!r}") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, pa.ArrowInvalid) as exc:
        raise PathwaysInputError(f"cannot read {kind} file {str(path)!r}: {exc}") from exc


__all__ = ["FORMAT_VERSION", "is_own_parquet", "own_parquet_fields", "read_parquet_table", "read_table",
           "write_parquet"]

"""EventLog files: the lossless parquet format and the reading of user CSV / parquet tables.

Format 2 (this version): ``<stem>.parquet`` holds the events (``patient`` = row of the patients file, string codes
dictionary-encoded, float times),
``<stem>.patients.parquet`` the patients and ``<stem>.codes.parquet`` the vocabulary; a few hundred bytes of schema
metadata (format version, unit, origin, OOV token). Format 1 (pathways 0.1: integer codes, the vocabulary and the
patients table inside the schema metadata) is still read.
"""
from __future__ import annotations

import io
import json
from os import PathLike
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pathways.data.textfiles import detect_encoding, sniff_delimiter
from pathways.data.arrow import dictionary_positions, events_to_arrow, patients_to_arrow, stored_time
from pathways.data.columns import EventColumns
from pathways.data.vocabulary import Vocabulary
from pathways.errors import PathwaysInputError
from pathways.utils import atomic_path


META_KEY = b"pathways.eventlog"
PATIENTS_KEY = b"pathways.patients"  # format 1 only: the patients table as a parquet blob in the schema metadata
FORMAT_VERSION = 2


def sidecar(path: str | PathLike, name: str) -> Path:
    """``<stem>.<name>.parquet`` beside an events file ``<stem>.parquet``.

    Examples
    --------
    >>> sidecar("/data/log.parquet", "patients").name
    'log.patients.parquet'
    """
    path = Path(path)
    stem = path.name[:-len(".parquet")] if path.name.endswith(".parquet") else path.name
    return path.with_name(f"{stem}.{name}.parquet")


def write_parquet(log: EventColumns, path: str | PathLike) -> None:
    """Write ``log`` as three parquet files, each atomically (see :meth:`EventLog.to_parquet`).

    The sidecars go first: a reader never finds a new events file beside old patients or codes.
    """
    for target in (Path(path), sidecar(path, "codes"), sidecar(path, "patients")):
        if target.is_dir():
            raise PathwaysInputError(f"path: {str(target)!r} is a directory; give a file path such as "
                                     f"{str(Path(path) / 'log.parquet')!r}")
    codes = pa.table({"code": pa.array(log.vocab.codes.astype(str)), "count": log.vocab.counts})
    with atomic_path(sidecar(path, "codes")) as tmp:
        pq.write_table(codes, tmp)
    with atomic_path(sidecar(path, "patients")) as tmp:
        pq.write_table(patients_to_arrow(log), tmp)
    table = events_to_arrow(log)
    # the row of the patients file, not the id: re-deriving indices from 10 M dictionary-encoded ids costs seconds
    table = table.set_column(0, "patient", pa.array(log.patient, type=pa.int32() if log.n_patients < 2**31 else
                                                    pa.int64()))
    meta = {"format_version": FORMAT_VERSION, "oov_token": log.vocab.oov_token,
            "extras": list(log.extras), "n_patients": log.n_patients}
    table = table.replace_schema_metadata({**table.schema.metadata, META_KEY: json.dumps(meta).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet_table(path: str | PathLike) -> pa.Table:
    """The arrow table of a parquet file; unreadable files raise :class:`PathwaysInputError`."""
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise PathwaysInputError(f"cannot read parquet file {str(path)!r}: {exc}") from exc


def parquet_format(table: pa.Table) -> int:
    """The pathways format version of a parquet table (0: a foreign events table)."""
    raw = (table.schema.metadata or {}).get(META_KEY)
    version = 0 if raw is None else int(json.loads(raw).get("format_version", 1))
    if version > FORMAT_VERSION:
        raise PathwaysInputError(f"parquet written by a newer pathways (format {version})")
    return version


def own_parquet_fields(table: pa.Table, path: str | PathLike) -> dict[str, Any]:
    """The EventLog constructor arguments stored by :func:`write_parquet` (format 2) or pathways 0.1 (format 1)."""
    if parquet_format(table) == 1:
        return _format1_fields(table)
    info = json.loads(table.schema.metadata[META_KEY])
    codes = read_parquet_table(sidecar(path, "codes"))
    patients = read_parquet_table(sidecar(path, "patients")).to_pandas()
    if len(patients) != info["n_patients"]:
        raise PathwaysInputError(f"{sidecar(path, 'patients').name}: {len(patients)} patients, the events file "
                                 f"expects {info['n_patients']} (files from different writes)")
    vocab = Vocabulary(codes.column("code").to_pylist(), codes.column("count").to_numpy(), info["oov_token"])
    time = stored_time(table)
    return {
        "patient": table.column("patient").to_numpy().astype(np.int64),
        "time": table.column("time").to_numpy(), "end": table.column("end").to_numpy(),
        "code": dictionary_positions(table.column("code"), pd.Index(vocab.codes), "code"),
        "value": table.column("value").to_numpy(),
        "category": pd.Categorical(table.column("category").to_pandas()),
        "patients": patients, "vocab": vocab, "time_unit": time["time_unit"],
        "origin": None if time["origin"] is None else pd.Timestamp(time["origin"]),
        "extras": {k: table.column(k).to_numpy() for k in info["extras"]},
    }


def write_parquet_format1(log: EventColumns, path: str | PathLike) -> None:
    """Write the pathways 0.1 single-file format (integer codes; vocabulary, units and the whole patients table in
    the schema metadata): the reader's compatibility tests and ``benchmarks/meds_read.py`` need such files."""
    table = pa.table({
        "patient": log.patient, "time": log.time, "code": log.code, "end": log.end, "value": log.value,
        "category": pa.DictionaryArray.from_pandas(pd.Categorical(log.category)),
        **{f"extra.{k}": v for k, v in log.extras.items()},
    })
    buf = io.BytesIO()
    pq.write_table(patients_to_arrow(log), buf)
    meta = {"format_version": 1, "vocab": log.vocab.to_dict(), "time_unit": log.time_unit,
            "origin": None if log.origin is None else log.origin.isoformat()}
    table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode(), PATIENTS_KEY: buf.getvalue()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _format1_fields(table: pa.Table) -> dict[str, Any]:
    """Format 1 (pathways 0.1): integer codes; vocabulary, units and the patients table in the schema metadata."""
    meta = table.schema.metadata
    info = json.loads(meta[META_KEY])
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


#: text read as missing in the non-identifier columns of a user CSV (pandas' usual missing markers)
NA_STRINGS = ("", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "NaT", "null", "NULL", "None", "<NA>", "#N/A")


def read_table(path: str | PathLike, kind: str, kwargs: Mapping[str, Any] | None = None,
               text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """A user's ``kind`` ("csv" or "parquet") table as a DataFrame; read errors name the file.

    CSV: the encoding (UTF-8, UTF-16 with a byte-order mark, else latin-1) and the delimiter (``,``, ``;``, tab
    for ``.tsv``) are detected unless ``kwargs`` give them, and ``text_columns`` (identifiers, codes) are read as
    text exactly as written: ``0123`` stays ``0123``, ``1E10`` stays ``1E10``, ``NA`` stays ``NA``; only an empty
    cell is missing there.
    """
    path_text = str(path)
    try:
        if kind != "csv":
            return pd.read_parquet(path)
        options = dict(kwargs or {})
        options.setdefault("encoding", detect_encoding(path))
        if "sep" not in options and "delimiter" not in options:  # ';' in French exports, as the claims readers
            options["sep"] = sniff_delimiter(path, options["encoding"])
        text = [c for c in text_columns if c is not None]
        if text and "dtype" not in options and "keep_default_na" not in options and "na_values" not in options:
            options.update(dtype={c: str for c in text}, keep_default_na=False, na_values=[""])
            frame = pd.read_csv(path, **options)
            others = [c for c in frame.columns if c not in text and frame[c].dtype == object]
            for c in others:  # the usual missing markers stay missing outside the text columns
                masked = frame[c].mask(frame[c].isin(NA_STRINGS))
                numbers = pd.to_numeric(masked, errors="coerce")
                frame[c] = numbers if numbers.notna().sum() == masked.notna().sum() else masked
            return frame
        return pd.read_csv(path, **options)
    except FileNotFoundError as exc:
        raise PathwaysInputError(f"file not found: {path_text!r}") from exc
    except UnicodeDecodeError as exc:
        raise PathwaysInputError(f"cannot read {kind} file {path_text!r}: not valid {exc.encoding} at byte "
                                 f"{exc.start}; pass read_kwargs={{'encoding': 'latin-1'}} (or the file's "
                                 f"encoding)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, pa.ArrowInvalid) as exc:
        raise PathwaysInputError(f"cannot read {kind} file {path_text!r}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    """The first line of a parser's message (pandas names line numbers and counts, never the line's text)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


__all__ = ["FORMAT_VERSION", "own_parquet_fields", "parquet_format", "read_parquet_table", "read_table",
           "sidecar", "write_parquet", "write_parquet_format1"]

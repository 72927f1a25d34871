"""Spark side of the claims readers: the tables of a folder as DataFrames and the column expressions (text, numbers,
dates) that give the same values as the DuckDB engine's SQL (:mod:`pathways.io.tabular`)."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pathways.data.textfiles import detect_encoding, header_fields, sniff_delimiter
from pathways.errors import PathwaysInputError
from pathways.io.tabular import find_table_files

#: strptime formats of the DuckDB engine -> Spark datetime patterns (single letters: one or two digits, as DuckDB)
SPARK_PATTERNS = {"%d%b%Y:%H:%M:%S": "dMMMyyyy:HH:mm:ss", "%d%m%Y": "ddMMyyyy", "%Y%m%d": "yyyyMMdd",
                  "%d/%m/%Y": "d/M/y"}
#: text DuckDB casts to a timestamp: ISO year-month-day, optionally followed by a time
_ISO = r"^\s*-?\d{4}-\d{1,2}-\d{1,2}([ T].*)?\s*$"


class SparkTables:
    """Named tables of one Spark session: CSV/parquet files found in a folder (as :class:`TableSet` finds them) or
    DataFrames (pandas or Spark) given by name. CSV columns are all read as text, like the DuckDB engine."""

    def __init__(self, spark: Any, folder: Any = None, tables: Mapping[str, Any] | None = None):
        self.spark = spark
        self._paths: dict[str, Any] = {}
        self._ambiguous: dict[str, list[str]] = {}
        if folder is not None:
            if not Path(folder).is_dir():
                raise PathwaysInputError(f"source: the Spark engine reads a folder of CSV/parquet tables; "
                                         f"{str(folder)!r} is not one")
            self._index_folder(Path(folder))
        for name, value in (tables or {}).items():
            self._paths[name.lower()] = value
            self._ambiguous.pop(name.lower(), None)
        self._frames: dict[str, Any] = {}

    def _index_folder(self, folder: Path) -> None:
        for stem, paths in find_table_files(folder).items():
            self._paths[stem] = paths[0]
            if len(paths) > 1:  # never pick one silently, as the DuckDB engine
                self._ambiguous[stem] = [str(p.relative_to(folder)) for p in paths]

    def has(self, name: str) -> bool:
        return name.lower() in self._paths

    def matching(self, pattern: str) -> list[str]:
        rx = re.compile(pattern, re.IGNORECASE)
        return sorted(n for n in self._paths if rx.fullmatch(n))

    def frame(self, name: str) -> Any:
        """The table as a Spark DataFrame with upper-case column names."""
        key = name.lower()
        if key in self._ambiguous:
            raise PathwaysInputError(f"table {name!r}: several candidate files {self._ambiguous[key]} (relative to the "
                                     f"folder read); keep one, or choose it with tables={{{name!r}: <path>}}")
        if key not in self._frames:
            if key not in self._paths:
                raise PathwaysInputError(f"table {name!r} not found; available tables: {sorted(self._paths)[:30]}")
            df = self._read(name, self._paths[key])
            self._frames[key] = df.toDF(*[c.upper() for c in df.columns])
        return self._frames[key]

    def _read(self, name: str, value: Any) -> Any:
        if isinstance(value, pd.DataFrame):
            return self.spark.createDataFrame(value)
        if hasattr(value, "sparkSession"):
            return value
        path = Path(value)
        if path.is_dir():
            return self.spark.read.option("recursiveFileLookup", "true").option("mergeSchema", "true") \
                .parquet(str(path))
        if path.name.lower().endswith(".parquet"):
            return self.spark.read.parquet(str(path))
        if not path.is_file():
            raise PathwaysInputError(f"tables[{name!r}]: file not found: {str(path)!r}")
        from pyspark.sql.types import StringType, StructField, StructType

        encoding = detect_encoding(path)
        delim = sniff_delimiter(path, encoding)
        # the header read here, as the DuckDB engine does: every column text, and no Spark job to infer it
        names = header_fields(path, encoding, delim)
        blank = [i for i, n in enumerate(names) if not n.strip()]
        dup = sorted({n for n in names if names.count(n) > 1})
        if blank or dup:
            raise PathwaysInputError(f"cannot read {path.name}: header line has "
                                     + (f"empty column name(s) at position(s) {blank}" if blank else
                                        f"repeated column name(s) {dup[:5]}"))
        schema = StructType([StructField(n, StringType()) for n in names])
        if not names:
            return self.spark.createDataFrame([], schema)
        spark_encoding = {"utf-8-sig": "UTF-8", "utf-16": "UTF-16", "latin-1": "ISO-8859-1"}.get(encoding, "UTF-8")
        return self.spark.read.csv(str(path), header=True, schema=schema, enforceSchema=True, sep=delim, quote='"',
                                   escape='"', encoding=spark_encoding)

    def columns(self, name: str) -> dict[str, str]:
        """Upper-case column name -> Spark type name."""
        return {f.name: f.dataType.simpleString() for f in self.frame(name).schema.fields}

    def require(self, name: str, required: Iterable[str]) -> dict[str, str]:
        cols = self.columns(name)
        missing = [c for c in required if c.upper() not in cols]
        if missing:
            raise PathwaysInputError(f"table {name.lower()!r}: missing column(s) {missing}; "
                                     f"available: {sorted(cols)[:25]}")
        return cols


# ----------------------------------------------------------------------------------------------------------------
# column expressions
# ----------------------------------------------------------------------------------------------------------------
def text(column: Any) -> Any:
    """A column as text (DuckDB's ``CAST(x AS VARCHAR)``)."""
    return column.cast("string")


def trimmed_upper(column: Any) -> Any:
    from pyspark.sql import functions as F

    return F.upper(F.trim(text(column)))


def number(column: Any, kind: str = "double", dtype: str = "string") -> Any:
    """``TRY_CAST(x AS DOUBLE | INTEGER)``: NULL when the text is no number, whatever Spark's ANSI setting.

    Text to integer goes through a double, rounded as DuckDB rounds it (Spark without ANSI would cut
    ``'1.5'`` to 1, with ANSI refuse it). Typed (parquet) numbers cast directly.
    """
    from pyspark.sql import functions as F

    if kind == "double" or dtype != "string":
        return column.try_cast(kind)
    # DuckDB reads '1.5' and '1e2' as integers, rounded half away from zero (Spark's round)
    num = F.trim(text(column)).try_cast("double")
    return F.when(F.abs(F.round(num)) <= 2147483647, F.round(num).cast(kind))


def days(column: Any, dtype: str, formats: Sequence[str] = (), pad: int | None = None) -> Any:
    """``column`` (date, timestamp or text) as float days since 1970-01-01 (UTC), NULL when unparseable: ISO text
    first, then each strptime format of the DuckDB engine (after left-padding with zeros to ``pad``)."""
    from pyspark.sql import functions as F

    if dtype.startswith(("date", "timestamp")):
        stamp = column.cast("timestamp")
    else:
        raw = text(column)
        padded = raw if pad is None else F.lpad(raw, int(pad), "0")
        parts = [F.when(raw.rlike(_ISO), F.trim(raw).try_cast("timestamp"))]
        parts += [F.try_to_timestamp(padded, F.lit(SPARK_PATTERNS[fmt])) for fmt in formats]
        stamp = F.coalesce(*parts)
    return (F.unix_micros(stamp) / 1e6) / 86400.0


def in_range(expr: Any, bounds: tuple[float, float]) -> Any:
    """``expr`` within plausible bounds (infinite bounds: no condition)."""
    from pyspark.sql import functions as F

    lo, hi = bounds
    cond = F.lit(True)
    if np.isfinite(lo):
        cond = cond & (expr >= float(lo))
    if np.isfinite(hi):
        cond = cond & (expr <= float(hi))
    return cond


def valid_date(expr: Any, bounds: tuple[float, float]) -> Any:
    """``expr`` when it is a plausible date, else NULL."""
    from pyspark.sql import functions as F

    return F.when(in_range(expr, bounds), expr)


def count_if(cond: Any) -> Any:
    """``count(*) FILTER (WHERE cond)``: NULL conditions do not count."""
    from pyspark.sql import functions as F

    return F.sum(F.when(cond, 1).otherwise(0))


def counts(df: Any, conditions: Sequence[Any]) -> list[int]:
    """``count(*)`` and one :func:`count_if` per condition, in one pass over ``df``."""
    from pyspark.sql import functions as F

    row = df.agg(F.count(F.lit(1)), *[count_if(c) for c in conditions]).collect()[0]
    return [int(v or 0) for v in row]


def join_condition(left: Any, right: Any, ltypes: Mapping[str, str], rtypes: Mapping[str, str],
                   keys: Sequence[str]) -> Any:
    """Equality on ``keys``; keys typed differently on the two sides compare as text (as the DuckDB engine)."""
    cond = None
    for k in keys:
        same = ltypes[k] == rtypes[k]
        part = (left[k] == right[k]) if same else (text(left[k]) == text(right[k]))
        cond = part if cond is None else cond & part
    return cond


__all__ = ["SPARK_PATTERNS", "SparkTables", "count_if", "counts", "days", "in_range", "join_condition", "number",
           "text", "trimmed_upper", "valid_date"]

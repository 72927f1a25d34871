"""Shared helpers of the claims readers: DuckDB access, table discovery, SQL date parsing.

The read report is in :mod:`pathways.io.report`, the EventLog assembly in :mod:`pathways.io.build`.

The readers (:mod:`pathways.io.omop`, :mod:`pathways.io.snds`) push every join and filter into DuckDB, which runs
out of core over CSV or parquet files, and only fetch numeric arrays (patient index, times, code index) back into
numpy. String identifiers and codes are mapped to integer indices inside DuckDB through small lookup tables.
"""
from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from pathways.data.textfiles import detect_encoding, header_fields, sniff_delimiter
from pathways.errors import PathwaysInputError
from pathways.io.guard import duckdb_error

logger = logging.getLogger("pathways")

_TABLE_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".tsv")


def import_duckdb() -> Any:
    """Import duckdb lazily, with an actionable message when the optional extra is missing.

    DuckDB's allocator (jemalloc on Linux) keeps freed pages for about ten seconds by default, so the memory of a
    finished join still counts while NumPy fills the EventLog: the readers' peak would be the sum of both. Unless
    the user configured it, freed pages go back to the system at once (``DUCKDB_JE_MALLOC_CONF``, read when
    DuckDB loads: it has no effect if duckdb was imported before).
    """
    if "duckdb" not in sys.modules:
        os.environ.setdefault("DUCKDB_JE_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "pathways.io needs the optional dependency 'duckdb' to read OMOP/SNDS tables; "
            "install it with: pip install 'pathways[omop]'"
        ) from exc
    return duckdb



def duckdb_config(memory_limit: str | None, threads: int | None) -> dict[str, Any]:
    """DuckDB connection settings from the readers' ``memory_limit`` / ``threads`` arguments."""
    config: dict[str, Any] = {}
    if memory_limit is not None:
        config["memory_limit"] = str(memory_limit)
    if threads is not None:
        if int(threads) < 1:
            raise PathwaysInputError(f"threads: expected >= 1, got {threads!r}")
        config["threads"] = int(threads)
    return config



# ----------------------------------------------------------------------------------------------------------------
# table discovery
# ----------------------------------------------------------------------------------------------------------------
def quote(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    """Quote an SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


class TableSet:
    """Named tables visible to one DuckDB connection: database tables, CSV/parquet files or DataFrames.

    Parameters
    ----------
    source : a DuckDB database file (``.duckdb``/``.db``), an open DuckDB connection, or a folder searched
        recursively for ``<TABLE>.parquet``, ``<TABLE>.csv[.gz]`` or ``<TABLE>/`` folders of parquet files
        (table names match case-insensitively).
    tables : explicit ``name -> path or DataFrame`` overrides (take precedence over ``source``).
    schema : database schema holding the tables (database sources only).

    CSV files are read with every column as text: the readers cast and parse explicitly, so a header-only file or
    an odd date format never breaks type inference.
    """

    def __init__(self, source: Any, tables: Mapping[str, Any] | None = None, schema: str | None = None,
                 config: Mapping[str, Any] | None = None):
        duckdb = import_duckdb()
        self._owned = False
        self._config = dict(config or {})
        self._views: dict[str, str] = {}
        self._ambiguous: dict[str, list[str]] = {}
        self._root: Path | None = None
        try:
            self._open(duckdb, source, tables, schema, config)
        except duckdb.Error as exc:
            raise duckdb_error(exc, self._root) from None

    def _open(self, duckdb: Any, source: Any, tables: Mapping[str, Any] | None, schema: str | None,
              config: Mapping[str, Any] | None) -> None:
        if isinstance(source, duckdb.DuckDBPyConnection):
            self.con = source
            self._index_database(schema)
        elif source is not None and Path(source).is_dir():
            self.con = _connect(duckdb, config)
            self._owned = True
            self._index_folder(Path(source))
        elif source is not None and Path(source).is_file():
            try:
                self.con = duckdb.connect(str(source), read_only=True, config=dict(config or {}))
            except duckdb.Error as exc:
                raise PathwaysInputError(f"source: cannot open DuckDB database {str(source)!r}: {exc}") from exc
            self._owned = True
            self._index_database(schema)
        elif source is None and tables:
            self.con = _connect(duckdb, config)
            self._owned = True
        else:
            raise PathwaysInputError(
                f"source: expected a DuckDB file, a DuckDB connection or a folder of CSV/parquet tables; "
                f"got {source!r} (not found)"
            )
        for name, value in (tables or {}).items():
            self._add(name, value)
        self._n_temp = 0
        self._temps: list[tuple[str, str]] = []
        self._scratch: str | None = None  # compressed in-memory database, attached on first use

    # -- construction helpers -----------------------------------------------------------------------------------
    def _index_database(self, schema: str | None) -> None:
        where = "" if schema is None else f"WHERE table_schema = {sql_literal(schema)}"
        rows = self.con.execute(
            f"SELECT table_schema, table_name FROM information_schema.tables {where} ORDER BY table_schema"
        ).fetchall()
        for tab_schema, name in rows:
            self._views.setdefault(name.lower(), f"{quote(tab_schema)}.{quote(name)}")

    def _index_folder(self, folder: Path) -> None:
        found = find_table_files(folder)
        self._root = folder
        for stem, paths in found.items():
            if len(paths) > 1:  # never pick one silently: a stale backup copy would win by its sort order
                self._ambiguous[stem] = [str(p.relative_to(folder)) for p in paths]
                self._views[stem] = ""
            else:
                self._add(stem, paths[0])

    def _add(self, name: str, value: Any) -> None:
        view = f"pw_{re.sub(r'[^0-9a-zA-Z_]', '_', name.lower())}"
        self._ambiguous.pop(name.lower(), None)  # an explicit table settles an ambiguity
        if isinstance(value, pd.DataFrame):
            _check_cells(name, value)
            self.con.register(view + "_df", value)
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {quote(view)} AS SELECT * FROM {quote(view + '_df')}")
        else:
            path = Path(value)
            if path.is_dir():
                reader = f"read_parquet({sql_literal(str(path / '**' / '*.parquet'))}, union_by_name=true)"
            elif path.name.lower().endswith(".parquet"):
                reader = f"read_parquet({sql_literal(str(path))})"
            elif path.is_file():
                reader = _csv_reader(path)
            else:
                raise PathwaysInputError(f"tables[{name!r}]: file not found: {str(path)!r}")
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {quote(view)} AS SELECT * FROM {reader}")
        self._views[name.lower()] = quote(view)

    # -- queries ------------------------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        """Whether table ``name`` exists."""
        return name.lower() in self._views

    def find(self, *names: str) -> str | None:
        """First existing table among ``names`` (None if none)."""
        return next((n for n in names if self.has(n)), None)

    def matching(self, pattern: str) -> list[str]:
        """Names of tables matching a regular expression (case-insensitive), sorted."""
        rx = re.compile(pattern, re.IGNORECASE)
        return sorted(n for n in self._views if rx.fullmatch(n))

    def ref(self, name: str) -> str:
        """SQL reference of table ``name``; error naming the table when absent or found in several files."""
        if name.lower() in self._ambiguous:
            raise PathwaysInputError(
                f"table {name!r}: several candidate files {self._ambiguous[name.lower()]} (relative to the folder "
                f"read); keep one, or choose it with tables={{{name!r}: <path>}}")
        if not self.has(name):
            raise PathwaysInputError(f"table {name!r} not found; available tables: {sorted(self._views)[:30]}")
        return self._views[name.lower()]

    def columns(self, name: str) -> dict[str, str]:
        """Column name (upper case) -> DuckDB type of table ``name``."""
        rows = self.con.execute(f"DESCRIBE SELECT * FROM {self.ref(name)}").fetchall()
        return {str(r[0]).upper(): str(r[1]) for r in rows}

    def require(self, name: str, required: Iterable[str]) -> dict[str, str]:
        """Columns of ``name``; error naming every missing required column."""
        cols = self.columns(name)
        missing = [c for c in required if c.upper() not in cols]
        if missing:
            raise PathwaysInputError(f"table {name!r}: missing column(s) {missing}; " + _available(cols, missing,
                                                                                                 required))
        return cols

    def optional(self, name: str, required: Iterable[str], report: Any, errors: str = "warn") -> dict[str, str] | None:
        """Columns of an optional table; None when it is absent (noted) or malformed (a counted, warned skip).

        A malformed optional table (say a header-only CSV whose header was loaded as a data row, with columns
        ``column0..column6``) must not stop a read: its rows are counted as skipped in ``report``.
        """
        if not self.has(name):
            report.note(f"{name} table absent", 0)
            return None
        cols = self.columns(name)
        missing = [c for c in required if c.upper() not in cols]
        if not missing:
            return cols
        n = self.scalar(f"SELECT count(*) FROM {self.ref(name)}")
        report.decide(f"{name}: optional table malformed (missing column(s) {missing})", "table skipped",
                      max(int(n), 1), int(n), f"{len(cols)} columns found", errors=errors)
        return None

    def scalar(self, sql: str) -> Any:
        """First value of the first row of a query."""
        return self.con.execute(sql).fetchall()[0][0]

    def temp_table(self, sql: str, prefix: str = "t") -> str:
        """Materialise a query as a temporary table; return its quoted name."""
        return self._create("TEMP TABLE", "TABLE", sql, prefix)

    def temp_view(self, sql: str, prefix: str = "v") -> str:
        """Name a query as a temporary view (no copy: re-evaluated by each query using it)."""
        return self._create("TEMP VIEW", "VIEW", sql, prefix)

    def _create(self, statement: str, kind: str, sql: str, prefix: str, database: str = "") -> str:
        """``CREATE OR REPLACE <statement>`` under a fresh name (in ``database`` if given), dropped by drop_temps."""
        self._n_temp += 1
        name = quote(f"pw_{prefix}_{self._n_temp}")
        name = f"{database}.{name}" if database else name
        self.con.execute(f"CREATE OR REPLACE {statement} {name} AS {sql}")
        self._temps.append((kind, name))
        return name

    def compressed_table(self, sql: str, prefix: str = "t") -> str:
        """Like :meth:`temp_table`, in a compressed in-memory database when DuckDB allows one.

        DuckDB compresses in-memory tables only in a database attached with ``COMPRESS``, at each
        :meth:`compress` (a checkpoint): an event table of mostly missing, repeated or small values then takes
        about a tenth of its plain size. Read-only connections cannot attach one: a plain temp table then.
        """
        if self._scratch is None:
            try:
                self.con.execute("ATTACH ':memory:' AS pw_scratch (COMPRESS)")
                self._scratch = "pw_scratch"
            except Exception:  # noqa: BLE001 - any refusal (read-only, old DuckDB) falls back to temp tables
                self._scratch = ""
        if not self._scratch:
            return self.temp_table(sql, prefix)
        return self._create("TABLE", "TABLE", sql, prefix, self._scratch)

    def compress(self) -> None:
        """Compress the tables of :meth:`compressed_table` made or grown since the last call."""
        if self._scratch:
            self.con.execute(f"CHECKPOINT {self._scratch}")

    def drop_temps(self, keep: Iterable[str] = ()) -> None:
        """Drop the temporary tables and views made so far (newest first) except ``keep``, releasing memory."""
        kept = set(keep)
        for kind, name in reversed(self._temps):
            if name not in kept:
                self.con.execute(f"DROP {kind} IF EXISTS {name}")
        self._temps = [(kind, name) for kind, name in self._temps if name in kept]

    def close(self) -> None:
        """Close the connection if this object opened it (else detach what it attached)."""
        if self._owned:
            self.con.close()
        elif self._scratch:
            self.drop_temps()
            self.con.execute(f"DETACH {self._scratch}")
            self._scratch = None

    def __enter__(self) -> "TableSet":
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.close()
        duckdb = import_duckdb()
        if exc is not None and isinstance(exc, duckdb.Error) and not isinstance(exc, duckdb.OutOfMemoryException):
            # DuckDB's text may repeat a raw CSV line or a cell value (patient data): never passed on
            raise duckdb_error(exc, self._root) from None
        if exc is not None and isinstance(exc, duckdb.OutOfMemoryException):
            setting = self._config.get("memory_limit", "DuckDB's default (80% of RAM)")
            raise PathwaysInputError(
                f"DuckDB ran out of memory (memory_limit={setting}): {str(exc).splitlines()[0]}. Raise memory_limit, "
                f"read with threads=1 (each thread holds its own buffers), or, for read_snds, lower "
                f"join_partition_rows") from exc


def _connect(duckdb: Any, config: Mapping[str, Any] | None) -> Any:
    """In-memory DuckDB connection; a bad setting is an input error naming it."""
    try:
        return duckdb.connect(config=dict(config or {}))
    except duckdb.Error as exc:
        raise PathwaysInputError(f"DuckDB settings {dict(config or {})}: {exc}") from exc


def _available(cols: Mapping[str, str], missing: list[str], required: Iterable[str]) -> str:
    """The columns found, unless none of the required ones is there: the first line is then probably data (a
    file without header, whose "column names" would be patient ids), so only their number is shown."""
    if len(missing) == len(list(required)) and len(cols) > 0:
        return f"none of them among the {len(cols)} columns found: does the first line hold the column names?"
    return f"available: {sorted(cols)[:25]}"


def _check_cells(name: str, frame: pd.DataFrame) -> None:
    """Refuse list / dict / array cells in a DataFrame table (DuckDB would store their text as an id or code).

    ``infer_dtype`` scans in C; the per-cell look runs only on a column it finds mixed.
    """
    for column in frame.columns:
        values = frame[column]
        if values.dtype != object or not pd.api.types.infer_dtype(values, skipna=True).startswith("mixed"):
            continue
        bad = values.map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray))).to_numpy(bool)
        if bad.any():
            raise PathwaysInputError(f"tables[{name!r}]: column '{column}': {int(bad.sum())} of {bad.size} rows "
                                     f"hold a list, dict or array instead of a single value; first at row "
                                     f"{int(np.flatnonzero(bad)[0])}")


def _csv_reader(path: Path) -> str:
    """DuckDB ``read_csv`` of a user file: detected encoding, header read here, every column as text.

    The column names come from the first line, read here: DuckDB's dialect sniffer, given a ragged row, may skip
    lines and take a data row (patient ids) for the header, or return no rows at all.
    """
    encoding = detect_encoding(path)
    delim = sniff_delimiter(path, encoding)
    names = header_fields(path, encoding, delim)
    if not names:
        return "(SELECT NULL AS empty_file WHERE FALSE)"  # an empty file: a table without rows or columns
    blank = [i for i, n in enumerate(names) if not n.strip()]
    dup = [i for i, n in enumerate(names) if names.count(n) > 1]
    if blank or dup:  # positions, not names: a file without header has patient data on its first line
        raise PathwaysInputError(f"cannot read {path.name}: header line has "
                                 + (f"empty column name(s) at position(s) {blank}" if blank else
                                    f"repeated column name(s) at positions {dup[:10]}"))
    columns = "{" + ", ".join(f"{sql_literal(n)}: 'VARCHAR'" for n in names) + "}"
    duck_encoding = {"utf-8-sig": "utf-8", "utf-16": "utf-16", "latin-1": "latin-1"}.get(encoding, "utf-8")
    return (f"read_csv({sql_literal(str(path))}, header=true, skip=0, auto_detect=false, columns={columns}, "
            f"delim={sql_literal(delim)}, quote='\"', escape='\"', encoding={sql_literal(duck_encoding)})")


# ----------------------------------------------------------------------------------------------------------------
# SQL expressions
# ----------------------------------------------------------------------------------------------------------------
def days_sql(column: str, formats: Sequence[str] = (), pad: int | None = None) -> str:
    """SQL expression: ``column`` (DATE, TIMESTAMP or text) as float days since 1970-01-01, NULL if unparseable.

    Text is tried as ISO first, then with each ``strptime`` format (after left-padding with zeros to ``pad``
    characters: day-first dates such as ``5051970`` lose their leading zero when a tool stored them as numbers).
    """
    text = f"CAST({column} AS VARCHAR)"
    if pad is not None:
        text = f"lpad({text}, {int(pad)}, '0')"
    parts = [f"TRY_CAST({column} AS TIMESTAMP)"]
    parts += [f"TRY_STRPTIME({text}, {sql_literal(fmt)})" for fmt in formats]
    return f"(epoch(COALESCE({', '.join(parts)})) / 86400.0)"




def in_range_sql(expr: str, bounds: tuple[float, float]) -> str:
    """SQL condition: ``expr`` lies in the plausible window (always true for infinite bounds)."""
    lo, hi = bounds
    conds = []
    if np.isfinite(lo):
        conds.append(f"{expr} >= {lo!r}")
    if np.isfinite(hi):
        conds.append(f"{expr} <= {hi!r}")
    return " AND ".join(conds) if conds else "TRUE"

def find_table_files(folder: Path) -> dict[str, list[Path]]:
    """Candidate files of each table name (lower case) under ``folder``, for both claims engines.

    A table is a CSV/TSV/parquet file named after it, or a folder of parquet files (a partitioned table); files
    inside a folder already named after their table belong to that table. Several candidates for one name are kept
    so that the caller refuses the ambiguity instead of picking one by sort order.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "DCIR").mkdir(); _ = (root / "DCIR" / "ER_PRS_F.csv").write_text("a")
    >>> _ = (root / "ER_PRS_F.csv").write_text("a")
    >>> {k: len(v) for k, v in find_table_files(root).items()}
    {'er_prs_f': 2}
    """
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        name = path.name
        suffix = next((s for s in _TABLE_SUFFIXES if name.lower().endswith(s)), None)
        if path.is_file() and suffix is not None and path.parent.suffix.lower() != ".parquet":
            stem = name[: -len(suffix)]
            if not any(p.name.lower() == stem.lower() for p in path.parents if p != folder and p.is_dir()):
                found.setdefault(stem.lower(), []).append(path)
        elif path.is_dir() and any(path.glob("**/*.parquet")):
            found.setdefault(path.name.lower(), []).append(path)
    return found


__all__ = [
    "find_table_files",
    "TableSet", "days_sql", "duckdb_config", "import_duckdb", "in_range_sql",
    "quote", "sql_literal",
]

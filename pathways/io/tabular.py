"""Shared helpers of the claims readers: DuckDB access, table discovery, SQL date parsing and the read report.

The readers (:mod:`pathways.io.omop`, :mod:`pathways.io.snds`) push every join and filter into DuckDB, which runs
out of core over CSV or parquet files, and only fetch numeric arrays (patient index, times, code index) back into
numpy. String identifiers and codes are mapped to integer indices inside DuckDB through small lookup tables.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from pathways.data import EventLog, Vocabulary
from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.utils import compact

logger = logging.getLogger("pathways")

#: Plausible-date window used by the readers: dates outside are invalid (placeholders such as 1600-01-01).
DEFAULT_DATE_RANGE = ("1900-01-01", "2100-12-31")
_EPOCH = pd.Timestamp("1970-01-01")
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


# ----------------------------------------------------------------------------------------------------------------
# read report
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class ReadReport:
    """Counted decisions a reader took about the data, in the order taken.

    Every decision that drops or changes rows is recorded with its count, warned once with
    :class:`~pathways.errors.PathwaysDataWarning` (when the count is positive) and logged on the ``pathways``
    logger; informational counts (rows read per table) are recorded without a warning. No identifier ever enters
    the report. The report is attached to the returned EventLog as ``log.patients.attrs["read_report"]`` (a
    DataFrame) and returned as a :class:`ReadReport` with ``return_report=True``.
    """

    reader: str
    records: list[dict[str, Any]] = field(default_factory=list)

    def note(self, step: str, count: int, detail: str = "") -> None:
        """Record an informational count (no warning)."""
        self.records.append({"step": step, "decision": "info", "count": int(count), "total": None,
                             "detail": detail})
        logger.info("%s: %s: %d %s", self.reader, step, int(count), detail)

    def decide(self, step: str, decision: str, count: int, total: int | None = None, detail: str = "",
               errors: str = "warn") -> None:
        """Record a decision touching ``count`` of ``total`` rows; warn (or raise when ``errors='raise'``)."""
        count = int(count)
        self.records.append({"step": step, "decision": decision, "count": count,
                             "total": None if total is None else int(total), "detail": detail})
        if count <= 0:
            return
        share = f" of {int(total)} ({count / max(int(total), 1):.1%})" if total else ""
        message = f"{self.reader}: {step}: {count}{share} rows -> {decision}" + (f" ({detail})" if detail else "")
        if errors == "raise":
            raise PathwaysInputError(message + " (pass errors='warn' to accept this decision)")
        warnings.warn(message, PathwaysDataWarning, stacklevel=3)
        logger.info(message)

    def count(self, step: str) -> int:
        """Total count recorded under ``step`` (0 when absent)."""
        return int(sum(r["count"] for r in self.records if r["step"] == step))

    def to_frame(self) -> pd.DataFrame:
        """One row per record: step, decision, count, total, detail."""
        return pd.DataFrame(self.records, columns=["step", "decision", "count", "total", "detail"])

    def __repr__(self) -> str:
        return f"ReadReport({self.reader}, {len(self.records)} records)\n{self.to_frame().to_string(index=False)}"


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


def check_errors_arg(errors: str) -> None:
    """Validate the readers' ``errors`` switch."""
    if errors not in ("warn", "raise"):
        raise PathwaysInputError(f"errors: expected 'warn' or 'raise', got {errors!r}")


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
        found: dict[str, Path] = {}
        for path in sorted(folder.rglob("*")):
            name = path.name
            suffix = next((s for s in _TABLE_SUFFIXES if name.lower().endswith(s)), None)
            if path.is_file() and suffix is not None and path.parent.suffix.lower() != ".parquet":
                stem = name[: -len(suffix)]
                if not any(p.name.lower() == stem.lower() for p in path.parents if p != folder and p.is_dir()):
                    found.setdefault(stem.lower(), path)
            elif path.is_dir() and any(path.glob("**/*.parquet")):
                found.setdefault(path.name.lower(), path)
        for stem, path in found.items():
            self._add(stem, path)

    def _add(self, name: str, value: Any) -> None:
        view = f"pw_{re.sub(r'[^0-9a-zA-Z_]', '_', name.lower())}"
        if isinstance(value, pd.DataFrame):
            self.con.register(view + "_df", value)
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {quote(view)} AS SELECT * FROM {quote(view + '_df')}")
        else:
            path = Path(value)
            if path.is_dir():
                reader = f"read_parquet({sql_literal(str(path / '**' / '*.parquet'))}, union_by_name=true)"
            elif path.name.lower().endswith(".parquet"):
                reader = f"read_parquet({sql_literal(str(path))})"
            elif path.is_file():
                delim = "\\t" if path.name.lower().endswith(".tsv") else _sniff_delimiter(path)
                reader = (f"read_csv({sql_literal(str(path))}, header=true, all_varchar=true, "
                          f"delim={sql_literal(delim)}, quote='\"')")
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
        """SQL reference of table ``name``; error naming the table when absent."""
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
            raise PathwaysInputError(
                f"table {name!r}: missing column(s) {missing}; available: {sorted(cols)[:25]}"
            )
        return cols

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
        if exc is not None and isinstance(exc, import_duckdb().OutOfMemoryException):
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


def _sniff_delimiter(path: Path) -> str:
    """Pick ',' or ';' (French exports) from the header line."""
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        header = fh.readline()
    return ";" if header.count(";") > header.count(",") else ","


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


def date_bounds(date_range: tuple[str, str] | None) -> tuple[float, float]:
    """(low, high) of the plausible-date window in days since 1970-01-01 (infinite when None)."""
    if date_range is None:
        return -np.inf, np.inf
    lo, hi = (pd.Timestamp(d) for d in date_range)
    if lo > hi:
        raise PathwaysInputError(f"date_range: start {date_range[0]} after end {date_range[1]}")
    return float((lo - _EPOCH) / pd.Timedelta(days=1)), float((hi - _EPOCH) / pd.Timedelta(days=1))


def in_range_sql(expr: str, bounds: tuple[float, float]) -> str:
    """SQL condition: ``expr`` lies in the plausible window (always true for infinite bounds)."""
    lo, hi = bounds
    conds = []
    if np.isfinite(lo):
        conds.append(f"{expr} >= {lo!r}")
    if np.isfinite(hi):
        conds.append(f"{expr} <= {hi!r}")
    return " AND ".join(conds) if conds else "TRUE"


# ----------------------------------------------------------------------------------------------------------------
# assembling the EventLog
# ----------------------------------------------------------------------------------------------------------------
EventFilter = Callable[[np.ndarray, np.ndarray], tuple[str, str, np.ndarray]]


def build_eventlog(tables: TableSet, events: str, patients: pd.DataFrame, categories: Sequence[str],
                   report: ReadReport, duplicates: str = "drop", errors: str = "warn",
                   filters: Sequence[EventFilter] = (), pid_dictionary: str | None = None) -> EventLog:
    """Turn a DuckDB events table into an EventLog, mapping ids and codes to indices inside DuckDB.

    Parameters
    ----------
    events : quoted temp table with columns ``pid`` (VARCHAR), ``t``, ``e``, ``value`` (DOUBLE), ``code``
        (VARCHAR), ``cat`` (INTEGER index into ``categories``).
    patients : one row per patient, in index order, columns ``patient_id``, birth, sex, death, start, end and
        covariates; every ``pid`` of ``events`` must be the text form of one of its ids.
    duplicates : events identical in every field: "drop" (counted), "keep" or "raise".
    filters : callables ``(patient index, time) -> (step, decision, rows to drop)`` applied in numpy once the
        patient indices are known (e.g. events after death); each drop is a counted decision.
    pid_dictionary : table ``(pid VARCHAR, id INTEGER)`` when the events' ``pid`` holds integer ids from it.
    """
    if duplicates not in ("drop", "keep", "raise"):
        raise PathwaysInputError(f"duplicates: expected 'drop', 'keep' or 'raise', got {duplicates!r}")
    code_rows = tables.con.execute(f"SELECT code, count(*) FROM {events} GROUP BY code").fetchall()
    code_rows.sort(key=lambda r: r[0])
    vocab = Vocabulary([r[0] for r in code_rows], [r[1] for r in code_rows])
    arrays = _fetch_encoded(tables, events, patients, vocab, sum(r[1] for r in code_rows), pid_dictionary)
    tables.drop_temps()  # DuckDB's copy goes before the sort: the sort then needs the arrays and one key only
    patient, time, code, end, value, cat = _sort_events(*arrays)
    drop = np.zeros(time.size, dtype=bool)
    if duplicates != "keep" and time.size > 1:
        drop[1:] = ((patient[1:] == patient[:-1]) & (time[1:] == time[:-1]) & (code[1:] == code[:-1])
                    & (cat[1:] == cat[:-1]) & _same_or_nan(end) & _same_or_nan(value))
        report.decide("duplicate events", "dropped" if duplicates == "drop" else "error", int(drop.sum()),
                      time.size, "identical patient, time, end, code, value and category",
                      errors="raise" if duplicates == "raise" else errors)
    for rule in filters:
        # Filters are rules the user chose (study window, events after death): counted, never an error; each
        # counts only rows no earlier rule dropped.
        step, decision, bad = rule(patient, time)
        new = bad & ~drop
        report.decide(step, decision, int(new.sum()), int(time.size - drop.sum()), "documented rule")
        drop |= new
    if drop.any():
        # One keep-mask for duplicates and filters, applied in place: one column at a time is copied, never all.
        patient, time, code, end, value, cat = (compact(a, ~drop) for a in (patient, time, code, end, value, cat))
    category = pd.Categorical.from_codes(cat, categories=list(categories))
    log = EventLog.from_arrays(
        patient, time, code, vocab, patients.reset_index(drop=True), end=end, value=value, category=category,
        time_unit="days", origin=_EPOCH,
    )
    report.note("events in EventLog", log.n_events)
    report.note("patients in EventLog", log.n_patients)
    log.patients.attrs["read_report"] = report.to_frame()
    return log


def _fetch_encoded(tables: TableSet, events: str, patients: pd.DataFrame, vocab: Vocabulary, n_events: int,
                   pid_dictionary: str | None = None, batch_rows: int = 1 << 20) -> tuple[np.ndarray, ...]:
    """The events with patient and code indices instead of their text, streamed into numpy arrays.

    Returns (patient, time, code, end, value, category) in DuckDB's order. Batches are copied into arrays
    allocated once, so the result never exists twice in memory; missing floats (e.g. no end date) become NaN.
    """
    con = tables.con
    # Arrow lookups: DuckDB scans them without touching Python string objects.
    con.register("pw_lookup_codes", pa.table({"code": pa.array(vocab.codes.astype(str).tolist(), pa.string()),
                                              "cidx": np.arange(len(vocab), dtype=np.int32)}))
    con.register("pw_lookup_pids", pa.table({"pid": pa.array(patients["patient_id"].astype(str), pa.string()),
                                             "pidx": np.arange(len(patients), dtype=np.int32)}))
    pids = "pw_lookup_pids" if pid_dictionary is None else (
        f"(SELECT d.id AS pid, l.pidx FROM {pid_dictionary} d JOIN pw_lookup_pids l ON d.pid = l.pid)")
    dtypes = (np.int64, np.float64, np.int64, np.float64, np.float64, np.int8)
    out = [np.empty(n_events, dtype=d) for d in dtypes]
    pos = 0
    try:
        reader = con.sql(f"SELECT p.pidx, e.t, c.cidx, e.e, e.value, CAST(e.cat AS TINYINT) AS cat FROM {events} e "
                         f"JOIN {pids} p ON e.pid = p.pid JOIN pw_lookup_codes c ON e.code = c.code"
                         ).to_arrow_reader(batch_rows)
        for batch in reader:
            stop = pos + batch.num_rows
            if stop > n_events:
                raise PathwaysInputError(f"events: more rows joined ({stop}) than events ({n_events}): patient ids "
                                         f"repeat in the patients table")
            for j, array in enumerate(out):
                array[pos:stop] = batch.column(j).to_numpy(zero_copy_only=False)
            pos = stop
    finally:
        con.unregister("pw_lookup_codes")
        con.unregister("pw_lookup_pids")
    if pos != n_events:
        raise PathwaysInputError(f"events: {n_events - pos} of {n_events} rows have a patient id absent from "
                                 f"the patients table or a missing code")
    return tuple(out)


def _sort_events(patient: np.ndarray, time: np.ndarray, code: np.ndarray, end: np.ndarray, value: np.ndarray,
                 cat: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sort the event arrays in place by (patient, time, code, category, end, value).

    One stable argsort of a single integer key (patient, time rank, code) instead of a multi-key sort: a sort in
    DuckDB would hold the events a second time (plus its runs) beside the arrays. Rows tying on the key are few
    and ordered by :func:`_order_ties`, which puts identical events next to each other for the duplicate check.
    """
    order = _event_order(patient, time, code)
    if order is not None:
        for array in (patient, time, code, end, value, cat):
            array[:] = array[order]  # one temporary column at a time
        del order
    _order_ties(patient, time, code, end, value, cat)
    return patient, time, code, end, value, cat


def _event_order(patient: np.ndarray, time: np.ndarray, code: np.ndarray) -> np.ndarray | None:
    """Stable order by (patient, time, code); None when already sorted."""
    if time.size < 2:
        return None
    if np.all(time == np.round(time)) and time.max() - time.min() < 2 ** 31:  # whole days: the usual claims case
        t_rank = (time - time.min()).astype(np.int64)
    else:
        t_rank = np.unique(time, return_inverse=True)[1].astype(np.int64).reshape(-1)
    n_t, n_codes = int(t_rank.max()) + 1, int(code.max()) + 1
    if (int(patient.max()) + 1) * n_t * n_codes >= 2 ** 62:  # the key would overflow: three-key sort
        return np.lexsort((code, time, patient))
    key = t_rank
    key += patient * n_t  # in place: t_rank is ours
    key *= n_codes
    key += code
    if np.all(key[1:] >= key[:-1]):
        return None
    return np.argsort(key, kind="stable")


def _order_ties(patient: np.ndarray, time: np.ndarray, code: np.ndarray, end: np.ndarray, value: np.ndarray,
                cat: np.ndarray) -> None:
    """In place: order rows that tie on (patient, time, code) by (category, end, value), missing values first."""
    same = (patient[1:] == patient[:-1]) & (time[1:] == time[:-1]) & (code[1:] == code[:-1])
    if not same.any():
        return
    same_as_previous = np.concatenate([[False], same])
    in_tie = same_as_previous.copy()
    in_tie[:-1] |= same
    rows = np.flatnonzero(in_tie)
    run = np.cumsum(~same_as_previous[rows])
    e, v = end[rows], value[rows]
    order = np.lexsort((np.nan_to_num(v), ~np.isnan(v), np.nan_to_num(e), ~np.isnan(e), cat[rows], run))
    for array in (end, value, cat):  # patient, time and code are equal within each run
        array[rows] = array[rows][order]


def _same_or_nan(a: np.ndarray) -> np.ndarray:
    """Adjacent equality where two NaNs count as equal."""
    left, right = a[1:], a[:-1]
    return (left == right) | (np.isnan(left) & np.isnan(right))


__all__ = [
    "DEFAULT_DATE_RANGE", "ReadReport", "TableSet", "build_eventlog", "date_bounds", "days_sql", "import_duckdb",
    "in_range_sql", "quote", "sql_literal",
]

"""Assembling an EventLog from a DuckDB events table: codes and patients mapped to indices inside DuckDB,
numeric arrays streamed into numpy, one sort, counted duplicate and rule drops."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from pathways.data import EventLog, Vocabulary
from pathways.data.dates import EPOCH
from pathways.data.order import event_order
from pathways.errors import PathwaysInputError
from pathways.io.report import ReadReport
from pathways.io.tabular import TableSet
from pathways.progress import progress_bar
from pathways.utils import compact

EventFilter = Callable[[np.ndarray, np.ndarray], tuple[str, str, np.ndarray]]


def build_eventlog(tables: TableSet, events: str, patients: pd.DataFrame, categories: Sequence[str],
                   report: ReadReport, duplicates: str = "drop", errors: str = "warn",
                   filters: Sequence[EventFilter] = (), pid_dictionary: str | None = None,
                   extra_columns: Sequence[str] = (), summed_columns: Sequence[str] = ("paid", "base")) -> EventLog:
    """Turn a DuckDB events table into an EventLog, mapping ids and codes to indices inside DuckDB.

    Parameters
    ----------
    events : quoted temp table with columns ``pid`` (VARCHAR), ``t``, ``e``, ``value`` (DOUBLE), ``code``
        (VARCHAR), ``cat`` (INTEGER index into ``categories``).
    patients : one row per patient, in index order, columns ``patient_id``, birth, sex, death, start, end and
        covariates; every ``pid`` of ``events`` must be the text form of one of its ids.
    duplicates : events identical in every field: "drop" (counted), "keep" or "raise".
    filters : callables ``(patient index, time) -> (step, decision, rows to drop)`` applied in numpy once the
        patient indices are known (e.g. events after death); each drop is a counted decision. An optional fourth
        element: ``"rule"`` (default: a rule the user chose, never an error), ``"data"`` (a data problem, e.g.
        events before birth: raises under ``errors="raise"``) or ``"kept"`` (counted and warned, not dropped).
    pid_dictionary : table ``(pid VARCHAR, id INTEGER)`` when the events' ``pid`` holds integer ids from it.
    extra_columns : further columns of ``events`` kept as the EventLog's ``extras`` (VARCHAR as object arrays with
        None, numbers as float64 with NaN), e.g. provider ids and amounts; they count in the duplicate check.
    summed_columns : amount extras summed over merged duplicates: ``k`` identical lines of one service (a
        dispensation and its re-billing) are one event carrying ``k`` times the amount, so amounts keep their total.
    """
    if duplicates not in ("drop", "keep", "raise"):
        raise PathwaysInputError(f"duplicates: expected 'drop', 'keep' or 'raise', got {duplicates!r}")
    code_rows = tables.con.execute(f"SELECT code, count(*) FROM {events} GROUP BY code").fetchall()
    code_rows.sort(key=lambda r: r[0])
    vocab = Vocabulary([r[0] for r in code_rows], [r[1] for r in code_rows])
    extras: dict[str, np.ndarray] = {}
    arrays = _fetch_encoded(tables, events, patients, vocab, sum(r[1] for r in code_rows), pid_dictionary,
                            extra_columns=extra_columns, extras_out=extras)
    tables.drop_temps()  # DuckDB's copy goes before the sort: the sort then needs the arrays and one key only
    patient, time, code, end, value, cat = _sort_events(*arrays, extras=extras)
    drop = np.zeros(time.size, dtype=bool)
    resort = False
    if duplicates != "keep" and time.size > 1:
        drop[1:] = ((patient[1:] == patient[:-1]) & (time[1:] == time[:-1]) & (code[1:] == code[:-1])
                    & (cat[1:] == cat[:-1]) & _same_or_nan(end) & _same_or_nan(value))
        for column in extras.values():
            drop[1:] &= _same_or_nan(column)
        summed = [c for c in summed_columns if c in extras]
        report.decide("duplicate events", "dropped" if duplicates == "drop" else "error", int(drop.sum()),
                      time.size, "identical patient, time, end, code, value and category"
                      + (f"; their {', '.join(summed)} summed into the kept event" if summed else ""),
                      errors="raise" if duplicates == "raise" else errors)
        if drop.any():
            _sum_into_kept([extras[c] for c in summed], drop)
            resort = bool(summed)
    for rule in filters:
        # Filters are rules the user chose (study window, events after death): counted, never an error, unless
        # flagged as a data problem; each counts only rows no earlier rule dropped.
        step, decision, bad, *kind = rule(patient, time)
        kind = kind[0] if kind else "rule"
        new = bad & ~drop
        report.decide(step, decision, int(new.sum()), int(time.size - drop.sum()),
                      "documented rule" if kind == "rule" else "", errors=errors if kind == "data" else "warn")
        if kind != "kept":
            drop |= new
    if drop.any():
        # One keep-mask for duplicates and filters, applied in place: one column at a time is copied, never all.
        patient, time, code, end, value, cat = (compact(a, ~drop) for a in (patient, time, code, end, value, cat))
        extras = {k: compact(v, ~drop) for k, v in extras.items()}
        if resort:  # summed amounts changed merged events: ties follow the amounts they now carry
            _order_ties(patient, time, code, end, value, cat, extras)
    category = pd.Categorical.from_codes(cat, categories=list(categories))
    log = EventLog.from_arrays(
        patient, time, code, vocab, patients.reset_index(drop=True), end=end, value=value, category=category,
        time_unit="days", origin=EPOCH, extras=extras,
    )
    report.note("events in EventLog", log.n_events)
    report.note("patients in EventLog", log.n_patients)
    log.patients.attrs["read_report"] = report.to_frame()
    return log


def life_filters(patients: pd.DataFrame) -> list[EventFilter]:
    """Filters counting (not dropping) events before the patient's birth and after their death.

    OMOP keeps such rows (prenatal care coded on the child, billing after death); they are counted and warned so
    that none passes silently. The death event itself, at the death date, is not after death.
    """
    birth = patients["birth"].to_numpy(float) if "birth" in patients else np.full(len(patients), np.nan)
    death = patients["death"].to_numpy(float) if "death" in patients else np.full(len(patients), np.nan)
    return [lambda p, t: ("events before birth", "kept", t < np.nan_to_num(birth[p], nan=-np.inf), "kept"),
            lambda p, t: ("events after death", "kept", t > np.nan_to_num(death[p], nan=np.inf), "kept")]


def _fetch_encoded(tables: TableSet, events: str, patients: pd.DataFrame, vocab: Vocabulary, n_events: int,
                   pid_dictionary: str | None = None, batch_rows: int = 1 << 20, *,
                   extra_columns: Sequence[str] = (), extras_out: dict[str, np.ndarray] | None = None
                   ) -> tuple[np.ndarray, ...]:
    """The events with patient and code indices instead of their text, streamed into numpy arrays.

    Returns (patient, time, code, end, value, category) in DuckDB's order. Batches are copied into arrays
    allocated once, so the result never exists twice in memory; missing floats (e.g. no end date) become NaN.
    ``extra_columns`` of the events table are fetched in the same pass into ``extras_out`` (same row order).
    """
    con = tables.con
    # Arrow lookups: DuckDB scans them without touching Python string objects.
    con.register("pw_lookup_codes", pa.table({"code": pa.array(vocab.codes.astype(str).tolist(), pa.string()),
                                              "cidx": np.arange(len(vocab), dtype=np.int32)}))
    con.register("pw_lookup_pids", pa.table({"pid": pa.array(patients["patient_id"].astype(str), pa.string()),
                                             "pidx": np.arange(len(patients), dtype=np.int32)}))
    pids = "pw_lookup_pids" if pid_dictionary is None else (
        f"(SELECT d.id AS pid, l.pidx FROM {pid_dictionary} d JOIN pw_lookup_pids l ON d.pid = l.pid)")
    dtypes = [np.int64, np.float64, np.int64, np.float64, np.float64, np.int8]
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {events})").fetchall())
    dtypes += [object if types[c] == "VARCHAR" else np.float64 for c in extra_columns]
    out = [np.empty(n_events, dtype=d) for d in dtypes]
    more = "".join(f", e.{c}" for c in extra_columns)
    pos = 0
    try:
        reader = con.sql(f"SELECT p.pidx, e.t, c.cidx, e.e, e.value, CAST(e.cat AS TINYINT) AS cat{more} FROM {events} e "
                         f"JOIN {pids} p ON e.pid = p.pid JOIN pw_lookup_codes c ON e.code = c.code"
                         ).to_arrow_reader(batch_rows)
        bar = progress_bar(total=n_events, desc="reading events", unit="rows", unit_scale=True)
        for batch in reader:
            bar.update(batch.num_rows)
            stop = pos + batch.num_rows
            if stop > n_events:
                raise PathwaysInputError(f"events: more rows joined ({stop}) than events ({n_events}): patient ids "
                                         f"repeat in the patients table")
            for j, array in enumerate(out):
                array[pos:stop] = batch.column(j).to_numpy(zero_copy_only=False)
            pos = stop
        bar.close()
    finally:
        con.unregister("pw_lookup_codes")
        con.unregister("pw_lookup_pids")
    if pos != n_events:
        raise PathwaysInputError(f"events: {n_events - pos} of {n_events} rows have a patient id absent from "
                                 f"the patients table or a missing code")
    if extras_out is not None:
        extras_out.update(zip(extra_columns, out[6:]))
    return tuple(out[:6])


def _sort_events(patient: np.ndarray, time: np.ndarray, code: np.ndarray, end: np.ndarray, value: np.ndarray,
                 cat: np.ndarray, extras: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, ...]:
    """Sort the event arrays in place by (patient, time, code, category, end, value).

    One stable argsort of a single integer key (patient, time rank, code) instead of a multi-key sort: a sort in
    DuckDB would hold the events a second time (plus its runs) beside the arrays. Rows tying on the key are few
    and ordered by :func:`_order_ties`, which puts identical events next to each other for the duplicate check.
    ``extras`` (event columns such as provider ids and amounts) follow the same order, in place.
    """
    extras = {} if extras is None else extras
    order = event_order(patient, time, code)
    if order is not None:
        for array in (patient, time, code, end, value, cat, *extras.values()):
            array[:] = array[order]  # one temporary column at a time
        del order
    _order_ties(patient, time, code, end, value, cat, extras)
    return patient, time, code, end, value, cat



def _order_ties(patient: np.ndarray, time: np.ndarray, code: np.ndarray, end: np.ndarray, value: np.ndarray,
                cat: np.ndarray, extras: dict[str, np.ndarray] | None = None) -> None:
    """In place: order rows that tie on (patient, time, code) by (category, end, value, extras), missing first."""
    extras = {} if extras is None else extras
    same = (patient[1:] == patient[:-1]) & (time[1:] == time[:-1]) & (code[1:] == code[:-1])
    if not same.any():
        return
    same_as_previous = np.concatenate([[False], same])
    in_tie = same_as_previous.copy()
    in_tie[:-1] |= same
    rows = np.flatnonzero(in_tie)
    run = np.cumsum(~same_as_previous[rows])
    e, v = end[rows], value[rows]
    # extras last (least significant), as sortable codes: missing first, then the values' order
    extra_keys = [pd.Series(a[rows]).rank(method="dense", na_option="top").to_numpy() for a in extras.values()]
    order = np.lexsort((*reversed(extra_keys), np.nan_to_num(v), ~np.isnan(v), np.nan_to_num(e), ~np.isnan(e),
                        cat[rows], run))
    for array in (end, value, cat, *extras.values()):  # patient, time and code are equal within each run
        array[rows] = array[rows][order]


def _sum_into_kept(columns: Sequence[np.ndarray], drop: np.ndarray) -> None:
    """In place: each kept row takes the sum over its run of identical rows (the dropped ones follow it).

    The rows of a run are identical, amounts included, so the sum is the kept amount times the run length.
    """
    kept = np.flatnonzero(~drop)
    sizes = np.diff(np.append(kept, drop.size))
    for column in columns:
        column[kept] = column[kept] * sizes


def _same_or_nan(a: np.ndarray) -> np.ndarray:
    """Adjacent equality where two NaNs (or two Nones in an object column) count as equal."""
    left, right = a[1:], a[:-1]
    if a.dtype == object:
        return (left == right) | (pd.isna(left) & pd.isna(right))
    return (left == right) | (np.isnan(left) & np.isnan(right))


__all__ = ["EventFilter", "build_eventlog", "life_filters"]

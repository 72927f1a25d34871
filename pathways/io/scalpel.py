"""SCALPEL3's flat event output as EventLog input (and back, for round trips and exchange).

SCALPEL3 (the CNAM / École polytechnique SNDS extraction library) writes every extracted event as one flat row:
``patientID, category, groupID, value, weight, start, end`` (``value`` is the code, ``weight`` a number such as a
dose or a stay's length, ``groupID`` a grouping key such as a prescription or a stay). Its patients table is
``patientID, gender (1 = male, 2 = female), birthDate, deathDate``; observation periods are events of category
``observation_period``. Mapping: patientID -> patient_id, start -> time, end -> end, value -> code,
category -> category, weight -> value, groupID -> an extra column (``group_id`` names it).

Timestamps convert to float days since 1970-01-01 through exact nanosecond arithmetic, so whole-day times and any
float day time whose spacing exceeds a nanosecond (times after 1970-01-12) round-trip exactly.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pathways.data import EventLog
from pathways.data.arrow import arrow_patients_frame, as_arrow_table, column_series
from pathways.data.dates import EPOCH
from pathways.errors import PathwaysInputError
from pathways.io.meds import from_ticks, to_ticks

EVENT_COLUMNS = ("patientID", "category", "groupID", "value", "weight", "start", "end")
PATIENT_COLUMNS = ("patientID", "gender", "birthDate", "deathDate")
OBSERVATION = "observation_period"
_DAY_NS = 86_400_000_000_000
_GENDER = {"M": 1, "F": 2}


def _days(values: pd.Series) -> np.ndarray:
    """Float days since 1970 of a datetime (or date-like) column, exactly; NaN where missing."""
    stamps = pd.to_datetime(values, errors="raise").astype("datetime64[ns]")
    ns = stamps.to_numpy().view(np.int64)
    out = from_ticks(ns, _DAY_NS, 0)
    out[stamps.isna().to_numpy()] = np.nan
    return out


def _stamps(days: np.ndarray, origin: pd.Timestamp | None) -> pd.Series:
    ns = to_ticks(np.asarray(days, np.float64), _DAY_NS, int((origin or EPOCH).value))
    return pd.Series(np.where(np.isnan(days), np.datetime64("NaT", "ns"), ns.view("datetime64[ns]")))


def _frame(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    table = as_arrow_table(data)
    return pd.DataFrame({n: column_series(table.column(n), n in ("patientID", "value", "category"))
                         for n in table.column_names})


def from_scalpel(events: Any, patients: Any = None, *, group_id: str = "groupID", extra_columns: tuple[str, ...] = (),
                 **kwargs: Any) -> EventLog:
    """Build an EventLog from SCALPEL3 flat events (pandas, Arrow, polars, ...) and its optional patients table.

    ``observation_period`` events become the patients' observation windows; ``group_id`` names the extra column
    that keeps ``groupID``; ``extra_columns`` are further event columns to keep; other keyword arguments go to :meth:`EventLog.from_pandas` (``on_invalid``, ...).
    """
    frame = _frame(events)
    missing = [c for c in EVENT_COLUMNS if c not in frame]
    if missing:
        raise PathwaysInputError(f"SCALPEL events: missing column(s) {missing}; available: {list(frame.columns)[:20]}")
    observed = (frame["category"] == OBSERVATION).to_numpy()
    canonical = pd.DataFrame({
        "patient_id": frame["patientID"].array, "time": _days(frame["start"]), "code": frame["value"].array,
        "end": _days(frame["end"]), "value": frame["weight"].to_numpy(np.float64, na_value=np.nan),
        "category": frame["category"].array, group_id: frame["groupID"].array,
        **{c: frame[c].array for c in extra_columns},
    })
    table = _patients(arrow_patients_frame(patients), frame[observed])
    log = EventLog.from_pandas(canonical[~observed], table, time_unit="days", extra_columns=[group_id, *extra_columns],
                             **kwargs)
    log.origin = EPOCH  # float days since 1970-01-01, as from datetimes
    return log


def _patients(patients: pd.DataFrame | None, periods: pd.DataFrame) -> pd.DataFrame | None:
    if patients is None and periods.empty:
        return None
    if patients is not None:
        patients = patients.rename(columns={"patientID": "patient_id", "birthDate": "birth", "deathDate": "death",
                                            "gender": "sex"})
        for col in ("birth", "death"):
            if col in patients:
                patients[col] = _days(patients[col])
        if "sex" in patients:
            patients["sex"] = patients["sex"].map({1: "M", 2: "F", "1": "M", "2": "F"})
    windows = pd.DataFrame({"patient_id": periods["patientID"].to_numpy(), "start": _days(periods["start"]),
                            "end": _days(periods["end"])})
    if windows["patient_id"].duplicated().any():
        raise PathwaysInputError("SCALPEL events: several observation_period rows for one patient")
    if patients is None:
        return windows
    return patients.merge(windows, on="patient_id", how="left", suffixes=("_dropped", ""))


def _padded(values: np.ndarray, n: int) -> pd.Series:
    """``values`` after ``n`` missing entries (the observation rows), keeping the dtype where it can hold NaN."""
    head = pd.Series(np.full(n, np.nan if values.dtype.kind == "f" else None,
                             dtype=values.dtype if values.dtype.kind == "f" else object))
    return pd.concat([head, pd.Series(values)], ignore_index=True)


def to_scalpel(log: EventLog, *, group_id: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(flat events, patients) in SCALPEL3's shapes; each patient's window is an ``observation_period`` event.

    ``group_id`` names the extra column written as ``groupID`` (null otherwise); the other extras follow the
    SCALPEL columns, as other patient covariates do in the patients table.
    """
    if group_id is not None and group_id not in log.extras:
        raise PathwaysInputError(f"group_id: {group_id!r} is not an extra column of the log")
    p = log.patients
    n = log.n_patients
    events = pd.DataFrame({
        "patientID": np.concatenate([p["patient_id"].to_numpy(), log.patient_ids()]),
        "category": np.concatenate([np.full(n, OBSERVATION, object), np.asarray(log.category, object)]),
        "groupID": np.concatenate([np.full(n, None, object), log.extras[group_id].astype(object)]
                                  if group_id is not None else [np.full(n + log.n_events, None, object)]),
        "value": np.concatenate([np.full(n, OBSERVATION, object), log.code_strings()]),
        "weight": np.concatenate([np.full(n, np.nan), log.value]),
        "start": _stamps(np.concatenate([p["start"].to_numpy(np.float64), log.time]), log.origin),
        "end": _stamps(np.concatenate([p["end"].to_numpy(np.float64), log.end]), log.origin),
    })
    for name, values in log.extras.items():
        if name != group_id:
            events[name] = _padded(values, n)
    patients = pd.DataFrame({
        "patientID": p["patient_id"].to_numpy(),
        "gender": p["sex"].astype(object).map(_GENDER).astype("Int64"),
        "birthDate": _stamps(p["birth"].to_numpy(np.float64), log.origin),
        "deathDate": _stamps(p["death"].to_numpy(np.float64), log.origin),
    })
    for col in p.columns[6:]:
        patients[col] = p[col].to_numpy()
    return events, patients


__all__ = ["EVENT_COLUMNS", "OBSERVATION", "PATIENT_COLUMNS", "from_scalpel", "to_scalpel"]

"""OHDSI result shapes: the signal table as SelfControlledCaseSeries / CohortMethod summaries, and cohort tables.

OHDSI's R packages report effects as ``rr, ci95Lb, ci95Ub, p, logRr, seLogRr`` and, after empirical calibration
on negative controls (EmpiricalCalibration), ``calibratedP, calibratedCi95Lb, calibratedCi95Ub``. Cohorts live in a
``cohort`` table: ``cohort_definition_id, subject_id, cohort_start_date, cohort_end_date``. These functions read and
write those shapes from pathways' tables by column name only (no import of :mod:`pathways.signals`).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from pathways.data import EventLog
from pathways.data.dates import EPOCH
from pathways.errors import PathwaysInputError

Z95 = 1.959963984540054  # the normal quantile of OHDSI's 95 % intervals
#: pathways signal-table column -> OHDSI result column (ratio scale; log scale added by :func:`signals_to_ohdsi`).
SIGNAL_TO_OHDSI = {"exposure": "exposureId", "outcome": "outcomeId", "method": "analysis", "estimate": "rr",
                   "ci_low": "ci95Lb", "ci_high": "ci95Ub", "p": "p", "p_calibrated": "calibratedP",
                   "ci_low_calibrated": "calibratedCi95Lb", "ci_high_calibrated": "calibratedCi95Ub",
                   "n_exposed_events": "outcomeEvents"}
COHORT_COLUMNS = ("cohort_definition_id", "subject_id", "cohort_start_date", "cohort_end_date")


def signals_to_ohdsi(table: pd.DataFrame) -> pd.DataFrame:
    """A pathways signal table (or stacked estimates) as an OHDSI results summary.

    ``logRr = log(rr)``; ``seLogRr`` is the table's ``se_log`` where present, else recovered from the 95 % Wald
    interval ((log ci95Ub - log ci95Lb) / (2 * 1.96)); methods without a Wald interval (IC, EBGM) keep theirs in
    ``ci95Lb`` / ``ci95Ub`` with ``seLogRr`` NaN. Columns other than the mapped ones follow unchanged.

    Examples
    --------
    >>> t = pd.DataFrame({"exposure": ["A"], "outcome": ["B"], "method": ["sccs"], "estimate": [2.0],
    ...                   "ci_low": [1.0], "ci_high": [4.0], "p": [0.05], "se_log": [0.35]})
    >>> signals_to_ohdsi(t)[["exposureId", "rr", "logRr", "seLogRr"]].round(3).values.tolist()
    [['A', 2.0, 0.693, 0.35]]
    """
    missing = [c for c in ("exposure", "outcome", "method", "estimate", "ci_low", "ci_high", "p") if c not in table]
    if missing:
        raise PathwaysInputError(f"signal table: missing column(s) {missing}")
    out = table.rename(columns=SIGNAL_TO_OHDSI)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["logRr"] = np.log(out["rr"].to_numpy(np.float64))
        wald = (np.log(out["ci95Ub"].to_numpy(np.float64)) - np.log(out["ci95Lb"].to_numpy(np.float64))) / (2 * Z95)
    out["seLogRr"] = out.pop("se_log").to_numpy(np.float64) if "se_log" in out else wald
    first = [c for c in ("exposureId", "outcomeId", "analysis", "rr", "ci95Lb", "ci95Ub", "p", "logRr", "seLogRr",
                         "calibratedP", "calibratedCi95Lb", "calibratedCi95Ub", "outcomeEvents") if c in out]
    return out[first + [c for c in out.columns if c not in first]]


def signals_from_ohdsi(summary: pd.DataFrame, *, method: str | None = None) -> pd.DataFrame:
    """OHDSI results (SCCS ``getResultsSummary``, CohortMethod summaries, or :func:`signals_to_ohdsi` output) as the
    stacked estimates a pathways signal table is built from (``exposure, outcome, method, estimate, ci_low, ci_high,
    p, se_log, n_exposed_events``).

    ``targetId`` / ``covariateId`` stand in for ``exposureId`` when it is absent; ``method`` names the analysis
    when the summary has no ``analysis`` column (default "ohdsi").
    """
    frame = summary.copy()
    if "exposureId" not in frame:
        source = next((c for c in ("targetId", "covariateId", "exposureId") if c in frame), None)
        if source is None:
            raise PathwaysInputError("OHDSI summary: needs exposureId, targetId or covariateId")
        frame = frame.rename(columns={source: "exposureId"})
    back = {v: k for k, v in SIGNAL_TO_OHDSI.items()}
    frame = frame.rename(columns=back)
    if "estimate" not in frame and "logRr" in frame:
        frame["estimate"] = np.exp(frame["logRr"].to_numpy(np.float64))
    if "method" not in frame:
        frame["method"] = method or "ohdsi"
    if "n_exposed_events" not in frame:
        frame["n_exposed_events"] = np.nan
    frame["se_log"] = frame.pop("seLogRr") if "seLogRr" in frame else np.nan
    frame = frame.drop(columns=[c for c in ("logRr",) if c in frame])
    missing = [c for c in ("outcome", "estimate", "ci_low", "ci_high", "p") if c not in frame]
    if missing:
        raise PathwaysInputError(f"OHDSI summary: missing column(s) for {missing}")
    return frame


def _dates(days: np.ndarray, origin: pd.Timestamp | None) -> pd.Series:
    """Calendar dates of float days (the day an instant falls in)."""
    stamps = (origin or EPOCH) + pd.to_timedelta(np.floor(days), unit="D")
    return pd.Series(stamps).dt.date


def to_ohdsi_cohort(log: EventLog, cohorts: Mapping[int, Iterable[int] | np.ndarray]) -> pd.DataFrame:
    """An OHDSI ``cohort`` table: one row per (cohort, subject) with the subject's observation window as dates.

    ``cohorts`` maps cohort_definition_id -> patient indices or a boolean mask over patients (a
    :class:`~pathways.cohort.Cohort`'s ``subjects``). ``subject_id`` is the patient id.
    """
    parts = []
    p = log.patients
    for cohort_id, subjects in cohorts.items():
        sel = np.asarray(subjects)
        sel = np.flatnonzero(sel) if sel.dtype == bool else sel.astype(np.int64)
        if sel.size and (sel.min() < 0 or sel.max() >= log.n_patients):
            raise PathwaysInputError(f"cohort {cohort_id}: patient index outside [0, {log.n_patients})")
        parts.append(pd.DataFrame({
            "cohort_definition_id": np.full(sel.size, int(cohort_id), dtype=np.int64),
            "subject_id": p["patient_id"].to_numpy()[sel],
            "cohort_start_date": _dates(p["start"].to_numpy(np.float64)[sel], log.origin),
            "cohort_end_date": _dates(p["end"].to_numpy(np.float64)[sel], log.origin),
        }))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(COHORT_COLUMNS))


def from_ohdsi_cohort(table: Any, log: EventLog) -> dict[int, pd.DataFrame]:
    """Per cohort_definition_id: the patient indices of ``log`` in the cohort with their start and end as float
    days (``patient, start, end``); subjects unknown to the log raise."""
    frame = pd.DataFrame(table)
    missing = [c for c in COHORT_COLUMNS if c not in frame]
    if missing:
        raise PathwaysInputError(f"cohort table: missing column(s) {missing}")
    ids = log.patients["patient_id"]
    subject = frame["subject_id"]
    if pd.api.types.is_numeric_dtype(ids) != pd.api.types.is_numeric_dtype(subject):
        ids, subject = ids.astype(str), subject.astype(str)
    patient = pd.Index(ids).get_indexer(subject)
    if (patient < 0).any():
        raise PathwaysInputError(f"cohort table: {int((patient < 0).sum())} rows name subjects absent from the log")
    origin = log.origin or EPOCH
    out = {}
    for cohort_id, rows in frame.assign(patient=patient).groupby("cohort_definition_id", sort=True):
        out[int(cohort_id)] = pd.DataFrame({
            "patient": rows["patient"].to_numpy(np.int64),
            "start": ((pd.to_datetime(rows["cohort_start_date"]) - origin) / pd.Timedelta(days=1)).to_numpy(),
            "end": ((pd.to_datetime(rows["cohort_end_date"]) - origin) / pd.Timedelta(days=1)).to_numpy(),
        })
    return out


__all__ = ["COHORT_COLUMNS", "SIGNAL_TO_OHDSI", "from_ohdsi_cohort", "signals_from_ohdsi", "signals_to_ohdsi",
           "to_ohdsi_cohort"]

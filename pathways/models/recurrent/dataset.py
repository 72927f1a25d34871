"""Build outcome-prediction data from an EventLog: history before an index date, labels within a horizon after it."""
from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pathways.data.eventlog import EventLog
from pathways.errors import PathwaysDataWarning, PathwaysInputError, describe_bad_rows
from pathways.models.recurrent.data import OutcomeData
from pathways.utils import logger, segment_ids

__all__ = ["outcome_dataset"]


def _outcome_sets(log: EventLog, outcomes: Mapping[str, Sequence[str]] | Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Label names and a (n_codes, K) boolean code -> label membership matrix."""
    if isinstance(outcomes, str):
        outcomes = [outcomes]
    sets = dict(outcomes) if isinstance(outcomes, Mapping) else {"outcome": list(outcomes)}
    if not sets or any(len(list(codes)) == 0 for codes in sets.values()):
        raise PathwaysInputError("outcomes: expected at least one label with at least one code")
    member = np.zeros((log.n_codes, len(sets)), dtype=bool)
    for k, codes in enumerate(sets.values()):  # loop over outcome labels (a handful)
        codes = [str(c) for c in codes]
        known = np.array([c in log.vocab for c in codes])
        if not known.any():
            raise PathwaysInputError(
                f"outcomes: none of the {len(codes)} code(s) of label {list(sets)[k]!r} is in the log's vocabulary, "
                f"e.g. {codes[0]!r}"
            )
        member[log.vocab.encode([c for c, ok in zip(codes, known) if ok]), k] = True
    return [str(name) for name in sets], member


def _index_array(log: EventLog, index_time: str | Sequence[float] | np.ndarray) -> np.ndarray:
    if isinstance(index_time, str):
        if index_time not in log.patients.columns:
            raise PathwaysInputError(
                f"index_time: column {index_time!r} not in the patients table (columns: {list(log.patients.columns)})"
            )
        return pd.to_numeric(log.patients[index_time], errors="coerce").to_numpy(dtype=np.float64)
    anchor = np.asarray(index_time, dtype=np.float64).reshape(-1)
    if anchor.shape != (log.n_patients,):
        raise PathwaysInputError(f"index_time: expected {log.n_patients} values (one per patient), got {anchor.size}")
    return anchor


def _static_columns(log: EventLog, static: Sequence[str], anchor: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Numeric static covariates: ``"age"`` (years at index), ``"sex"`` (1 = F) or numeric patient columns."""
    cols, names = [], []
    for name in static:  # loop over a few covariate names
        if name == "age":
            years = 365.25 if log.time_unit == "days" else 1.0
            cols.append((anchor - log.patients["birth"].to_numpy(dtype=np.float64)) / years)
        elif name == "sex":
            cols.append((log.patients["sex"].astype(object) == "F").to_numpy(dtype=np.float64))
        elif name in log.patients.columns:
            cols.append(pd.to_numeric(log.patients[name], errors="coerce").to_numpy(dtype=np.float64))
        else:
            raise PathwaysInputError(
                f"static: {name!r} is neither 'age', 'sex' nor a patients column ({list(log.patients.columns)})"
            )
        names.append(str(name))
    return np.column_stack(cols), names


def _labels(log: EventLog, member: np.ndarray, anchor: np.ndarray, horizon: float) -> np.ndarray:
    """y[p, k] = 1 when an event of label k falls in [index, index + horizon)."""
    t_idx = anchor[log.patient]
    in_window = (log.time >= t_idx) & (log.time < t_idx + horizon)
    hits = member[log.code] & in_window[:, None]  # (n_events, K)
    rows, labels = np.nonzero(hits)
    y = np.zeros((log.n_patients, member.shape[1]))
    y[log.patient[rows], labels] = 1.0
    return y


def _drop_warn(mask: np.ndarray, what: str) -> None:
    if mask.any():
        msg = f"outcome_dataset: dropped {int(mask.sum())} of {mask.size} patients {what}"
        warnings.warn(msg, PathwaysDataWarning, stacklevel=3)
        logger.warning(msg)


def outcome_dataset(
    log: EventLog,
    outcomes: Mapping[str, Sequence[str]] | Sequence[str],
    horizon: float,
    index_time: str | Sequence[float] | np.ndarray,
    *,
    lookback: float = 365.0,
    bin_days: float = 30.0,
    value: str = "count",
    static: Sequence[str] = (),
    censoring: str = "drop",
    trim_unobserved: bool = True,
) -> OutcomeData:
    """Histories strictly before each patient's index time and outcome labels within a horizon after it.

    Parameters
    ----------
    log : EventLog
    outcomes : sequence of codes, or mapping label -> codes
        One binary outcome (any of the codes) or several labels (multi-label).
    horizon : float
        Label window ``[index, index + horizon)`` in the log's time unit.
    index_time : str or array (P,)
        A column of ``log.patients`` or one time per patient; NaN drops the patient (warned, counted).
    lookback : float
        History length before the index time; events in ``[index - lookback, index)`` are binned.
    bin_days : float
        Bin width (:func:`pathways.encode.sparse.to_sparse_series`); the last bin ends at the index time.
    value : {"count", "indicator"}
    static : sequence of str
        Static covariates: ``"age"`` (years at index, from ``birth``), ``"sex"`` (1 = F), or numeric patients columns.
    censoring : {"drop", "keep"}
        Patients whose follow-up (``end``, or ``death`` when earlier) stops before ``index + horizon`` without all
        their outcomes observed have unknown labels: dropped (warned) or kept as negatives.
    trim_unobserved : bool
        Drop bins that end before the patient's observation start (they hold no information), so histories have
        variable lengths; otherwise every patient gets ``ceil(lookback / bin_days)`` bins.

    Returns
    -------
    OutcomeData
        With ``patient_index`` (rows of ``log.patients``) and ``index_time`` of the kept patients.
    """
    from pathways.encode.sparse import to_sparse_series

    if not (np.isfinite(horizon) and horizon > 0):
        raise PathwaysInputError(f"horizon: expected a positive finite window, got {horizon!r}")
    if not (np.isfinite(lookback) and lookback > 0):
        raise PathwaysInputError(f"lookback: expected a positive finite window, got {lookback!r}")
    if censoring not in ("drop", "keep"):
        raise PathwaysInputError(f"censoring: expected 'drop' or 'keep', got {censoring!r}")
    names, member = _outcome_sets(log, outcomes)
    anchor = _index_array(log, index_time)
    keep = np.isfinite(anchor)
    _drop_warn(~keep, "without a finite index time")
    stat, stat_names = (None, []) if not static else _static_columns(log, list(static), anchor)
    if stat is not None:
        bad = keep & ~np.isfinite(stat).all(axis=1)
        if bad.any():
            raise PathwaysInputError(describe_bad_rows("static", bad, None, "have missing static covariates"))
    y = _labels(log, member, np.where(keep, anchor, np.inf), float(horizon))
    follow = np.fmin(log.patients["end"].to_numpy(dtype=np.float64),
                     log.patients["death"].to_numpy(dtype=np.float64))
    censored = keep & (follow < anchor + horizon) & (y == 0).any(axis=1)
    if censoring == "drop":
        _drop_warn(censored, "censored before the end of the horizon")
        keep &= ~censored
    sel = np.flatnonzero(keep)
    if sel.size == 0:
        raise PathwaysInputError("outcome_dataset: no patient left (check index_time, horizon and censoring)")
    sub = log.select_patients(sel)
    n_bins = int(np.ceil(float(lookback) / float(bin_days) - 1e-9))
    series = to_sparse_series(sub, bin_days, align="index", index_time=anchor[sel], n_bins=n_bins,
                              first_bin=-n_bins, value=value)
    matrix, offsets = series.matrix, series.offsets
    if trim_unobserved:
        matrix, offsets = _trim_before_start(series)
    return OutcomeData(
        matrix=matrix, offsets=offsets, y=y[sel], labels=tuple(names), bin_width=float(series.bin_width),
        vocab=series.vocab, static=None if stat is None else stat[sel], static_names=tuple(stat_names),
        patient_index=sel, index_time=anchor[sel],
    )


def _trim_before_start(series) -> tuple[sp.csr_matrix, np.ndarray]:
    """Drop the rows whose bin ends before the patient's observation start (keep at least one row each)."""
    width = float(series.bin_width)
    right = series.row_time() + width
    patient = series.row_patient()
    observed = right > series.window[patient, 0]
    # the last bin (just before the index) is always kept so that no history is empty
    last = np.zeros(series.n_rows, dtype=bool)
    last[series.offsets[1:] - 1] = True
    rows = np.flatnonzero(observed | last)
    counts = np.bincount(segment_ids(series.offsets)[rows], minlength=len(series))
    offsets = np.zeros(len(series) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return series.matrix[rows], offsets

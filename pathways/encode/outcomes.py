"""Outcome-prediction data from an EventLog: binned histories before an index date, labels within a horizon after it.

The layout is the one of :func:`pathways.encode.to_sparse_series`: one CSR matrix whose rows are time bins and
whose columns are codes, with ``offsets`` (P + 1) giving the rows of each patient in chronological order. With
``align="index"`` the last row of a patient is the bin that ends at its index date, so row ``offsets[p+1] - 1 - j``
is the bin ``j`` bins before the prediction (its *lag position*). The recurrent outcome models fit on it.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pathways.data.eventlog import EventLog
from pathways.encode.sparse import to_sparse_series
from pathways.errors import PathwaysDataWarning, PathwaysInputError, describe_bad_rows
from pathways.utils import logger, ragged_arange, segment_ids

__all__ = ["OutcomeData", "as_outcome_data", "outcome_dataset"]


@dataclass
class OutcomeData:
    """Binned histories with their outcome labels: what the recurrent outcome models fit on.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix, shape (sum of bins, n_codes)
        Counts (or indicators) per bin and code, rows of one patient consecutive and chronological.
    offsets : ndarray of int64, shape (n + 1,)
        Rows of sample ``i`` are ``offsets[i]:offsets[i+1]``; the last one is the bin just before the index date.
    y : ndarray of float64, shape (n, K)
        Outcome indicators (one column per outcome label); may be None for prediction-only data.
    labels : tuple of str
        Outcome names, one per column of ``y`` (default ``("outcome",)`` or ``outcome_<k>``).
    bin_width : float
        Bin width in the log's time unit (days for datetime logs); converts lag positions to ``lag_days``.
    vocab : Vocabulary or None
        Code vocabulary (column names of ``matrix``).
    static : ndarray of float64, shape (n, S), optional
        Static covariates (age, sex, ...), already numeric.
    static_names : tuple of str
        Names of the static columns.
    patient_index : ndarray of int64, shape (n,), optional
        Row of each sample in ``log.patients`` (positions, never identifiers).
    index_time : ndarray of float64, shape (n,), optional
        Index time of each sample, in the log's time unit.
    """

    matrix: sp.csr_matrix
    offsets: np.ndarray
    y: np.ndarray | None = None
    labels: tuple[str, ...] = ()
    bin_width: float = 1.0
    vocab: Any = None
    static: np.ndarray | None = None
    static_names: tuple[str, ...] = ()
    patient_index: np.ndarray | None = None
    index_time: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.matrix = sp.csr_matrix(self.matrix)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        _check_layout(self.matrix, self.offsets)
        n = self.offsets.size - 1
        if self.y is not None:
            self.y = _labels_matrix(self.y, n)
            k = self.y.shape[1]
            if not self.labels:  # default names
                self.labels = ("outcome",) if k == 1 else tuple(f"outcome_{j}" for j in range(k))
            if len(self.labels) != k:
                raise PathwaysInputError(
                    f"labels: {len(self.labels)} name(s) for {k} outcome column(s) of y, e.g. {self.labels[0]!r}"
                )
            self.labels = tuple(str(v) for v in self.labels)
        if self.static is not None:
            self.static = _static_matrix(self.static, n)
            if not self.static_names:
                self.static_names = tuple(f"static_{k}" for k in range(self.static.shape[1]))
            if len(self.static_names) != self.static.shape[1]:
                raise PathwaysInputError(
                    f"static_names: {len(self.static_names)} name(s) for {self.static.shape[1]} static column(s)"
                )
            self.static_names = tuple(str(v) for v in self.static_names)
        bw = np.unique(np.atleast_1d(np.asarray(self.bin_width, dtype=np.float64)))
        if bw.size != 1 or not np.isfinite(bw[0]) or bw[0] <= 0:
            raise PathwaysInputError(f"bin_width: expected one positive width, got {self.bin_width!r}")
        self.bin_width = float(bw[0])

    def __len__(self) -> int:
        return self.offsets.size - 1

    @property
    def n_codes(self) -> int:
        """Number of code columns."""
        return int(self.matrix.shape[1])

    @property
    def lengths(self) -> np.ndarray:
        """Number of bins of each sample."""
        return np.diff(self.offsets)

    @property
    def code_names(self) -> np.ndarray:
        """Code string per column (``code_<j>`` without a vocabulary)."""
        if self.vocab is not None:
            return np.asarray(self.vocab.codes, dtype=object)
        return np.array([f"code_{j}" for j in range(self.n_codes)], dtype=object)

    def subset(self, index: np.ndarray | Sequence[int]) -> "OutcomeData":
        """Samples ``index`` (positions or boolean mask), in that order."""
        idx = np.arange(len(self))[np.asarray(index)]
        lengths = self.lengths[idx]
        rows = ragged_arange(lengths, self.offsets[idx])
        offsets = np.zeros(idx.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else np.asarray(a)[idx]

        return OutcomeData(
            matrix=self.matrix[rows], offsets=offsets, y=pick(self.y), labels=self.labels,
            bin_width=self.bin_width, vocab=self.vocab, static=pick(self.static), static_names=self.static_names,
            patient_index=pick(self.patient_index), index_time=pick(self.index_time),
        )

    def counts(self, last_bins: int | None = None) -> sp.csr_matrix:
        """Per-sample code totals ``(n, n_codes)`` over all bins, or over the ``last_bins`` most recent ones."""
        lengths = self.lengths
        keep = lengths if last_bins is None else np.minimum(lengths, int(last_bins))
        rows = ragged_arange(keep, self.offsets[1:] - keep)
        owner = np.repeat(np.arange(len(self)), keep)
        agg = sp.csr_matrix((np.ones(rows.size), (owner, np.arange(rows.size))), shape=(len(self), rows.size))
        return (agg @ self.matrix[rows]).tocsr()


def _check_layout(matrix: sp.csr_matrix, offsets: np.ndarray) -> None:
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0:
        raise PathwaysInputError(f"offsets: expected a 1-D array starting at 0, got shape {offsets.shape}")
    steps = np.diff(offsets)
    if (steps < 0).any():
        bad = int(np.flatnonzero(steps < 0)[0])
        raise PathwaysInputError(f"offsets: {int((steps < 0).sum())} decreasing step(s); first at sample {bad}")
    if offsets[-1] != matrix.shape[0]:
        raise PathwaysInputError(f"offsets end at {offsets[-1]} but the matrix has {matrix.shape[0]} rows")
    data = matrix.data
    bad = ~np.isfinite(data) | (data < 0)
    if bad.any():
        raise PathwaysInputError(
            f"matrix: {int(bad.sum())} negative or non-finite value(s); example {data[bad][0]!r}"
        )


def _labels_matrix(y: Any, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != n:
        raise PathwaysInputError(f"y: expected {n} rows (one per sample) and 1 or 2 dimensions, got shape {y.shape}")
    bad = ~((y == 0) | (y == 1))
    if bad.any():
        pos = int(np.flatnonzero(bad.any(axis=1))[0])
        raise PathwaysInputError(
            f"y: {int(bad.sum())} value(s) outside {{0, 1}}; first at sample {pos} (value {y[bad][0]!r})"
        )
    return y


def _static_matrix(static: Any, n: int) -> np.ndarray:
    s = np.asarray(static, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2 or s.shape[0] != n:
        raise PathwaysInputError(f"static: expected {n} rows (one per sample), got shape {s.shape}")
    bad = ~np.isfinite(s)
    if bad.any():
        pos = int(np.flatnonzero(bad.any(axis=1))[0])
        col = int(np.flatnonzero(bad[pos])[0])
        raise PathwaysInputError(
            f"static: {int(bad.sum())} non-finite value(s); first at sample {pos}, column {col}"
        )
    return s


def as_outcome_data(X: Any, y: Any = None, static: Any = None, *, require_y: bool = False) -> OutcomeData:
    """Coerce model input to :class:`OutcomeData`.

    Parameters
    ----------
    X : OutcomeData or SparseSeries
        Either a ready :class:`OutcomeData` (its ``y``/``static`` are used unless given here) or any object with the
        :class:`pathways.encode.SparseSeries` attributes ``matrix``, ``offsets``, ``bin_width`` and ``vocab``.
    y : array-like, shape (n,) or (n, K), optional
        Outcome indicators.
    static : array-like, shape (n, S), optional
        Static covariates.
    require_y : bool
        Raise when no labels are available (fitting, scoring).
    """
    if isinstance(X, OutcomeData):
        data = X
        if y is not None or static is not None:
            data = OutcomeData(
                matrix=X.matrix, offsets=X.offsets, y=X.y if y is None else y,
                labels=X.labels if y is None else (), bin_width=X.bin_width, vocab=X.vocab,
                static=X.static if static is None else static, static_names=X.static_names if static is None else (),
                patient_index=X.patient_index, index_time=X.index_time,
            )
    elif hasattr(X, "matrix") and hasattr(X, "offsets"):
        data = OutcomeData(
            matrix=X.matrix, offsets=X.offsets, y=y, labels=(), bin_width=getattr(X, "bin_width", 1.0),
            vocab=getattr(X, "vocab", None), static=static,
        )
    else:
        raise PathwaysInputError(
            f"X: expected OutcomeData or a SparseSeries (pathways.encode.to_sparse_series), got {type(X).__name__}; "
            "build one with pathways.encode.outcome_dataset(log, ...)"
        )
    if require_y and data.y is None:
        raise PathwaysInputError("y: outcome labels are required (pass y=... or an OutcomeData with y)")
    return data


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

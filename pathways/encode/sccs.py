"""Self-controlled case series (SCCS) data: per-case bucketed exposure starts, outcomes and censoring.

An SCCS study only looks at *cases* (patients with at least one outcome in their observation window).  Each case's
window is cut into buckets of ``bucket_size`` time units, bucket 0 starting at the window start.  For every case we
keep

* the buckets where each exposure *starts* (as SCALPEL's ConvSCCS feature driver does: the convolutional model turns
  an exposure start into lagged effects, so the exposure duration is not needed),
* the bucket(s) of the outcome,
* the censoring: the number of observed buckets (``censoring[i] = c`` means buckets ``0 .. c-1`` are observed),
* optionally age-group indicators per bucket (age features, ``kind == "age"``).

:class:`SCCSData` holds this in a compact columnar form (flat arrays, no per-case Python objects) and converts to and
from tick's format (per-case CSR ``(n_buckets, n_features)`` matrices, per-case label arrays, censoring array).
:func:`sccs_data` builds it from an :class:`~pathways.data.EventLog`, vectorised over events.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.encode.sccs_windows import _age_rows, _window_info, _windows  # noqa: F401 (_windows: synthetic.sccs)
from pathways.utils import ragged_arange

__all__ = ["SCCSData", "sccs_data"]

logger = logging.getLogger("pathways")


#: Kinds of SCCS features: lagged exposures, then unlagged indicators (age groups, seasons, pre-exposure windows,
#: the end-of-observation probe).
FEATURE_KINDS = ("exposure", "age", "season", "pre-exposure", "end of observation")

def _int_array(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise PathwaysInputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            bad = np.flatnonzero(~np.isfinite(arr.astype(float)) | (arr != np.round(arr)))
            raise PathwaysInputError(
                f"{name} must hold integers: {bad.size} non-integer values, e.g. position {bad[0]} = {arr[bad[0]]!r}"
            )
    return arr.astype(np.int64, copy=False)


@dataclass(frozen=True, eq=False)
class SCCSData:
    """Compact SCCS data set (pathways' form).

    Parameters
    ----------
    n_buckets : int
        Number of buckets in the longest window (tick's ``n_intervals``).
    censoring : ndarray of int64, shape (n_cases,)
        Observed buckets per case, in ``[1, n_buckets]``.
    exposure_case, exposure_bucket, exposure_feature : ndarray of int64, shape (n_exposures,)
        One row per exposure start (or per age-feature bucket): case index, bucket and feature index.
    exposure_value : ndarray of float64, shape (n_exposures,)
        Value of the feature at that bucket (1.0 for start indicators).
    outcome_case, outcome_bucket : ndarray of int64, shape (n_outcomes,)
        Case index and bucket of each outcome; buckets must be below the case's censoring.
    outcome_count : ndarray of int64, shape (n_outcomes,)
        Number of outcomes in that bucket (1 when only the first outcome is kept).
    feature_names : ndarray of object, shape (n_features,)
        Name of every feature (exposure names, then age groups).
    feature_kind : ndarray of object, shape (n_features,)
        ``"exposure"`` (lagged, penalised by ConvSCCS) or an unlagged, unpenalised indicator: ``"age"`` or the
        adjustment and diagnostic terms of :mod:`pathways.models.sccs.terms` (:data:`FEATURE_KINDS`).
    bucket_size : float
        Width of a bucket in the source time unit.
    case_patient : ndarray of int64 or None
        Row of ``EventLog.patients`` for every case (None for data not built from a log).
    case_start : ndarray of float64 or None
        Start time (bucket 0) of every case's window.
    outcome_name : str or None
        Name of the outcome.
    time_unit : str or None
        Time unit of ``bucket_size``.
    info : dict
        Counts recorded while encoding (dropped events, ...).
    last_bucket_fraction : ndarray of float64 or None
        Time at risk of each case's last bucket as a share of ``bucket_size``, in (0, 1] (None: whole buckets).
    case_death : ndarray of bool or None
        Whether death (``patients["death"]``) ended each case's observation (None: unknown).

    Rows are sorted by case then bucket, so the rows of case ``i`` are a contiguous slice.
    """

    n_buckets: int
    censoring: np.ndarray
    exposure_case: np.ndarray
    exposure_bucket: np.ndarray
    exposure_feature: np.ndarray
    exposure_value: np.ndarray
    outcome_case: np.ndarray
    outcome_bucket: np.ndarray
    outcome_count: np.ndarray
    feature_names: np.ndarray
    feature_kind: np.ndarray | None = None
    bucket_size: float = 1.0
    case_patient: np.ndarray | None = None
    case_start: np.ndarray | None = None
    outcome_name: str | None = None
    time_unit: str | None = None
    info: dict = field(default_factory=dict)
    last_bucket_fraction: np.ndarray | None = None
    case_death: np.ndarray | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen dataclass: normalise once, here
        n_buckets = int(self.n_buckets)
        if n_buckets < 1:
            raise PathwaysInputError(f"n_buckets must be >= 1, got {self.n_buckets!r}")
        set_(self, "n_buckets", n_buckets)
        censoring = _int_array("censoring", self.censoring)
        bad = np.flatnonzero((censoring < 1) | (censoring > n_buckets))
        if bad.size:
            raise PathwaysInputError(
                f"censoring must lie in [1, n_buckets={n_buckets}]: {bad.size} cases outside, "
                f"e.g. case {bad[0]} has {censoring[bad[0]]}"
            )
        set_(self, "censoring", censoring)
        self._set_case_fields()
        names = np.asarray(self.feature_names, dtype=object).reshape(-1)
        set_(self, "feature_names", names)
        kind = np.full(names.size, "exposure", dtype=object) if self.feature_kind is None else np.asarray(
            self.feature_kind, dtype=object).reshape(-1)
        if kind.size != names.size:
            raise PathwaysInputError(f"feature_kind has {kind.size} entries for {names.size} features")
        bad = np.flatnonzero(~np.isin(kind, FEATURE_KINDS))
        if bad.size:
            raise PathwaysInputError(
                f"feature_kind must be one of {FEATURE_KINDS}: {bad.size} bad, e.g. {kind[bad[0]]!r}")
        set_(self, "feature_kind", kind)
        self._set_events("exposure", ("case", "bucket", "feature"), "value", np.float64)
        self._set_events("outcome", ("case", "bucket"), "count", np.int64)
        self._check_ranges()
        self._sort()

    # -- validation helpers -------------------------------------------------------------------------------------
    def _set_case_fields(self) -> None:
        """Check the optional per-case arrays (None when every last bucket is whole)."""
        for name, dtype in (("last_bucket_fraction", np.float64), ("case_death", bool)):
            value = getattr(self, name)
            arr = None if value is None else np.asarray(value, dtype=np.float64 if dtype is np.float64 else None
                                                        ).reshape(-1)
            if arr is not None and (arr.size != self.censoring.size or arr.dtype != dtype or (
                    dtype is np.float64 and not np.all((arr > 0) & (arr <= 1)))):
                raise PathwaysInputError(f"{name} must hold one {'value in (0, 1]' if dtype is np.float64 else 'bool'}"
                                         f" per case: got {arr.size} values of type {arr.dtype} for "
                                         f"{self.censoring.size} cases")
            object.__setattr__(self, name, None if arr is None or (dtype is np.float64 and np.all(arr == 1)) else arr)

    def _set_events(self, prefix: str, int_cols: tuple[str, ...], value_col: str, value_dtype: type) -> None:
        cols = {c: _int_array(f"{prefix}_{c}", getattr(self, f"{prefix}_{c}")) for c in int_cols}
        values = np.asarray(getattr(self, f"{prefix}_{value_col}"), dtype=value_dtype).reshape(-1)
        sizes = {c: a.size for c, a in cols.items()} | {value_col: values.size}
        if len(set(sizes.values())) != 1:
            raise PathwaysInputError(f"{prefix} arrays must have equal lengths, got {sizes}")
        if not np.all(np.isfinite(values)):
            bad = np.flatnonzero(~np.isfinite(values))
            raise PathwaysInputError(
                f"{prefix}_{value_col} must be finite: {bad.size} bad, e.g. row {bad[0]} = {values[bad[0]]}")
        for c, a in cols.items():
            object.__setattr__(self, f"{prefix}_{c}", a)
        object.__setattr__(self, f"{prefix}_{value_col}", values)

    def _check_ranges(self) -> None:
        n, f = self.n_cases, self.n_features
        checks = [
            ("exposure_case", self.exposure_case, 0, n),
            ("exposure_feature", self.exposure_feature, 0, f),
            ("exposure_bucket", self.exposure_bucket, 0, self.n_buckets),
            ("outcome_case", self.outcome_case, 0, n),
        ]
        for name, arr, lo, hi in checks:
            bad = np.flatnonzero((arr < lo) | (arr >= hi))
            if bad.size:
                raise PathwaysInputError(
                    f"{name} must lie in [{lo}, {hi}): {bad.size} rows outside, e.g. row {bad[0]} = {arr[bad[0]]}")
        limit = self.censoring[self.outcome_case] if self.outcome_case.size else np.zeros(0, np.int64)
        bad = np.flatnonzero((self.outcome_bucket < 0) | (self.outcome_bucket >= limit))
        if bad.size:
            raise PathwaysInputError(
                f"outcome_bucket must lie in [0, censoring of its case): {bad.size} rows outside, e.g. row {bad[0]} "
                f"(case {self.outcome_case[bad[0]]}, bucket {self.outcome_bucket[bad[0]]}, "
                f"censoring {limit[bad[0]]})")
        bad = np.flatnonzero(self.outcome_count < 0)
        if bad.size:
            raise PathwaysInputError(
                f"outcome_count must be >= 0: {bad.size} negative, e.g. row {bad[0]} = {self.outcome_count[bad[0]]}")

    def _sort(self) -> None:
        order = np.lexsort((self.exposure_feature, self.exposure_bucket, self.exposure_case))
        if np.any(np.diff(order) != 1):
            for c in ("case", "bucket", "feature", "value"):
                object.__setattr__(self, f"exposure_{c}", getattr(self, f"exposure_{c}")[order])
        order = np.lexsort((self.outcome_bucket, self.outcome_case))
        if np.any(np.diff(order) != 1):
            for c in ("case", "bucket", "count"):
                object.__setattr__(self, f"outcome_{c}", getattr(self, f"outcome_{c}")[order])

    # -- shape --------------------------------------------------------------------------------------------------
    @property
    def n_cases(self) -> int:
        """Number of cases (rows of ``censoring``)."""
        return int(self.censoring.size)

    @property
    def n_features(self) -> int:
        """Number of features (exposures and age groups)."""
        return int(self.feature_names.size)

    def __len__(self) -> int:
        return self.n_cases

    def __repr__(self) -> str:
        return (f"SCCSData(n_cases={self.n_cases}, n_buckets={self.n_buckets}, n_features={self.n_features}, "
                f"n_exposures={self.exposure_case.size}, n_outcomes={int(self.outcome_count.sum())})")

    def outcomes_per_case(self) -> np.ndarray:
        """Number of outcomes of every case, shape (n_cases,)."""
        return np.bincount(self.outcome_case, weights=self.outcome_count, minlength=self.n_cases).astype(np.int64)

    def label_matrix(self) -> np.ndarray:
        """Dense outcome counts, shape (n_cases, n_buckets), int64."""
        labels = np.zeros((self.n_cases, self.n_buckets), dtype=np.int64)
        np.add.at(labels, (self.outcome_case, self.outcome_bucket), self.outcome_count)
        return labels

    def feature_matrix(self) -> sp.csr_matrix:
        """All cases' features stacked: CSR of shape (n_cases * n_buckets, n_features), row ``i * n_buckets + t``."""
        rows = self.exposure_case * self.n_buckets + self.exposure_bucket
        return sp.csr_matrix((self.exposure_value, (rows, self.exposure_feature)),
                             shape=(self.n_cases * self.n_buckets, self.n_features))

    # -- conversions --------------------------------------------------------------------------------------------
    def to_tick(self) -> tuple[list[sp.csr_matrix], list[np.ndarray], np.ndarray]:
        """tick's format: ``(features, labels, censoring)``.

        Returns
        -------
        features : list of scipy CSR, each (n_buckets, n_features) float64
        labels : list of int32 arrays, each (n_buckets,)
        censoring : ndarray of uint64, shape (n_cases,)
        """
        stacked = self.feature_matrix()
        t = self.n_buckets
        # the list itself is tick's input format; slicing one stacked CSR keeps the work in scipy
        features = [stacked[i * t:(i + 1) * t] for i in range(self.n_cases)]
        labels = list(self.label_matrix().astype(np.int32))
        return features, labels, self.censoring.astype(np.uint64)

    @classmethod
    def from_tick(cls, features: Sequence[Any], labels: Sequence[Any], censoring: Any | None = None,
                  feature_names: Sequence[str] | None = None, feature_kind: Sequence[str] | None = None,
                  bucket_size: float = 1.0) -> SCCSData:
        """Build from tick's format (lists of per-case ``(n_buckets, n_features)`` matrices and label arrays).

        Features and labels at buckets ``>= censoring`` are dropped (tick ignores them too).
        Cases without any outcome are kept but carry no likelihood (tick filters them out).
        """
        n_cases = len(features)
        if n_cases == 0:
            raise PathwaysInputError("features must hold at least one case, got an empty list")
        if len(labels) != n_cases:
            raise PathwaysInputError(f"labels has {len(labels)} cases but features has {n_cases}")
        shapes = np.array([np.shape(f) for f in features])
        if shapes.ndim != 2 or shapes.shape[1] != 2 or np.any(shapes != shapes[0]):
            bad = np.flatnonzero(np.any(shapes != shapes[0], axis=1)) if shapes.ndim == 2 else [0]
            raise PathwaysInputError(
                f"features must be (n_buckets, n_features) matrices of equal shape: {len(bad)} differ from "
                f"{tuple(shapes[0])}, e.g. case {bad[0]}")
        n_buckets, n_features = (int(v) for v in shapes[0])
        stacked = sp.vstack([sp.csr_matrix(f, dtype=np.float64) for f in features], format="coo")
        label_arr = np.asarray(np.stack([np.asarray(lab).reshape(-1) for lab in labels]) if n_cases else [])
        if label_arr.shape != (n_cases, n_buckets):
            raise PathwaysInputError(f"labels must be {n_cases} arrays of length {n_buckets}, got {label_arr.shape}")
        censoring = np.full(n_cases, n_buckets, np.int64) if censoring is None else _int_array(
            "censoring", np.asarray(censoring).reshape(-1))
        if censoring.size != n_cases:
            raise PathwaysInputError(f"censoring has {censoring.size} entries for {n_cases} cases")
        case, bucket = np.divmod(stacked.row.astype(np.int64), n_buckets)
        keep = (bucket < censoring[case]) & (stacked.data != 0)
        oc, ob = np.nonzero(label_arr)
        keep_o = ob < censoring[oc]
        if (~keep_o).sum():
            warnings.warn(f"from_tick: dropped {int((~keep_o).sum())} labels at buckets >= censoring",
                          PathwaysDataWarning, stacklevel=2)
        names = np.asarray(feature_names if feature_names is not None else
                           [f"feature_{j}" for j in range(n_features)], dtype=object)
        return cls(n_buckets=n_buckets, censoring=censoring, exposure_case=case[keep], exposure_bucket=bucket[keep],
                   exposure_feature=stacked.col[keep].astype(np.int64), exposure_value=stacked.data[keep],
                   outcome_case=oc[keep_o], outcome_bucket=ob[keep_o],
                   outcome_count=label_arr[oc[keep_o], ob[keep_o]].astype(np.int64),
                   feature_names=names, feature_kind=feature_kind, bucket_size=bucket_size,
                   info={"dropped_censored_exposures": int((~keep).sum())})

    def subset(self, cases: Any) -> SCCSData:
        """Cases ``cases`` (indices, repetitions allowed, or a boolean mask), renumbered ``0..len-1``."""
        idx = np.asarray(cases)
        if idx.dtype == bool:
            if idx.size != self.n_cases:
                raise PathwaysInputError(f"cases mask has {idx.size} entries for {self.n_cases} cases")
            idx = np.flatnonzero(idx)
        idx = _int_array("cases", idx)
        bad = np.flatnonzero((idx < 0) | (idx >= self.n_cases))
        if bad.size:
            raise PathwaysInputError(
                f"cases must lie in [0, {self.n_cases}): {bad.size} outside, e.g. {idx[bad[0]]}")
        exp = _gather_rows(self.exposure_case, self.n_cases, idx)
        out = _gather_rows(self.outcome_case, self.n_cases, idx)
        new_exp_case = np.repeat(np.arange(idx.size), _counts(self.exposure_case, self.n_cases)[idx])
        new_out_case = np.repeat(np.arange(idx.size), _counts(self.outcome_case, self.n_cases)[idx])
        pick = (lambda a: None if a is None else a[idx])
        return SCCSData(
            n_buckets=self.n_buckets, censoring=self.censoring[idx], exposure_case=new_exp_case,
            exposure_bucket=self.exposure_bucket[exp], exposure_feature=self.exposure_feature[exp],
            exposure_value=self.exposure_value[exp], outcome_case=new_out_case,
            outcome_bucket=self.outcome_bucket[out], outcome_count=self.outcome_count[out],
            feature_names=self.feature_names, feature_kind=self.feature_kind, bucket_size=self.bucket_size,
            case_patient=pick(self.case_patient), case_start=pick(self.case_start),
            outcome_name=self.outcome_name, time_unit=self.time_unit, info=dict(self.info),
            last_bucket_fraction=pick(self.last_bucket_fraction), case_death=pick(self.case_death))


def _counts(case: np.ndarray, n_cases: int) -> np.ndarray:
    return np.bincount(case, minlength=n_cases).astype(np.int64)


def _gather_rows(case: np.ndarray, n_cases: int, idx: np.ndarray) -> np.ndarray:
    """Row positions of cases ``idx`` (in that order) in arrays sorted by case."""
    counts = _counts(case, n_cases)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return np.repeat(offsets[idx], counts[idx]) + ragged_arange(counts[idx])


# ----------------------------------------------------------------------------------------------------------------
# Encoder from an EventLog
# ----------------------------------------------------------------------------------------------------------------
def _code_groups(log: Any, codes: Any, argument: str) -> tuple[np.ndarray, list[str]]:
    """Map ``codes`` (a code, a list of codes or ``{name: codes}``) to ``code index -> group`` (-1 elsewhere)."""
    if isinstance(codes, str):
        groups: dict[str, list[str]] = {codes: [codes]}
    elif isinstance(codes, Mapping):
        groups = {str(k): ([v] if isinstance(v, str) else list(v)) for k, v in codes.items()}
    else:
        groups = {str(c): [c] for c in codes}
    if not groups:
        raise PathwaysInputError(f"{argument} must name at least one code, got none")
    mapping = np.full(len(log.vocab), -1, dtype=np.int64)
    vocab_codes = {c: i for i, c in enumerate(log.vocab.codes)}
    missing = [c for members in groups.values() for c in members if c not in vocab_codes]
    if missing:
        raise PathwaysInputError(
            f"{argument}: {len(missing)} codes absent from the log's vocabulary, e.g. {missing[0]!r}")
    for g, members in enumerate(groups.values()):
        mapping[[vocab_codes[c] for c in members]] = g
    return mapping, list(groups)


def sccs_data(log: Any, exposures: Any, outcome: Any, bucket_size: float, *, n_buckets: int | None = None,
              outcome_mode: str = "first", first_exposure_only: bool = False,
              exposure_value: str = "indicator", age_edges: Sequence[float] | None = None) -> SCCSData:
    """SCCS data set from an EventLog.

    Parameters
    ----------
    log : EventLog or Cohort
        Events sorted by (patient, time); ``log.patients`` gives ``start``/``end`` (observation window), ``death``
        (closes the window) and ``birth`` (needed only for age groups). A :class:`pathways.cohort.Cohort` is read
        through its ``to_eventlog()`` (``case_patient`` then indexes the cohort's subjects).
    exposures : str, sequence of str or mapping name -> codes
        Exposure codes. Every event of one of these codes is an exposure *start*; a mapping merges several codes
        into one exposure (e.g. an ATC class).
    outcome : str or sequence of str
        Outcome code(s), merged into one outcome.
    bucket_size : float
        Bucket width in the log's time unit (e.g. 7 for weeks when times are days).
    n_buckets : int, optional
        Common number of buckets; windows are cut after it. Defaults to the longest window.
    outcome_mode : {"first", "all"}
        Keep each case's first outcome only (classic SCCS for non-recurrent events) or count all outcomes.
    first_exposure_only : bool
        Keep only each case's first start of each exposure (tick's ``single_exposure`` layout).
    exposure_value : {"indicator", "count"}
        Several starts in one bucket count once, or as many times as they occur.
    age_edges : sequence of float, optional
        Increasing age cut points, in the log's time unit (e.g. ``[0, 365.25 * 40, 365.25 * 60]`` in days). Adds one
        indicator per age group beyond the first (the reference), at every observed bucket (age at bucket start).

    Returns
    -------
    SCCSData
        One case per patient with an outcome in the window; exposures starting before the window or after the
        case's censoring are dropped and counted in ``info`` (a :class:`PathwaysDataWarning` reports them).
        A window holds ``end - start + 1`` time units (the end day is observed): a last bucket left short carries
        its true time at risk (``last_bucket_fraction``, used by the SCCS likelihoods).
    """
    if hasattr(log, "to_eventlog") and not hasattr(log, "offsets"):  # a Cohort (duck-typed: encode sits below it)
        log = log.to_eventlog()
    if not np.isfinite(bucket_size) or bucket_size <= 0:
        raise PathwaysInputError(f"bucket_size must be a positive number, got {bucket_size!r}")
    if outcome_mode not in ("first", "all"):
        raise PathwaysInputError(f"outcome_mode must be 'first' or 'all', got {outcome_mode!r}")
    if exposure_value not in ("indicator", "count"):
        raise PathwaysInputError(f"exposure_value must be 'indicator' or 'count', got {exposure_value!r}")
    exp_map, exp_names = _code_groups(log, exposures, "exposures")
    out_map, out_names = _code_groups(log, [outcome] if isinstance(outcome, str) else outcome, "outcome")
    start, censor_all, total, last_fraction, died = _window_info(log, float(bucket_size), n_buckets)
    patient = np.asarray(log.patient, dtype=np.int64)
    bucket_all = np.floor((np.asarray(log.time, np.float64) - start[patient]) / bucket_size).astype(np.int64)
    inside = (bucket_all >= 0) & (bucket_all < censor_all[patient])

    # cases: patients with an outcome inside their window
    is_out = (out_map[log.code] >= 0) & inside
    case_patient = np.unique(patient[is_out])
    case_of_patient = np.full(len(start), -1, dtype=np.int64)
    case_of_patient[case_patient] = np.arange(case_patient.size)
    o_case, o_bucket = case_of_patient[patient[is_out]], bucket_all[is_out]
    if outcome_mode == "first":  # rows are time-sorted within patient: first row per case is the first outcome
        _, first = np.unique(o_case, return_index=True)
        o_case, o_bucket = o_case[first], o_bucket[first]
    o_key, o_count = np.unique(o_case * total + o_bucket, return_counts=True)

    e_case, e_bucket, e_feat, info = _exposure_rows(log, exp_map, case_of_patient, bucket_all, inside,
                                                    first_exposure_only)
    e_key, e_count = np.unique((e_case * total + e_bucket) * len(exp_names) + e_feat, return_counts=True)
    e_val = e_count.astype(np.float64) if exposure_value == "count" else np.ones(e_key.size)
    e_cb, e_feat = np.divmod(e_key, len(exp_names))
    names, kinds = list(exp_names), ["exposure"] * len(exp_names)
    parts = [(e_cb // total, e_cb % total, e_feat, e_val)]
    censoring = censor_all[case_patient]
    if age_edges is not None:
        parts.append(_age_rows(log, case_patient, start, censoring, float(bucket_size), age_edges, len(names)))
        edges = np.asarray(age_edges, dtype=np.float64)
        age_names = [f"age[{edges[g]:g},{edges[g + 1]:g})" if g + 1 < edges.size else f"age[{edges[g]:g},inf)"
                     for g in range(1, edges.size)]
        names, kinds = names + age_names, kinds + ["age"] * len(age_names)
    cat = [np.concatenate(c) for c in zip(*parts)]
    if sum(info.values()):
        warnings.warn(f"sccs_data: dropped {info['exposures_before_window']} exposure starts before the window and "
                      f"{info['exposures_after_censoring']} after censoring", PathwaysDataWarning, stacklevel=2)
        logger.info("sccs_data dropped exposure starts: %s", info)
    return SCCSData(
        n_buckets=total, censoring=censoring, exposure_case=cat[0], exposure_bucket=cat[1],
        exposure_feature=cat[2], exposure_value=cat[3], outcome_case=o_key // total, outcome_bucket=o_key % total,
        outcome_count=o_count, feature_names=np.asarray(names, dtype=object),
        feature_kind=np.asarray(kinds, dtype=object), bucket_size=float(bucket_size), case_patient=case_patient,
        case_start=start[case_patient], outcome_name="|".join(out_names),
        time_unit=getattr(log, "time_unit", None), info=info, last_bucket_fraction=last_fraction[case_patient],
        case_death=died[case_patient])


def _exposure_rows(log: Any, exp_map: np.ndarray, case_of_patient: np.ndarray, bucket_all: np.ndarray,
                   inside: np.ndarray, first_only: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Exposure-start rows of cases (case, bucket, feature) and counts of dropped starts."""
    patient = np.asarray(log.patient, dtype=np.int64)
    feat_all = exp_map[log.code]
    is_exp = (feat_all >= 0) & (case_of_patient[patient] >= 0)
    if first_only:
        # first start per (case, exposure), whatever the window: an exposure begun before it is not a new start
        key = patient[is_exp] * len(exp_map) + feat_all[is_exp]
        _, first = np.unique(key, return_index=True)
        keep = np.zeros(is_exp.sum(), dtype=bool)
        keep[first] = True
        is_exp[np.flatnonzero(is_exp)[~keep]] = False
    before = int((is_exp & (bucket_all < 0)).sum())
    after = int((is_exp & ~inside & (bucket_all >= 0)).sum())
    rows = is_exp & inside
    info = {"exposures_before_window": before, "exposures_after_censoring": after}
    return case_of_patient[patient[rows]], bucket_all[rows], feat_all[rows], info

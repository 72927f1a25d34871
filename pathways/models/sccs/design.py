"""SCCS case data and the lagged design of ConvSCCS and classic SCCS.

:func:`as_sccs_data` coerces pathways' :class:`~pathways.encode.sccs.SCCSData`, tick's lists or an EventLog into
SCCS data; :func:`lag_design` expands exposure starts into lagged columns. The design keeps only *active* rows —
(case, bucket) pairs where some lagged feature is non-zero; the other observed buckets of a case have linear
predictor 0 and enter its normaliser as a count.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from pathways.cohort import Cohort
from pathways.data.eventlog import EventLog
from pathways.encode.sccs import SCCSData, sccs_data
from pathways.errors import PathwaysInputError
from pathways.utils import ragged_arange

__all__ = ["LagDesign", "as_sccs_data", "lag_design", "resolve_lags", "resolve_penalized"]


@dataclass
class LagDesign:
    """Lagged design of an SCCS data set (see module docstring)."""

    X: torch.Tensor  # sparse CSR (n_rows, n_coeffs)
    Xt: torch.Tensor  # sparse CSR (n_coeffs, n_rows)
    X_scipy: sp.csr_matrix  # same matrix, for the classic SCCS Newton solver
    X2t: torch.Tensor  # sparse CSR (n_coeffs, n_rows): squared entries, transposed (curvature)
    S: torch.Tensor  # sparse CSR (n_cases, n_rows): sums rows into their case
    Y: torch.Tensor  # sparse CSR (n_cases, n_rows): outcome counts of each row, in its case's row
    XtY: torch.Tensor  # sparse CSR (n_coeffs, n_cases): X' Y' (outcome-weighted features per case)
    row_case: torch.Tensor  # (n_rows,) long
    row_bucket: np.ndarray  # (n_rows,) bucket of every active row
    y_row: torch.Tensor  # (n_rows,) outcome counts at active rows
    n_outcomes: torch.Tensor  # (n_cases,) outcomes per case
    n_free: torch.Tensor  # (n_cases,) observed buckets with zero design row (weighted: time at risk in buckets)
    y_free: torch.Tensor  # (n_cases,) outcomes that fall in those buckets
    offsets: np.ndarray  # (n_features + 1,) coefficient offsets per feature
    n_cases: int
    #: (n_rows,) time at risk (or likelihood weight) of every active row, None when all are 1: a short last bucket
    #: (``SCCSData.last_bucket_fraction``) or the weights of :mod:`pathways.models.sccs.eventdep`
    row_weight: torch.Tensor | None = None

    @property
    def n_coeffs(self) -> int:
        return int(self.offsets[-1])


def _torch_csr(m: sp.csr_matrix, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta" is noise here
        return torch.sparse_csr_tensor(torch.from_numpy(m.indptr.astype(np.int64)),
                                       torch.from_numpy(m.indices.astype(np.int64)),
                                       torch.from_numpy(m.data), size=m.shape, dtype=dtype, device=device,
                                       check_invariants=False)


def lag_design(data: SCCSData, n_lags: np.ndarray, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float64) -> LagDesign:
    """Expand exposure starts into lagged columns: start of feature j at bucket s sets column ``(j, l)`` at s + l."""
    n_lags = np.asarray(n_lags, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_lags + 1)])
    t = data.n_buckets
    case, bucket, feat = data.exposure_case, data.exposure_bucket, data.exposure_feature
    width = np.clip(np.minimum(n_lags[feat] + 1, data.censoring[case] - bucket), 0, None)
    rep = np.repeat(np.arange(case.size), width)
    lag = ragged_arange(width)
    flat = case[rep] * t + bucket[rep] + lag
    active, row = np.unique(flat, return_inverse=True)
    X = sp.csr_matrix((data.exposure_value[rep], (row.reshape(-1), offsets[feat[rep]] + lag)),
                      shape=(active.size, int(offsets[-1])))
    X.sum_duplicates()
    row_case = active // t
    # outcomes: at an active row, or in one of the case's zero rows
    o_flat = data.outcome_case * t + data.outcome_bucket
    pos = np.clip(np.searchsorted(active, o_flat), 0, max(active.size - 1, 0))
    hit = (active[pos] == o_flat) if active.size else np.zeros(o_flat.size, bool)
    y_row = np.bincount(pos[hit], weights=data.outcome_count[hit], minlength=active.size)
    y_free = np.bincount(data.outcome_case[~hit], weights=data.outcome_count[~hit], minlength=data.n_cases)
    n_free = (data.censoring - np.bincount(row_case, minlength=data.n_cases)).astype(np.float64)
    row_weight = None
    if data.last_bucket_fraction is not None:  # the last observed bucket holds only its time at risk
        frac = data.last_bucket_fraction
        last_active = (active % t) == data.censoring[row_case] - 1
        row_weight = np.where(last_active, frac[row_case], 1.0)
        n_free -= np.where(np.bincount(row_case[last_active], minlength=data.n_cases) > 0, 0.0, 1.0 - frac)
    dev = torch.device(device)
    as_t = (lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype, device=dev))
    rows = np.arange(active.size)
    S = sp.csr_matrix((np.ones(active.size), (row_case, rows)), shape=(data.n_cases, active.size))
    Y = sp.csr_matrix((y_row, (row_case, rows)), shape=(data.n_cases, active.size))
    Y.eliminate_zeros()
    return LagDesign(X=_torch_csr(X, dev, dtype), Xt=_torch_csr(X.T.tocsr(), dev, dtype), X_scipy=X,
                     X2t=_torch_csr(X.multiply(X).T.tocsr(), dev, dtype),
                     S=_torch_csr(S, dev, dtype), Y=_torch_csr(Y, dev, dtype),
                     XtY=_torch_csr((Y @ X).T.tocsr(), dev, dtype),
                     row_case=torch.as_tensor(row_case, device=dev), row_bucket=active % t, y_row=as_t(y_row),
                     n_outcomes=as_t(data.outcomes_per_case()), n_free=as_t(n_free), y_free=as_t(y_free),
                     offsets=offsets, n_cases=data.n_cases,
                     row_weight=None if row_weight is None else as_t(row_weight))


def as_sccs_data(data: Any, labels: Sequence[Any] | None = None, censoring: Any | None = None,
                 **encode_kwargs: Any) -> SCCSData:
    """Coerce pathways' :class:`SCCSData`, tick's lists or an EventLog / Cohort (with encoder arguments) into
    SCCSData."""
    if isinstance(data, SCCSData):
        if labels is not None or censoring is not None or encode_kwargs:
            raise PathwaysInputError("labels/censoring/encoder arguments must not be given with SCCSData")
        return data
    if isinstance(data, (EventLog, Cohort)):
        if labels is not None or censoring is not None:
            raise PathwaysInputError("labels/censoring must not be given with an EventLog: pass exposures=, "
                                     "outcome=, bucket_size= to encode it")
        missing = [k for k in ("exposures", "outcome", "bucket_size") if k not in encode_kwargs]
        if missing:
            raise PathwaysInputError(f"fitting on an EventLog needs encoder arguments {missing}")
        return sccs_data(data, **encode_kwargs)
    if isinstance(data, (list, tuple)):
        if labels is None:
            raise PathwaysInputError("labels: required with tick-format features (a list of per-case arrays)")
        if encode_kwargs:
            raise PathwaysInputError(f"unexpected arguments with tick-format input: {sorted(encode_kwargs)}")
        return SCCSData.from_tick(data, labels, censoring)
    raise PathwaysInputError(f"data: expected SCCSData, an EventLog or tick's list of feature matrices, got "
                             f"{type(data).__name__}")


def resolve_lags(n_lags: Any, data: SCCSData) -> np.ndarray:
    """Per-feature lags: an int applies to exposures (age features get 0); an array gives one per feature."""
    raw = np.asarray(n_lags, dtype=object).reshape(-1)
    integral = [isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in raw]
    if raw.size == 0 or not all(integral):  # 2.5 or "3" would be truncated or fail deep inside numpy
        bad = next((v for v, ok in zip(raw, integral) if not ok), None)
        raise PathwaysInputError(f"n_lags: expected an integer or a sequence of integers, got {bad!r}"
                                 if raw.size else "n_lags: expected an integer or a sequence of integers, got []")
    if np.ndim(n_lags) == 0:
        lags = np.where(data.feature_kind == "exposure", int(n_lags), 0).astype(np.int64)
    else:
        lags = np.asarray(n_lags).astype(np.int64).reshape(-1)
        if lags.size != data.n_features:
            raise PathwaysInputError(f"n_lags has {lags.size} entries for {data.n_features} features")
    bad = np.flatnonzero((lags < 0) | (lags >= data.n_buckets))
    if bad.size:
        raise PathwaysInputError(f"n_lags must lie in [0, n_buckets - 1 = {data.n_buckets - 1}]: {bad.size} "
                                 f"features outside, e.g. feature {bad[0]} with {lags[bad[0]]}")
    return lags


def resolve_penalized(penalized: Any, data: SCCSData) -> np.ndarray:
    if penalized is None:
        return np.asarray(data.feature_kind == "exposure")
    arr = np.asarray(penalized)
    if arr.dtype == bool:
        if arr.size != data.n_features:
            raise PathwaysInputError(f"penalized_features mask has {arr.size} entries for {data.n_features}")
        return arr.copy()
    mask = np.zeros(data.n_features, dtype=bool)
    idx = arr.astype(np.int64).reshape(-1)
    bad = np.flatnonzero((idx < 0) | (idx >= data.n_features))
    if bad.size:
        raise PathwaysInputError(f"penalized_features: {bad.size} indices outside [0, {data.n_features}), "
                                 f"e.g. {idx[bad[0]]}")
    mask[idx] = True
    return mask


"""Diagnostics of a propensity-score adjustment: covariate balance, preference score, equipoise, effective size.

Balance is computed for every covariate from sparse products (``x.T @ w``), never densifying the covariate
matrix: a million patients by thousands of covariates costs two sparse matrix-vector products per group.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit, logit

from pathways.errors import PathwaysInputError


def _weighted_moments(x: sp.csr_matrix | np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and (population) variance of every column."""
    total = w.sum()
    if sp.issparse(x):
        mean = np.asarray(x.T @ w).ravel() / total
        sq = np.asarray(x.multiply(x).T @ w).ravel() / total
    else:
        mean = x.T @ w / total
        sq = (x * x).T @ w / total
    return mean, np.maximum(sq - mean**2, 0.0)


def standardized_differences(x: sp.spmatrix | np.ndarray, treated: np.ndarray, weight: np.ndarray | None = None,
                             names: list[str] | None = None) -> pd.DataFrame:
    """Standardized mean difference of every covariate between target and comparator.

    SMD = (mean_target - mean_comparator) / sqrt((var_target + var_comparator) / 2), means and variances weighted
    by ``weight`` (patients with weight 0, e.g. unmatched, drop out). Columns: covariate, mean_target,
    mean_comparator, smd.

    Examples
    --------
    >>> x = np.array([[1.], [0.], [1.], [1.]])
    >>> standardized_differences(x, np.array([1, 1, 0, 0]))["smd"].round(4).tolist()
    [-1.4142]
    """
    t = np.asarray(treated).astype(bool)
    w = np.ones(t.size) if weight is None else np.asarray(weight, dtype=np.float64)
    if x.shape[0] != t.size or w.size != t.size:
        raise PathwaysInputError(f"x, treated, weight: expected {t.size} rows each, got {x.shape[0]}, {w.size}")
    x = sp.csr_matrix(x) if sp.issparse(x) else np.asarray(x, dtype=np.float64)
    m1, v1 = _weighted_moments(x, np.where(t, w, 0.0))
    m0, v0 = _weighted_moments(x, np.where(t, 0.0, w))
    pooled = np.sqrt((v1 + v0) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        smd = np.where(pooled > 0, (m1 - m0) / pooled, 0.0)
    return pd.DataFrame({"covariate": names if names is not None else np.arange(x.shape[1]),
                         "mean_target": m1, "mean_comparator": m0, "smd": smd})


def balance_table(x: sp.spmatrix | np.ndarray, treated: np.ndarray, weight_after: np.ndarray,
                  names: list[str] | None = None) -> pd.DataFrame:
    """Balance before (everyone, unweighted) and after adjustment (``weight_after``), one row per covariate."""
    before = standardized_differences(x, treated, None, names)
    after = standardized_differences(x, treated, weight_after, names)
    return pd.DataFrame({
        "covariate": before["covariate"], "mean_target_before": before["mean_target"],
        "mean_comparator_before": before["mean_comparator"], "smd_before": before["smd"],
        "mean_target_after": after["mean_target"], "mean_comparator_after": after["mean_comparator"],
        "smd_after": after["smd"],
    })


def preference_score(ps: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """Walker et al. (2013) preference score: the propensity score with the treatment prevalence removed.

    logit(F) = logit(ps) - logit(P), P the share of target patients; F = 0.5 means no preference.
    """
    t = np.asarray(treated).astype(bool)
    p = t.mean()
    return expit(logit(np.clip(ps, 1e-12, 1 - 1e-12)) - logit(p))


def equipoise(ps: np.ndarray, treated: np.ndarray, bounds: tuple[float, float] = (0.3, 0.7)) -> float:
    """Share of patients whose preference score lies within ``bounds`` (empirical equipoise when >= 0.5).

    Examples
    --------
    >>> equipoise(np.array([0.5, 0.5, 0.9, 0.1]), np.array([1, 0, 1, 0]))
    0.5
    """
    f = preference_score(ps, treated)
    return float(np.mean((f >= bounds[0]) & (f <= bounds[1])))


def effective_sample_size(weight: np.ndarray) -> float:
    """Kish's effective sample size (sum w)² / sum w² of one group.

    Examples
    --------
    >>> effective_sample_size(np.array([1., 1., 2.]))
    2.6666666666666665
    """
    w = np.asarray(weight, dtype=np.float64)
    return float(w.sum() ** 2 / (w**2).sum()) if (w > 0).any() else 0.0


__all__ = ["balance_table", "effective_sample_size", "equipoise", "preference_score", "standardized_differences"]

"""Attributions of outcome models -> factors table (which past codes, how long before, drove the predictions).

Four methods, one output shape (:func:`pathways.data.tables.factors_frame`). The three exact ones --
:func:`retain_attributions`, :func:`integrated_gradients`, :func:`logistic_attributions` -- live beside the models
(:mod:`pathways.models.recurrent.attribution`, behind each outcome model's ``to_factors``, where they are described
with the reading of their tables); this module adds the model-agnostic one and the ``method`` switch:

* :func:`permutation_importance` -- the drop of a score (AUROC by default) when one code group's histories are
  shuffled across patients (bins keep their lag), averaged over repeats. ``effect`` is the mean score drop
  (``lag_days`` NaN) with a t interval over repeats, and ``n`` counts the patients who have the group.
* :func:`attribution_factors` -- ``method="auto"`` asks the model (``model.to_factors``), or names a method.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from pathways.data.tables import factors_frame
from pathways.encode.outcomes import OutcomeData, as_outcome_data
from pathways.errors import PathwaysInputError
from pathways.metrics import auprc, auroc
from pathways.models.recurrent.attribution import integrated_gradients, logistic_attributions, retain_attributions
from pathways.models.recurrent.base import OutcomeModelBase
from pathways.utils import rng as make_rng

__all__ = [
    "attribution_factors",
    "integrated_gradients",
    "logistic_attributions",
    "permutation_importance",
    "retain_attributions",
]


# ----------------------------------------------------------------------------------------------------------------
# permutation importance
# ----------------------------------------------------------------------------------------------------------------
def _permute_columns(data: OutcomeData, cols: np.ndarray, source: np.ndarray) -> OutcomeData:
    """Give patient ``p`` the ``cols`` histories of patient ``source[p]``, bin by bin from the index backwards.

    Bins beyond the receiving patient's history are dropped; other codes are untouched. One vectorised CSR rebuild.
    """
    m = data.matrix.tocoo()
    lengths = data.lengths
    ends = data.offsets[1:]
    owner = np.repeat(np.arange(len(data)), lengths)
    moved = np.isin(m.col, cols)
    inverse = np.empty_like(source)
    inverse[source] = np.arange(source.size)
    q = owner[m.row[moved]]
    lag = ends[q] - 1 - m.row[moved]
    p = inverse[q]
    fits = lag < lengths[p]
    rows = np.concatenate([m.row[~moved], (ends[p] - 1 - lag)[fits]])
    colz = np.concatenate([m.col[~moved], m.col[moved][fits]])
    vals = np.concatenate([m.data[~moved], m.data[moved][fits]])
    matrix = sp.csr_matrix((vals, (rows, colz)), shape=m.shape)
    return OutcomeData(matrix=matrix, offsets=data.offsets, y=data.y, labels=data.labels, bin_width=data.bin_width,
                       vocab=data.vocab, static=data.static, static_names=data.static_names)


def _positive(model: Any, data: OutcomeData) -> np.ndarray:
    p = np.asarray(model.predict_proba(data), dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    if data.y.shape[1] == 1 and p.shape[1] == 2:
        p = p[:, 1:]
    return p


def _label_scores(y: np.ndarray, p: np.ndarray, scoring: str) -> np.ndarray:
    if scoring == "auroc":
        return np.asarray(auroc(y, p, average=None), dtype=np.float64)
    if scoring == "auprc":
        return np.asarray(auprc(y, p, average=None), dtype=np.float64)
    pc = np.clip(p, 1e-12, 1 - 1e-12)
    return (y * np.log(pc) + (1 - y) * np.log1p(-pc)).mean(axis=0)


def permutation_importance(
    model: Any,
    X: Any,
    y: Any = None,
    static: Any = None,
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
    scoring: str = "auroc",
    n_repeats: int = 5,
    seed: int | np.random.Generator | None = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Model-agnostic importance of code groups: score drop when their histories are shuffled across patients.

    Parameters
    ----------
    model : fitted outcome model
        Anything with ``predict_proba(OutcomeData)`` (GRUOutcome, RETAIN, CountsLogisticBaseline).
    X : OutcomeData or SparseSeries
        Held-out histories with labels.
    y, static : optional
        Labels / static covariates when ``X`` does not carry them.
    groups : mapping group name -> codes, optional
        Code groups permuted together (e.g. an ATC level from :mod:`pathways.data.hierarchy`); default: one group
        per code present in ``X``.
    scoring : {"auroc", "auprc", "log_likelihood"}
        Per-label score; ``effect`` = baseline score - permuted score (positive: the model relies on the group).
    n_repeats : int
        Independent shuffles per group.
    seed : int or Generator
    level : float
        Confidence level of the t interval over repeats.

    Returns
    -------
    DataFrame
        Factors table, ``method="permutation_<scoring>"``, ``lag_days`` NaN, extra columns ``n`` (patients with
        the group), ``std`` (over repeats) and ``baseline`` (unpermuted score).
    """
    if scoring not in ("auroc", "auprc", "log_likelihood"):
        raise PathwaysInputError(f"scoring: expected 'auroc', 'auprc' or 'log_likelihood', got {scoring!r}")
    if int(n_repeats) < 1:
        raise PathwaysInputError(f"n_repeats: expected a positive integer, got {n_repeats!r}")
    data = as_outcome_data(X, y, static, require_y=True)
    codes = data.code_names
    present = np.asarray((data.counts() > 0).sum(axis=0)).ravel()
    if groups is None:
        names = [str(codes[j]) for j in np.flatnonzero(present)]
        members = [np.array([j]) for j in np.flatnonzero(present)]
    else:
        names, members = _group_columns(groups, codes)
    g = make_rng(seed)
    base = _label_scores(data.y, _positive(model, data), scoring)
    drops = np.zeros((len(names), int(n_repeats), base.size))
    for i, cols in enumerate(members):  # one model evaluation per (group, repeat): inherent to the method
        for r in range(int(n_repeats)):
            shuffled = _permute_columns(data, cols, g.permutation(len(data)))
            drops[i, r] = base - _label_scores(data.y, _positive(model, shuffled), scoring)
    has = (data.counts() > 0).astype(np.float64)
    n_with = np.array([int((has[:, c].sum(axis=1) > 0).sum()) for c in members], dtype=np.int64)
    mean, sd = drops.mean(axis=1), drops.std(axis=1, ddof=1) if n_repeats > 1 else np.full(base.size, np.nan)
    half = stats.t.ppf(0.5 + level / 2, max(int(n_repeats) - 1, 1)) * sd / np.sqrt(n_repeats)
    k = base.size
    frame = factors_frame(
        np.repeat(np.asarray(names, dtype=object), k), np.tile(np.asarray(data.labels, dtype=object), len(names)),
        mean.ravel(), method=f"permutation_{scoring}", ci_low=(mean - half).ravel(), ci_high=(mean + half).ravel(),
        n=np.repeat(n_with, k), std=np.broadcast_to(sd, mean.shape).ravel(), baseline=np.tile(base, len(names)),
    )
    return frame.sort_values(["target", "effect"], ascending=[True, False]).reset_index(drop=True)


def _group_columns(groups: Mapping[str, Sequence[str]], codes: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    position = {str(c): j for j, c in enumerate(codes)}
    names, members = [], []
    for name, group in groups.items():  # loop over user-defined groups
        group = [str(c) for c in group]
        unknown = [c for c in group if c not in position]
        if unknown:
            raise PathwaysInputError(
                f"groups: {len(unknown)} code(s) of group {name!r} are not columns of X, e.g. {unknown[0]!r}"
            )
        names.append(str(name))
        members.append(np.array([position[c] for c in group], dtype=np.int64))
    if not names:
        raise PathwaysInputError("groups: expected at least one group of codes")
    return names, members


def attribution_factors(model: Any, X: Any, static: Any = None, *, method: str = "auto",
                        max_samples: int | None = 5000, seed: int | np.random.Generator | None = 0,
                        **kwargs: Any) -> pd.DataFrame:
    """Factors table of any outcome model.

    Parameters
    ----------
    model : fitted outcome model
    X : OutcomeData or SparseSeries
    static : array-like, optional
    method : str
        ``"auto"`` picks RETAIN's exact contributions for :class:`RETAIN`, integrated gradients for other neural
        models (:class:`GRUOutcome`), the linear decomposition for :class:`CountsLogisticBaseline` and permutation
        importance otherwise; or name ``"retain"``, ``"integrated_gradients"``, ``"logistic"``, ``"permutation"``.
    max_samples : int or None
        Explain a random subset of at most this many samples (integrated gradients cost about ``n_steps`` training
        epochs over the samples explained); None = all.
    seed : int or Generator
        Draws the subset.
    **kwargs
        Passed to the chosen function.
    """
    data = as_outcome_data(X, static=static)
    if max_samples is not None and len(data) > int(max_samples):
        data = data.subset(np.sort(make_rng(seed).choice(len(data), int(max_samples), replace=False)))
    X, static = data, None
    if method == "auto":  # each outcome model knows its exact attribution (models/recurrent/attribution.py)
        if isinstance(model, OutcomeModelBase):
            return model.to_factors(X, max_samples=None, **kwargs)
        method = "permutation"
    if method == "retain":
        return retain_attributions(model, X, static, **kwargs)
    if method == "integrated_gradients":
        return integrated_gradients(model, X, static, **kwargs)
    if method == "logistic":
        return logistic_attributions(model, X, static, **kwargs)
    if method == "permutation":
        return permutation_importance(model, X, static=static, **kwargs)
    raise PathwaysInputError(
        f"method: expected 'auto', 'retain', 'integrated_gradients', 'logistic' or 'permutation', got {method!r}"
    )

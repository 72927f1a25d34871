"""Propensity scores: L1 logistic regression with a cross-validated penalty, then matching, strata or weights.

Matching works on the logit of the propensity score with a caliper in standard deviations of that logit (Austin
2011's 0.2 by default). It is greedy nearest-neighbour matching done in vectorised rounds: every unmatched target
proposes its nearest free comparator (two ``searchsorted`` neighbours in the sorted comparator scores), each
comparator keeps the closest proposal, and the rounds repeat until no proposal lands. No Python loop runs per
patient; the number of rounds stays small (each one matches most of the remaining targets).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import logit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegressionCV
from sklearn.preprocessing import MaxAbsScaler

from pathways.errors import PathwaysInputError
from pathways.utils import rng as as_rng


@dataclass(frozen=True)
class PropensityModel:
    """Fitted propensity model: score per patient, the chosen penalty and the non-zero coefficients."""

    ps: np.ndarray
    coef: np.ndarray
    intercept: float
    C: float
    n_fit: int

    @property
    def logit_ps(self) -> np.ndarray:
        return logit(np.clip(self.ps, 1e-12, 1 - 1e-12))


def fit_propensity(x: sp.spmatrix | np.ndarray, treated: np.ndarray, *, Cs: int | list[float] = 7, cv: int = 3,
                   max_fit: int = 250_000, seed: int | np.random.Generator | None = 0,
                   max_iter: int = 200, tol: float = 1e-3) -> PropensityModel:
    """L1-penalised logistic regression of treatment on baseline covariates, penalty chosen by cross-validation.

    Parameters
    ----------
    x : (n, p) covariates (scipy sparse or dense); scaled by :func:`_scale` so that one penalty fits indicator,
        count and continuous columns alike. ``coef`` is on that scale.
    treated : target (1) or comparator (0) per patient.
    Cs : the grid of inverse penalty strengths (scikit-learn's C), or their number on a log grid from 1e-3 to 3
        (weaker penalties only slow liblinear down: with thousands of covariates CV never picks them).
    cv : cross-validation folds (log-loss).
    max_fit : fit on a random sample of at most this many patients (as OHDSI's CohortMethod does; the score is then
        predicted for everyone).
    seed : sampling and fold shuffling.
    max_iter, tol : liblinear's iteration cap and tolerance.
    """
    treated = np.asarray(treated).astype(bool)
    n = treated.size
    if x.shape[0] != n:
        raise PathwaysInputError(f"x: {x.shape[0]} rows for {n} patients")
    if treated.all() or not treated.any():
        raise PathwaysInputError("treated: both target and comparator patients are needed for a propensity score")
    xs = _scale(x)
    gen = as_rng(seed)
    fit_rows = np.sort(gen.choice(n, max_fit, replace=False)) if n > max_fit else np.arange(n)
    grid = np.logspace(-3, np.log10(3), Cs) if isinstance(Cs, (int, np.integer)) else np.asarray(Cs, float)
    model = LogisticRegressionCV(Cs=grid, tol=tol, cv=cv, l1_ratios=[1.0], solver="liblinear", scoring="neg_log_loss",
                                 max_iter=max_iter, random_state=int(gen.integers(2**31)),
                                 use_legacy_attributes=False)
    with warnings.catch_warnings():
        # liblinear at the weakest penalties of the grid may stop early; the chosen penalty is what matters.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(xs[fit_rows], treated[fit_rows])
    ps = model.predict_proba(xs)[:, 1]
    return PropensityModel(ps, model.coef_.ravel(), float(np.ravel(model.intercept_)[0]),
                           float(np.ravel(model.C_)[0]), int(fit_rows.size))


def _scale(x: sp.spmatrix | np.ndarray, dense_share: float = 0.5) -> sp.csr_matrix:
    """Columns on one scale for one L1 penalty: sparse columns divided by their largest absolute value (sparsity
    kept), columns non-zero for more than ``dense_share`` of patients (age, counts, sex) standardised.

    Centring the dense columns also decorrelates them from the (penalised) intercept, which makes liblinear's
    coordinate descent converge several times faster.
    """
    x = sp.csc_matrix(x, dtype=np.float64)
    nnz = np.diff(x.indptr)
    dense = np.flatnonzero(nnz > dense_share * x.shape[0])
    sparse_cols = np.setdiff1d(np.arange(x.shape[1]), dense)
    block = x[:, dense].toarray()
    sd = block.std(axis=0)
    block = (block - block.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    scaled = MaxAbsScaler().fit_transform(x[:, sparse_cols])
    order = np.argsort(np.concatenate([sparse_cols, dense]))
    return sp.hstack([scaled, sp.csc_matrix(block)], format="csc")[:, order].tocsr()


@dataclass(frozen=True)
class Matching:
    """Matched sets: ``matched`` patient positions, their ``set_id`` (the target's position) and ``weight``.

    ``weight`` is 1 for targets and 1 / (comparators in the set) for comparators: the weights under which the
    matched comparators stand for the matched targets (balance, KM curves).
    """

    matched: np.ndarray
    set_id: np.ndarray
    weight: np.ndarray
    n_rounds: int


def _match_round(t_score: np.ndarray, c_score: np.ndarray, caliper: float) -> tuple[np.ndarray, np.ndarray]:
    """One round: each target proposes its nearest comparator (scores sorted); each comparator keeps the closest.

    Returns the (target, comparator) positions of the accepted pairs.
    """
    pos = np.searchsorted(c_score, t_score)
    left, right = np.clip(pos - 1, 0, c_score.size - 1), np.clip(pos, 0, c_score.size - 1)
    d_left, d_right = np.abs(t_score - c_score[left]), np.abs(t_score - c_score[right])
    pick = np.where(d_right < d_left, right, left)
    dist = np.minimum(d_left, d_right)
    ok = np.flatnonzero(dist <= caliper)
    # Closest proposal first, then the first comparator of each group: one winner per comparator.
    order = ok[np.lexsort((ok, dist[ok], pick[ok]))]
    first = np.ones(order.size, dtype=bool)
    first[1:] = pick[order][1:] != pick[order][:-1]
    winners = order[first]
    return winners, pick[winners]


def _greedy_layer(t_pos: np.ndarray, t_score: np.ndarray, c_pos: np.ndarray, c_score: np.ndarray,
                  caliper: float, max_rounds: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Match each target to at most one free comparator; returns (target, comparator) positions and rounds used."""
    order = np.argsort(c_score, kind="stable")
    c_pos, c_score = c_pos[order], c_score[order]
    free_t = np.ones(t_pos.size, dtype=bool)
    free_c = np.ones(c_pos.size, dtype=bool)
    pairs_t, pairs_c = [], []
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        ti, ci = np.flatnonzero(free_t), np.flatnonzero(free_c)
        if ti.size == 0 or ci.size == 0:
            break
        win_t, win_c = _match_round(t_score[ti], c_score[ci], caliper)
        if win_t.size == 0:
            break
        free_t[ti[win_t]] = False
        free_c[ci[win_c]] = False
        pairs_t.append(t_pos[ti[win_t]])
        pairs_c.append(c_pos[ci[win_c]])
    if not pairs_t:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), rounds
    return np.concatenate(pairs_t), np.concatenate(pairs_c), rounds


def match(logit_ps: np.ndarray, treated: np.ndarray, *, max_ratio: int = 1, caliper: float = 0.2,
          caliper_scale: str = "standardized_logit", max_rounds: int = 1000) -> Matching:
    """Greedy nearest-neighbour matching on the logit propensity score, 1:1 or variable ratio up to ``max_ratio``.

    Parameters
    ----------
    logit_ps : logit of the propensity score per patient.
    treated : target (1) or comparator (0).
    max_ratio : at most this many comparators per target (1 = pair matching). Layers are matched in turn: every
        target gets its first comparator before any gets a second, as in OHDSI's variable-ratio matching.
    caliper : largest distance allowed; in standard deviations of the logit score (``standardized_logit``) or
        in logit units (``logit``).
    max_rounds : cap on proposal rounds per layer.

    Examples
    --------
    >>> m = match(np.array([0.0, 1.0, 0.1, 0.9, 5.0]), np.array([1, 1, 0, 0, 0]), caliper=0.5)
    >>> m.matched.tolist(), m.set_id.tolist()
    ([0, 1, 2, 3], [0, 1, 0, 1])
    """
    score = np.asarray(logit_ps, dtype=np.float64)
    treated = np.asarray(treated).astype(bool)
    if score.shape != treated.shape or not np.isfinite(score).all():
        raise PathwaysInputError("logit_ps: expected finite scores, one per patient (as treated)")
    if int(max_ratio) < 1:
        raise PathwaysInputError(f"max_ratio: expected >= 1, got {max_ratio!r}")
    if caliper_scale not in ("standardized_logit", "logit"):
        raise PathwaysInputError(f"caliper_scale: expected 'standardized_logit' or 'logit', got {caliper_scale!r}")
    width = caliper * (score.std() if caliper_scale == "standardized_logit" else 1.0)
    t_pos, c_pos = np.flatnonzero(treated), np.flatnonzero(~treated)
    all_t, all_c, rounds = [], [], 0
    active = t_pos
    for _ in range(int(max_ratio)):
        got_t, got_c, r = _greedy_layer(active, score[active], c_pos, score[c_pos], width, max_rounds)
        rounds += r
        if got_t.size == 0:
            break
        all_t.append(got_t)
        all_c.append(got_c)
        c_pos = np.setdiff1d(c_pos, got_c, assume_unique=True)
        active = np.sort(got_t)  # only targets matched in this layer may get one more comparator
    if not all_t:
        return Matching(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), rounds)
    targets = np.unique(np.concatenate(all_t))
    comp_t, comp_c = np.concatenate(all_t), np.concatenate(all_c)
    per_set = np.bincount(comp_t, minlength=score.size)
    matched = np.concatenate([targets, comp_c])
    set_id = np.concatenate([targets, comp_t])
    weight = np.concatenate([np.ones(targets.size), 1.0 / per_set[comp_t]])
    order = np.argsort(matched, kind="stable")
    return Matching(matched[order], set_id[order], weight[order], rounds)


def stratify(ps: np.ndarray, n_strata: int = 5, treated: np.ndarray | None = None) -> np.ndarray:
    """Stratum (0..n_strata-1) of each patient from quantiles of the propensity score.

    Quantiles are taken over every patient (or, with ``treated``, over the targets: ATT strata).

    Examples
    --------
    >>> stratify(np.linspace(0.1, 0.9, 10), 5).tolist()
    [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    """
    ps = np.asarray(ps, dtype=np.float64)
    base = ps if treated is None else ps[np.asarray(treated).astype(bool)]
    edges = np.quantile(base, np.linspace(0, 1, n_strata + 1)[1:-1])
    return np.searchsorted(edges, ps, side="right").astype(np.int64)


def stratum_weights(strata: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """ATT weights of strata: targets 1, comparators (targets / comparators of their stratum) x overall ratio."""
    treated = np.asarray(treated).astype(bool)
    n_s = int(strata.max()) + 1
    n_t = np.bincount(strata[treated], minlength=n_s).astype(float)
    n_c = np.bincount(strata[~treated], minlength=n_s).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(n_c > 0, n_t / n_c, 0.0) * (n_c.sum() / max(n_t.sum(), 1.0))
    return np.where(treated, 1.0, ratio[strata])


def ps_weights(ps: np.ndarray, treated: np.ndarray, kind: str = "overlap", *, stabilized: bool = True,
               truncate: float | None = None) -> np.ndarray:
    """Inverse probability of treatment weights (``iptw``, ATE) or overlap weights (``overlap``, Li et al. 2018).

    ``stabilized`` multiplies IPTW by the marginal treatment probability; ``truncate`` caps IPTW at that quantile.

    Examples
    --------
    >>> ps_weights(np.array([0.2, 0.5]), np.array([1, 0]), "overlap").tolist()
    [0.8, 0.5]
    """
    ps = np.asarray(ps, dtype=np.float64)
    t = np.asarray(treated).astype(bool)
    if kind == "overlap":
        return np.where(t, 1 - ps, ps)
    if kind != "iptw":
        raise PathwaysInputError(f"kind: expected 'iptw' or 'overlap', got {kind!r}")
    w = np.where(t, 1 / ps, 1 / (1 - ps))
    if stabilized:
        p = t.mean()
        w = w * np.where(t, p, 1 - p)
    if truncate is not None:
        w = np.minimum(w, np.quantile(w, truncate))
    return w


__all__ = [
    "Matching",
    "PropensityModel",
    "fit_propensity",
    "match",
    "ps_weights",
    "stratify",
    "stratum_weights",
]

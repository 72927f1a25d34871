"""Classic SCCS likelihood: penalised Newton, separation checks and profile-likelihood intervals.

The conditional (multinomial) log-likelihood of a case's outcomes over its observed buckets has no finite maximum
when the data *separate* a parameter: every outcome of the informative cases sits at the highest (or the lowest)
value of that covariate within its case — all outcomes of the exposed cases inside the risk window (upper), or no
outcome inside the window at all (lower: an empty cell). The maximum-likelihood estimate is then +-infinity and
Wald intervals are meaningless (an unpenalised Newton fit returns a huge or zero RI with a zero-width interval).

The remedy, as OHDSI's SCCS does through its regularised fitter: a weak normal prior ``N(0, prior_sd^2)`` on the
log RI of the separated parameters only (the others keep their maximum-likelihood estimate), which gives a finite,
shrunken point estimate. Intervals and p-values never use that prior on the parameter they describe: the interval
is the profile-likelihood interval ``{b : 2 (l_max - l_p(b)) <= chi2_1(level)}`` (one-sided, with an infinite
upper bound or a zero lower bound, when the profile stays within the threshold up to ``|log RI| = LOG_RI_LIMIT``),
and the p-value the likelihood-ratio test of RI = 1 against ``l_max`` — the supremum, reached at infinity for a
separated parameter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from pathways.models.sccs.design import LagDesign

__all__ = ["LOG_RI_LIMIT", "case_loglik", "joint_separation", "newton", "separation"]

#: |log RI| beyond which a profile bound is reported as infinite (RI 7e10): the likelihood is flat there.
LOG_RI_LIMIT = 25.0
#: largest Newton step on log RI (a damped Newton: steps on a flat likelihood would overshoot by orders)
_MAX_STEP = 2.0


def case_loglik(eta: np.ndarray, d: LagDesign) -> tuple[np.ndarray, np.ndarray]:
    """Per-case conditional log-likelihood and per-row probabilities for a linear predictor on active rows."""
    row_case = d.row_case.cpu().numpy()
    n_free = d.n_free.cpu().numpy()
    m = np.where(n_free > 0, 0.0, -np.inf)
    np.maximum.at(m, row_case, eta)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(eta - m[row_case])
    if d.row_weight is not None:  # time at risk (or likelihood weight) of the rows
        e = e * d.row_weight.cpu().numpy()
    s = np.bincount(row_case, weights=e, minlength=d.n_cases) + n_free * np.exp(-m)
    lse = m + np.log(s)
    y_row, n_out = d.y_row.cpu().numpy(), d.n_outcomes.cpu().numpy()
    ll = np.bincount(row_case, weights=y_row * eta, minlength=d.n_cases) - n_out * lse
    return ll, e / s[row_case]


def newton(X_s: sp.csr_matrix, d: LagDesign, tol: float, max_iter: int, *, precision: np.ndarray | None = None,
           offset: np.ndarray | None = None, theta0: np.ndarray | None = None, reducer: Any = None
           ) -> tuple[np.ndarray, np.ndarray, int]:
    """Maximise ``loglik(X theta + offset) - sum(precision theta^2) / 2``.

    Returns the estimate, the Fisher information of the *unpenalised* log-likelihood at it, and the iterations.
    ``reducer`` (a :class:`~pathways.training.distributed.Reducer`; None: one process) sums the log-likelihood, its
    gradient and information over the ranks, each holding its own cases (:func:`_newton_sharded`).
    """
    q = X_s.shape[1]
    if q == 0:
        return np.zeros(0), np.zeros((0, 0)), 0
    row_case = d.row_case.cpu().numpy()
    y_row, n_out = d.y_row.cpu().numpy(), d.n_outcomes.cpu().numpy()
    case_of = sp.csr_matrix((np.ones(row_case.size), (row_case, np.arange(row_case.size))),
                            shape=(d.n_cases, row_case.size))
    prec = np.zeros(q) if precision is None else np.asarray(precision, dtype=np.float64)
    off = np.zeros(X_s.shape[0]) if offset is None else offset
    theta = np.zeros(q) if theta0 is None else np.array(theta0, dtype=np.float64)
    if reducer is not None:
        return _newton_sharded(X_s, d, case_of, prec, off, theta, tol, max_iter, reducer)

    def objective(th: np.ndarray) -> tuple[float, np.ndarray]:
        ll, p = case_loglik(X_s @ th + off, d)
        return float(ll.sum()) - 0.5 * float(prec @ th**2), p

    def information(p: np.ndarray) -> np.ndarray:
        w_row = n_out[row_case] * p
        v = case_of @ X_s.multiply(p[:, None]).tocsr()  # (n_cases, q): E_p[x] per case
        return (X_s.T @ X_s.multiply(w_row[:, None])).toarray() - (v.T @ v.multiply(n_out[:, None])).toarray()

    obj, p = objective(theta)
    it = 0
    for it in range(1, max_iter + 1):
        grad = X_s.T @ (y_row - n_out[row_case] * p) - prec * theta
        step = np.linalg.lstsq(information(p) + np.diag(prec), grad, rcond=None)[0]
        # a flat likelihood (near-separation) gives huge Newton steps: cap them, then halve until no decrease
        step = step * min(1.0, _MAX_STEP / max(float(np.max(np.abs(step))), 1e-300))
        for _ in range(40):
            cand, cand_p = objective(theta + step)
            if cand >= obj - 1e-12 * abs(obj):
                break
            step = step / 2
        else:
            break  # no ascent left at machine precision: converged
        theta, obj, p = theta + step, cand, cand_p
        if np.max(np.abs(step)) < tol:
            break
    return theta, information(p), it


def _newton_sharded(X_s: sp.csr_matrix, d: LagDesign, case_of: sp.csr_matrix, prec: np.ndarray, off: np.ndarray,
                    theta: np.ndarray, tol: float, max_iter: int, reducer: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`newton` over cases held by several ranks: the same damped steps, taken on the totals.

    Every evaluation packs (log-likelihood, gradient, information) of this rank's cases in one all-reduce, so an
    accepted step costs one collective (a halved step one more); every rank solves the same system and takes the
    same step. The information is computed at every candidate (the one-process path computes it once per step).
    """
    row_case = d.row_case.cpu().numpy()
    y_row, n_out = d.y_row.cpu().numpy(), d.n_outcomes.cpu().numpy()

    def totals(th: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        ll, p = case_loglik(X_s @ th + off, d)
        w_row = n_out[row_case] * p
        v = case_of @ X_s.multiply(p[:, None]).tocsr()
        info = (X_s.T @ X_s.multiply(w_row[:, None])).toarray() - (v.T @ v.multiply(n_out[:, None])).toarray()
        value, grad, info = reducer.sum(float(ll.sum()), X_s.T @ (y_row - w_row), info)
        return value - 0.5 * float(prec @ th**2), grad - prec * th, info

    obj, grad, info = totals(theta)
    it = 0
    for it in range(1, max_iter + 1):
        step = np.linalg.lstsq(info + np.diag(prec), grad, rcond=None)[0]
        step = step * min(1.0, _MAX_STEP / max(float(np.max(np.abs(step))), 1e-300))
        for _ in range(40):
            cand = totals(theta + step)
            if cand[0] >= obj - 1e-12 * abs(obj):
                break
            step = step / 2
        else:
            break
        theta, (obj, grad, info) = theta + step, cand
        if np.max(np.abs(step)) < tol:
            break
    return theta, info, it


def separation(X_s: sp.csr_matrix, d: LagDesign, reducer: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Per column: (+1 upper / -1 lower / 0 no separation, identifiable).

    A column is separated upwards when, in every case whose outcomes and covariate values let it inform the
    column, all outcomes sit in buckets where the covariate is at its maximum over the case's observed buckets
    (``loglik`` then increases without bound along that column); downwards likewise at the minimum — a window
    holding no outcome is the common example. A column is not identifiable when no case with an outcome has
    varying values of it. With ``reducer`` the case counts behind these tests are summed over the ranks.
    """
    row_case = d.row_case.cpu().numpy()
    y_row, n_out = d.y_row.cpu().numpy(), d.n_outcomes.cpu().numpy()
    n_obs = d.n_free.cpu().numpy() + np.bincount(row_case, minlength=d.n_cases)
    csc = X_s.tocsc()
    # per column: informative cases, and those of them with outcomes off the maximum / off the minimum
    counts = np.zeros((X_s.shape[1], 3))
    for k in range(X_s.shape[1]):  # one pass per parameter (a handful of windows)
        rows = csc.indices[csc.indptr[k]:csc.indptr[k + 1]]
        vals, case = csc.data[csc.indptr[k]:csc.indptr[k + 1]], row_case[rows]
        has_zero = n_obs > np.bincount(case, minlength=d.n_cases)
        y_zero = n_out - np.bincount(case, weights=y_row[rows], minlength=d.n_cases)
        at_ext = []
        for func, fill in ((np.maximum, -np.inf), (np.minimum, np.inf)):
            ext = np.full(d.n_cases, fill)
            func.at(ext, case, vals)
            ext = np.where(has_zero, func(ext, 0.0), ext)
            y_ext = np.bincount(case, weights=y_row[rows] * (vals == ext[case]), minlength=d.n_cases)
            at_ext.append((ext, y_ext + np.where(has_zero & (ext == 0), y_zero, 0.0)))
        (hi, y_hi), (lo, y_lo) = at_ext
        informs = (hi > lo) & (n_out > 0)
        counts[k] = (informs.sum(), (~np.isclose(y_hi[informs], n_out[informs])).sum(),
                     (~np.isclose(y_lo[informs], n_out[informs])).sum())
    if reducer is not None:
        counts = reducer.sum(counts)[0]
    identifiable = counts[:, 0] > 0
    sign = np.select([identifiable & (counts[:, 1] == 0), identifiable & (counts[:, 2] == 0)], [1, -1], 0)
    return sign.astype(np.int64), identifiable


def joint_separation(X_s: sp.csr_matrix, d: LagDesign, sign: np.ndarray, groups: list[np.ndarray],
                     reducer: Any = None) -> np.ndarray:
    """``sign`` with the columns of every group (the windows or lags of one exposure) marked separated upwards
    when their sum is: all outcomes of the group's informative cases inside its windows, spread over several of
    them, send the whole group to +inf together, though no single column is separated."""
    sign = sign.copy()
    for cols in groups:  # one pass per exposure: a handful
        if cols.size > 1:
            joint, _ = separation(sp.csr_matrix(X_s[:, cols].sum(axis=1)), d, reducer)
            sign[cols] = np.where((joint[0] > 0) & (sign[cols] == 0), 1, sign[cols])
    return sign

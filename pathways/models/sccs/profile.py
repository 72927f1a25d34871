"""Profile-likelihood intervals of the classic SCCS, every profiled column and bound searched at once.

A profile interval needs, per column ``k`` and side, the value ``b`` where ``2 (l_max - l_p(b))`` reaches the
chi-square quantile, ``l_p(b)`` being the log-likelihood maximised over the other columns with column ``k`` held
at ``b``. Searched one column at a time (a bracketing root finder calling a full Newton fit per evaluation) this
dominated :func:`pathways.signals.detect` (minutes for a 20-drug screen). Here every (column, side) pair, plus the
likelihood-ratio test at ``b = 0``, is one column of a batch: one batched Newton fit (all columns in one sparse
product, per-column Hessians solved together) per search step, warm-started from the previous step. The search
runs on the signed root ``sqrt(2 (l_max - l_p(b)))``, close to linear in ``b``, by secant steps safeguarded into
regula falsi (Illinois) once bracketed, so a bound takes a handful of steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy import stats

from pathways.models.sccs.design import LagDesign
from pathways.models.sccs.likelihood import _MAX_STEP, LOG_RI_LIMIT
from pathways.utils import ragged_arange

__all__ = ["BatchLikelihood", "ProfileResult", "profile_intervals"]

#: entries of the per-case expectation tensor handled at once (bounds memory to ~160 MB)
_CHUNK = 20_000_000


@dataclass(frozen=True)
class ProfileResult:
    """Profile-likelihood results of the profiled columns: bounds on log RI (+-inf when open) and LR p-values."""

    low: np.ndarray
    high: np.ndarray
    p: np.ndarray
    unbounded: np.ndarray  # (n,) the profile never crosses the threshold on at least one side


class BatchLikelihood:
    """Conditional SCCS log-likelihood, gradient and Fisher information of B coefficient vectors at once.

    Rows of one case with the same covariates are collapsed into one row with a multiplicity (exact: they share
    their probability; a risk window of 9 buckets is one row, decades of unexposed time none), rows stay sorted by
    case so per-case maxima are segment reductions; the information ``sum_r w_r x_r x_r' - sum_i N_i v_i v_i'`` uses a precomputed sparse
    matrix of the per-row products ``x_rj x_rl`` (a few per row: designs are sparse).

    With ``reducer`` (:class:`~pathways.training.distributed.Reducer`) this rank holds some of the cases: the
    log-likelihood, and in :meth:`fit_fixed` the gradient and information of each Newton step, are summed over the
    ranks (one all-reduce per evaluation / per step), so every rank follows the same path.
    """

    def __init__(self, X_s: sp.csr_matrix, d: LagDesign, reducer: Any = None):
        self.reducer = reducer
        X, row_case, count, y_row = _collapse(sp.csr_matrix(X_s, dtype=np.float64), d)
        self.X, self.XT, self.q = X, X.T.tocsr(), X.shape[1]
        self.row_case, self.count, self.y_row = row_case, count, y_row
        self.n_out = d.n_outcomes.cpu().numpy()
        self.n_free, self.n_cases = d.n_free.cpu().numpy(), d.n_cases
        rows = np.arange(row_case.size)
        self.case_of = sp.csr_matrix((np.ones(rows.size), (row_case, rows)), shape=(self.n_cases, rows.size))
        counts = np.bincount(row_case, minlength=self.n_cases)
        self.has_rows = counts > 0
        self.seg_start = (np.cumsum(counts) - counts)[self.has_rows]
        self.w_row = self.n_out[row_case]
        # per-row products x_rj x_rl: entry e pairs with every entry of its row
        nnz_row = np.diff(X.indptr)
        row_of = np.repeat(np.arange(X.shape[0]), nnz_row)
        a = np.repeat(np.arange(X.nnz), nnz_row[row_of])
        b = X.indptr[row_of[a]] + ragged_arange(nnz_row[row_of])
        self.PT = sp.csr_matrix((X.data[a] * X.data[b], (X.indices[a] * self.q + X.indices[b], row_of[a])),
                                shape=(self.q * self.q, X.shape[0]))
        self.M = sp.csr_matrix((X.data, (row_case[row_of] * self.q + X.indices, row_of)),
                               shape=(self.n_cases * self.q, X.shape[0]))

    def loglik(self, theta: np.ndarray, offset: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Summed log-likelihood (B,) and probabilities of the (collapsed) rows (n_rows, B) of ``theta`` (q, B)."""
        eta = self.X @ theta
        if offset is not None:
            eta = eta + offset
        m = np.zeros((self.n_cases, theta.shape[1]))
        if eta.shape[0]:
            seg = np.maximum.reduceat(eta, self.seg_start, axis=0)
            m[self.has_rows] = np.where((self.n_free[self.has_rows] > 0)[:, None], np.maximum(seg, 0.0), seg)
        e = self.count[:, None] * np.exp(eta - m[self.row_case])
        s = self.case_of @ e + self.n_free[:, None] * np.exp(-m)
        ll = (self.case_of @ (self.y_row[:, None] * eta) - self.n_out[:, None] * (m + np.log(s))).sum(0)
        if self.reducer is not None:
            ll = self.reducer.sum(ll)[0]
        return ll, e / s[self.row_case]

    def gradient(self, p: np.ndarray) -> np.ndarray:
        return self.XT @ (self.y_row[:, None] - self.w_row[:, None] * p)

    def information(self, p: np.ndarray) -> np.ndarray:
        """Fisher information (B, q, q) of the unpenalised log-likelihood."""
        q, n_b = self.q, p.shape[1]
        out = np.asarray(self.PT @ (self.w_row[:, None] * p)).T.reshape(n_b, q, q)
        step = max(1, _CHUNK // max(self.n_cases * q, 1))
        for lo in range(0, n_b, step):
            v = np.asarray(self.M @ p[:, lo:lo + step]).reshape(self.n_cases, q, -1).transpose(2, 0, 1)
            out[lo:lo + step] -= np.matmul(v.transpose(0, 2, 1), v * self.n_out[None, :, None])
        return out

    def fit_fixed(self, theta: np.ndarray, fixed: np.ndarray, precision: np.ndarray, tol: float,
                  max_iter: int) -> tuple[np.ndarray, np.ndarray]:
        """Maximise ``loglik - sum(precision theta^2) / 2`` per column, holding ``theta[fixed[b], b]``.

        Returns the fitted ``theta`` (q, B) and the penalised objective (B,).
        """
        theta = theta.copy()
        n_b, cols = theta.shape[1], np.arange(theta.shape[1])

        def objective(th: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            ll, p = self.loglik(th)
            return ll - 0.5 * (precision[:, idx] * th**2).sum(0), p

        obj, p = objective(theta, cols)
        active = np.ones(n_b, dtype=bool)
        for _ in range(max_iter):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            th, pr = theta[:, idx], precision[:, idx]
            g, h = self.gradient(p[:, idx]), self.information(p[:, idx])
            if self.reducer is not None:
                g, h = self.reducer.sum(g, h)
            g = g - pr * th
            g[fixed[idx], np.arange(idx.size)] = 0.0
            h = h + np.einsum("qb,qp->bqp", pr, np.eye(self.q))
            h[np.arange(idx.size), fixed[idx], :] = 0.0
            h[np.arange(idx.size), :, fixed[idx]] = 0.0
            h[np.arange(idx.size), fixed[idx], fixed[idx]] = 1.0
            ridge = 1e-10 * (1.0 + np.abs(np.diagonal(h, axis1=1, axis2=2)))
            step = np.linalg.solve(h + ridge[:, :, None] * np.eye(self.q)[None], g.T[:, :, None])[:, :, 0].T
            step *= np.minimum(1.0, _MAX_STEP / np.maximum(np.abs(step).max(0), 1e-300))
            new_obj, new_p, moved = obj[idx], p[:, idx], np.zeros(idx.size, dtype=bool)
            pending = np.ones(idx.size, dtype=bool)
            for _ in range(40):  # step halving until no decrease, column by column
                j = np.flatnonzero(pending)
                if j.size == 0:
                    break
                cand, cand_p = objective(th[:, j] + step[:, j], idx[j])
                ok = cand >= obj[idx[j]] - 1e-12 * np.abs(obj[idx[j]])
                new_obj[j[ok]], new_p[:, j[ok]], moved[j[ok]] = cand[ok], cand_p[:, ok], True
                pending[j[ok]] = False
                step[:, j[~ok]] /= 2
            step[:, ~moved] = 0.0
            theta[:, idx] = th + step
            obj[idx], p[:, idx] = new_obj, new_p
            active[idx] = moved & (np.abs(step).max(0) >= tol)
        return theta, obj


def _collapse(X: sp.csr_matrix, d: LagDesign) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """Merge the rows of a case with equal covariates: (X, row_case, multiplicity, outcomes) of the groups; the
    multiplicity sums the rows' weights (time at risk) when the design has some."""
    row_case = d.row_case.cpu().numpy()
    y_row = d.y_row.cpu().numpy()
    if X.shape[0] == 0:
        return X, row_case, np.ones(0), y_row
    g = np.random.default_rng(0)  # two random projections identify a row's covariates (ties: measure zero)
    key = np.column_stack([row_case, X @ g.random(X.shape[1]), X @ g.random(X.shape[1])])
    _, first, group = np.unique(key, axis=0, return_index=True, return_inverse=True)
    group = group.reshape(-1)
    weight = None if d.row_weight is None else d.row_weight.cpu().numpy()
    count = np.bincount(group, weights=weight, minlength=first.size).astype(np.float64)
    y = np.bincount(group, weights=y_row, minlength=first.size)
    Xg = X[first].tocsr()
    Xg.sort_indices()
    return Xg, row_case[first], count, y


def profile_intervals(X_s: sp.csr_matrix, d: LagDesign, theta: np.ndarray, precision: np.ndarray,
                      sign: np.ndarray, columns: np.ndarray, level: float, tol: float, max_iter: int,
                      std_err: np.ndarray | None = None, reducer: Any = None) -> ProfileResult:
    """Profile-likelihood intervals (log RI scale, +-inf when open) and LR p-values for ``columns``.

    ``theta`` is the fit with ``precision`` (the weak prior on separated columns); the profiled column is always
    free of its prior, the other columns keep theirs. ``sign`` marks separated columns (+1: supremum at +inf,
    -1: at -inf). ``std_err`` (Wald, NaN where separated) only seeds the search. ``reducer``: the cases are
    sharded over ranks (see :class:`BatchLikelihood`); every rank returns the same intervals.
    """
    lik = BatchLikelihood(X_s, d, reducer)
    columns = np.asarray(columns, dtype=np.int64)
    n = columns.size
    crit = float(stats.chi2.ppf(level, 1))
    tol = max(float(tol), 1e-6)  # on log RI: the profile moves by ~tol^2, far below the bound's tolerance
    se = np.full(theta.size, np.nan) if std_err is None else np.asarray(std_err, dtype=float)

    def evaluate(values: np.ndarray, cols: np.ndarray, warm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        start = warm.copy()
        start[cols, np.arange(cols.size)] = values
        prec = np.repeat(precision[:, None], cols.size, axis=1)
        prec[cols, np.arange(cols.size)] = 0.0
        return lik.fit_fixed(start, cols, prec, tol, max_iter)

    base = np.repeat(theta[:, None], n, axis=1)
    # the supremum: at the fit for an unseparated column; towards +-inf for a separated one (unless its
    # prior-held neighbours, windows separated together, make the profile peak at a finite value)
    tops = theta[columns].copy()
    # ``theta`` maximises the penalised likelihood and an unseparated column carries no prior: l_max is the fit's
    l_fit = float(lik.loglik(theta[:, None])[0][0]) - 0.5 * float(precision @ theta**2)
    l_top = l_fit + 0.5 * precision[columns] * theta[columns] ** 2
    sep = np.flatnonzero(sign[columns] != 0)
    if sep.size:
        far = LOG_RI_LIMIT * sign[columns[sep]].astype(float)
        l_far = evaluate(far, columns[sep], base[:, sep])[1]
        better = l_far > l_top[sep]
        tops[sep[better]], l_top[sep[better]] = far[better], l_far[better]
    l_max = l_top
    # every (column, side) and the test at 0 in one batch
    p_fit = evaluate(np.zeros(n), columns, base)[1]
    p_value = stats.chi2.sf(np.maximum(2 * (l_max - p_fit), 0.0), 1)
    cols2 = np.concatenate([columns, columns])
    direction = np.concatenate([-np.ones(n), np.ones(n)])
    bound = _search(evaluate, cols2, direction, np.concatenate([tops, tops]), np.concatenate([l_max, l_max]),
                    np.concatenate([se[columns], se[columns]]), crit, np.repeat(theta[:, None], 2 * n, axis=1))
    low, high = bound[:n], bound[n:]
    return ProfileResult(low, high, p_value, ~(np.isfinite(low) & np.isfinite(high)))


def _search(evaluate, cols: np.ndarray, direction: np.ndarray, top: np.ndarray, l_max: np.ndarray,
            se: np.ndarray, crit: float, warm: np.ndarray, max_steps: int = 40) -> np.ndarray:
    """Where the signed root ``sqrt(2 (l_max - l_p(b)))`` reaches ``sqrt(crit)`` going ``direction`` from ``top``.

    ``g(b) = sqrt(2 (l_max - l_p(b))) - sqrt(crit)`` is -sqrt(crit) at ``top`` and about linear in ``b``: secant
    steps from the inside point, regula falsi (Illinois) once a point outside is known; +-inf when the profile
    stays inside up to ``|b| = LOG_RI_LIMIT``.
    """
    root = np.sqrt(crit)
    m = cols.size
    b_in, g_in = top.copy(), np.full(m, -root)
    b_out, g_out = np.full(m, np.nan), np.full(m, np.nan)
    result = np.full(m, np.nan)
    step0 = np.where(np.isfinite(se) & (se > 0), root * se, 1.0)
    cand = np.clip(top + direction * step0, -LOG_RI_LIMIT, LOG_RI_LIMIT)
    at_edge = (np.abs(top) >= LOG_RI_LIMIT - 1e-12) & (np.sign(top) == direction)
    result[at_edge] = direction[at_edge] * np.inf
    side = np.zeros(m)  # Illinois: which end was kept last (-1 inside, +1 outside)
    for _ in range(max_steps):
        act = np.flatnonzero(np.isnan(result))
        if act.size == 0:
            break
        th, val = evaluate(cand[act], cols[act], warm[:, act])
        g = np.sqrt(np.maximum(2 * (l_max[act] - val), 0.0)) - root
        inside = g < 0
        warm[:, act[inside]] = th[:, inside]
        done = np.abs(g) < 2e-3  # the bound within 0.002 standard errors
        result[act[done]] = cand[act[done]]
        # update the bracket
        i_in, i_out = act[inside], act[~inside]
        b_in[i_in], g_in[i_in] = cand[i_in], g[inside]
        b_out[i_out], g_out[i_out] = cand[i_out], g[~inside]
        edge = inside & (np.abs(cand[act]) >= LOG_RI_LIMIT - 1e-12)
        result[act[edge & ~done]] = direction[act[edge & ~done]] * np.inf
        # Illinois: halve the weight of the end kept twice in a row
        kept_in, kept_out = ~inside & (side[act] == -1), inside & (side[act] == 1)
        g_in[act[kept_in]] /= 2
        g_out[act[kept_out]] /= 2
        side[act] = np.where(inside, 1, -1)
        nxt = np.flatnonzero(np.isnan(result))
        bracket = np.isfinite(b_out[nxt])
        j = nxt[bracket]
        cand[j] = b_in[j] - g_in[j] * (b_out[j] - b_in[j]) / (g_out[j] - g_in[j])
        # no point outside yet: secant from the top through the inside point, at least doubling the distance
        j = nxt[~bracket]
        slope = (g_in[j] + root) / np.maximum(np.abs(b_in[j] - top[j]), 1e-12)
        reach = np.where(slope > 1e-12, -g_in[j] / np.maximum(slope, 1e-12), np.inf)
        dist = np.abs(b_in[j] - top[j])
        cand[j] = np.clip(b_in[j] + direction[j] * np.clip(reach * 1.1, dist, 4 * dist + 1),
                          -LOG_RI_LIMIT, LOG_RI_LIMIT)
        width = np.abs(b_out - b_in)
        tight = np.isnan(result) & (width < 1e-5)
        result[tight] = b_in[tight]
    return np.where(np.isnan(result), b_in, result)

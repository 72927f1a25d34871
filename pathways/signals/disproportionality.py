"""Disproportionality from claims: PRR, ROR, IC (BCPNN) and EBGM (gamma-Poisson shrinker) for all pairs at once.

Spontaneous-report disproportionality (as in vigipy) counts reports; on claims the unit is an *outcome event*: for
every drug d and outcome code e, the 2x2 table crosses "the event occurred while the patient was exposed to d"
with "the event is e":

=================  ==========  ===============
                   event = e   other outcomes
exposed to d       a           b
not exposed to d   c           d
=================  ==========  ===============

All tables come from one sparse product: X (outcome events x drugs, 1 when the event falls in an exposure window
of the drug) times Y (outcome events x outcome codes, one-hot): ``a = Xᵀ Y``; margins are column/row sums.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import optimize, special, stats

from pathways.errors import PathwaysInputError
from pathways.utils import ragged_arange

EXPOSURE_COLUMNS = ("patient", "exposure", "start", "end")


@dataclass
class ContingencyTables:
    """Counts of all (drug, outcome) 2x2 tables, as dense (n_drugs, n_outcomes) arrays."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray
    drugs: np.ndarray
    outcomes: np.ndarray

    @property
    def n(self) -> np.ndarray:
        return self.a + self.b + self.c + self.d

    @property
    def expected(self) -> np.ndarray:
        """Expected ``a`` under independence: (a + b)(a + c) / N."""
        return (self.a + self.b) * (self.a + self.c) / np.maximum(self.n, 1)


def exposure_event_matrix(event_patient: np.ndarray, event_time: np.ndarray, exposures: pd.DataFrame,
                          n_drugs: int) -> sp.csr_matrix:
    """Sparse (n_events, n_drugs) indicator: event k lies in an exposure window [start, end) of drug j.

    ``exposures`` has integer columns ``patient`` and ``exposure`` (drug index) and float ``start``, ``end``;
    overlapping windows of one (patient, drug) count once. Vectorised: windows and events are placed on one sorted
    axis ``patient * span + time`` so a single ``searchsorted`` finds the events of every window.
    """
    missing = [c for c in EXPOSURE_COLUMNS if c not in exposures]
    if missing:
        raise PathwaysInputError(f"exposures: missing column(s) {missing}")
    pat = exposures["patient"].to_numpy(np.int64)
    drug = exposures["exposure"].to_numpy(np.int64)
    start = exposures["start"].to_numpy(np.float64)
    end = exposures["end"].to_numpy(np.float64)
    if np.any(~np.isfinite(start) | ~np.isfinite(end)) or np.any(end < start):
        raise PathwaysInputError("exposures: start/end must be finite with end >= start")
    if drug.size and (drug.min() < 0 or drug.max() >= n_drugs):
        raise PathwaysInputError(f"exposures: exposure index outside [0, {n_drugs})")
    n_events = event_time.size
    if n_events == 0 or pat.size == 0:
        return sp.csr_matrix((n_events, n_drugs))
    lo_t = min(event_time.min(), start.min())
    span = max(event_time.max(), end.max()) - lo_t + 1.0
    key = event_patient * span + (event_time - lo_t)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    first = np.searchsorted(sorted_key, pat * span + (start - lo_t), side="left")
    last = np.searchsorted(sorted_key, pat * span + (end - lo_t), side="left")
    counts = last - first
    rows = order[np.repeat(first, counts) + ragged_arange(counts)]
    cols = np.repeat(drug, counts)
    matrix = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_events, n_drugs))
    matrix.data[:] = 1.0  # overlapping windows of one drug: count the event once
    return matrix


def contingency_tables(exposed: sp.csr_matrix, outcome: np.ndarray, n_outcomes: int, drugs: np.ndarray,
                       outcomes: np.ndarray) -> ContingencyTables:
    """All 2x2 tables from the event x drug exposure matrix and each event's outcome index."""
    y = sp.csr_matrix((np.ones(outcome.size), (np.arange(outcome.size), outcome)), shape=(outcome.size, n_outcomes))
    a = np.asarray((exposed.T @ y).todense(), dtype=np.float64)
    exposed_total = np.asarray(exposed.sum(axis=0)).ravel()[:, None]  # a + b
    outcome_total = np.bincount(outcome, minlength=n_outcomes).astype(np.float64)[None, :]  # a + c
    n_total = float(outcome.size)
    b = exposed_total - a
    c = outcome_total - a
    d = n_total - a - b - c
    return ContingencyTables(a, b, c, d, np.asarray(drugs, dtype=object), np.asarray(outcomes, dtype=object))


def prr(t: ContingencyTables, alpha: float = 0.05) -> pd.DataFrame:
    """Proportional reporting ratio with the usual log-normal (Rothman) interval; chi-square-free Wald p-value.

    A table with exposed events and an empty cell (e.g. every event of the outcome exposed: separation) gets the
    Haldane-Anscombe correction (0.5 added to its four cells) and ``status = "separated"``.
    """
    a, b, c, d = _haldane(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = (a / (a + b)) / (c / (c + d))
        se = np.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))
    return _log_normal_frame(t, est, se, alpha, "PRR")


def ror(t: ContingencyTables, alpha: float = 0.05) -> pd.DataFrame:
    """Reporting odds ratio (a d) / (b c) with the Woolf log-normal interval (empty cells: as :func:`prr`)."""
    a, b, c, d = _haldane(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = (a * d) / (b * c)
        se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    return _log_normal_frame(t, est, se, alpha, "ROR")


def _haldane(t: ContingencyTables) -> tuple[np.ndarray, ...]:
    """Cells with 0.5 added to every table that has exposed events and an empty cell."""
    fix = _separated(t) * 0.5
    return t.a + fix, t.b + fix, t.c + fix, t.d + fix


def _separated(t: ContingencyTables) -> np.ndarray:
    return (t.a > 0) & ((t.b == 0) | (t.c == 0) | (t.d == 0))


def information_component(t: ContingencyTables, alpha: float = 0.05) -> pd.DataFrame:
    """BCPNN information component with the +0.5 shrinkage (Norén et al. 2013).

    IC = log2((a + 0.5) / (E + 0.5)); credibility interval from the Gamma(a + 0.5, E + 0.5) posterior of the
    observed-to-expected ratio. Reported as the ratio 2^IC so that all estimates share the ratio scale; the
    ``log2_estimate`` column keeps IC itself. No frequentist p-value (NaN): flag on the lower bound (IC025 > 0).
    """
    e = t.expected
    shape, rate = t.a + 0.5, e + 0.5
    low = stats.gamma.ppf(alpha / 2, shape, scale=1 / rate)
    high = stats.gamma.ppf(1 - alpha / 2, shape, scale=1 / rate)
    ratio = (t.a + 0.5) / (e + 0.5)
    frame = _frame(t, ratio, low, high, np.full(ratio.shape, np.nan), "IC")
    frame["log2_estimate"] = np.log2(ratio.ravel())
    return frame


def ebgm(t: ContingencyTables, alpha: float = 0.05, init: tuple[float, ...] = (0.2, 0.1, 2.0, 4.0, 1 / 3)
         ) -> pd.DataFrame:
    """Empirical Bayes geometric mean (DuMouchel's gamma-Poisson shrinker, two-gamma mixture prior).

    The prior (α1, β1, α2, β2, p) is fitted by maximum likelihood of the negative-binomial mixture over all pairs
    with a > 0 (the usual practice); EBGM = exp(E[log λ | a]), and EB05/EB95 are posterior quantiles found by
    bisection on the mixture CDF (vectorised over pairs).
    """
    n, e = t.a.ravel(), np.maximum(t.expected.ravel(), 1e-12)
    theta = _fit_gps_prior(n[n > 0], e[n > 0], np.asarray(init, dtype=float))
    a1, b1, a2, b2, p = theta
    w = _posterior_weight(n, e, theta)
    elog = w * (special.digamma(a1 + n) - np.log(b1 + e)) + (1 - w) * (special.digamma(a2 + n) - np.log(b2 + e))
    est = np.exp(elog)
    shapes = (a1 + n, b1 + e, a2 + n, b2 + e)
    low = _mixture_quantile(alpha / 2, w, *shapes)
    high = _mixture_quantile(1 - alpha / 2, w, *shapes)
    reshape = lambda x: x.reshape(t.a.shape)  # noqa: E731
    frame = _frame(t, reshape(est), reshape(low), reshape(high), np.full(t.a.shape, np.nan), "EBGM")
    frame.attrs["gps_prior"] = dict(zip(("alpha1", "beta1", "alpha2", "beta2", "p"), map(float, theta)))
    return frame


def _nb_logpmf(n: np.ndarray, e: np.ndarray, a: float, b: float) -> np.ndarray:
    """log P(N = n) for N ~ Poisson(λ E), λ ~ Gamma(a, b): negative binomial."""
    return (special.gammaln(a + n) - special.gammaln(a) - special.gammaln(n + 1)
            + a * np.log(b / (b + e)) + n * np.log(e / (b + e)))


def _posterior_weight(n: np.ndarray, e: np.ndarray, theta: np.ndarray) -> np.ndarray:
    a1, b1, a2, b2, p = theta
    l1 = np.log(p) + _nb_logpmf(n, e, a1, b1)
    l2 = np.log1p(-p) + _nb_logpmf(n, e, a2, b2)
    return np.exp(l1 - np.logaddexp(l1, l2))


_MIN_COMPONENT_WEIGHT = 0.05


def _fit_gps_prior(n: np.ndarray, e: np.ndarray, init: np.ndarray) -> np.ndarray:
    if n.size == 0:
        return init

    def unpack(x: np.ndarray) -> np.ndarray:
        return np.concatenate([np.exp(x[:4]), [special.expit(x[4])]])

    def nll(x: np.ndarray) -> float:
        a1, b1, a2, b2, p = unpack(x)
        l1 = np.log(p) + _nb_logpmf(n, e, a1, b1)
        l2 = np.log1p(-p) + _nb_logpmf(n, e, a2, b2)
        return -float(np.logaddexp(l1, l2).sum())

    # Each component keeps at least 5 % of the pairs: with a free weight the likelihood is maximised by spending
    # one component on a lone outlying pair (a spike at its ratio), which then gets no shrinkage at all.
    weight = special.logit(_MIN_COMPONENT_WEIGHT)
    x0 = np.concatenate([np.log(init[:4]), [np.clip(special.logit(init[4]), weight, -weight)]])
    res = optimize.minimize(nll, x0, method="L-BFGS-B", bounds=[(-10, 10)] * 4 + [(weight, -weight)])
    return unpack(res.x)


def _mixture_quantile(q: float, w: np.ndarray, a1: np.ndarray, r1: np.ndarray, a2: np.ndarray, r2: np.ndarray,
                      n_iter: int = 60) -> np.ndarray:
    lo = np.zeros_like(w)
    hi = np.maximum(stats.gamma.ppf(0.9999, a1, scale=1 / r1), stats.gamma.ppf(0.9999, a2, scale=1 / r2))
    for _ in range(n_iter):  # bisection, vectorised over all pairs
        mid = (lo + hi) / 2
        cdf = w * stats.gamma.cdf(mid, a1, scale=1 / r1) + (1 - w) * stats.gamma.cdf(mid, a2, scale=1 / r2)
        below = cdf < q
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return (lo + hi) / 2


def _log_normal_frame(t: ContingencyTables, est: np.ndarray, se: np.ndarray, alpha: float,
                      method: str) -> pd.DataFrame:
    z = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_est = np.log(est)
        low, high = np.exp(log_est - z * se), np.exp(log_est + z * se)
        p = 2 * stats.norm.sf(np.abs(log_est / se))
    valid = t.a > 0  # cells made positive by _haldane where one was empty
    est, low, high, p = (np.where(valid, x, np.nan) for x in (est, low, high, p))
    frame = _frame(t, est, low, high, p, method)
    frame["se_log"] = np.where(valid, se, np.nan).ravel()
    frame["status"] = np.select([t.a.ravel() == 0, _separated(t).ravel()], ["no exposed outcome", "separated"],
                                "estimated")
    return frame


def _frame(t: ContingencyTables, est: np.ndarray, low: np.ndarray, high: np.ndarray, p: np.ndarray,
           method: str) -> pd.DataFrame:
    n_d, n_o = t.a.shape
    return pd.DataFrame({
        "exposure": np.repeat(t.drugs, n_o), "outcome": np.tile(t.outcomes, n_d), "method": method,
        "estimate": est.ravel(), "ci_low": low.ravel(), "ci_high": high.ravel(), "p": p.ravel(),
        "n_exposed_events": t.a.ravel().astype(np.int64), "expected": t.expected.ravel(),
    })


def disproportionality(exposed: sp.csr_matrix, outcome: np.ndarray, drugs: np.ndarray, outcomes: np.ndarray,
                       methods: tuple[str, ...] = ("PRR", "ROR", "IC", "EBGM"), alpha: float = 0.05) -> pd.DataFrame:
    """Every requested method for every (drug, outcome) pair, stacked in one long DataFrame."""
    table = contingency_tables(exposed, outcome, len(outcomes), drugs, outcomes)
    funcs = {"PRR": prr, "ROR": ror, "IC": information_component, "EBGM": ebgm}
    unknown = [m for m in methods if m not in funcs]
    if unknown:
        raise PathwaysInputError(f"methods: unknown {unknown}; choose among {list(funcs)}")
    return pd.concat([funcs[m](table, alpha) for m in methods], ignore_index=True)

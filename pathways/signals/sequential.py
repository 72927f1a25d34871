"""Sequential tests that keep the type I error over repeated looks: Poisson and binomial MaxSPRT, alpha spending.

The maximized sequential probability ratio test (MaxSPRT, Kulldorff, Davis, Kolczak, Lewis, Lieu and Platt 2011,
*Sequential Analysis* 30:58-78) monitors a count as data accrue and signals the first time the log-likelihood ratio
of "relative risk RR > 1 (maximised)" against "RR = 1" reaches a flat critical value ``cv``. The critical value is
chosen so that the probability of ever signalling under the null, up to a planned upper limit of surveillance, is
``alpha``. Every critical value here is computed exactly by recursion on the count distribution (the method of
Kulldorff et al. 2011, section 4), not read from a table and not simulated:

* **Poisson MaxSPRT** (continuous monitoring): observed count ``c`` against its expected count ``mu`` under the
  null, ``LLR = mu - c + c log(c / mu)`` when ``c > mu``. Between events the LLR decreases, so a signal can only
  happen at the arrival of the ``c``-th event, and it does iff that arrival comes before ``mu_c``, the expected
  count where ``LLR(c, mu) = cv``. The probability of no signal is ``P(N(mu_c) <= c - 1`` for every ``c >= M)``,
  computed by propagating the Poisson count distribution from one ``mu_c`` to the next.
* **Binomial MaxSPRT** (the conditional, self-controlled version): each case falls in the risk window with
  probability ``p = 1 / (1 + z)`` under the null, ``z`` = control-window length / risk-window length. After ``n``
  cases with ``k`` in the risk window, ``LLR = k log(k / (n p)) + (n - k) log((n - k) / (n (1 - p)))`` when
  ``k / n > p``. The null distribution of ``k`` is propagated case by case up to ``N`` cases.
* **Alpha spending** for looks at discrete times (quarters): the cumulative type I error spent by information
  fraction ``t`` is ``alpha * t ** rho`` (power spending; ``rho=1`` spends evenly). At each look the count
  threshold is the smallest whose exact cumulative rejection probability stays within the budget, given the
  thresholds already used at earlier looks; the looks need not be planned in advance.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from pathways.errors import PathwaysInputError

__all__ = [
    "binomial_llr", "binomial_maxsprt_alpha", "binomial_maxsprt_cv", "binomial_spending_thresholds",
    "poisson_llr", "poisson_maxsprt_alpha", "poisson_maxsprt_cv", "poisson_spending_thresholds",
    "power_spending",
]


def poisson_llr(observed: np.ndarray | float, expected: np.ndarray | float) -> np.ndarray:
    """One-sided Poisson log-likelihood ratio: ``mu - c + c log(c / mu)`` when ``c > mu``, else 0.

    Examples
    --------
    >>> float(poisson_llr(6, 2.0).round(4)), float(poisson_llr(1, 2.0))
    (2.5917, 0.0)
    """
    c = np.asarray(observed, dtype=float)
    mu = np.asarray(expected, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        llr = mu - c + np.where(c > 0, c * np.log(c / mu), 0.0)
    return np.where(c > mu, llr, 0.0)


def binomial_llr(risk_cases: np.ndarray | float, cases: np.ndarray | float, z: float) -> np.ndarray:
    """One-sided binomial log-likelihood ratio of ``k`` risk-window cases among ``n`` (null ``p = 1 / (1 + z)``).

    Examples
    --------
    >>> float(binomial_llr(8, 10, 1.0).round(4)), float(binomial_llr(3, 10, 1.0))
    (1.9274, 0.0)
    """
    k = np.asarray(risk_cases, dtype=float)
    n = np.asarray(cases, dtype=float)
    p = 1.0 / (1.0 + z)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(k > 0, k * np.log(k / (n * p)), 0.0)
        b = np.where(n - k > 0, (n - k) * np.log((n - k) / (n * (1 - p))), 0.0)
    return np.where((n > 0) & (k > n * p), a + b, 0.0)


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 0.5:
        raise PathwaysInputError(f"alpha: expected a value in (0, 0.5), got {alpha}")


# ------------------------------------------------------------------------------------------------------------
# continuous Poisson MaxSPRT
# ------------------------------------------------------------------------------------------------------------
def _poisson_signal_times(cv: float, upper: float, min_events: int) -> np.ndarray:
    """``b_c = min(mu_c, T)`` for ``c = M, M + 1, ...`` until the first ``mu_c >= T`` (later ones add nothing).

    ``LLR(c, mu) = cv`` with ``x = mu / c < 1`` reads ``x - log x = 1 + cv / c``, so ``x = -W0(-exp(-1 - cv / c))``
    (Lambert W, principal branch): all boundaries at once, no root finding.
    """
    first = max(int(min_events), 1)
    c = np.arange(first, first + int(upper + 10 * np.sqrt(upper) + 10 * (cv + 1) + 20), dtype=float)
    mu = -c * np.real(special.lambertw(-np.exp(-1.0 - cv / c), 0))
    last = int(np.argmax(mu >= upper)) if np.any(mu >= upper) else mu.size - 1
    return np.minimum(mu[:last + 1], upper)


def poisson_maxsprt_alpha(cv: float, upper: float, min_events: int = 1) -> float:
    """Exact probability that the continuous Poisson MaxSPRT with critical value ``cv`` ever signals under the
    null before the expected count reaches ``upper`` (``T``), signals needing at least ``min_events`` (``M``)."""
    if upper <= 0:
        raise PathwaysInputError(f"upper: the surveillance limit (expected count) must be > 0, got {upper}")
    bounds = _poisson_signal_times(cv, upper, min_events)
    first = max(int(min_events), 1)
    size = first + bounds.size  # counts 0 .. c_last - 1 stay alive
    alive = np.zeros(size)
    alive[0] = 1.0
    previous = 0.0
    for i, b in enumerate(bounds):
        step = b - previous
        if step > 0:  # convolve the surviving count distribution with Poisson(step) increments
            pmf = stats.poisson.pmf(np.arange(size), step)
            alive = np.convolve(alive, pmf)[:size]
        c = first + i
        alive[c:] = 0.0  # N(b_c) >= c: the c-th event came before mu_c, the test signalled
        previous = b
    return float(1.0 - alive.sum())


def poisson_maxsprt_cv(upper: float, alpha: float = 0.05, min_events: int = 1) -> float:
    """Critical value of the continuous Poisson MaxSPRT: ``P(signal | H0) = alpha`` up to expected count ``upper``.

    Parameters
    ----------
    upper : the upper limit on surveillance, as an expected count under the null (``T``, "SampleSize").
    alpha : type I error over the whole surveillance.
    min_events : ``M``, the fewest events that may signal.

    Examples
    --------
    >>> cv = poisson_maxsprt_cv(10.0)
    >>> round(poisson_maxsprt_alpha(cv, 10.0), 6)
    0.05
    """
    _check_alpha(alpha)
    # alpha(cv) is continuous and decreasing: bracket then solve
    hi = 1.0
    while poisson_maxsprt_alpha(hi, upper, min_events) > alpha:
        hi *= 2.0
    lo = 1e-6
    if poisson_maxsprt_alpha(lo, upper, min_events) <= alpha:
        return lo
    return float(optimize.brentq(lambda cv: poisson_maxsprt_alpha(cv, upper, min_events) - alpha, lo, hi,
                                 xtol=1e-10))


# ------------------------------------------------------------------------------------------------------------
# continuous binomial MaxSPRT (self-controlled counts)
# ------------------------------------------------------------------------------------------------------------
def _binomial_thresholds(cv: float, max_cases: int, z: float, min_cases: int) -> np.ndarray:
    """Smallest risk-window count that signals after each number of cases ``n = 1..N`` (``n + 1``: never)."""
    n = np.arange(1, max_cases + 1)
    k = np.arange(max_cases + 1)
    llr = binomial_llr(k[None, :], n[:, None], z)
    llr[k[None, :] > n[:, None]] = -np.inf
    hit = llr >= cv - 1e-12
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), n + 1)
    first[n < min_cases] = n[n < min_cases] + 1
    return first


def binomial_maxsprt_alpha(cv: float, max_cases: int, z: float, min_cases: int = 1) -> float:
    """Exact probability that the continuous binomial MaxSPRT ever signals under the null within ``max_cases``."""
    if max_cases < 1 or z <= 0:
        raise PathwaysInputError(f"binomial MaxSPRT: need max_cases >= 1 and z > 0, got {max_cases}, {z}")
    p = 1.0 / (1.0 + z)
    thresholds = _binomial_thresholds(cv, max_cases, z, min_cases)
    alive = np.zeros(max_cases + 2)
    alive[0] = 1.0
    for n, k_signal in enumerate(thresholds, start=1):
        alive[1:] = alive[1:] * (1 - p) + alive[:-1] * p  # one more case: in the risk window with probability p
        alive[0] *= 1 - p
        alive[k_signal:] = 0.0
    return float(1.0 - alive.sum())


def binomial_maxsprt_cv(max_cases: int, z: float, alpha: float = 0.05, min_cases: int = 1) -> float:
    """Critical value of the continuous binomial MaxSPRT (risk-window vs control-window cases, ratio ``z``).

    The count is discrete, so the exact ``alpha`` is rarely attainable: this returns the smallest critical value
    whose exact type I error is at most ``alpha`` (conservative, as ``Sequential::CV.Binomial``).

    Examples
    --------
    >>> cv = binomial_maxsprt_cv(50, z=1.0)
    >>> binomial_maxsprt_alpha(cv, 50, 1.0) <= 0.05
    True
    """
    _check_alpha(alpha)
    # the type I error only changes when cv crosses an attainable LLR value: scan those, smallest first
    n = np.arange(1, max_cases + 1)
    k = np.arange(max_cases + 1)
    values = binomial_llr(k[None, :], n[:, None], z)[k[None, :] <= n[:, None]]
    candidates = np.unique(values[values > 0])
    lo, hi = 0, candidates.size - 1
    if binomial_maxsprt_alpha(candidates[hi], max_cases, z, min_cases) > alpha:
        return float(candidates[hi] + 1e-9)  # even the largest attainable LLR is too liberal: never signal
    while lo < hi:  # alpha(candidate) decreases with the candidate: binary search on the sorted list
        mid = (lo + hi) // 2
        if binomial_maxsprt_alpha(candidates[mid], max_cases, z, min_cases) <= alpha:
            hi = mid
        else:
            lo = mid + 1
    return float(candidates[lo])


# ------------------------------------------------------------------------------------------------------------
# group sequential looks with alpha spending
# ------------------------------------------------------------------------------------------------------------
def power_spending(fraction: np.ndarray | float, alpha: float = 0.05, rho: float = 1.0) -> np.ndarray:
    """Cumulative type I error spent at information fraction ``t``: ``alpha * min(t, 1) ** rho``.

    Examples
    --------
    >>> power_spending([0.25, 0.5, 1.0, 2.0], 0.05, 2.0).round(5).tolist()
    [0.00312, 0.0125, 0.05, 0.05]
    """
    t = np.clip(np.asarray(fraction, dtype=float), 0.0, 1.0)
    return alpha * t**rho


def _spend(alive: np.ndarray, budget: float, min_count: int) -> tuple[int, float]:
    """Smallest count threshold whose upper-tail mass of ``alive`` stays within ``budget``; ``(threshold, mass)``."""
    tail = np.cumsum(alive[::-1])[::-1]  # tail[k] = P(count >= k, no earlier signal)
    ok = np.flatnonzero((tail <= budget + 1e-15) & (np.arange(alive.size) >= min_count))
    k = int(ok[0]) if ok.size else alive.size
    return k, float(tail[k]) if k < alive.size else 0.0


def _spending_table(looks: np.ndarray, thresholds: list[int], spent: list[float], target: np.ndarray,
                    llr: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"look": np.arange(1, looks.size + 1), "information": looks, "threshold": thresholds,
                         "llr_threshold": llr, "alpha_target": target, "alpha_spent": np.cumsum(spent)})


def poisson_spending_thresholds(expected: np.ndarray, upper: float, alpha: float = 0.05, rho: float = 1.0,
                                min_events: int = 1) -> pd.DataFrame:
    """Count thresholds of a group-sequential Poisson test at looks with cumulative expected counts ``expected``.

    At look ``i`` the test signals when the cumulative count reaches ``threshold`` (first time only). Thresholds
    are exact: the rejection probability accumulated by look ``i`` under the null never exceeds
    :func:`power_spending` of ``expected[i] / upper``.

    Returns
    -------
    DataFrame ``look, information, threshold, llr_threshold, alpha_target, alpha_spent``.

    Examples
    --------
    >>> poisson_spending_thresholds(np.array([4.0]), upper=4.0)["threshold"].tolist()  # one look: exact test
    [9]
    """
    _check_alpha(alpha)
    looks = np.asarray(expected, dtype=float)
    if looks.size == 0 or np.any(np.diff(looks) < 0) or looks[0] <= 0:
        raise PathwaysInputError("expected: cumulative expected counts must be positive and non-decreasing")
    size = int(looks.max() + 12 * np.sqrt(looks.max()) + 30)  # the tail beyond carries < 1e-20 under the null
    alive = np.zeros(size)
    alive[0] = 1.0
    target = power_spending(looks / upper, alpha, rho)
    thresholds, spent, previous = [], [], 0.0
    for i, mu in enumerate(looks):
        if mu > previous:
            alive = np.convolve(alive, stats.poisson.pmf(np.arange(size), mu - previous))[:size]
        k, mass = _spend(alive, target[i] - sum(spent), min_events)
        alive[k:] = 0.0
        thresholds.append(k), spent.append(mass)
        previous = mu
    llr = poisson_llr(np.asarray(thresholds, float), looks)
    return _spending_table(looks, thresholds, spent, target, llr)


def binomial_spending_thresholds(cases: np.ndarray, max_cases: int, z: float, alpha: float = 0.05,
                                 rho: float = 1.0, min_cases: int = 1,
                                 expected: np.ndarray | None = None) -> pd.DataFrame:
    """Risk-window count thresholds of a group-sequential binomial test at looks with ``cases`` cumulative cases.

    The conditional (self-controlled) counterpart of :func:`poisson_spending_thresholds`: information is the
    number of cases, each in the risk window with probability ``1 / (1 + z)`` under the null.

    ``expected`` (cumulative null expectation of the risk-window count, one per look) lets that probability vary
    between cases, e.g. with calendar time: the cases added since the previous look are then treated as binomial
    with their mean probability. The exact count is a sum of Bernoullis with unequal probabilities, whose upper
    tail beyond ``mean + 1`` is at most the binomial one with the same mean (Hoeffding 1956), so the
    thresholds stay conservative.

    Examples
    --------
    >>> binomial_spending_thresholds(np.array([10, 20]), 20, z=1.0)["threshold"].tolist()
    [9, 15]
    >>> binomial_spending_thresholds(np.array([10, 20]), 20, z=1.0, expected=np.array([5.0, 10.0]))["threshold"].tolist()
    [9, 15]
    """
    _check_alpha(alpha)
    looks = np.asarray(cases, dtype=np.int64)
    if looks.size == 0 or np.any(np.diff(looks) < 0) or looks[0] < 0 or z <= 0:
        raise PathwaysInputError("cases: cumulative case counts must be >= 0 and non-decreasing; z must be > 0")
    step_p, z_cum = _null_probabilities(looks, z, expected)
    alive = np.zeros(int(looks.max()) + 2)
    alive[0] = 1.0
    target = power_spending(looks / max_cases, alpha, rho)
    thresholds, spent, previous = [], [], 0
    for i, n in enumerate(looks):
        step = int(n - previous)
        if step > 0:  # add `step` cases at once: convolve with Binomial(step, p)
            alive = np.convolve(alive, stats.binom.pmf(np.arange(step + 1), step, step_p[i]))[:alive.size]
        k, mass = _spend(alive[:n + 1], target[i] - sum(spent), min_cases)
        alive[k:] = 0.0
        thresholds.append(k), spent.append(mass)
        previous = n
    k = np.asarray(thresholds, float)
    llr = np.where(k <= looks, binomial_llr(np.minimum(k, looks), looks.astype(float), z_cum), np.inf)  # inf: never
    return _spending_table(looks.astype(float), thresholds, spent, target, llr)


def _null_probabilities(looks: np.ndarray, z: float, expected: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Null risk-window probability of the cases added at each look, and the cumulative odds ``z`` per look."""
    if expected is None:
        return np.full(looks.size, 1.0 / (1.0 + z)), np.full(looks.size, float(z))
    e = np.asarray(expected, dtype=float)
    if e.shape != looks.shape or np.any(e < 0) or np.any(e > looks + 1e-9) or np.any(np.diff(e) < -1e-9):
        raise PathwaysInputError("expected: one cumulative null risk count per look, non-decreasing, within "
                                 "[0, cases]")
    d_n, d_e = np.diff(looks, prepend=0), np.diff(e, prepend=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        step_p = np.clip(np.where(d_n > 0, d_e / d_n, 0.5), 1e-12, 1 - 1e-12)
        z_cum = np.where((e > 0) & (looks > e), (looks - e) / e, float(z))
    return step_p, z_cum

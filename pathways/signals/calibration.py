"""Empirical calibration of p-values and intervals against negative controls (Schuemie et al. 2014, 2018).

Negative controls are (exposure, outcome) pairs believed to have no causal effect. Their estimates scatter around
the null more than their standard errors say, because of systematic error (confounding, measurement). The
systematic-error null is fitted as log(estimate_i) ~ N(μ, σ² + se_i²) by maximum likelihood; a new estimate with
log value θ and standard error s is then compared with N(μ, σ² + s²) instead of N(0, s²).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from pathways.errors import PathwaysInputError


@dataclass(frozen=True)
class SystematicErrorNull:
    """Fitted null distribution of log estimates of negative controls."""

    mean: float
    sd: float
    n_controls: int

    def calibrated_p(self, log_estimate: np.ndarray, se: np.ndarray) -> np.ndarray:
        """Two-sided p-value of each estimate against the empirical null."""
        z = (np.asarray(log_estimate) - self.mean) / np.sqrt(self.sd**2 + np.asarray(se) ** 2)
        return 2 * stats.norm.sf(np.abs(z))

    def calibrated_interval(self, log_estimate: np.ndarray, se: np.ndarray,
                            alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """Interval on the ratio scale after removing the systematic bias and adding its spread."""
        z = stats.norm.ppf(1 - alpha / 2)
        centre = np.asarray(log_estimate) - self.mean
        width = z * np.sqrt(self.sd**2 + np.asarray(se) ** 2)
        return np.exp(centre - width), np.exp(centre + width)


def fit_null(log_estimates: np.ndarray, se: np.ndarray, min_controls: int = 5) -> SystematicErrorNull:
    """Maximum-likelihood fit of the systematic-error null from negative-control estimates.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> se = np.full(200, 0.1)
    >>> null = fit_null(rng.normal(0.3, 0.2, 200) + rng.normal(0, se), se)
    >>> round(null.mean, 1), round(null.sd, 1)
    (0.3, 0.2)
    """
    log_estimates = np.asarray(log_estimates, dtype=float)
    se = np.asarray(se, dtype=float)
    ok = np.isfinite(log_estimates) & np.isfinite(se) & (se > 0)
    if ok.sum() < min_controls:
        raise PathwaysInputError(f"negative controls: {int(ok.sum())} usable estimates (finite, se > 0), "
                                 f"at least {min_controls} are needed to fit the systematic-error null")
    x, s = log_estimates[ok], se[ok]

    def nll(params: np.ndarray) -> float:
        mu, log_sd = params
        return -float(stats.norm.logpdf(x, mu, np.sqrt(np.exp(2 * log_sd) + s**2)).sum())

    start = np.array([np.mean(x), np.log(max(np.std(x), 1e-3))])
    res = optimize.minimize(nll, start, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10})
    sd = float(np.exp(res.x[1]))
    return SystematicErrorNull(float(res.x[0]), sd if sd > 1e-6 else 0.0, int(ok.sum()))

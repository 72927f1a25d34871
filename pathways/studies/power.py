"""Power of a cohort study's Cox comparison: power at a relative risk and minimum detectable relative risk.

Both use Schoenfeld's (1983) approximation: the log hazard ratio estimated from ``D`` events with shares ``p`` and
``1 - p`` of target and comparator patients has variance about ``1 / (D p (1 - p))`` (OHDSI's MDRR, "SQRT").
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def minimum_detectable_rr(n_target: int, n_comparator: int, n_events: int, *, alpha: float = 0.05,
                          power: float = 0.8) -> float:
    """Smallest hazard ratio (> 1) detected with ``power`` by a two-sided test at ``alpha``; inf without events.

    Examples
    --------
    >>> round(minimum_detectable_rr(1000, 1000, 100), 3)
    1.751
    """
    total = n_target + n_comparator
    if n_events <= 0 or n_target <= 0 or n_comparator <= 0:
        return float("inf")
    p = n_target / total
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(np.exp(np.sqrt(z**2 / (n_events * p * (1 - p)))))


def power_at(rr: float, n_target: int, n_comparator: int, n_events: int, *, alpha: float = 0.05) -> float:
    """Power of the two-sided test at ``alpha`` to detect hazard ratio ``rr``.

    Examples
    --------
    >>> round(power_at(1.751, 1000, 1000, 100), 2)
    0.8
    """
    total = n_target + n_comparator
    if n_events <= 0 or n_target <= 0 or n_comparator <= 0:
        return 0.0
    p = n_target / total
    shift = abs(np.log(rr)) * np.sqrt(n_events * p * (1 - p))
    z = stats.norm.ppf(1 - alpha / 2)
    return float(stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z))


__all__ = ["minimum_detectable_rr", "power_at"]

"""Empirical calibration of cohort-study estimates with negative-control outcomes.

Negative controls (outcomes not caused by either drug) are estimated with the same design and analysis; their
log hazard ratios scatter around the null more than their standard errors say because of residual confounding.
The systematic-error null of :mod:`pathways.signals.calibration` is fitted on them and every estimate gets a
calibrated p-value and interval, as OHDSI's EmpiricalCalibration does.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pathways.errors import PathwaysInputError
from pathways.signals.calibration import SystematicErrorNull, fit_null


def calibrate_estimates(estimates: pd.DataFrame, negative_control: np.ndarray | pd.Series, *,
                        min_controls: int = 5, alpha: float = 0.05) -> tuple[pd.DataFrame, SystematicErrorNull]:
    """Add ``p_calibrated``, ``ci_low_calibrated`` and ``ci_high_calibrated`` to an estimate table.

    Parameters
    ----------
    estimates : one row per outcome with ``log_hr`` and ``se_log_hr``.
    negative_control : True for the rows that are negative controls (they fit the null).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> table = pd.DataFrame({"log_hr": rng.normal(0.2, 0.1, 30), "se_log_hr": np.full(30, 0.05)})
    >>> out, null = calibrate_estimates(table, np.ones(30, bool))
    >>> bool((out["p_calibrated"] > 0.01).mean() > 0.9), round(null.mean, 1)
    (True, 0.2)
    """
    for col in ("log_hr", "se_log_hr"):
        if col not in estimates:
            raise PathwaysInputError(f"estimates: missing column {col!r}")
    controls = np.asarray(negative_control, dtype=bool)
    if controls.size != len(estimates):
        raise PathwaysInputError(f"negative_control: {controls.size} flags for {len(estimates)} estimates")
    log_hr = estimates["log_hr"].to_numpy(float)
    se = estimates["se_log_hr"].to_numpy(float)
    null = fit_null(log_hr[controls], se[controls], min_controls=min_controls)
    out = estimates.copy()
    out["p_calibrated"] = null.calibrated_p(log_hr, se)
    low, high = null.calibrated_interval(log_hr, se, alpha=alpha)
    out["ci_low_calibrated"], out["ci_high_calibrated"] = low, high
    return out, null


__all__ = ["calibrate_estimates"]

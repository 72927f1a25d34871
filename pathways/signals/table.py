"""The signal table: one row per (exposure, outcome, method), with q-values, calibration, ranking and flag."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from pathways.errors import PathwaysInputError
from pathways.signals.calibration import SystematicErrorNull, fit_null

SIGNAL_COLUMNS = ("exposure", "outcome", "method", "estimate", "ci_low", "ci_high", "p", "q", "p_calibrated",
                  "ci_low_calibrated", "ci_high_calibrated", "n_exposed_events", "rank", "flag")


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values (NaN p-values stay NaN and do not count as tests).

    Examples
    --------
    >>> benjamini_hochberg(np.array([0.01, 0.04, 0.03, np.nan])).round(3).tolist()[:3]
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    order = np.argsort(p[ok])
    ranked = p[ok][order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    q[ok] = out
    return q


def signal_table(estimates: pd.DataFrame, *, negative_controls: Iterable[tuple[str, str]] | None = None,
                 q_threshold: float = 0.05, alpha: float = 0.05, min_events: int = 3,
                 lower_bound_thresholds: dict[str, float] | None = None) -> pd.DataFrame:
    """Assemble the signal table from stacked per-method estimates.

    Parameters
    ----------
    estimates : rows with ``exposure, outcome, method, estimate, ci_low, ci_high, p, n_exposed_events`` and, for
        methods with a Wald interval, ``se_log`` (standard error of log estimate). Ratio scale (1 = no effect).
    negative_controls : (exposure, outcome) pairs with no causal effect; per method with ``se_log``, their
        estimates fit the systematic-error null that calibrates p-values and intervals (OHDSI practice).
    q_threshold : Benjamini-Hochberg level (per method) for flags of frequentist methods; the calibrated q-values
        (``q_calibrated``) decide when negative controls are given.
    min_events : pairs with fewer exposed events are never flagged.
    lower_bound_thresholds : Bayesian methods (no p-value) flag when ``ci_low`` exceeds this, by method.
        Defaults: IC -> 1 (IC025 > 0), EBGM -> 2 (EB05 > 2, the FDA's usual rule).

    Returns
    -------
    DataFrame with :data:`SIGNAL_COLUMNS` first; ``attrs["null"]`` holds the fitted null per method.
    """
    need = {"exposure", "outcome", "method", "estimate", "ci_low", "ci_high", "p", "n_exposed_events"}
    missing = sorted(need - set(estimates.columns))
    if missing:
        raise PathwaysInputError(f"estimates: missing column(s) {missing}")
    bounds = {"IC": 1.0, "EBGM": 2.0, **(lower_bound_thresholds or {})}
    controls = set(map(tuple, negative_controls or []))
    parts, nulls = [], {}
    for method, part in estimates.groupby("method", sort=False):
        part = part.copy()
        part["q"] = benjamini_hochberg(part["p"].to_numpy())
        null = _fit_method_null(part, controls)
        if null is not None:
            nulls[method] = null
        _calibrate(part, null, alpha)
        part["q_calibrated"] = benjamini_hochberg(part["p_calibrated"].to_numpy())
        part["flag"] = _flags(part, method, q_threshold, min_events, bounds)
        part["rank"] = _rank(part)
        part["negative_control"] = [(e, o) in controls for e, o in zip(part["exposure"], part["outcome"])]
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    rest = [c for c in table.columns if c not in SIGNAL_COLUMNS]
    table = table[list(SIGNAL_COLUMNS) + rest]
    table.attrs["null"] = {m: {"mean": n.mean, "sd": n.sd, "n_controls": n.n_controls} for m, n in nulls.items()}
    return table


def _fit_method_null(part: pd.DataFrame, controls: set[tuple[str, str]]) -> SystematicErrorNull | None:
    if not controls or "se_log" not in part or part["se_log"].isna().all():
        return None  # Bayesian methods (IC, EBGM) have no Wald standard error to calibrate
    is_control = np.array([(e, o) in controls for e, o in zip(part["exposure"], part["outcome"])])
    if not is_control.any():
        return None
    return fit_null(np.log(part["estimate"].to_numpy()[is_control]), part["se_log"].to_numpy()[is_control])


def _calibrate(part: pd.DataFrame, null: SystematicErrorNull | None, alpha: float) -> None:
    if null is None:
        part["p_calibrated"] = np.nan
        part["ci_low_calibrated"] = np.nan
        part["ci_high_calibrated"] = np.nan
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        log_est = np.log(part["estimate"].to_numpy())
    se = part["se_log"].to_numpy()
    part["p_calibrated"] = null.calibrated_p(log_est, se)
    low, high = null.calibrated_interval(log_est, se, alpha)
    part["ci_low_calibrated"], part["ci_high_calibrated"] = low, high


def _flags(part: pd.DataFrame, method: str, q_threshold: float, min_events: int,
           bounds: dict[str, float]) -> np.ndarray:
    enough = part["n_exposed_events"].to_numpy() >= min_events
    above = part["estimate"].to_numpy() > 1.0
    if part["p"].notna().any():
        # With negative controls the calibrated q-values decide: raw p-values ignore systematic error.
        q = part["q_calibrated"] if part["q_calibrated"].notna().any() else part["q"]
        return enough & above & (np.nan_to_num(q.to_numpy(), nan=1.0) < q_threshold)
    threshold = bounds.get(method, 1.0)
    return enough & (np.nan_to_num(part["ci_low"].to_numpy(), nan=0.0) > threshold)


def _rank(part: pd.DataFrame) -> np.ndarray:
    """1 = strongest signal: flagged first, then by (calibrated) p or lower bound, then by estimate."""
    p = part["p_calibrated"].fillna(part["p"]).fillna(1.0).to_numpy()
    key = pd.DataFrame({"flag": ~part["flag"].to_numpy(), "p": p, "low": -part["ci_low"].fillna(0).to_numpy(),
                        "est": -part["estimate"].fillna(0).to_numpy()})
    order = key.sort_values(["flag", "p", "low", "est"], kind="stable").index
    rank = np.empty(len(part), dtype=np.int64)
    rank[order] = np.arange(1, len(part) + 1)
    return rank

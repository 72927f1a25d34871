"""The signal table: one row per (exposure, outcome, method), with q-values, calibration, ranking and flag."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from pathways.disclosure import TABLES
from pathways.errors import PathwaysInputError
from pathways.signals.calibration import SystematicErrorNull, fit_null

SIGNAL_COLUMNS = ("exposure", "outcome", "method", "estimate", "ci_low", "ci_high", "p", "q", "p_calibrated",
                  "ci_low_calibrated", "ci_high_calibrated", "n_exposed_events", "rank", "flag", "status")

#: Every signal-table row carries one of these in ``status``.
STATUSES = ("estimated", "separated", "no exposed outcome", "too few cases", "suppressed")


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
                 lower_bound_thresholds: dict[str, float] | None = None, suppress_below: int = 0) -> pd.DataFrame:
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
    suppress_below : small-cell suppression: rows with 0 < exposed events < this get status ``"suppressed"`` and no
        numbers: their count and every column it can be recomputed from (``pathways.disclosure.TABLES["signals"]``)
        are blank (0: off).

    Notes
    -----
    ``status`` (one of :data:`STATUSES`) comes from ``estimates["status"]`` when given (SCCS), else: ``"no exposed
    outcome"`` for a NaN estimate without exposed events, ``"too few cases"`` for another NaN estimate,
    ``"estimated"`` otherwise. A separated pair has no Wald standard error to calibrate: its raw (likelihood-ratio)
    q-value decides its flag. :func:`pair_summary` gives the methods' agreement per pair.

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
    estimates = _with_status(estimates, int(suppress_below))
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
        # (rows without a calibrated value, e.g. separated SCCS pairs, keep their raw q-value)
        q = part["q_calibrated"].fillna(part["q"]) if part["q_calibrated"].notna().any() else part["q"]
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


def _with_status(estimates: pd.DataFrame, suppress_below: int) -> pd.DataFrame:
    """Fill ``status`` where missing and blank suppressed rows (see :func:`signal_table`)."""
    out = estimates.copy()
    est, n = out["estimate"].to_numpy(dtype=float), out["n_exposed_events"].to_numpy(dtype=float)
    derived = np.select([np.isnan(est) & (n == 0), np.isnan(est)], ["no exposed outcome", "too few cases"],
                        "estimated")
    given = out["status"] if "status" in out else pd.Series(np.nan, index=out.index, dtype=object)
    status = np.array(given.where(given.notna(), pd.Series(derived, index=out.index)), dtype=object)
    hidden = (n > 0) & (n < suppress_below)
    status[hidden] = "suppressed"
    # every column a small count can be recomputed from (log2_estimate, expected, se_log...): pathways.disclosure
    numbers = [c for c in ("n_exposed_events", *TABLES["signals"].derived) if c in out]
    out[numbers] = out[numbers].astype(float)
    out.loc[hidden, numbers] = np.nan
    out["status"] = status
    return out


def pair_summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (exposure, outcome) across methods: who flags it, each method's status, and the agreement.

    Returns
    -------
    DataFrame ``exposure, outcome, n_methods, n_flagged, flagged_by, statuses`` ("SCCS: separated; PRR:
    estimated"), ``agreement`` (``"all flag"``, ``"none flag"`` or ``"disagree"``) and ``best_rank`` (the
    smallest rank over methods), sorted by flags then rank.

    Examples
    --------
    >>> t = pd.DataFrame({"exposure": ["d", "d"], "outcome": ["e", "e"], "method": ["SCCS", "PRR"],
    ...                   "flag": [True, False], "status": ["separated", "estimated"], "rank": [1, 3]})
    >>> row = pair_summary(t).iloc[0]
    >>> int(row["n_flagged"]), row["flagged_by"], row["agreement"]
    (1, 'SCCS', 'disagree')
    """
    t = table.assign(_flagged=np.where(table["flag"].astype(bool), table["method"].astype(str), None),
                     _status=table["method"].astype(str) + ": " + table["status"].astype(str))
    g = t.groupby(["exposure", "outcome"], sort=False)
    out = pd.DataFrame({
        "n_methods": g["method"].size(), "n_flagged": g["flag"].sum().astype(np.int64),
        "flagged_by": g["_flagged"].agg(lambda s: ", ".join(s.dropna())),
        "statuses": g["_status"].agg("; ".join), "best_rank": g["rank"].min()}).reset_index()
    out["agreement"] = np.select([out["n_flagged"] == out["n_methods"], out["n_flagged"] == 0],
                                 ["all flag", "none flag"], "disagree")
    return out.sort_values(["n_flagged", "best_rank"], ascending=[False, True], kind="stable").reset_index(drop=True)

"""Disclosure control: the one home of small-count suppression for every published table, file and figure.

Publication rules for claims data (SNDS: no cell under 10 patients or events) forbid showing a count between 1 and
``min_count - 1``. Blanking the count alone is not enough: an IC row keeps ``log2_estimate`` and ``expected``, from
which ``2**log2_estimate * (expected + 0.5) - 0.5`` gives the count back; a PRR/ROR/SCCS row keeps ``se_log`` (about
``1/sqrt(count)``), its interval or its p-value. So each table declares (:data:`TABLES`) its **count columns** and
the **derived columns** from which a count can be recomputed; a row with any count in ``1 .. min_count - 1`` has its
small counts and all its derived columns blanked (NaN), ``suppressed = True`` and, where the table has one, ``status =
"suppressed"``. Zero counts stay: an empty cell discloses nobody.

Tables without a declared rule get :data:`DEFAULT_RULE`: counts by name (``n``, ``count``, ``n_*``, ``*_count``) and
every derived column any declared table lists (:data:`DERIVED_NAMES`). Pipelines suppress the frame once and write
that same frame to parquet, CSV, the markdown report and the figures, so all outputs agree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from pathways.errors import PathwaysInputError

__all__ = ["DEFAULT_RULE", "DERIVED_NAMES", "SuppressionRule", "TABLES", "count_columns", "small_mask", "suppress",
           "suppress_small_counts", "unclassified"]


@dataclass(frozen=True)
class SuppressionRule:
    """What suppression blanks in one table.

    Parameters
    ----------
    counts : count columns (patients, events, cases); columns named like counts (:func:`count_columns`) are counts
        too unless listed in ``safe``.
    derived : columns blanked on every row with a small count: estimates, intervals, standard errors, expected
        counts, p-values... anything a count can be recomputed from.
    per_count : count column -> columns blanked only when that count is small (tables whose counts have their own
        dependents, e.g. cartography: a small population hides the rate, a small prevalent count the costs).
    safe : numeric columns that reveal no count (keys such as ``lag_days``, ``year``, ``rank``); listed so that
        :func:`unclassified` can catch a new column nobody classified.
    """

    counts: tuple[str, ...] | None = None
    derived: tuple[str, ...] = ()
    per_count: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    safe: tuple[str, ...] = ()


_SIGNAL_DERIVED = ("estimate", "log2_estimate", "ci_low", "ci_high", "se_log", "expected", "p", "q",
                   "p_calibrated", "q_calibrated", "ci_low_calibrated", "ci_high_calibrated")

#: the declared rule of every table pathways publishes (name -> rule)
TABLES: dict[str, SuppressionRule] = {
    "signals": SuppressionRule(("n_exposed_events",), _SIGNAL_DERIVED, safe=("rank",)),
    "factors": SuppressionRule(("n", "n_source_events", "n_target_events"),
                               ("effect", "ci_low", "ci_high", "estimate", "p", "q", "se", "se_log", "std_err"),
                               safe=("lag_days",)),
    "code_counts": SuppressionRule(("n_events", "n_patients")),
    "anomalies": SuppressionRule(("n_events",), safe=("exposure", "score", "loglik_per_event", "ks_distance",
                                                      "timing_score", "volume_score", "sequence")),
    "ri_curves": SuppressionRule(("n_outcomes",), ("ri", "ci_low", "ci_high"), safe=("lag_start", "lag_end")),
    # thresholds of group-sequential tests are computed from the cumulative number of cases
    "surveillance_looks": SuppressionRule(("n_cases", "n_risk", "n_exposures", "n_sccs_events"),
                                          ("estimate", "llr", "threshold", "llr_threshold", "ci_low", "ci_high",
                                           "p", "q", "se_log", "expected_risk", "sccs_estimate", "sccs_ci_low",
                                           "sccs_ci_high", "sccs_p"), safe=("look",)),
    "surveillance_alerts": SuppressionRule(("n_cases", "n_risk"), ("estimate",),
                                           safe=("first_alert_look", "n_looks_alerted", "persistence",
                                                 "n_dropped")),
    # entity rankings: the scores are z-values against peers, the counts the entity's own volume
    "abuse": SuppressionRule(("n_events", "n_patients"), safe=("rank", "score", "n_flags", "amount_at_stake")),
    "cartography": SuppressionRule(
        ("population", "prevalent", "incident"),
        per_count={"population": ("prevalence_rate",),
                   "prevalent": ("incident", "prevalence_rate", "mean_cost", "cost_change", "volume_effect",
                                 "cost_per_patient_effect"),
                   "incident": ()},
        safe=("year", "total_cost")),
    "study_estimates": SuppressionRule(
        ("n_target", "n_comparator", "events_target", "events_comparator"),
        ("person_time_target", "person_time_comparator", "irr", "irr_ci_low", "irr_ci_high", "hr", "ci_low",
         "ci_high", "p", "q", "p_calibrated", "ci_low_calibrated", "ci_high_calibrated", "hr_crude", "ci_low_crude",
         "ci_high_crude", "log_hr", "se_log_hr", "mdrr")),
    "study_flowchart": SuppressionRule(("n_subjects", "n_excluded", "n_target", "n_comparator"),
                                       ("share_of_initial",)),
    "study_kaplan_meier": SuppressionRule(("n_at_risk",), ("survival", "ci_low", "ci_high"), safe=("time",)),
    "study_preference": SuppressionRule(("n_target", "n_comparator")),
}

#: every derived column of a declared table: what an undeclared table has blanked
DERIVED_NAMES: tuple[str, ...] = tuple(dict.fromkeys(
    c for rule in TABLES.values() for c in (*rule.derived, *(x for cols in rule.per_count.values() for x in cols))))
DEFAULT_RULE = SuppressionRule(None, DERIVED_NAMES)


def count_columns(frame: pd.DataFrame) -> list[str]:
    """Columns holding counts of patients or events by name: ``n``, ``n_*``, ``count``, ``*_count``.

    >>> count_columns(pd.DataFrame(columns=["code", "n_events", "effect", "row_count"]))
    ['n_events', 'row_count']
    """
    return [c for c in frame.columns
            if str(c) in ("n", "count") or str(c).startswith("n_") or str(c).endswith("_count")]


def _rule(table: str | SuppressionRule | None) -> SuppressionRule:
    if table is None:
        return DEFAULT_RULE
    if isinstance(table, SuppressionRule):
        return table
    if table not in TABLES:
        raise PathwaysInputError(f"argument 'table': no suppression rule named {table!r} (known: {sorted(TABLES)})")
    return TABLES[table]


def _threshold(min_count: int | None) -> int | None:
    if min_count is None:
        return None
    integral = isinstance(min_count, (int, np.integer, float, np.floating)) and float(min_count).is_integer()
    if isinstance(min_count, bool) or not integral or min_count < 1:
        raise PathwaysInputError(f"argument 'min_count' (report.min_cell_count): expected None or an integer >= 1, "
                                 f"got {min_count!r}")
    return int(min_count)


def small_mask(values: pd.Series | np.ndarray, min_count: int) -> np.ndarray:
    """True where a count lies in ``1 .. min_count - 1`` (NaN and zero are not small).

    >>> small_mask(np.array([0, 3, 10, np.nan]), 10).tolist()
    [False, True, False, False]
    """
    v = pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce").to_numpy(float)
    return (v > 0) & (v < min_count)


def suppress(frame: pd.DataFrame, min_count: int | None, table: str | SuppressionRule | None = None, *,
             flag: bool = True) -> pd.DataFrame:
    """A copy of ``frame`` with small counts and every column derived from them blanked on the rows concerned.

    Parameters
    ----------
    frame : the table to publish.
    min_count : counts in ``1 .. min_count - 1`` are hidden (None: nothing is hidden).
    table : a name of :data:`TABLES`, a :class:`SuppressionRule`, or None for :data:`DEFAULT_RULE`.
    flag : add the boolean column ``suppressed`` (True on rows with a hidden count).

    Examples
    --------
    >>> ic = pd.DataFrame({"method": ["IC", "IC"], "n_exposed_events": [3, 40], "estimate": [2.0, 1.1],
    ...                    "log2_estimate": [1.0, 0.14], "expected": [1.25, 36.0], "se_log": [np.nan, np.nan]})
    >>> out = suppress(ic, 10, "signals")
    >>> bool(out[["n_exposed_events", "log2_estimate", "expected"]].iloc[0].isna().all()), bool(out["suppressed"][1])
    (True, False)
    """
    k = _threshold(min_count)
    rule = _rule(table)
    out = frame.copy()
    row = np.zeros(len(out), dtype=bool)
    if k is not None and len(out):
        declared = [c for c in (rule.counts or ()) if c in out.columns]
        counts = list(dict.fromkeys(declared + [c for c in count_columns(out) if c not in rule.safe]))
        small = {c: small_mask(out[c], k) for c in counts}
        for col, hit in small.items():
            row |= hit
        for col, hit in small.items():
            out[col] = _blank(out[col], hit)
        for col in rule.derived:
            if col in out.columns:
                out[col] = _blank(out[col], row)
        for count, cols in rule.per_count.items():
            for col in cols:
                if count in small and col in out.columns:
                    out[col] = _blank(out[col], small[count])
    if "status" in out.columns and row.any():  # tables with a status column say why a row has no numbers
        out["status"] = out["status"].astype(object).where(~row, "suppressed")
    if flag:
        out["suppressed"] = row
    return out


def _blank(column: pd.Series, hide: np.ndarray) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce").astype(float)
    return values.where(~hide)


def unclassified(frame: pd.DataFrame, table: str) -> list[str]:
    """Numeric columns of ``frame`` the rule of ``table`` neither counts, derives nor declares safe (a new column
    that suppression would leave visible): tests assert this is empty on real outputs."""
    rule = TABLES[table]
    known = set(rule.counts or ()) | set(rule.derived) | set(rule.safe) | {"suppressed"}
    known |= {c for cols in rule.per_count.values() for c in cols}
    return [str(c) for c in frame.columns
            if c not in known and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]


def suppress_small_counts(frame: pd.DataFrame, min_cell_count: int | None,
                          columns: Sequence[str] | None = None, table: str | SuppressionRule | None = None
                          ) -> pd.DataFrame:
    """:func:`suppress` with the report's historical signature: ``columns`` names the count columns of an
    undeclared table (its derived columns are then :data:`DERIVED_NAMES`).

    Examples
    --------
    >>> t = pd.DataFrame({"code": ["a", "b"], "n_events": [3, 40], "effect": [0.5, 0.1]})
    >>> suppress_small_counts(t, 10)["effect"].tolist()
    [nan, 0.1]
    """
    if columns is not None:
        table = SuppressionRule(tuple(columns), _rule(table).derived)
    return suppress(frame, min_cell_count, table)

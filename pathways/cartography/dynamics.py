"""Dynamics of the pathology states: year-to-year multi-state transitions with 95 % intervals, time to death by
group (life table), and the transitions as a factors table (source state -> target state, one year later).

A patient-year's *state* is the first group it holds in ``order`` (default: the rule set's order, which puts acute
and active states first), else ``none``. From a row of year Y (before the last table year) the next state is ``death`` when the patient died
during Y, the state of their row of Y + 1 when there is one, else ``lost`` (left the population).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from pathways.cartography.identify import PatientYears
from pathways.data.tables import factors_frame
from pathways.errors import PathwaysInputError

NONE, DEATH, LOST = "none", "death", "lost"


def pathology_states(py: PatientYears, order: Sequence[str] | None = None) -> np.ndarray:
    """State of each row: the first group of ``order`` it holds, else ``"none"``."""
    order = list(py.groups if order is None else order)
    unknown = [g for g in order if g not in py.groups]
    if unknown:
        raise PathwaysInputError(f"argument 'order': unknown group(s) {unknown}")
    cols = py.flags.tocsc()
    state = np.full(py.n_rows, len(order), dtype=np.int64)
    for rank in range(len(order) - 1, -1, -1):  # the earliest group in order is written last, and wins
        j = py.groups.index(order[rank])
        state[cols.indices[cols.indptr[j]:cols.indptr[j + 1]]] = rank
    return np.asarray(order + [NONE], dtype=object)[state]


def wilson(k: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion k / n (NaN where n = 0).

    Examples
    --------
    >>> lo, hi = wilson(np.array([5]), np.array([10]))
    >>> round(float(lo[0]), 3), round(float(hi[0]), 3)
    (0.237, 0.763)
    """
    z = norm.ppf(0.5 + level / 2)
    k, n = np.asarray(k, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = np.where(k > 0, centre - half, 0.0)  # exact bounds at 0 and n (no rounding just inside them)
    high = np.where(k < n, centre + half, 1.0)
    return np.where(n > 0, low, np.nan), np.where(n > 0, high, np.nan)


def transitions(py: PatientYears, order: Sequence[str] | None = None, by_year: bool = False) -> pd.DataFrame:
    """Transition counts and rates between states from one year to the next, with Wilson 95 % intervals.

    Returns
    -------
    DataFrame: (``year`` when ``by_year``) ``from_state``, ``to_state``, ``n`` (transitions), ``n_from`` (rows in
    the from state, excluding the last year), ``rate`` = n / n_from, ``ci_low``, ``ci_high``.
    """
    return transition_rates(transition_counts(py, order, by_year))


def transition_counts(py: PatientYears, order: Sequence[str] | None = None, by_year: bool = False) -> pd.DataFrame:
    """Counts ``n`` per (year,) from_state, to_state: additive over chunks of patients."""
    state = pathology_states(py, order)
    nxt = next_states(py, state)
    keep = nxt != ""
    frame = pd.DataFrame({"year": py.year[keep], "from_state": state[keep], "to_state": nxt[keep]})
    keys = (["year"] if by_year else []) + ["from_state", "to_state"]
    return frame.groupby(keys, sort=True).size().rename("n").reset_index()


def transition_rates(counts: pd.DataFrame) -> pd.DataFrame:
    """Rates and Wilson intervals from (summed) transition counts."""
    keys = [c for c in ("year", "from_state") if c in counts.columns]
    out = counts.groupby(keys + ["to_state"], sort=True)["n"].sum().reset_index()
    out["n_from"] = out.groupby(keys)["n"].transform("sum")
    out["rate"] = out["n"] / out["n_from"]
    out["ci_low"], out["ci_high"] = wilson(out["n"].to_numpy(), out["n_from"].to_numpy())
    return out


def next_states(py: PatientYears, state: np.ndarray) -> np.ndarray:
    """Next-year state of each row: ``death``, the next row's state, ``lost``; ``""`` in the last table year."""
    last_year = int(py.year.max()) if py.n_rows else 0
    following = np.zeros(py.n_rows, dtype=bool)
    following[:-1] = (py.patient[1:] == py.patient[:-1]) & (py.year[1:] == py.year[:-1] + 1)
    nxt = np.full(py.n_rows, LOST, dtype=object)
    idx = np.flatnonzero(following)
    nxt[idx] = state[idx + 1]
    nxt[py.died] = DEATH
    nxt[py.year == last_year] = ""  # the last year's deaths alone would inflate its death rates: no next year
    return nxt


def time_to_death(py: PatientYears) -> pd.DataFrame:
    """Life table of death after entry in each group: entry = first table year the patient holds the group;
    years_since_entry k = 0, 1, ...; ``at_risk`` rows, ``deaths`` in the year, ``survival`` S(k) (Kaplan-Meier on
    yearly steps, end of year k) and its Greenwood 95 % interval. Patients leaving without death are censored."""
    return survival_table(survival_counts(py))


def survival_counts(py: PatientYears) -> pd.DataFrame:
    """(group, years_since_entry, at_risk, deaths): additive over chunks of patients."""
    flags = py.flags.tocsc()
    records = []
    starts = np.flatnonzero(np.r_[True, py.patient[1:] != py.patient[:-1]]) if py.n_rows else np.zeros(0, int)
    first_row = np.repeat(starts, np.diff(np.r_[starts, py.n_rows]))
    for j, g in enumerate(py.groups):
        rows = flags.indices[flags.indptr[j]:flags.indptr[j + 1]]
        if not rows.size:
            continue
        entry = np.full(py.n_rows, np.iinfo(np.int32).max, dtype=np.int64)
        np.minimum.at(entry, first_row[rows], py.year[rows])
        entry = entry[first_row]  # each row sees its patient's entry year
        follow = py.year >= entry
        k = (py.year[follow] - entry[follow]).astype(np.int64)
        at_risk = np.bincount(k)
        deaths = np.bincount(k, weights=py.died[follow].astype(float), minlength=at_risk.size)
        records.append(pd.DataFrame({"group": g, "years_since_entry": np.arange(at_risk.size), "at_risk": at_risk,
                                     "deaths": deaths.astype(np.int64)}))
    columns = ["group", "years_since_entry", "at_risk", "deaths"]
    return pd.concat(records, ignore_index=True) if records else pd.DataFrame(columns=columns)


def survival_table(counts: pd.DataFrame) -> pd.DataFrame:
    """Kaplan-Meier survival and Greenwood intervals per group from (summed) life-table counts."""
    counts = counts.groupby(["group", "years_since_entry"], sort=False)[["at_risk", "deaths"]].sum().reset_index()
    parts = []
    for _, part in counts.groupby("group", sort=False):
        n, d = part["at_risk"].to_numpy(float), part["deaths"].to_numpy(float)
        surv = np.cumprod(1 - np.where(n > 0, d / np.maximum(n, 1), 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            var = surv ** 2 * np.cumsum(np.where(n > d, d / (n * (n - d)), 0.0))
        half = 1.96 * np.sqrt(var)
        parts.append(part.assign(survival=surv, ci_low=np.clip(surv - half, 0, 1), ci_high=np.clip(surv + half, 0, 1)))
    columns = ["group", "years_since_entry", "at_risk", "deaths", "survival", "ci_low", "ci_high"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def transition_factors(table: pd.DataFrame) -> pd.DataFrame:
    """The transitions as a factors table: source = from state, target = to state, lag 365 days, effect = rate."""
    return factors_frame(table["from_state"], table["to_state"], table["rate"], method="cartography_transition",
                         lag_days=365.0, ci_low=table["ci_low"], ci_high=table["ci_high"], n=table["n"],
                         n_from=table["n_from"])


__all__ = ["DEATH", "LOST", "NONE", "next_states", "pathology_states", "survival_counts", "survival_table",
           "time_to_death", "transition_counts", "transition_factors", "transition_rates", "transitions", "wilson"]

"""Follow-up windows: start at cohort entry + delay, end at the first of death, observation end, study end or
outcome, with the end reason kept."""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from pathways.cohort.cohort import Cohort, derived_events
from pathways.cohort.intervals import first_per_group
from pathways.data import EventLog
from pathways.errors import PathwaysDataWarning, PathwaysInputError

END_REASONS = ("death", "observation_end", "study_end", "outcome")


def to_time(value: float | str | pd.Timestamp | None, log: EventLog, name: str) -> float:
    """A date or a number as a time of ``log`` (days since its origin for datetimes)."""
    if value is None:
        return np.nan
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if log.origin is None:
        raise PathwaysInputError(f"{name}: got a date ({value!r}) but the EventLog has numeric times "
                                 f"(unit {log.time_unit!r}); pass a number")
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise PathwaysInputError(f"{name}: cannot parse {value!r} as a date") from exc
    return float((stamp - log.origin) / pd.Timedelta(days=1))


def first_event_time(cohort: Cohort, n_patients: int, after: np.ndarray | None = None) -> np.ndarray:
    """Per population patient: time of the first event of ``cohort`` (at or after ``after``), NaN if none."""
    ev = cohort.events
    keep = np.ones(ev.n_events, dtype=bool) if after is None else ev.time >= np.nan_to_num(after[ev.patient],
                                                                                          nan=-np.inf)
    rows, groups = first_per_group(ev.patient[keep], ev.time[keep])
    out = np.full(n_patients, np.nan)
    out[groups] = ev.time[keep][rows]
    return out


def follow_up(
    population: Cohort | EventLog,
    *,
    entry: Cohort | np.ndarray | None = None,
    delay: float = 0.0,
    study_start: float | str | None = None,
    study_end: float | str | None = None,
    outcome: Cohort | None = None,
    end_on: Sequence[str] = END_REASONS,
    name: str = "follow_up",
) -> Cohort:
    """Follow-up window of each subject, as a Cohort of one ``follow_up`` span per subject.

    Parameters
    ----------
    population : subjects to follow (a Cohort, or every patient of an EventLog).
    entry : cohort entry per subject: a Cohort (its first event, e.g. first dispensation; subjects absent from it
        have no entry), an array over the population (NaN = no entry), or None (observation start).
    delay : added to entry (e.g. 90 days of wash-in); follow-up never starts before the observation start or
        ``study_start``.
    study_start, study_end : study period bounds (dates or numbers).
    outcome : a Cohort whose first event at or after the follow-up start ends the follow-up.
    end_on : which events end the follow-up, among ``death``, ``observation_end``, ``study_end``, ``outcome``;
        on ties the first listed wins.

    Returns
    -------
    Cohort whose events are one span per subject: time = start, end = end, code ``name``, category = end reason.
    Subjects without entry, or whose end is not after their start (e.g. death before entry + delay), are
    excluded with a :class:`~pathways.errors.PathwaysDataWarning` naming the count.
    """
    bad = [r for r in end_on if r not in END_REASONS]
    if bad or not end_on:
        raise PathwaysInputError(f"end_on: expected a non-empty subset of {END_REASONS}, got {list(end_on)}")
    if "outcome" in end_on and outcome is None:
        end_on = [r for r in end_on if r != "outcome"]
    cohort = population if isinstance(population, Cohort) else Cohort.from_eventlog(population)
    log, pts = cohort.events, cohort.population
    n = log.n_patients
    obs_start, obs_end = pts["start"].to_numpy(float), pts["end"].to_numpy(float)
    if entry is None:
        entry_time = obs_start.copy()
    elif isinstance(entry, Cohort):
        entry_time = first_event_time(entry, n)
    else:
        entry_time = np.asarray(entry, dtype=np.float64)
        if entry_time.shape != (n,):
            raise PathwaysInputError(f"entry: expected {n} values (one per patient), got {entry_time.shape}")
    start = np.fmax(np.fmax(entry_time + float(delay), obs_start), to_time(study_start, log, "study_start"))
    start[np.isnan(entry_time)] = np.nan
    candidates = {
        "death": pts["death"].to_numpy(float),
        "observation_end": obs_end,
        "study_end": np.full(n, to_time(study_end, log, "study_end")),
        "outcome": first_event_time(outcome, n, after=start) if outcome is not None else np.full(n, np.nan),
    }
    stacked = np.stack([np.nan_to_num(candidates[r], nan=np.inf) for r in end_on], axis=1)
    which = np.argmin(stacked, axis=1)  # first listed reason wins ties
    end = stacked[np.arange(n), which]
    subjects = cohort.subjects
    ok = np.isfinite(start[subjects]) & np.isfinite(end[subjects]) & (end[subjects] > start[subjects])
    ok &= start[subjects] <= obs_end[subjects]  # a span must start inside the observation window
    n_out = int((~ok).sum())
    if n_out:
        warnings.warn(f"follow_up: {n_out} of {subjects.size} subjects excluded (no entry, or end not after "
                      f"start)", PathwaysDataWarning, stacklevel=2)
    kept = subjects[ok]
    reasons = np.asarray(end_on, dtype=object)[which[kept]]
    events = derived_events(log, kept, start[kept], name, end=end[kept],
                            category=pd.Categorical(reasons, categories=list(end_on)))
    return Cohort(name, kept, events, f"follow-up: entry + {delay:g}, ends on {', '.join(end_on)}")


__all__ = ["follow_up", "first_event_time", "to_time", "END_REASONS"]

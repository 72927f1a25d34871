"""Outcomes: first (incident) occurrence of a code set, with a wash-out window."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from pathways.cohort.codes import event_mask, match_codes
from pathways.cohort.cohort import Cohort, derived_events
from pathways.data import EventLog
from pathways.errors import PathwaysInputError


def as_events(source: Cohort | EventLog) -> EventLog:
    """The events of a Cohort (over the population) or an EventLog itself."""
    return source.events if isinstance(source, Cohort) else source


def follow_up_windows(follow_up: Cohort | None, n_patients: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-patient (start, end) of a follow-up cohort; NaN for patients without follow-up."""
    lo = np.full(n_patients, np.nan)
    hi = np.full(n_patients, np.nan)
    if follow_up is not None:
        ev = follow_up.events
        if ev.n_patients != n_patients:
            raise PathwaysInputError(f"follow_up: population of {ev.n_patients} patients, expected {n_patients}")
        lo[ev.patient] = ev.time
        hi[ev.patient] = np.where(np.isnan(ev.end), ev.time, ev.end)
    return lo, hi


def outcomes(
    source: Cohort | EventLog,
    codes: Iterable[str],
    *,
    name: str = "outcome",
    categories: Iterable[str] | None = None,
    prefix: bool = True,
    washout: float = 0.0,
    first_only: bool = True,
    follow_up: Cohort | None = None,
) -> Cohort:
    """Occurrences of a code set that are incident after a wash-out, optionally the first one in follow-up.

    Parameters
    ----------
    source : events to search (a Cohort's events or an EventLog).
    codes : the code set (prefix match by default, e.g. ``["CIM10:C67"]`` for bladder cancer).
    name : code of the outcome events in the returned cohort.
    categories : restrict to these event categories (e.g. ``["main_diagnosis", "linked_diagnosis"]``).
    washout : look-back in time units: an occurrence counts only if no occurrence of the code set lies in the
        ``washout`` days before it. ``0`` counts every occurrence; ``np.inf`` keeps only the very first one ever
        (an occurrence before follow-up then makes the subject a prevalent case with no outcome).
    first_only : keep only the first incident occurrence per subject.
    follow_up : keep only occurrences inside each subject's follow-up window (and only its subjects).

    Returns
    -------
    Cohort of subjects with an outcome; events ``name`` at each kept occurrence (category ``"outcome"``).
    """
    if not (washout >= 0):
        raise PathwaysInputError(f"washout: expected a value >= 0, got {washout!r}")
    log = as_events(source)
    rows = np.flatnonzero(event_mask(log, codes, prefix=prefix, categories=categories))
    patient, time = log.patient[rows], log.time[rows]  # sorted by (patient, time) as the EventLog is
    prev_same = np.zeros(rows.size, dtype=bool)
    prev_same[1:] = patient[1:] == patient[:-1]
    gap = np.full(rows.size, np.inf)
    gap[1:] = np.where(prev_same[1:], time[1:] - time[:-1], np.inf)
    # Strictly more than the wash-out since the previous occurrence, or the subject's first one.
    incident = ~prev_same if np.isinf(washout) else gap > washout
    patient, time = patient[incident], time[incident]
    if follow_up is not None:
        lo, hi = follow_up_windows(follow_up, log.n_patients)
        inside = (time >= lo[patient]) & (time <= hi[patient])
        patient, time = patient[inside], time[inside]
    if first_only and patient.size:
        first = np.ones(patient.size, dtype=bool)
        first[1:] = patient[1:] != patient[:-1]
        patient, time = patient[first], time[first]
    events = derived_events(log, patient, time, name, category="outcome")
    desc = f"{'first ' if first_only else ''}{name} (wash-out {washout:g}) from {len(list(codes))} code(s)"
    return Cohort(name, np.unique(patient), events, desc)


def exclude_prior(cohort: Cohort, source: Cohort | EventLog, codes: Iterable[str], *, lookback: float,
                  prefix: bool = True, categories: Iterable[str] | None = None,
                  index_time: np.ndarray | None = None, name: str | None = None) -> Cohort:
    """Drop subjects with an event of the code set in the ``lookback`` before their index time (wash-out).

    ``index_time`` (per population patient) defaults to the start of each subject's first event in ``cohort``
    (e.g. follow-up start). Subjects without an index time are kept.
    """
    log = as_events(source)
    if index_time is None:
        index_time = np.full(log.n_patients, np.nan)
        ev = cohort.events
        first = np.ones(ev.n_events, dtype=bool)
        first[1:] = ev.patient[1:] != ev.patient[:-1]
        index_time[ev.patient[first]] = ev.time[first]
    index_time = np.asarray(index_time, dtype=np.float64)
    rows = event_mask(log, codes, prefix=prefix, categories=categories)
    p, t = log.patient[rows], log.time[rows]
    ref = index_time[p]
    prior = (t < ref) & (t >= ref - lookback)
    excluded = np.unique(p[prior])
    kept = np.setdiff1d(cohort.subjects, excluded)
    return Cohort(name or f"{cohort.name} without prior", kept, cohort.events,
                  f"no event of the code set in the {lookback:g} before index")


__all__ = ["match_codes", "event_mask", "outcomes", "exclude_prior", "follow_up_windows"]

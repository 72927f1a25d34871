"""Exposures from dispensations (limited / unlimited, SCALPEL's strategies) and drug / condition eras (OHDSI).

All functions are vectorised: events are selected with masks, grouped by an integer key (patient x code), and
merged with :func:`~pathways.cohort.intervals.merge_intervals`.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from pathways.cohort.cohort import Cohort, derived_events
from pathways.cohort.intervals import clip_intervals, merge_intervals
from pathways.cohort.codes import event_mask
from pathways.cohort.outcomes import as_events, follow_up_windows
from pathways.data import EventLog, Vocabulary
from pathways.errors import PathwaysInputError
from pathways.utils import compact

DIAGNOSIS_CATEGORIES = ("condition", "diagnosis", "main_diagnosis", "linked_diagnosis", "associated_diagnosis")


def _code_groups(vocab: Vocabulary, rollup: Callable[[str], str] | None) -> tuple[np.ndarray, np.ndarray]:
    """(group code strings, old index -> group index) after an optional roll-up of codes."""
    if rollup is None:
        return vocab.codes.astype(object), np.arange(len(vocab), dtype=np.int64)
    mapped = np.array([str(rollup(str(c))) for c in vocab.codes], dtype=object)  # one call per vocabulary code
    uniques, inverse = np.unique(mapped.astype(str), return_inverse=True)
    return uniques.astype(object), inverse.astype(np.int64)


def _durations(log: EventLog, rows: np.ndarray, duration: float | Mapping[str, float],
               default: float | None, per_unit: bool) -> np.ndarray:
    """Days covered by each selected dispensation."""
    if isinstance(duration, Mapping):
        codes = pd.Series(log.vocab.codes.astype(str))
        per_code = np.full(len(log.vocab), np.nan)
        # Longest key first so that a specific pack (CIP13) overrides its class prefix; one pass per key.
        for key in sorted(duration, key=lambda k: len(str(k)), reverse=True):
            hit = codes.str.startswith(str(key)).to_numpy() & np.isnan(per_code)
            per_code[hit] = float(duration[key])
        if default is not None:
            per_code[np.isnan(per_code)] = float(default)
        days = per_code[log.code[rows]]
        missing = np.isnan(days)
        if missing.any():
            example = log.vocab.codes[log.code[rows][missing][0]]
            raise PathwaysInputError(f"duration: {int(missing.sum())} dispensations have a code with no duration "
                                     f"in the mapping, e.g. {example!r}; add it or pass default_duration")
    else:
        days = np.full(rows.size, float(duration))
    if per_unit:
        units = log.value[rows]
        days = days * np.where(np.isnan(units), 1.0, units)
    if (days < 0).any() or not np.isfinite(days).all():
        bad = ~np.isfinite(days) | (days < 0)
        raise PathwaysInputError(f"duration: {int(bad.sum())} dispensations get a negative or infinite duration")
    return days


def _sorted_keys(log: EventLog, rows: np.ndarray, code_group: np.ndarray,
                 n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Group keys (patient x code group) of the selected rows sorted by (key, time), and the sorting order.

    The EventLog is sorted by (patient, time), so a stable sort on the key alone yields (key, time) order; timsort
    runs fast on these pre-sorted runs.
    """
    key = log.patient[rows]
    key *= n_groups  # in place: one full-length temporary at a time
    key += code_group[log.code[rows]]
    order = np.argsort(key, kind="stable")
    return key[order], order


def _select(source: Cohort | EventLog, codes: Iterable[str] | None, prefix: bool,
            categories: Iterable[str] | None, follow_up: Cohort | None) -> tuple[EventLog, np.ndarray]:
    log = as_events(source)
    mask = event_mask(log, codes, prefix=prefix, categories=categories)
    if follow_up is not None:
        mask &= follow_up.subject_mask()[log.patient]
    rows = np.flatnonzero(mask)
    # Row numbers fit in 32 bits below 2**31 events: half the memory of the working index arrays.
    return log, rows.astype(np.int32) if log.n_events < 2 ** 31 else rows


def limited_exposures(
    dispensations: Cohort | EventLog,
    *,
    codes: Iterable[str] | None = None,
    prefix: bool = True,
    categories: Iterable[str] | None = None,
    duration: float | Mapping[str, float] = 30.0,
    default_duration: float | None = None,
    per_unit: bool = False,
    end_delay: float = 0.0,
    grace: float = 0.0,
    rollup: Callable[[str], str] | None = None,
    follow_up: Cohort | None = None,
    name: str = "exposure",
) -> Cohort:
    """Exposure periods where each purchase covers a limited duration (SCALPEL's "limited" strategy).

    Each dispensation at ``t`` covers ``[t, t + duration + end_delay]``; periods of one patient and one (rolled
    up) code that overlap or are at most ``grace`` apart merge into one exposure. Exposures are clipped to the
    follow-up window when ``follow_up`` is given (and kept only for its subjects).

    Parameters
    ----------
    dispensations : events holding the purchases.
    codes, prefix, categories : which events are purchases (code prefixes, event categories such as
        ``("drug",)``; default: every event).
    duration : days per purchase, or a mapping code/prefix -> days (e.g. small packs 30, large packs 90; the
        longest matching key wins).
    default_duration : days for codes absent from a ``duration`` mapping (else they raise).
    per_unit : multiply the duration by the event value (e.g. number of boxes ``PHA_ACT_QSN``; NaN counts 1).
    end_delay : days added after the covered period (pharmacological tail).
    grace : largest gap between two covered periods that still merges them.
    rollup : code -> exposure code (e.g. CIP13 -> ATC level 5) before grouping.
    follow_up : follow-up Cohort from :func:`~pathways.cohort.follow_up`.

    Returns
    -------
    Cohort of exposed subjects; one event per exposure: code = (rolled up) drug code, time/end = exposure
    bounds, value = number of purchases merged, category ``"exposure"``.
    """
    if end_delay < 0 or grace < 0:
        raise PathwaysInputError(f"end_delay and grace must be >= 0, got {end_delay!r} and {grace!r}")
    log, rows = _select(dispensations, codes, prefix, categories, follow_up)
    days = _durations(log, rows, duration, default_duration, per_unit)
    group_codes, code_group = _code_groups(log.vocab, rollup)
    n_groups = len(group_codes)
    key, order = _sorted_keys(log, rows, code_group, n_groups)
    # Working arrays are dropped as soon as they are used: at 10 M purchases each one is 80 MB.
    rows, days = rows[order], days[order]
    del order
    start = log.time[rows]
    days += start + float(end_delay)  # now the covered period's end
    merged = merge_intervals(key, start, days, gap=float(grace), presorted=True, overwrite_input=True)
    del key, start, days
    spans = {"key": merged.group, "start": merged.start, "end": merged.end, "count": merged.count.astype(float),
             "source": rows[merged.source]}
    del merged, rows
    return _exposure_cohort(log, spans, n_groups, group_codes, follow_up, name,
                            f"limited exposures ({'mapped' if isinstance(duration, Mapping) else duration} days, "
                            f"grace {grace:g}, end delay {end_delay:g})")


def unlimited_exposures(
    dispensations: Cohort | EventLog,
    *,
    codes: Iterable[str] | None = None,
    prefix: bool = True,
    categories: Iterable[str] | None = None,
    min_purchases: int = 1,
    purchase_window: float = np.inf,
    start_delay: float = 0.0,
    rollup: Callable[[str], str] | None = None,
    follow_up: Cohort | None = None,
    name: str = "exposure",
) -> Cohort:
    """Exposed from the ``min_purchases``-th purchase within ``purchase_window`` until follow-up end.

    SCALPEL's "unlimited" strategy: once a patient has bought a drug ``min_purchases`` times within
    ``purchase_window`` days, they count as exposed from that purchase (+ ``start_delay``) until the end of their
    follow-up (or observation window without ``follow_up``). Exposure start is clipped to the follow-up start.
    """
    if int(min_purchases) < 1:
        raise PathwaysInputError(f"min_purchases: expected >= 1, got {min_purchases!r}")
    n_min = int(min_purchases)
    log, rows = _select(dispensations, codes, prefix, categories, follow_up)
    group_codes, code_group = _code_groups(log.vocab, rollup)
    n_groups = len(group_codes)
    key, order = _sorted_keys(log, rows, code_group, n_groups)
    time = log.time[rows][order]
    # Purchase i completes a run when purchase i - (n - 1) has the same key and lies within the window.
    ok = np.zeros(key.size, dtype=bool)
    if key.size >= n_min:
        lag = n_min - 1
        ok[lag:] = (key[lag:] == key[: key.size - lag]) & (time[lag:] - time[: key.size - lag] <= purchase_window)
    first = ok.copy()
    hit = np.flatnonzero(ok)
    first[hit[1:]] = key[hit[1:]] != key[hit[:-1]]
    source = rows[order][first]
    key, start = key[first], time[first] + float(start_delay)
    patient = key // n_groups
    if follow_up is not None:
        _, hi = follow_up_windows(follow_up, log.n_patients)
    else:
        hi = log.patients["end"].to_numpy(float)
    spans = {"key": key, "start": start, "end": np.fmax(hi[patient], start),
             "count": np.full(key.size, float(n_min)), "source": source}
    del key, start, source, patient
    description = f"unlimited exposures from purchase {n_min} within {purchase_window:g} days (+{start_delay:g})"
    return _exposure_cohort(log, spans, n_groups, group_codes, follow_up, name, description)


def _exposure_cohort(log: EventLog, spans: dict[str, np.ndarray], n_groups: int, group_codes: np.ndarray,
                     follow_up: Cohort | None, name: str, description: str) -> Cohort:
    """Cohort of exposures given in (patient x code, start) order.

    ``spans`` holds fresh arrays ``key`` (patient x code group), ``start``, ``end``, ``count`` and ``source`` (each
    exposure's first purchase row); they are popped (the caller hands them over, so each is freed as soon as it
    is used) and modified in place. The purchases' rows follow the log's (patient, time, code) order, so ordering
    exposures by them is the EventLog order already (up to ties of rolled-up codes): one integer argsort instead
    of a three-key lexsort.
    """
    by_source = np.argsort(spans.pop("source"), kind="stable")
    key, start, end, count = (spans.pop(k) for k in ("key", "start", "end", "count"))
    for values in (key, start, end, count):
        values[:] = values[by_source]  # in place: these arrays are fresh, one temporary at a time
    del by_source
    patient = key // n_groups
    if follow_up is not None:
        lo, hi = follow_up_windows(follow_up, log.n_patients)
        keep, start, end = clip_intervals(patient, start, end, lo, hi)
    else:
        # Exposure spans may outlast the observation window, but must start inside it.
        keep = start <= log.patients["end"].to_numpy(float)[patient]
        start, end = compact(start, keep), compact(end, keep)
    key, count, patient = compact(key, keep), compact(count, keep), compact(patient, keep)
    key %= n_groups  # now the exposure code
    events = derived_events(log, patient, start, key, end=end, value=count, category="exposure",
                            code_names=group_codes)
    return Cohort(name, patient, events, description)


def eras(
    source: Cohort | EventLog,
    *,
    codes: Iterable[str] | None = None,
    prefix: bool = True,
    categories: Iterable[str] | None = None,
    gap: float = 30.0,
    default_duration: float = 0.0,
    rollup: Callable[[str], str] | None = None,
    category: str = "era",
) -> EventLog:
    """Eras: spans of one patient and (rolled up) code merged when at most ``gap`` apart (OHDSI persistence).

    Events without an end last ``default_duration``. Returns an EventLog over the same patients whose events are
    the eras (time = era start, end = era end, value = number of events merged).
    """
    if gap < 0:
        raise PathwaysInputError(f"gap: expected >= 0, got {gap!r}")
    log = as_events(source)
    rows = np.flatnonzero(event_mask(log, codes, prefix=prefix, categories=categories))
    group_codes, code_group = _code_groups(log.vocab, rollup)
    n_groups = len(group_codes)
    key, order = _sorted_keys(log, rows, code_group, n_groups)
    start = log.time[rows][order]
    raw_end = log.end[rows][order]
    end = np.where(np.isnan(raw_end), start + float(default_duration), raw_end)
    merged = merge_intervals(key, start, end, gap=float(gap), presorted=True)
    return derived_events(log, merged.group // n_groups, merged.start, merged.group % n_groups, end=merged.end,
                          value=merged.count.astype(float), category=category, code_names=group_codes)


def drug_eras(source: Cohort | EventLog, *, gap: float = 30.0, default_duration: float = 1.0,
              rollup: Callable[[str], str] | None = None, codes: Iterable[str] | None = None,
              categories: Iterable[str] | None = ("drug",)) -> EventLog:
    """OHDSI drug eras: drug exposures of one ingredient (``rollup``) merged across gaps of at most 30 days."""
    return eras(source, codes=codes, categories=categories, gap=gap, default_duration=default_duration,
                rollup=rollup, category="drug_era")


def condition_eras(source: Cohort | EventLog, *, gap: float = 30.0, default_duration: float = 0.0,
                   rollup: Callable[[str], str] | None = None, codes: Iterable[str] | None = None,
                   categories: Iterable[str] | None = DIAGNOSIS_CATEGORIES) -> EventLog:
    """OHDSI condition eras: diagnoses of one code merged across gaps of at most 30 days."""
    return eras(source, codes=codes, categories=categories, gap=gap, default_duration=default_duration,
                rollup=rollup, category="condition_era")


__all__ = ["limited_exposures", "unlimited_exposures", "eras", "drug_eras", "condition_eras"]

"""Transparent indicators that fraud-control analysts already use, for patients and pharmacies, vectorised.

Patients, per watched drug class: the most distinct prescribers and pharmacies in one window (doctor and
pharmacy shopping), the days of supply that overlap an earlier dispensation, dispensations above the class's
largest quantity, and dispensations billed on impossible dates (inside a hospital stay, after death).
Pharmacies: the share of dispensations without a matching prescription (no prescriber, or no consultation of the
named prescriber with the patient in the ``cover_days`` before), quantities against each code's usual quantity,
and dispensations on impossible dates. Every indicator becomes a robust z-score against the population (peers of
the same region for pharmacies) and rows of a :class:`~pathways.abuse.entities.Reasons` table.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pathways.abuse.entities import (
    DRUG_CLASSES,
    DrugClass,
    Reasons,
    amounts,
    entity_index,
    event_classes,
    extra,
    is_category,
    without_prescription,
)
from pathways.abuse.peers import peer_groups, robust_z
from pathways.data.eventlog import EventLog

BEHAVIOURS = {"prescribers": "doctor shopping", "pharmacies": "pharmacy shopping", "overlap": "overlapping supply",
              "overlap_prescribers": "doctor shopping",
              "above_max": "doses above maximum", "impossible_dates": "billing on impossible dates",
              "no_prescription": "billing without prescription", "quantity_ratio": "inflated quantities"}


def impossible_dates(log: EventLog) -> np.ndarray:
    """Drug events billed strictly inside a hospital stay of their patient or on a day after their death.

    Entry and discharge days are possible (a dispensation on the way in or out); days are compared as whole days.
    """
    drug = is_category(log, "drug")
    day = np.floor(log.time)
    death = np.floor(log.patients["death"].to_numpy(dtype=float))[log.patient]
    after_death = drug & (day > np.nan_to_num(death, nan=np.inf))
    stay = is_category(log, "stay") & np.isfinite(log.end)
    sp_, st, se = log.patient[stay], np.floor(log.time[stay]), np.floor(log.end[stay])
    if st.size == 0:
        return after_death
    # Stays sorted by (patient, entry); each drug event looks up its patient's last stay entered before it.
    order = np.lexsort((st, sp_))
    sp_, st, se = sp_[order], st[order], se[order]
    # a stay ending inside a later one of the same patient is covered by the running end
    end_run = _running_max(se, sp_)
    lo = min(st.min(), day.min())
    span = max(st.max(), day.max()) - lo + 2
    pos = np.searchsorted(sp_ * span + (st - lo), log.patient * span + (day - lo) - 0.5) - 1
    ok = pos >= 0
    pos = np.maximum(pos, 0)
    inside = ok & (sp_[pos] == log.patient) & (day < end_run[pos]) & (day > st[pos])
    return after_death | (drug & inside)


def _running_max(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Cumulative maximum of ``values`` restarting at each new value of the sorted ``groups``."""
    if values.size == 0:
        return values
    rank = np.concatenate([[0], np.cumsum(groups[1:] != groups[:-1])])
    shift = (np.nanmax(values) - np.nanmin(values) + 1.0) * rank
    return np.maximum.accumulate(values + shift) - shift


def patient_indicators(log: EventLog, classes: dict[str, DrugClass] | None = None,
                       window_days: float = 365.25) -> Reasons:
    """Shopping, overlap, above-maximum and impossible-date indicators per (patient, watched class).

    Returns the reasons table of the patients (one row per indicator and active patient-class); ``entity`` is the
    patient id, ``value`` the indicator, ``reference`` the population median, ``z`` the robust z-score and
    ``amount`` the money paid for the patient's dispensations of the class.
    """
    classes = DRUG_CLASSES if classes is None else classes
    k = event_classes(log, classes)
    m = k >= 0
    n_k = len(classes)
    p, t, kk = log.patient[m], log.time[m], k[m]
    boxes = np.nan_to_num(log.value[m], nan=1.0)
    cell = p * n_k + kk  # one (patient, class) cell
    n_cells = log.n_patients * n_k
    win = np.floor((t - (t.min() if t.size else 0.0)) / window_days).astype(np.int64)
    values = {
        "prescribers": _distinct_per_window(cell, win, extra(log, "prescriber")[m], n_cells),
        "pharmacies": _distinct_per_window(cell, win, extra(log, "provider")[m], n_cells),
        **_overlap_days(cell, t, boxes * np.array([c.days_per_box for c in classes.values()])[kk],
                        entity_index(extra(log, "prescriber")[m])[0], n_cells),
        "above_max": np.bincount(cell, weights=boxes > np.array([c.max_boxes for c in classes.values()])[kk],
                                 minlength=n_cells),
    }
    n_disp = np.bincount(cell, minlength=n_cells)
    paid = np.bincount(cell, weights=amounts(log)[m], minlength=n_cells)
    active = np.flatnonzero(n_disp > 0)
    floors = {"prescribers": 0.5, "pharmacies": 0.5, "overlap": 28.0, "overlap_prescribers": 28.0, "above_max": 1.0}
    names = np.array(list(classes), dtype=object)
    parts = []
    for reason, value in values.items():
        # pooled over classes: in a rare class (buprenorphine) planted shoppers may outnumber regular users,
        # whose behaviour is the reference
        z, med = robust_z(value[active], None, floors[reason])
        parts.append(pd.DataFrame({"entity_index": active // n_k, "reason": reason, "behaviour": BEHAVIOURS[reason],
                                   "drug_class": names[active % n_k], "value": value[active], "reference": med,
                                   "z": z, "amount": paid[active], "n_events": n_disp[active]}))
    parts.append(_impossible_reason(log, np.arange(log.n_patients), log.patient, log.n_patients))
    return Reasons.of(pd.concat(parts, ignore_index=True), log.patients["patient_id"].to_numpy())


def pharmacy_indicators(log: EventLog, providers: pd.DataFrame | None = None, cover_days: float = 90.0,
                        min_peers: int = 10, pseudo_count: float = 20.0) -> Reasons:
    """Billing without prescription, inflated quantities and impossible dates per pharmacy (drug provider).

    Without consultation events (category ``consultation`` naming the doctor as ``provider``) only dispensations
    without a prescriber count as billed without prescription. Shares are shrunk toward the population share by
    ``pseudo_count`` dispensations; z-scores are against the pharmacies of the same region (``providers``).
    """
    drug = is_category(log, "drug")
    pharmacy, ids = entity_index(_masked(extra(log, "provider"), drug))
    if ids.size == 0:
        return Reasons.empty()
    sel = pharmacy >= 0
    n = np.bincount(pharmacy[sel], minlength=ids.size).astype(float)
    paid = amounts(log)
    boxes = np.nan_to_num(log.value, nan=1.0)
    usual = pd.Series(boxes[sel]).groupby(log.code[sel]).median()
    ratio = boxes / np.maximum(usual.reindex(np.arange(log.n_codes)).fillna(1.0).to_numpy()[log.code], 1.0)
    flags = {"no_prescription": without_prescription(log, cover_days), "impossible_dates": impossible_dates(log)}
    groups = _region_groups(ids, providers, min_peers)
    parts = []
    for reason, flag in flags.items():
        k = np.bincount(pharmacy[sel], weights=flag[sel], minlength=ids.size)
        share = (k + pseudo_count * k.sum() / n.sum()) / (n + pseudo_count)
        z, med = robust_z(share, groups, 0.005)
        money = np.bincount(pharmacy[sel], weights=(paid * flag)[sel], minlength=ids.size)
        parts.append(_rows(ids, reason, share, med, z, money, k))
    excess = np.bincount(pharmacy[sel], weights=ratio[sel], minlength=ids.size)
    mean_ratio = (excess + pseudo_count) / (n + pseudo_count)
    z, med = robust_z(mean_ratio, groups, 0.02)
    over = np.clip(1.0 - 1.0 / np.maximum(ratio, 1.0), 0.0, 1.0)  # share of each line's money above usual
    money = np.bincount(pharmacy[sel], weights=(paid * over)[sel], minlength=ids.size)
    parts.append(_rows(ids, "quantity_ratio", mean_ratio, med, z, money, n))
    return Reasons.of(pd.concat(parts, ignore_index=True), ids)


def _rows(ids: np.ndarray, reason: str, value: np.ndarray, reference: np.ndarray, z: np.ndarray,
          amount: np.ndarray, count: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"entity_index": np.arange(ids.size), "reason": reason, "behaviour": BEHAVIOURS[reason],
                         "drug_class": "", "value": value, "reference": reference, "z": z, "amount": amount,
                         "n_events": count.astype(np.int64)})


def _impossible_reason(log: EventLog, entities: np.ndarray, entity_of_event: np.ndarray, n: int) -> pd.DataFrame:
    flag = impossible_dates(log)
    count = np.bincount(entity_of_event[flag], minlength=n).astype(float)
    money = np.bincount(entity_of_event[flag], weights=amounts(log)[flag], minlength=n)
    z, med = robust_z(count, None, 1.0)
    return pd.DataFrame({"entity_index": entities, "reason": "impossible_dates",
                         "behaviour": BEHAVIOURS["impossible_dates"], "drug_class": "", "value": count,
                         "reference": med, "z": z, "amount": money, "n_events": count.astype(np.int64)})


def _masked(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``values`` where ``keep``, missing elsewhere (-1 for integer ids, None for others)."""
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return np.where(keep, values, -1)
    return np.where(keep, values.astype(object), None)


def _region_groups(ids: np.ndarray, providers: pd.DataFrame | None, min_peers: int) -> np.ndarray:
    if providers is None or "region" not in providers:
        return np.zeros(ids.size, dtype=object)
    regions = providers.drop_duplicates("provider").set_index("provider")["region"].reindex(ids).fillna("unknown")
    return peer_groups(regions.to_frame().reset_index(drop=True), ("region",), min_peers)


def _distinct_per_window(cell: np.ndarray, win: np.ndarray, ids: np.ndarray, n_cells: int) -> np.ndarray:
    """Largest number of distinct (non-missing) ids in one window, per cell."""
    idx, uniq = entity_index(ids)
    ok = idx >= 0
    n_win = int(win.max()) + 1 if win.size else 1
    key = (cell[ok] * n_win + win[ok]) * max(uniq.size, 1) + idx[ok]
    pairs = np.unique(key) // max(uniq.size, 1)
    cell_win, counts = np.unique(pairs, return_counts=True)
    out = np.zeros(n_cells)
    np.maximum.at(out, cell_win // n_win, counts)
    return out


def _overlap_days(cell: np.ndarray, time: np.ndarray, supply: np.ndarray, prescriber: np.ndarray, n_cells: int
                  ) -> dict[str, np.ndarray]:
    """Days of supply of each cell that start before the earlier dispensations' supply has run out: all of them
    (``overlap``) and those whose prescriber differs from the previous dispensation's (``overlap_prescribers``,
    overlapping prescriptions from several doctors, the signature of doctor shopping)."""
    order = np.lexsort((time, cell))
    c, t, s, d = cell[order], time[order], supply[order], prescriber[order]
    run = _running_max(t + s, c)
    first = np.concatenate([[True], c[1:] != c[:-1]])
    prev = np.concatenate([[-np.inf], run[:-1]])
    prev[first] = -np.inf
    overlap = np.clip(np.minimum(prev, t + s) - t, 0.0, None)
    other = ~first & (d != np.concatenate([[-1], d[:-1]]))
    return {"overlap": np.bincount(c, weights=overlap, minlength=n_cells),
            "overlap_prescribers": np.bincount(c, weights=overlap * other, minlength=n_cells)}


__all__ = ["BEHAVIOURS", "impossible_dates", "patient_indicators", "pharmacy_indicators"]

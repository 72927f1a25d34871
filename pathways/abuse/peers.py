"""Peer-group comparison: robust z-scores of a provider's rates against providers of the same specialty and region.

A prescriber is compared with the prescribers of its specialty in its region; where that group has fewer than
``min_peers`` members it is compared with its specialty, then with everyone. Rates are shrunk toward the peers'
rate by a pseudo-count (a provider with three patients is not an outlier for having two on opioids), and the
z-score scale is robust (median absolute deviation, with a floor from the upper quantiles when most providers
share one value).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

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
from pathways.data.eventlog import EventLog


def robust_z(values: np.ndarray, groups: np.ndarray | None = None, floor: float = 1e-6) -> tuple[np.ndarray,
                                                                                                    np.ndarray]:
    """Robust z-score of each value within its group: ``(x - median) / scale``, and the group medians.

    ``scale = max(1.4826 MAD, (q75 - median) / 0.6745, floor)``: the MAD where values spread, the upper quartile
    where most values tie (counts that are mostly 1), ``floor`` (the smallest difference worth one unit) last.
    Both resist up to a quarter of outliers (planted or real abuse is no part of the reference).

    Examples
    --------
    >>> z, med = robust_z(np.array([1.0, 1.0, 2.0, 1.0, 9.0]), floor=0.5)
    >>> med.tolist(), np.round(z, 2).tolist()
    ([1.0, 1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.67, 0.0, 5.4])
    """
    values = np.asarray(values, dtype=np.float64)
    groups = np.zeros(values.size, dtype=np.int64) if groups is None else np.asarray(groups)
    frame = pd.DataFrame({"g": groups, "x": values})
    by = frame.groupby("g")["x"]
    median = by.transform("median").to_numpy()
    mad = (frame["x"] - median).abs().groupby(frame["g"]).transform("median").to_numpy()
    q75 = by.quantile(0.75).reindex(frame["g"]).to_numpy()
    scale = np.maximum.reduce([1.4826 * mad, (q75 - median) / 0.6745, np.full(values.size, floor)])
    return (values - median) / scale, median


def peer_groups(attributes: pd.DataFrame, keys: tuple[str, ...], min_peers: int = 10) -> np.ndarray:
    """Peer group of each row: the finest of ``keys``, ``keys[:-1]``, ..., () holding ``min_peers`` rows.

    Examples
    --------
    >>> a = pd.DataFrame({"specialty": ["gp"] * 12 + ["psy"] * 3, "region": [1] * 11 + [2] + [1] * 3})
    >>> peer_groups(a, ("specialty", "region"), min_peers=3).tolist() == ["gp|1"] * 11 + ["gp"] + ["psy|1"] * 3
    True
    >>> peer_groups(a, ("specialty", "region"))[-3:].tolist()  # 3 psychiatrists: compared with everyone
    ['', '', '']
    """
    labels = pd.Series([""] * len(attributes), index=attributes.index, dtype=object)
    done = np.zeros(len(attributes), dtype=bool)
    for depth in range(len(keys), 0, -1):
        key = attributes[list(keys[:depth])].astype(str).agg("|".join, axis=1)
        size = key.map(key.value_counts()).to_numpy()
        take = ~done & (size >= min_peers)
        labels[take] = key[take]
        done |= take
    return labels.to_numpy()


def prescriber_indicators(log: EventLog, providers: pd.DataFrame | None = None,
                          classes: dict[str, DrugClass] | None = None, min_peers: int = 10,
                          pseudo_count: float = 10.0, cover_days: float = 90.0) -> Reasons:
    """Per (prescriber, watched class): share of its patients it prescribes the class to, boxes per patient, and
    the number of patients it prescribes the class to (volume: a doctor's own patients are diluted among the
    patients it sees once as a replacement).

    A prescriber's patients are those of its dispensations (``prescriber``) and consultations (``provider``).
    ``providers`` (columns ``provider``, ``specialty``, ``region``) defines the peer groups when given.
    Dispensations billed without prescription (:func:`~pathways.abuse.entities.without_prescription`) are not
    counted against the prescriber they name.

    Returns
    -------
    :class:`~pathways.abuse.entities.Reasons`: reasons ``class_share``, ``boxes_per_patient`` and
    ``class_patients`` per class, behaviour ``over-prescribing``.
    """
    classes = DRUG_CLASSES if classes is None else classes
    presc = np.asarray(extra(log, "prescriber"))
    prov = extra(log, "provider", required=False)
    doctor = presc.copy()
    if prov is not None:  # consultations name the doctor as executing provider
        consult = is_category(log, "consultation")
        doctor = np.where(consult, np.asarray(prov), doctor) if presc.dtype.kind in "iu" else \
            np.where(consult, np.asarray(prov, dtype=object), np.asarray(doctor, dtype=object))
    d_idx, ids = entity_index(doctor)
    if ids.size == 0:
        return Reasons.empty("n_patients")
    seen = d_idx >= 0
    base = sp.csr_matrix((np.ones(int(seen.sum())), (d_idx[seen], log.patient[seen])),
                         shape=(ids.size, log.n_patients))
    base.data[:] = 1.0
    base.sum_duplicates()
    n_patients = np.asarray((base > 0).sum(axis=1)).ravel()
    k = event_classes(log, classes)
    # a dispensation whose named prescriber never saw the patient is the pharmacy's doing, not the prescriber's
    drug = (k >= 0) & (d_idx >= 0) & is_category(log, "drug") & ~without_prescription(log, cover_days)
    boxes = np.nan_to_num(log.value, nan=1.0)
    paid = amounts(log)
    groups = _groups(ids, providers, min_peers)
    parts = []
    for j, name in enumerate(classes):
        m = drug & (k == j)
        rows, pats = d_idx[m], log.patient[m]
        treated = sp.csr_matrix((np.ones(rows.size), (rows, pats)), shape=(ids.size, log.n_patients))
        treated.sum_duplicates()
        n_treated = np.asarray((treated > 0).sum(axis=1)).ravel()
        n_boxes = np.bincount(rows, weights=boxes[m], minlength=ids.size)
        money = np.bincount(rows, weights=paid[m], minlength=ids.size)
        p0 = n_treated.sum() / max(n_patients.sum(), 1)
        share = (n_treated + pseudo_count * p0) / (n_patients + pseudo_count)
        per_patient = (n_boxes + pseudo_count * p0) / (n_patients + pseudo_count)
        active = n_patients > 0
        for reason, value, floor in (("class_share", share, 0.02), ("boxes_per_patient", per_patient, 0.05),
                                     ("class_patients", n_treated.astype(float), 1.0)):
            z, med = robust_z(value[active], groups[active], floor)
            parts.append(pd.DataFrame({
                "entity_index": np.flatnonzero(active), "reason": reason, "behaviour": "over-prescribing",
                "drug_class": name, "value": value[active], "reference": med, "z": z, "amount": money[active],
                "n_patients": n_treated[active]}))
    return Reasons.of(pd.concat(parts, ignore_index=True), ids)


def _groups(ids: np.ndarray, providers: pd.DataFrame | None, min_peers: int) -> np.ndarray:
    if providers is None or "provider" not in providers:
        return np.zeros(ids.size, dtype=object)
    attrs = providers.drop_duplicates("provider").set_index("provider")
    keys = tuple(c for c in ("specialty", "region") if c in attrs)
    frame = attrs.reindex(ids)[list(keys)].fillna("unknown").reset_index(drop=True)
    return peer_groups(frame, keys, min_peers) if keys else np.zeros(ids.size, dtype=object)


__all__ = ["peer_groups", "prescriber_indicators", "robust_z"]

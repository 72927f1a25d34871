"""The patient - prescriber - pharmacy network of watched-class dispensations: shared-patient links and rings.

Two sparse incidence matrices (patients x prescribers, patients x pharmacies) give every shared-patient count by
one sparse product (``P.T @ F``: patients a prescriber and a pharmacy share; ``P.T @ P``: prescribers sharing
patients). A provider whose watched-class patients are often *multi-prescriber* patients (seen by
``multi_prescribers`` or more prescribers of the class) sits on shopping routes; providers tied by at least
``min_shared`` shared patients form communities (connected components of that graph, scipy), candidate rings.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from pathways.abuse.entities import (
    DRUG_CLASSES,
    DrugClass,
    Reasons,
    entity_index,
    event_classes,
    extra,
)
from pathways.abuse.peers import robust_z
from pathways.data.eventlog import EventLog


@dataclass
class ProviderNetwork:
    """Incidence matrices and ids of the watched-class network (rows of ``prescribers``/``pharmacies`` = patients)."""

    prescribers: sp.csr_matrix
    pharmacies: sp.csr_matrix
    prescriber_ids: np.ndarray
    pharmacy_ids: np.ndarray

    def shared_patients(self) -> sp.csr_matrix:
        """Prescriber x pharmacy matrix of shared patients (one sparse product)."""
        return (self.prescribers.T @ self.pharmacies).tocsr()

    def provider_graph(self, min_shared: int = 3) -> sp.csr_matrix:
        """Symmetric provider x provider shared-patient counts (prescribers first, then pharmacies), links below
        ``min_shared`` removed."""
        both = sp.hstack([self.prescribers, self.pharmacies]).tocsr()
        graph = (both.T @ both).tocsr()
        graph.setdiag(0)
        graph.data[graph.data < min_shared] = 0
        graph.eliminate_zeros()
        return graph


def build_network(log: EventLog, classes: dict[str, DrugClass] | None = None) -> ProviderNetwork:
    """Binary patient x prescriber and patient x pharmacy incidence of watched-class dispensations."""
    m = event_classes(log, classes) >= 0
    pre, pre_ids = entity_index(np.asarray(extra(log, "prescriber"))[m])
    pha, pha_ids = entity_index(np.asarray(extra(log, "provider"))[m])
    patient = log.patient[m]

    def incidence(idx: np.ndarray, n: int) -> sp.csr_matrix:
        ok = idx >= 0
        mat = sp.csr_matrix((np.ones(int(ok.sum())), (patient[ok], idx[ok])), shape=(log.n_patients, n))
        mat.sum_duplicates()
        mat.data[:] = 1.0
        return mat

    return ProviderNetwork(incidence(pre, pre_ids.size), incidence(pha, pha_ids.size), pre_ids, pha_ids)


def network_indicators(log: EventLog, classes: dict[str, DrugClass] | None = None, multi_prescribers: int = 3,
                       pseudo_count: float = 10.0) -> dict[str, Reasons]:
    """Reasons ``shared_shoppers`` for prescribers and pharmacies: share of their watched-class patients who see
    ``multi_prescribers`` or more prescribers of watched classes (shrunk toward the population share)."""
    classes = DRUG_CLASSES if classes is None else classes
    net = build_network(log, classes)
    multi = np.asarray(net.prescribers.sum(axis=1)).ravel() >= multi_prescribers
    out = {}
    for entity, mat, ids in (("prescriber", net.prescribers, net.prescriber_ids),
                             ("pharmacy", net.pharmacies, net.pharmacy_ids)):
        n = np.asarray(mat.sum(axis=0)).ravel()
        k = np.asarray(mat.T @ multi.astype(float)).ravel()
        share = (k + pseudo_count * k.sum() / max(n.sum(), 1)) / (n + pseudo_count)
        z, med = robust_z(share, None, 0.02)
        frame = pd.DataFrame({"entity_index": np.arange(ids.size), "reason": "shared_shoppers",
                              "behaviour": "shares patients with many prescribers", "drug_class": "",
                              "value": share, "reference": med, "z": z, "amount": 0.0,
                              "n_patients": n.astype(np.int64)})
        out[entity] = Reasons.of(frame, ids)
    return out


def communities(net: ProviderNetwork, min_shared: int = 3, min_size: int = 3) -> pd.DataFrame:
    """Communities of the provider graph: connected components of the links of at least ``min_shared`` shared
    patients (a threshold high enough to cut the incidental links of one shared patient).

    Returns one row per provider of a community of ``min_size`` or more: ``kind`` (prescriber / pharmacy),
    ``entity`` (id), ``community``, ``community_size``, ``shared_patients`` (within the community).
    """
    graph = net.provider_graph(min_shared)
    _, label = connected_components(graph, directed=False)
    sizes = np.bincount(label)
    order = np.argsort(label, kind="stable")
    groups = [members for members in np.split(order, np.cumsum(sizes)[:-1]) if members.size >= min_size]
    n_pre = net.prescriber_ids.size
    ids = np.concatenate([net.prescriber_ids.astype(object), net.pharmacy_ids.astype(object)])
    rows = []
    for label, members in enumerate(sorted(groups, key=len, reverse=True)):
        members = np.asarray(members)
        within = graph[members][:, members].sum() / 2.0
        rows.append(pd.DataFrame({"kind": np.where(members < n_pre, "prescriber", "pharmacy"),
                                  "entity": ids[members], "community": label, "community_size": members.size,
                                  "shared_patients": within}))
    if not rows:
        return pd.DataFrame(columns=["kind", "entity", "community", "community_size", "shared_patients"])
    return pd.concat(rows, ignore_index=True)


__all__ = ["ProviderNetwork", "build_network", "communities", "network_indicators"]

"""Disproportionality for all (drug, outcome) pairs over a sharded event dataset, shard by shard.

The 2x2 tables are sums over patients: each shard (patients hashed apart, every event of a patient in one shard)
contributes its own ``a = Xᵀ Y`` (outcome events x drugs exposure indicator times outcome one-hot), exposed
totals, outcome totals and event count; the sum over shards is the whole population's tables exactly. Only drug
and outcome events are read (code filter pushed down to the parquet scan) and memory holds one shard plus the
(n_drugs, n_outcomes) count arrays, whatever the number of shards.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pathways.cohort import limited_exposures
from pathways.data.dataset import EventDataset
from pathways.errors import PathwaysInputError
from pathways.signals.disproportionality import (
    ContingencyTables,
    ebgm,
    exposure_event_matrix,
    information_component,
    prr,
    ror,
)

METHODS = {"PRR": prr, "ROR": ror, "IC": information_component, "EBGM": ebgm}


def sharded_tables(dataset: EventDataset, drugs: Sequence[str], outcomes: Sequence[str], *,
                   exposure_days: float = 30.0, grace: float = 0.0) -> ContingencyTables:
    """All (drug, outcome) 2x2 tables of the dataset, accumulated shard by shard.

    Exposure windows as :func:`pathways.signals.detect_signals` builds them: each dispensation of a drug covers
    ``exposure_days`` (:func:`pathways.cohort.limited_exposures`, periods ``grace`` days apart merged).
    """
    drugs, outcomes = np.asarray(list(drugs), dtype=object), np.asarray(list(outcomes), dtype=object)
    overlap = set(drugs) & set(outcomes)
    if overlap:
        raise PathwaysInputError(f"codes {sorted(overlap)[:3]} are both drugs and outcomes")
    if drugs.size == 0 or outcomes.size == 0:
        raise PathwaysInputError("drugs, outcomes: give at least one code of each")
    a = np.zeros((drugs.size, outcomes.size))
    exposed_total, outcome_total, n_total = np.zeros(drugs.size), np.zeros(outcomes.size), 0.0
    wanted = [*drugs.tolist(), *outcomes.tolist()]
    for log in dataset.iter_shards(codes=wanted):
        out_pos = pd.Index(outcomes).get_indexer(log.vocab.codes)[log.code] if log.n_events else np.empty(0, int)
        is_outcome = out_pos >= 0
        if not is_outcome.any():
            continue
        here = set(log.vocab.codes[np.unique(log.code)])
        present = [d for d in drugs if d in here]
        windows = pd.DataFrame({"patient": [], "exposure": [], "start": [], "end": []})
        if present:
            exposure = limited_exposures(log, codes=present, prefix=False, duration=exposure_days,
                                         grace=grace).events
            windows = pd.DataFrame({"patient": exposure.patient,
                                    "exposure": pd.Index(drugs).get_indexer(exposure.vocab.codes[exposure.code]),
                                    "start": exposure.time, "end": exposure.end})
        x = exposure_event_matrix(log.patient[is_outcome], log.time[is_outcome], windows, drugs.size)
        y = out_pos[is_outcome]
        onehot = sp.csr_matrix((np.ones(y.size), (np.arange(y.size), y)), shape=(y.size, outcomes.size))
        a += np.asarray((x.T @ onehot).todense(), dtype=np.float64)
        exposed_total += np.asarray(x.sum(axis=0)).ravel()
        outcome_total += np.bincount(y, minlength=outcomes.size)
        n_total += y.size
    b = exposed_total[:, None] - a
    c = outcome_total[None, :] - a
    return ContingencyTables(a, b, c, n_total - a - b - c, drugs, outcomes)


def sharded_disproportionality(dataset: EventDataset, drugs: Sequence[str], outcomes: Sequence[str], *,
                               exposure_days: float = 30.0, grace: float = 0.0,
                               methods: Sequence[str] = ("PRR", "ROR", "IC", "EBGM"),
                               alpha: float = 0.05) -> pd.DataFrame:
    """PRR, ROR, IC and EBGM for every (drug, outcome) pair of a sharded dataset (see :func:`sharded_tables`)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise PathwaysInputError(f"methods: unknown {unknown}; choose among {list(METHODS)}")
    table = sharded_tables(dataset, drugs, outcomes, exposure_days=exposure_days, grace=grace)
    return pd.concat([METHODS[m](table, alpha) for m in methods], ignore_index=True)


__all__ = ["sharded_disproportionality", "sharded_tables"]

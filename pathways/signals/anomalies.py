"""Anomalous trajectories: per patient (or per prescriber / pharmacy) scores and the codes that make them unusual.

Two families of scores, both vectorised over units:

- **count baselines** — each unit's code counts against what its exposure (follow-up time for patients, number of
  events for prescribers/pharmacies) predicts from the population: Poisson upper-tail surprise
  ``-log10 P(N >= n)`` per (unit, code); the unit's score is its largest surprise, and its top codes explain it.
- **model-based** — time rescaling under a fitted point-process model: if the model explains a patient, the
  compensator increments between the patient's successive same-code events are i.i.d. Exp(1). The
  Kolmogorov-Smirnov distance of their empirical law, turned into ``-log10 p`` with the exact KS distribution for
  the patient's number of increments, is the score (comparable across patients with few or many events). The
  log-likelihood per event is reported too, but is no score on its own: it grows with event density.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from pathways.data.eventlog import EventLog
from pathways.errors import PathwaysInputError
from pathways.utils import segment_ids


def count_anomaly_scores(log: EventLog, unit: str = "patient", top_codes: int = 3) -> pd.DataFrame:
    """Poisson surprise of every unit's code counts against the population's code rates.

    Parameters
    ----------
    log : the event log.
    unit : ``"patient"`` (exposure = follow-up time) or the name of an extra event column such as
        ``"prescriber"`` or ``"pharmacy"`` (exposure = the unit's number of events, so the *mix* of codes is
        compared).
    top_codes : how many of the most surprising codes to list per unit.

    Returns
    -------
    DataFrame, one row per unit sorted by decreasing ``score``: ``unit_index`` (patient index or the unit value —
    never a patient identifier), ``n_events``, ``score`` (max -log10 p), ``top_codes`` (codes with their observed
    and expected counts).
    """
    unit_index, labels, exposure = _units(log, unit)
    n_units = labels.size
    counts = sp.csr_matrix((np.ones(log.n_events), (unit_index, log.code)), shape=(n_units, log.n_codes))
    counts.sum_duplicates()
    code_totals = np.asarray(counts.sum(axis=0)).ravel()
    rate = code_totals / max(exposure.sum(), 1e-300)
    rows = np.repeat(np.arange(n_units), np.diff(counts.indptr))
    observed = counts.data
    expected = rate[counts.indices] * exposure[rows]
    # P(N >= n) = sf(n - 1); logsf keeps precision for extreme surprises
    surprise = -stats.poisson.logsf(observed - 1, np.maximum(expected, 1e-300)) / np.log(10)
    score = np.zeros(n_units)
    np.maximum.at(score, rows, surprise)
    top = _top_codes(rows, counts.indices, surprise, observed, expected, log.vocab.codes, n_units, top_codes)
    n_events = np.asarray(counts.sum(axis=1)).ravel().astype(np.int64)
    frame = pd.DataFrame({"unit": unit, "unit_index": labels, "n_events": n_events, "exposure": exposure,
                          "score": score, "top_codes": top})
    return frame.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def _units(log: EventLog, unit: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if unit == "patient":
        follow = (log.patients["end"] - log.patients["start"]).to_numpy(dtype=float)
        return log.patient, np.arange(log.n_patients), np.maximum(follow, 1.0)
    if unit not in log.extras:
        raise PathwaysInputError(f"unit: '{unit}' is neither 'patient' nor an extra event column "
                                 f"(available: {sorted(log.extras)})")
    values = pd.Series(log.extras[unit])
    if values.isna().any():
        raise PathwaysInputError(f"column '{unit}': {int(values.isna().sum())} events have no {unit}")
    index, labels = pd.factorize(values, sort=True)
    exposure = np.bincount(index, minlength=labels.size).astype(float)
    return index.astype(np.int64), np.asarray(labels), exposure


def _top_codes(rows: np.ndarray, cols: np.ndarray, surprise: np.ndarray, observed: np.ndarray,
               expected: np.ndarray, codes: np.ndarray, n_units: int, k: int) -> list[str]:
    order = np.lexsort((-surprise, rows))
    rank = np.arange(order.size) - np.repeat(np.searchsorted(rows[order], np.arange(n_units)),
                                             np.bincount(rows, minlength=n_units))
    keep = order[rank < k]
    text = pd.Series([f"{c} ({int(o)} vs {e:.2g})" for c, o, e in zip(codes[cols[keep]], observed[keep],
                                                                        expected[keep])])
    joined = text.groupby(rows[keep]).agg(", ".join)
    return joined.reindex(np.arange(n_units), fill_value="").tolist()


def model_anomaly_scores(model: Any, data: Any) -> pd.DataFrame:
    """Per-sequence log-likelihood per event and time-rescaling KS distance under a fitted Hawkes model.

    Any model with a ``log_likelihood_per_sequence(data)`` method returning (total log-likelihood per sequence,
    events per sequence, compensator increments, the sequence of each increment) works too.

    Returns
    -------
    DataFrame sorted by decreasing ``score`` = ``-log10`` of the KS p-value of the sequence's rescaled
    increments against Exp(1) (high = unusual): ``sequence`` (index), ``n_events``, ``loglik_per_event``,
    ``ks_distance``, ``score``.
    """
    if hasattr(model, "log_likelihood_per_sequence"):
        loglik, n_events, gaps, gap_seq = model.log_likelihood_per_sequence(data)
    elif hasattr(model, "_prepared") and hasattr(model, "_event_intensities"):
        loglik, n_events, gaps, gap_seq = _hawkes_per_sequence(model, data)
    else:
        raise PathwaysInputError(f"model: {type(model).__name__} gives no per-sequence log-likelihood")
    per_event = loglik / np.maximum(n_events, 1)
    ks = _ks_by_group(gaps, gap_seq, n_events.size)
    n_gaps = np.bincount(gap_seq, minlength=n_events.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = -stats.kstwo.logsf(ks, np.maximum(n_gaps, 1)) / np.log(10)
    score[n_gaps == 0] = np.nan
    frame = pd.DataFrame({"sequence": np.arange(n_events.size), "n_events": n_events,
                          "loglik_per_event": per_event, "ks_distance": ks, "score": score})
    return frame.sort_values("score", ascending=False, kind="stable", na_position="last").reset_index(drop=True)


def _hawkes_per_sequence(model: Any, data: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from pathways.models.hawkes.base import _rescaled_gaps

    seqs, baselines = model._prepared(data)
    lam = model._event_intensities(seqs, baselines)
    own, total = model._compensators(seqs, baselines)
    seq_id = segment_ids(seqs.offsets)
    with np.errstate(divide="ignore"):
        log_lam = np.bincount(seq_id, weights=np.log(lam), minlength=len(seqs))
    loglik = log_lam - total.sum(axis=1)
    gaps, _ = _rescaled_gaps(seqs, own)
    # _rescaled_gaps orders events by (sequence, code, time): recover each gap's sequence in that order
    order = np.lexsort((np.arange(seqs.n_events), seqs.marks, seq_id))
    return loglik, seqs.lengths, gaps, seq_id[order]


def _ks_by_group(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Kolmogorov-Smirnov distance to Exp(1) of each group's values, vectorised over groups."""
    out = np.full(n_groups, np.nan)
    if values.size == 0:
        return out
    order = np.lexsort((values, group))
    v, g = values[order], group[order]
    n = np.bincount(g, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    rank = np.arange(v.size) - starts[g]
    cdf = 1 - np.exp(-v)
    d = np.maximum((rank + 1) / n[g] - cdf, cdf - rank / n[g])
    np.fmax.at(out, g, d)
    return out

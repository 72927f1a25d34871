"""Anomalous trajectories: per patient (or per prescriber / pharmacy) scores and the codes that make them unusual.

Two families of scores, both vectorised over units:

- **count baselines** — each unit's code counts against what its exposure (follow-up time for patients, number of
  events for prescribers/pharmacies) predicts from the population: Poisson upper-tail surprise
  ``-log10 P(N >= n)`` per (unit, code); the unit's score is its largest surprise, and its top codes explain it.
- **model-based** — time rescaling under a fitted point-process model: if the model explains a patient, the
  compensator of each event's code at the event, divided by that code's compensator over the whole window,
  is i.i.d. Uniform(0, 1) given the number of events (the rescaled process is a unit-rate Poisson process). The
  Kolmogorov-Smirnov distance of these values to the uniform law, turned into ``-log10 p`` with the exact KS
  distribution for the patient's number of events, scores the *timing*; a two-sided Poisson test of each code's
  count against its compensator over the window (Bonferroni over codes) scores the *volume*. The score is the
  larger of the two ``-log10 p``. The log-likelihood per event is reported too, but is no score on its own: it
  grows with event density.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from pathways.data.eventlog import EventLog
from pathways.encode.sequences import Sequences, to_sequences
from pathways.errors import PathwaysInputError
from pathways.models.hawkes.base import HawkesBase
from pathways.progress import progress_bar


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


def model_anomaly_scores(model: HawkesBase, data: Any, block_size: int = 20_000) -> pd.DataFrame:
    """Per-sequence log-likelihood per event and time-rescaling KS distance under a fitted Hawkes model.

    Reads the model's public :meth:`~pathways.models.hawkes.HawkesBase.residuals`, by blocks of ``block_size``
    sequences (every score depends on its own sequence only, so blocks give the same scores; memory stays bounded
    and a progress bar shows the rate and ETA). A model with covariates scores the data in one pass.

    Returns
    -------
    DataFrame sorted by decreasing ``score`` (high = unusual): ``sequence`` (index), ``n_events``,
    ``loglik_per_event``, ``ks_distance`` and ``timing_score`` (KS of rescaled times vs Uniform(0, 1)),
    ``volume_score`` (counts vs compensators), ``score`` = max of the two.
    """
    if not isinstance(model, HawkesBase):
        raise PathwaysInputError(f"model: {type(model).__name__} gives no per-sequence log-likelihood "
                                 "(expected a fitted Hawkes model)")
    blocks = _blocks(model, data, int(block_size))
    bar = progress_bar(total=blocks[-1][0] + _n_sequences(blocks[-1][1]), desc="anomaly scoring", unit="seq")
    frames = []
    for offset, part in blocks:
        frames.append(_block_scores(model, part, offset))
        bar.update(_n_sequences(part))
    bar.close()
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values("score", ascending=False, kind="stable", na_position="last").reset_index(drop=True)


def _n_sequences(part: Any) -> int:
    return len(part) if isinstance(part, Sequences) else 0


def _blocks(model: HawkesBase, data: Any, size: int) -> list[tuple[int, Any]]:
    """(first sequence index, data) blocks; one block when covariates tie the data to its patients table."""
    if size < 1:
        raise PathwaysInputError(f"block_size: expected an integer >= 1, got {size}")
    if getattr(model, "covariates", None) or not isinstance(data, (EventLog, Sequences)):
        return [(0, data)]
    seqs = to_sequences(data) if isinstance(data, EventLog) else data
    return [(lo, seqs[lo:lo + size]) for lo in range(0, max(len(seqs), 1), size)]


def _block_scores(model: HawkesBase, data: Any, offset: int) -> pd.DataFrame:
    res = model.residuals(data)
    n_events = res.n_events
    per_event = res.log_likelihood / np.maximum(n_events, 1)
    ks = _ks_by_group(res.uniform, res.sequence, n_events.size)
    n_obs = np.bincount(res.sequence, minlength=n_events.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        timing = -stats.kstwo.logsf(ks, np.maximum(n_obs, 1)) / np.log(10)
    timing[n_obs == 0] = 0.0
    volume = _volume_scores(res.sequence, res.marks, res.compensators)
    return pd.DataFrame({"sequence": offset + np.arange(n_events.size), "n_events": n_events,
                         "loglik_per_event": per_event, "ks_distance": ks, "timing_score": timing,
                         "volume_score": volume, "score": np.fmax(timing, volume)})


def _volume_scores(seq_id: np.ndarray, marks: np.ndarray, total: np.ndarray) -> np.ndarray:
    """-log10 of the Bonferroni-corrected two-sided Poisson p-value of each sequence's code counts."""
    counts = np.zeros_like(total)
    np.add.at(counts, (seq_id, marks), 1.0)
    log_upper = stats.poisson.logsf(counts - 1, np.maximum(total, 1e-300))
    log_lower = stats.poisson.logcdf(counts, np.maximum(total, 1e-300))
    log_p = np.minimum(np.log(2.0) + np.minimum(log_upper, log_lower), 0.0)
    corrected = np.minimum(log_p.min(axis=1) + np.log(total.shape[1]), 0.0)
    return -corrected / np.log(10)


def _ks_by_group(values: np.ndarray, group: np.ndarray, n_groups: int, law: str = "uniform") -> np.ndarray:
    """Kolmogorov-Smirnov distance of each group's values to Uniform(0, 1) or Exp(1), vectorised over groups."""
    out = np.full(n_groups, np.nan)
    if values.size == 0:
        return out
    order = np.lexsort((values, group))
    v, g = values[order], group[order]
    n = np.bincount(g, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    rank = np.arange(v.size) - starts[g]
    cdf = v if law == "uniform" else 1 - np.exp(-v)
    d = np.maximum((rank + 1) / n[g] - cdf, cdf - rank / n[g])
    np.fmax.at(out, g, d)
    return out

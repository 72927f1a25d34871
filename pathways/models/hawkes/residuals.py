"""Per-sequence residuals of a fitted Hawkes model: what anomaly scores and excitation graphs read.

:meth:`HawkesBase.residuals` returns a :class:`HawkesResiduals`; :func:`excess_events` backs
:meth:`HawkesBase.expected_excess_events`. Both are computed from the model's own hooks (event intensities and
compensators), so every Hawkes learner gets them.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import numpy as np

from pathways.encode.sequences import Sequences
from pathways.utils import segment_ids

__all__ = ["HawkesResiduals", "excess_events", "residuals_from"]

Compensators = Callable[[Sequences, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class HawkesResiduals:
    """Time-rescaling residuals of a fitted Hawkes model on some data.

    Attributes
    ----------
    log_likelihood : (S,) log-likelihood of each sequence over its window (``score_samples``).
    n_events : (S,) events per sequence.
    uniform : (N,) rescaled time of each event, ``Λ_c(t_k) / Λ_c(end)`` (own compensator over the window's total
        for the event's code), Uniform(0, 1) under the model; flat order of the sequences' events.
    sequence : (N,) the sequence of each event.
    marks : (N,) the code index of each event.
    compensators : (S, D) ``Λ_i(end) - Λ_i(start)`` per sequence and code (expected events under the model).
    """

    log_likelihood: np.ndarray
    n_events: np.ndarray
    uniform: np.ndarray
    sequence: np.ndarray
    marks: np.ndarray
    compensators: np.ndarray


def residuals_from(seqs: Sequences, lam: np.ndarray, own: np.ndarray, total: np.ndarray) -> HawkesResiduals:
    """Assemble :class:`HawkesResiduals` from event intensities ``lam`` and compensators ``own``/``total``."""
    seq_id = segment_ids(seqs.offsets)
    with np.errstate(divide="ignore"):
        log_lam = np.bincount(seq_id, weights=np.log(lam), minlength=len(seqs))
    with np.errstate(divide="ignore", invalid="ignore"):
        uniform = np.clip(own / total[seq_id, seqs.marks], 0.0, 1.0)
    return HawkesResiduals(log_lam - total.sum(axis=1), np.asarray(seqs.lengths), uniform, seq_id,
                           np.asarray(seqs.marks), total)


def excess_events(seqs: Sequences, n_codes: int, compensators: Compensators) -> tuple[np.ndarray, np.ndarray]:
    """(excess[i, j] = target-i events the model attributes to source-j events, events per code (D,)).

    The compensator is additive over source events and the baseline term separates, so the window compensators of
    the data restricted to code j's events, with a zero baseline, are exactly ``sum_{l of j} Phi_ij(end - t_l)``.
    One call per source code, each vectorised over that code's events.
    """
    excess = np.zeros((n_codes, n_codes))
    counts = np.bincount(seqs.marks, minlength=n_codes)
    zero = np.zeros((len(seqs), n_codes))
    for j in np.flatnonzero(counts):
        _, total = compensators(_only_code(seqs, j), zero)
        excess[:, j] = total.sum(axis=0)
    return excess, counts


def _only_code(seqs: Sequences, code: int) -> Sequences:
    """The same sequences and windows with only the events of ``code``."""
    keep = seqs.marks == code
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(np.bincount(seqs.sequence_ids[keep], minlength=len(seqs)), out=offsets[1:])
    return type(seqs)(seqs.times[keep], seqs.marks[keep], offsets, seqs.start, seqs.end, seqs.n_codes, seqs.vocab,
                      seqs.patient_index, validate=False)

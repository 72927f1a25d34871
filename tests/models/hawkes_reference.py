"""Naive O(N²) float64 references for Hawkes likelihoods (test helpers, not library code)."""
from __future__ import annotations

import numpy as np

from pathways.encode.sequences import Sequences


def naive_terms(seqs: Sequences, mu: np.ndarray, comp: np.ndarray, decays: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """λ at events, own-code compensator at events, total compensator (P, D), by explicit double loops.

    mu : (P, D) baselines, comp : (K, D, D) component adjacency, decays : (K,).
    """
    lam, own = np.zeros(seqs.n_events), np.zeros(seqs.n_events)
    total = np.zeros((len(seqs), seqs.n_codes))
    for p in range(len(seqs)):
        lo, hi = seqs.offsets[p], seqs.offsets[p + 1]
        t, c, s0, s1 = seqs.times[lo:hi], seqs.marks[lo:hi], seqs.start[p], seqs.end[p]
        total[p] = mu[p] * (s1 - s0)
        for l in range(t.size):
            total[p] += np.einsum("u,ui->i", 1 - np.exp(-decays * (s1 - t[l])), comp[:, :, c[l]])
        for k in range(t.size):
            lam[lo + k] = mu[p, c[k]]
            own[lo + k] = mu[p, c[k]] * (t[k] - s0)
            for l in range(t.size):
                if t[l] < t[k]:
                    dt = t[k] - t[l]
                    lam[lo + k] += np.sum(comp[:, c[k], c[l]] * decays * np.exp(-decays * dt))
                    own[lo + k] += np.sum(comp[:, c[k], c[l]] * (1 - np.exp(-decays * dt)))
    return lam, own, total


def random_sequences(seed: int, n_seq: int = 4, d: int = 3, max_len: int = 25, ties: bool = True) -> Sequences:
    """Small random sequences with shifted windows, empty sequences and (optionally) tied times."""
    gen = np.random.default_rng(seed)
    lengths = gen.integers(0, max_len, n_seq)
    lengths[0] = max(lengths[0], 3)
    start = gen.uniform(-5, 5, n_seq)
    end = start + gen.uniform(5, 15, n_seq)
    times, marks = [], []
    for p, n in enumerate(lengths):
        t = np.sort(gen.uniform(start[p], end[p], n))
        if ties and n > 3:
            t[1] = t[0]
            t[3] = t[2]
        times.append(t)
        marks.append(gen.integers(0, d, n))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return Sequences(np.concatenate(times), np.concatenate(marks), offsets, start, end, d)

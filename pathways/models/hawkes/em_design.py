"""Design of the nonparametric (piecewise-constant) Hawkes likelihood: kernel bins, (event, earlier neighbour)
pairs as a sparse count matrix, kernel exposures, compensators and the observed information.

The pairs (event k, earlier event l of the same sequence with ``t_k - S < t_l < t_k``) are found once with one
lexicographic sort of (sequence, time) keys and stored as a sparse count matrix ``M`` (events x kernel cells), in CSR
with its transpose: memory is linear in events x mean number of neighbours within the support.
"""
from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence as TypingSequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import linalg, sparse

from pathways.device import torch_csr
from pathways.errors import PathwaysInputError
from pathways.utils import ragged_arange

# Pairs are materialised in chunks of about this many entries so that the temporary numpy arrays stay small.
_PAIR_CHUNK = 1 << 22


# --------------------------------------------------------------------------------------------------------------
# Kernel discretisation
# --------------------------------------------------------------------------------------------------------------
def kernel_edges(
    kernel_support: float | None = None,
    n_bins: int = 10,
    kernel_discretization: TypingSequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """Bin edges of a piecewise-constant kernel.

    Parameters
    ----------
    kernel_support : float, optional
        Common support ``S`` of all kernels (same time unit as the data). Ignored when ``kernel_discretization``
        is given.
    n_bins : int
        Number of equal-width bins on ``[0, S)``.
    kernel_discretization : array-like, optional
        Explicit increasing edges starting at 0 (``B + 1`` values); overrides the two other arguments. Use
        log-spaced edges for lags spanning days to years.

    Returns
    -------
    np.ndarray
        float64 edges ``(B + 1,)``, first 0, strictly increasing.

    Raises
    ------
    PathwaysInputError
        When the support or the edges are not positive, finite and increasing.
    """
    if kernel_discretization is not None:
        edges = np.asarray(kernel_discretization, dtype=np.float64).ravel()
        if edges.size < 2 or not np.all(np.isfinite(edges)) or edges[0] != 0.0 or np.any(np.diff(edges) <= 0):
            raise PathwaysInputError(
                "argument 'kernel_discretization': expected >= 2 finite, strictly increasing edges starting at 0; "
                f"got {edges.size} values, first ones {edges[:4].tolist()}"
            )
        return edges
    if kernel_support is None or not np.isfinite(kernel_support) or kernel_support <= 0:
        raise PathwaysInputError(
            f"argument 'kernel_support': expected a positive finite float, got {kernel_support!r}"
        )
    if int(n_bins) != n_bins or n_bins < 1:
        raise PathwaysInputError(f"argument 'n_bins': expected a positive integer, got {n_bins!r}")
    return np.linspace(0.0, float(kernel_support), int(n_bins) + 1)


def bin_index(lags: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each lag in ``[0, S)`` (int64); lags outside the support get -1 (below) or ``B`` (at/after S)."""
    idx = np.searchsorted(edges, lags, side="right") - 1
    return np.where(lags < 0, -1, np.minimum(idx, edges.size - 1))


# --------------------------------------------------------------------------------------------------------------
# Neighbour search
# --------------------------------------------------------------------------------------------------------------
def _count_before(
    data_seq: np.ndarray, data_time: np.ndarray, q_seq: np.ndarray, q_time: np.ndarray, inclusive: bool
) -> np.ndarray:
    """Number of data rows lexicographically before each query (``<=`` when ``inclusive``, else ``<``).

    Data must be sorted by (sequence, time); the count is then the index of the first data row after the query,
    which is automatically clamped to the query's own sequence. One ``np.lexsort`` replaces a per-sequence
    ``searchsorted`` loop and is exact (no shifted float keys).
    """
    n, m = data_time.size, q_time.size
    seq = np.concatenate([data_seq, q_seq])
    time = np.concatenate([data_time, q_time])
    # At ties, data first means "count data equal to the query" (<=); queries first means "<".
    flag = np.concatenate([np.zeros(n, np.int8), np.ones(m, np.int8)])
    if not inclusive:
        flag = 1 - flag
    order = np.lexsort((flag, time, seq))
    is_query = order >= n
    data_seen = np.cumsum(~is_query)
    out = np.empty(m, dtype=np.int64)
    out[order[is_query] - n] = data_seen[is_query]
    return out


def window_bounds(
    data_seq: np.ndarray,
    data_time: np.ndarray,
    q_seq: np.ndarray,
    q_time: np.ndarray,
    support: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Half-open index ranges ``[lo, hi)`` of data events with ``q_time - support < t < q_time`` in each query's
    sequence. Data must be sorted by (sequence, time)."""
    lo = _count_before(data_seq, data_time, q_seq, q_time - support, inclusive=True)
    hi = _count_before(data_seq, data_time, q_seq, q_time, inclusive=False)
    return lo, np.maximum(hi, lo)


def _expand_ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flatten ranges ``[lo_q, hi_q)`` into (query index, data index) pairs without a Python loop."""
    counts = hi - lo
    q = np.repeat(np.arange(lo.size, dtype=np.int64), counts)
    return q, ragged_arange(counts, lo)


def iter_pairs(lo: np.ndarray, hi: np.ndarray, chunk: int = _PAIR_CHUNK) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Yield ``(out_slice, query_idx, data_idx)`` for the pairs of ranges ``[lo_q, hi_q)``, a few million at a time.

    ``out_slice`` locates the chunk in the flat list of all pairs (query-major order), so callers can fill
    preallocated arrays; the chunking only bounds temporary memory, the work inside a chunk is vectorised.
    """
    counts = hi - lo
    cum = np.concatenate([[0], np.cumsum(counts)])
    n_pairs = int(cum[-1])
    cuts = np.searchsorted(cum, np.arange(0, n_pairs, chunk), side="right") - 1
    bounds = np.unique(np.concatenate([[0], cuts, [lo.size]]))
    for a, b in zip(bounds[:-1], bounds[1:]):
        q, d = _expand_ranges(lo[a:b], hi[a:b])
        yield slice(int(cum[a]), int(cum[b])), q + a, d


# --------------------------------------------------------------------------------------------------------------
# Design: what one EM iteration needs, built once per data set
# --------------------------------------------------------------------------------------------------------------
class PairMatrix:
    """Event-sized work of the likelihood: the sparse pair counts and the codes of the events.

    ``M[k, c]`` (N x C, C = D * D * B) counts the earlier neighbours of event k in kernel cell
    ``c = (i * D + j) * B + m``. The intensities at events are ``mu[marks] + M @ phi``, and the EM
    responsibilities summed per cell are ``phi * (M^T @ (1 / lam))``: one EM iteration is two sparse
    matrix-vector products plus a few element-wise passes over the events. On CPU everything runs in numpy/scipy
    (scipy's CSR product costs about 2 ns per pair; torch's CPU sparse kernels and its thread pool add several
    times that on small shared machines); on CUDA in torch (CSR tensors, cuSPARSE). Both ``M`` and ``M^T`` are
    kept in CSR so that both products stream memory. Parameters (D and D x D x B values) stay numpy on the host.
    """

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, marks: np.ndarray, n_cols: int,
                 device: torch.device):
        n_rows = indptr.size - 1
        self.csr = sparse.csr_matrix((np.ones(indices.size), indices, indptr), shape=(n_rows, n_cols))
        self.csr_t = self.csr.T.tocsr()
        self.marks = marks
        self.n_codes = int(marks.max()) + 1 if marks.size else 0
        self.device = device
        if device.type != "cpu":
            self._m = torch_csr(self.csr, device)
            self._mt = torch_csr(self.csr_t, device)
            self._marks = torch.from_numpy(marks).to(device)

    def intensities(self, mu: np.ndarray, phi: np.ndarray) -> Any:
        """``lam = mu[marks] + M @ phi`` as a numpy array (CPU) or a tensor on the device."""
        if self.device.type == "cpu":
            return mu[self.marks] + self.csr @ phi
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float64, device=self.device)
        return as_t(mu).index_select(0, self._marks) + torch.mv(self._m, as_t(phi))

    def to_numpy(self, lam: Any) -> np.ndarray:
        return lam if isinstance(lam, np.ndarray) else lam.cpu().numpy()

    def statistics(self, lam: Any, n_codes: int) -> tuple[float, np.ndarray, np.ndarray]:
        """``(sum log lam, M^T @ (1 / lam), per-code sum of 1 / lam)``: all the E-step needs, as host values."""
        if self.device.type == "cpu":
            inv = 1.0 / lam
            return (float(np.log(lam).sum()), self.csr_t @ inv,
                    np.bincount(self.marks, weights=inv, minlength=n_codes))
        inv = lam.reciprocal()
        per_code = torch.zeros(n_codes, dtype=lam.dtype, device=lam.device).index_add_(0, self._marks, inv)
        return float(lam.log().sum()), torch.mv(self._mt, inv).cpu().numpy(), per_code.cpu().numpy()


@dataclass
class EMDesign:
    """Sufficient structure of a data set for the piecewise-constant Hawkes likelihood.

    Attributes
    ----------
    pairs : PairMatrix, the event-sized part (pair counts per event and kernel cell, event codes).
    exposure : (D, B) float64, ``sum_{l of code j} |bin m ∩ [0, end - t_l)|``: the compensator of ``phi_ijm``
        (the same for every target code i).
    total_time : float, summed window lengths ``sum(end - start)``: the compensator of each baseline.
    counts : (D,) float64, events per code.
    n_codes, n_bins, n_events, n_pairs : sizes.
    """

    pairs: PairMatrix
    exposure: np.ndarray
    total_time: float
    counts: np.ndarray
    n_codes: int
    n_bins: int
    n_events: int
    n_pairs: int


def _exposure(
    times: np.ndarray, marks: np.ndarray, seq_end: np.ndarray, edges: np.ndarray, n_codes: int
) -> np.ndarray:
    """Time each bin of each source code's kernel spends inside the observation windows, (D, B).

    For an event at ``t`` in a window ending at ``T`` the kernel is observed on ``[0, min(T - t, S))``: bins fully
    inside count their width, the bin holding ``T - t`` counts the partial length. With ``f`` = that bin, the sum
    over events is a reverse cumulative count of ``f`` (full bins) plus a bincount of the partial lengths.
    """
    n_bins = edges.size - 1
    remaining = np.clip(seq_end - times, 0.0, edges[-1])
    f = np.clip(np.searchsorted(edges, remaining, side="right") - 1, 0, n_bins)
    partial = remaining - edges[f]
    key = marks * (n_bins + 1) + f
    size = n_codes * (n_bins + 1)
    count = np.bincount(key, minlength=size).reshape(n_codes, n_bins + 1)
    part = np.bincount(key, weights=partial, minlength=size).reshape(n_codes, n_bins + 1)
    # events whose remaining time falls beyond bin m see bin m in full
    beyond = np.cumsum(count[:, ::-1], axis=1)[:, ::-1]
    full = beyond[:, 1:]
    return full * np.diff(edges)[None, :] + part[:, :n_bins]


def build_design(
    times: np.ndarray,
    marks: np.ndarray,
    offsets: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    n_codes: int,
    edges: np.ndarray,
    device: str | torch.device = "cpu",
) -> EMDesign:
    """Find all (event, earlier neighbour within the support) pairs and the kernel exposures.

    Parameters
    ----------
    times, marks : flat event times (float64, sorted within each sequence) and codes (int64 in ``[0, n_codes)``).
    offsets : (n + 1,) events of sequence s are ``offsets[s]:offsets[s + 1]``.
    start, end : (n,) observation window of each sequence; every time must lie in it.
    n_codes : D. edges : kernel bin edges from :func:`kernel_edges`. device : torch device of the tensors.

    Returns
    -------
    EMDesign
    """
    times = np.asarray(times, dtype=np.float64)
    marks = np.asarray(marks, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    n_bins = edges.size - 1
    seq = np.repeat(np.arange(offsets.size - 1, dtype=np.int64), np.diff(offsets))
    lo, hi = window_bounds(seq, times, seq, times, float(edges[-1]))
    n_pairs = int((hi - lo).sum())
    n_cells = n_codes * n_codes * n_bins
    cell = np.empty(n_pairs, dtype=np.int32 if n_cells < 2**31 - 1 else np.int64)
    for out, q, d in iter_pairs(lo, hi):
        # lags are > 0 and < S by construction; the clip guards the last ulp at S
        m = np.clip(bin_index(times[q] - times[d], edges), 0, n_bins - 1)
        cell[out] = (marks[q] * n_codes + marks[d]) * n_bins + m
    # pairs come out query-major, so the CSR row pointer is the cumulative neighbour count: no sort needed
    indptr = np.concatenate([[0], np.cumsum(hi - lo)])
    seq_end = np.repeat(np.asarray(end, dtype=np.float64), np.diff(offsets))
    return EMDesign(
        pairs=PairMatrix(indptr, cell, marks, n_cells, torch.device(device)),
        exposure=_exposure(times, marks, seq_end, edges, n_codes),
        total_time=float(np.sum(np.asarray(end, np.float64) - np.asarray(start, np.float64))),
        counts=np.bincount(marks, minlength=n_codes).astype(np.float64),
        n_codes=int(n_codes),
        n_bins=int(n_bins),
        n_events=int(times.size),
        n_pairs=n_pairs,
    )


# --------------------------------------------------------------------------------------------------------------
# Compensators and observed information (used by goodness of fit, scores and Fisher intervals)
# --------------------------------------------------------------------------------------------------------------
def kernel_primitive_tables(kernel: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tables to evaluate ``Phi_ij(r) = int_0^r phi_ij`` as ``cum[i, j, f] + slope[i, j, f] * (r - edges[f])``.

    ``f`` is the bin of ``r`` (``B`` once ``r >= S``, where the slope is 0 and ``cum`` is the adjacency).
    Both tables are (D, D, B + 1).
    """
    d, _, b = kernel.shape
    mass = kernel * np.diff(edges)[None, None, :]
    cum = np.concatenate([np.zeros((d, d, 1)), np.cumsum(mass, axis=2)], axis=2)
    slope = np.concatenate([kernel, np.zeros((d, d, 1))], axis=2)
    return cum, slope


def _clipped_bins(r: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin ``f`` in ``[0, B]`` of ``min(r, S)`` and the distance from that bin's left edge."""
    r = np.clip(r, 0.0, edges[-1])
    f = np.clip(np.searchsorted(edges, r, side="right") - 1, 0, edges.size - 1)
    return f, r - edges[f]


def window_compensators(
    times: np.ndarray, marks: np.ndarray, offsets: np.ndarray, start: np.ndarray, end: np.ndarray,
    baselines: np.ndarray, kernel: np.ndarray, edges: np.ndarray,
) -> np.ndarray:
    """``total[p, i] = int_{start_p}^{end_p} lambda_i`` for every sequence and code, (n, D).

    Each event l adds ``Phi_{i, c_l}(end - t_l)``; grouping events by (sequence, code, bin of the remaining time)
    in two sparse matrices turns the sum into two sparse-dense products, memory O(N + n D).
    """
    d, _, b = kernel.shape
    n_seq = offsets.size - 1
    seq = np.repeat(np.arange(n_seq), np.diff(offsets))
    f, part = _clipped_bins(end[seq] - times, edges)
    col = marks * (b + 1) + f
    shape = (n_seq, d * (b + 1))
    counts = sparse.csr_matrix((np.ones(times.size), (seq, col)), shape=shape)
    partial = sparse.csr_matrix((part, (seq, col)), shape=shape)
    cum, slope = kernel_primitive_tables(kernel, edges)
    total = counts @ cum.reshape(d, -1).T + partial @ slope.reshape(d, -1).T
    return np.asarray(total) + baselines * (end - start)[:, None]


def own_compensators(
    times: np.ndarray, marks: np.ndarray, offsets: np.ndarray, start: np.ndarray,
    baselines: np.ndarray, kernel: np.ndarray, edges: np.ndarray,
) -> np.ndarray:
    """``own[k] = int_{start}^{t_k} lambda_{c_k}`` for every event k, (N,).

    Neighbours within the support add the primitive at their lag; every older event of the sequence (index below
    the window's first neighbour) adds the whole adjacency ``a_{c_k, c_l}``, summed with one prefix sum per
    target code (a loop over codes, each step vectorised over events).
    """
    d, _, b = kernel.shape
    n_seq = offsets.size - 1
    seq = np.repeat(np.arange(n_seq), np.diff(offsets))
    lo, hi = window_bounds(seq, times, seq, times, float(edges[-1]))
    cum, slope = kernel_primitive_tables(kernel, edges)
    cum_flat, slope_flat = cum.reshape(-1), slope.reshape(-1)
    own = baselines[seq, marks] * (times - start[seq])
    for out, q, l in iter_pairs(lo, hi):
        f, part = _clipped_bins(times[q] - times[l], edges)
        idx = (marks[q] * d + marks[l]) * (b + 1) + f
        own += np.bincount(q, weights=cum_flat[idx] + slope_flat[idx] * part, minlength=times.size)
    adjacency = cum[:, :, b]
    seq_first = offsets[seq]
    for i in np.unique(marks):
        # prefix[m] = sum of a_{i, c_l} over events l < m (all sequences); differences stay inside a sequence
        prefix = np.concatenate([[0.0], np.cumsum(adjacency[i, marks])])
        k = np.flatnonzero(marks == i)
        own[k] += prefix[lo[k]] - prefix[seq_first[k]]
    return own


def observed_information_se(
    mu: np.ndarray, kernel: np.ndarray, edges: np.ndarray, design: EMDesign, lam: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors of the baseline and of the adjacency from the observed information at ``(mu, kernel)``.

    The log-likelihood is linear in ``theta_i = (mu_i, phi_i..)`` inside each log and in the compensator, so the
    observed information is ``sum_k g_k g_k^T / lam_k^2`` with ``g_k`` the pair counts of event k per cell. It is
    block diagonal by target code: one (1 + D B)-square block per code. Parameters at the zero boundary are held
    fixed (conditional information), which makes the intervals optimistic there. ``a_ij = sum_m w_m phi_ijm``
    gets its variance by the delta method.
    """
    d, _, b = kernel.shape
    width = np.diff(edges)
    block = 1 + d * b
    marks = design.pairs.marks
    pairs = design.pairs.csr
    n = marks.size
    # columns of target block i: [mu_i, phi_i00 .. phi_i(D-1)(B-1)]; a pair cell (i*D + j)*B + m maps to
    # i * block + 1 + (j*B + m), i.e. cell + i + 1
    cell = pairs.indices.astype(np.int64)
    rows = np.concatenate([np.arange(n), np.repeat(np.arange(n), np.diff(pairs.indptr))])
    cols = np.concatenate([marks * block, cell + cell // (d * b) + 1])
    vals = np.concatenate([1.0 / lam, 1.0 / lam[rows[n:]]])
    x = sparse.csr_matrix((vals, (rows, cols)), shape=(n, d * block))
    info = (x.T @ x).tocsr()
    mu_se = np.zeros(d)
    adj_se = np.zeros((d, d))
    for i in range(d):  # one dense block per target code
        sl = slice(i * block, (i + 1) * block)
        theta = np.concatenate([[mu[i]], kernel[i].ravel()])
        free = theta > 0
        if not free.any():
            continue
        h = info[sl, sl].toarray()[np.ix_(free, free)]
        cov = np.zeros((block, block))
        cov[np.ix_(free, free)] = linalg.pinvh(h)
        mu_se[i] = np.sqrt(max(cov[0, 0], 0.0))
        kcov = cov[1:, 1:].reshape(d, b, d, b)
        # Var(a_ij) = w^T Cov(phi_ij.) w, for all j at once
        adj_se[i] = np.sqrt(np.maximum(np.einsum("m,jmjn,n->j", width, kcov, width), 0.0))
    return mu_se, adj_se


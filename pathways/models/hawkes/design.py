"""Design of the exponential-kernel Hawkes likelihood: β-independent index structure, β-dependent values, and
the least-squares sufficient statistics.

How the likelihood is computed without a Python loop per event and in memory linear in events
------------------------------------------------------------------------------------------------
Sort the events of each sequence by code: each (sequence, code) pair is a *stream*. Along a stream, the decayed
count S_l = Σ_{l' ≤ l} e^{-β(t_l - t_l')} obeys the linear recurrence S_l = e^{-β(t_l - t_{l-1})} S_{l-1} + 1, solved
for all streams at once by a log-depth parallel scan (products of decays never overflow). The design feature of event
k for source code j, g_j(t_k) = β Σ_{t_l < t_k, c_l = j} e^{-β(t_k - t_l)}, is then β e^{-β(t_k - t_l*)} S_{l*} with l*
the last event of stream (seq(k), j) strictly before t_k, found by one integer ``searchsorted`` (or, when nearly
every event sees every code, read off one cumulative count of the one-hot marks). Only pairs (event, code present
earlier in the same sequence) are stored: memory is Σ_p n_p d_p (n_p events and d_p distinct codes of patient p), at
most N·D, and far less on patient data. The index structure does not depend on β, so learning the
decays reuses it and differentiates through the scan with torch autograd.

The pair construction and the scans live in :mod:`pathways.models.hawkes.pairs`.

Dense designs (long realizations over few codes, every event sees every code) are kept as one dense block per target
code (:class:`_DenseBlocks`): the least-squares statistics and the EM maps are then matrix products per code (BLAS),
no scatters.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch

from pathways.encode.sequences import Sequences
from pathways.models.hawkes.pairs import (  # noqa: F401  (linear_scan: re-exported)
    _dense_pairs,
    _index_dtype,
    _sparse_pairs,
    _trim_heap,
    blocked_scan,
    linear_scan,
)
from pathways.utils import offsets_from_sorted, segment_ids

_DENSE_MAX = 30_000_000  # largest dense design (values) the EM keeps as per-code blocks
_FLOAT32_MIN = 1 << 22  # compact fits store the values X of sparse designs this large as float32 (sums stay float64)


@dataclass
class _Design:
    """Sparse design of the exponential recurrences for one Sequences object (see module docstring).

    A dense design (``dense`` set: long realizations over few codes) keeps only its β-independent index, O(N + P·D)
    integers, and builds its values straight into per-code blocks (:meth:`_Tensors.dense_blocks`); the N·D entries
    ``row, col, lag, last, count`` are then made on first access only (gradients through the decays, pruning,
    diagnostics), never in a plain fit.
    """

    n_events: int
    n_codes: int
    code: np.ndarray        # (N,) mark of each event
    seq: np.ndarray         # (N,) sequence of each event
    time: np.ndarray        # (N,) event times
    since_start: np.ndarray  # (N,) t_k - start_p
    to_end: np.ndarray      # (N,) end_p - t_k
    duration: np.ndarray    # (P,) window lengths
    stream_gap: np.ndarray  # (N,) gap to previous event of the same stream (stream-sorted order), inf at starts
    s_time: np.ndarray      # (N,) event times in stream-sorted order
    dense: _DenseIndex | None = None
    entries: tuple[np.ndarray, ...] | None = field(default=None, repr=False)  # (row, col, last)

    def _entries(self) -> tuple[np.ndarray, ...]:
        if self.entries is None:
            i = self.dense
            self.entries = _dense_pairs(i.seqs, i.seq, i.group_first, i.s_code, i.stream_start, i.seq_streams)
        return self.entries

    row = property(lambda self: self._entries()[0])    # (M,) event of each entry
    col = property(lambda self: self._entries()[1])    # (M,) source code of each entry

    @property
    def last(self) -> np.ndarray:  # (M,) stream-sorted position of l*
        last = self._entries()[2]
        if last is None:
            raise RuntimeError("design: the positions l* were released once the values for the fixed decays were "
                               "made (_Tensors(compact=True)); build the design again for other decays")
        return last

    @property
    def count(self) -> np.ndarray:  # (M,) number of source events strictly before t_k, derived from l*
        starts = np.flatnonzero(np.isinf(self.stream_gap))  # stream starts in stream-sorted order
        last = self.last
        return (last - starts[np.searchsorted(starts, last, side="right") - 1] + 1).astype(last.dtype, copy=False)

    def release_last(self) -> None:
        """Drop the positions l* (4-8 B per entry): values for other decays then need a new design."""
        if self.entries is not None:
            self.entries = (*self.entries[:2], None)

    @property
    def lag(self) -> np.ndarray:  # (M,) t_k - t_{l*}
        return self.time[self.row] - self.s_time[self.last]

    @property
    def n_entries(self) -> int:
        return int(self.row.size)


@dataclass
class _DenseIndex:
    """β-independent index of a dense design: enough to make its entries or its per-code blocks."""

    seqs: Sequences
    seq: np.ndarray
    group_first: np.ndarray   # (N,) first event of the tie group of each event
    s_code: np.ndarray
    stream_start: np.ndarray
    seq_streams: np.ndarray

    def first_position(self) -> np.ndarray:
        """(P, D) stream-sorted position of the first event of stream (p, j), minus one (-1 where absent)."""
        first_pos = np.full((len(self.seqs), self.seqs.n_codes), -1, dtype=np.int64)
        stream_seq = np.repeat(np.arange(len(self.seqs)), np.diff(self.seq_streams))
        first_pos[stream_seq, self.s_code[self.stream_start]] = self.stream_start - 1
        return first_pos


def build_design(seqs: Sequences, max_pairs: int = 1 << 20) -> _Design:
    """Index structure of the design features of ``seqs`` (vectorised; chunks bound temporary memory)."""
    n, d = seqs.n_events, seqs.n_codes
    t, c = seqs.times, seqs.marks
    seq = segment_ids(seqs.offsets)
    # first event of each tie group (same sequence, same time): its history is strictly earlier events
    new = np.ones(n, dtype=bool)
    new[1:] = (seq[1:] != seq[:-1]) | (t[1:] != t[:-1])
    group_first = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    # streams = (sequence, code) runs in stream-sorted order, keeping time order inside
    order = np.lexsort((np.arange(n), c, seq))
    s_seq, s_code, s_time = seq[order], c[order], t[order]
    s_new = np.ones(n, dtype=bool)
    s_new[1:] = (s_seq[1:] != s_seq[:-1]) | (s_code[1:] != s_code[:-1])
    stream_start = np.flatnonzero(s_new)
    gap = np.empty(n)
    gap[0:1] = np.inf
    gap[1:] = np.where(s_new[1:], np.inf, np.diff(s_time))
    seq_streams = offsets_from_sorted(s_seq[stream_start], len(seqs))
    reps = np.diff(seq_streams)[seq]
    common = (n, d, c, seq, t, t - seqs.start[seq], seqs.end[seq] - t, seqs.end - seqs.start, gap, s_time)
    if 0 < n * d <= _DENSE_MAX and reps.sum() >= 0.5 * n * d:
        return _Design(*common, dense=_DenseIndex(seqs, seq, group_first, s_code, stream_start, seq_streams))
    entries = _sparse_pairs(seq, group_first, order, s_code, stream_start, seq_streams, reps, max_pairs)
    _trim_heap()  # the pair chunks were freed: hand their pages back before the fit allocates its own arrays
    return _Design(*common, entries=entries)


class _Tensors:
    """Design arrays moved to a torch device once, plus β-dependent values (cached for fixed decays).

    The N·D entry arrays (``row, col, last``) move on first use: a dense design fitted through its per-code blocks
    never makes them. ``flat`` (target, source) is derived on demand (the hot loops derive it chunk by chunk:
    :meth:`flat_chunk`), never kept. ``compact=True`` (a fit whose decays are fixed): the positions l* are released
    once the values are made (4 B per entry), and a sparse design of at least ``_FLOAT32_MIN`` entries keeps X in
    float32 (4 B per entry; relative rounding 6e-8, every sum over entries still accumulated in float64).
    """

    def __init__(self, design: _Design, device: torch.device, compact: bool = False):
        as_t = lambda a: torch.as_tensor(a, device=device)
        self.design, self.device, self.compact = design, device, compact
        self.code, self.seq = as_t(design.code), as_t(design.seq)
        self.gap, self.to_end = as_t(design.stream_gap), as_t(design.to_end)
        self.duration, self.since_start = as_t(design.duration), as_t(design.since_start)
        self._cache: tuple[tuple[float, ...], torch.Tensor, torch.Tensor] | None = None
        self.blocks: tuple[torch.Tensor, _DenseBlocks] | None = None  # dense per-code blocks of cached X
        self._direct: tuple[tuple[float, ...], _DenseBlocks] | None = None  # blocks built without entries

    def _as_t(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, device=self.device)

    @functools.cached_property
    def row(self) -> torch.Tensor:
        return self._as_t(self.design.row)

    @functools.cached_property
    def col(self) -> torch.Tensor:
        return self._as_t(self.design.col)

    @property
    def n_entries(self) -> int:
        return int(self.row.numel())

    def flat_chunk(self, lo: int, hi: int) -> torch.Tensor:
        """(target, source) index c_k·D + j of entries lo:hi (int64)."""
        return self.code[self.row[lo:hi]].long() * self.design.n_codes + self.col[lo:hi]

    @property
    def flat(self) -> torch.Tensor:  # (target, source) of every entry; made on demand, not kept
        return self.flat_chunk(0, self.n_entries)

    @property
    def lag(self) -> torch.Tensor:  # made when needed (values for new decays), not kept: 8 B per entry less
        return self._as_t(self.design.lag)

    @property
    def last(self) -> torch.Tensor:
        return self._as_t(self.design.last)

    @property
    def count(self) -> torch.Tensor:
        return self._as_t(self.design.count)

    def stream_sums(self, decays: torch.Tensor) -> torch.Tensor:
        """S_l = Σ_{l' ≤ l in its stream} e^{-β(t_l - t_l')} (N, K), stream-sorted order."""
        decay_factor = torch.exp(-self.gap[:, None] * decays[None, :])  # 0 at stream starts (gap = inf)
        if decays.requires_grad:
            return linear_scan(decay_factor, torch.ones_like(decay_factor))
        return blocked_scan(decay_factor, torch.ones_like(decay_factor))

    def integrals(self, decays: torch.Tensor) -> torch.Tensor:
        """Per-source integrals G (D, K) = Σ_l (1 - e^{-β (end - t_l)})."""
        tail = -torch.expm1(-self.to_end[:, None] * decays[None, :])
        g = torch.zeros(self.design.n_codes, decays.numel(), dtype=tail.dtype, device=self.device)
        return g.index_add(0, self.code, tail)

    def values(self, decays: torch.Tensor, chunk: int = 1 << 20) -> tuple[torch.Tensor, torch.Tensor]:
        """Design values X (M, K) and per-source integrals G (D, K) = Σ_l (1 - e^{-β (end - t_l)})."""
        key = tuple(decays.detach().cpu().tolist())
        if not decays.requires_grad and self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        s = self.stream_sums(decays)
        if decays.requires_grad:
            x = decays[None, :] * torch.exp(-self.lag[:, None] * decays[None, :]) * s[self.last]
        else:  # same values, written chunk by chunk into X: the only (M, K) allocation
            m, design = self.n_entries, self.design
            single = self.compact and m >= _FLOAT32_MIN
            x = torch.empty(m, decays.numel(), dtype=torch.float32 if single else s.dtype, device=self.device)
            time, s_time, last = self._as_t(design.time), self._as_t(design.s_time), self.last
            for lo in range(0, m, chunk):  # loop over chunks of entries, not over events
                pos = last[lo:lo + chunk]
                lag = time[self.row[lo:lo + chunk]] - s_time[pos]
                out = torch.mul(lag[:, None], -decays[None, :], out=lag[:, None] if decays.numel() == 1 else None)
                out.exp_().mul_(decays[None, :]).mul_(torch.index_select(s, 0, pos))
                x[lo:lo + chunk] = out
            del last
            if self.compact:
                design.release_last()
                _trim_heap()
        g = self.integrals(decays)
        if not decays.requires_grad:
            self._cache = (key, x, g)
        return x, g

    def dense_blocks(self, decays: torch.Tensor) -> _DenseBlocks | None:
        """Per-code blocks built straight from the dense index (no N·D entries, no scatter), or None when the
        design is sparse, too large for blocks, or the decays need a gradient."""
        design = self.design
        if design.dense is None or decays.requires_grad \
                or not 0 < design.n_events * design.n_codes * decays.numel() <= _DENSE_MAX:
            return None
        key = tuple(decays.cpu().tolist())
        if self._direct is None or self._direct[0] != key:
            self._direct = (key, _direct_blocks(self, decays))
        return self._direct[1]


def _direct_blocks(t: _Tensors, decays: torch.Tensor, chunk: int = 1 << 21) -> _DenseBlocks:
    """X in per-target-code block order, X[r, (j, u)] = β_u e^{-β_u (t_k - t_l*)} S_l* (0 when stream (p, j) has
    no event before t_k), written chunk by chunk into the final block array: the only N·D·K allocation."""
    design, index = t.design, t.design.dense
    n, d, k = design.n_events, design.n_codes, decays.numel()
    beta = decays.cpu().numpy()
    # one sentinel row n: an absent stream points there, where time = -inf and β S = 0 make the value exactly 0
    beta_s = np.zeros((n + 1, k))
    beta_s[:n] = t.stream_sums(decays).cpu().numpy() * beta
    s_time = np.append(design.s_time, -np.inf)
    idx = _index_dtype(n + 1)
    # everything (d, events): the block layout itself, so each chunk is written in place, without a transposition
    cum = np.zeros((d, n + 1), dtype=idx)
    cum[design.code, np.arange(1, n + 1)] = 1
    np.cumsum(cum, axis=1, out=cum)  # cum[j, k] = events of code j among the first k flat events
    first_pos = np.ascontiguousarray(index.first_position().astype(idx).T)  # (D, P)
    starts = index.seqs.offsets[:-1]
    order = np.argsort(design.code, kind="stable")  # columns of the blocks: events by target code, then time
    dense = np.empty((d, k, n))  # transposed: each code's block is a (D·K, n_i) slice, events contiguous
    step = max(chunk // max(d * k, 1), 1)
    for lo in range(0, n, step):  # loop over chunks of events (bounded temporaries), not over events
        ev = order[lo:lo + step]
        seq = design.seq[ev]
        before = cum[:, index.group_first[ev]]
        before -= cum[:, starts[seq]]
        last = first_pos[:, seq]
        last += before
        last = np.where(before > 0, last, idx(n))
        lag = s_time[last]
        np.subtract(design.time[ev][None, :], lag, out=lag)  # +inf on absent streams
        for u in range(k):  # K components (one or a few)
            out = dense[:, u, lo:lo + ev.size]
            np.multiply(lag, -beta[u], out=out)
            np.exp(out, out=out)
            out *= beta_s[last, u]
    dense = dense.reshape(d * k, n)
    counts = np.bincount(design.code, minlength=d).tolist()
    order_t = torch.as_tensor(order, device=t.device)
    dense_t = torch.as_tensor(dense, device=t.device)
    return _DenseBlocks.from_parts(torch.split(order_t, counts), torch.split(dense_t, counts, dim=1), k)


class _DenseBlocks:
    """The design as one dense block per target code, stored transposed (D·K sources x its events, events
    contiguous): BLAS matrix-vector products at memory speed in both directions, no gathers.

    Used when the design is dense anyway (long realizations over few codes, where every event sees every code), as
    long as the N x D·K values fit in ``_DENSE_MAX``; patient data keep the sparse entries.
    """

    def __init__(self, t: _Tensors, x: torch.Tensor):
        d, k, n = t.design.n_codes, x.shape[1], t.design.n_events
        order = torch.argsort(t.code, stable=True)
        position = torch.empty_like(order)
        position[order] = torch.arange(n, device=order.device)
        dense = torch.zeros(d * k, n, dtype=x.dtype, device=x.device)
        cols = (t.col.long() * k)[:, None] + torch.arange(k, device=x.device)[None, :]
        dense[cols, position[t.row][:, None].expand(-1, k)] = x  # events sorted by target code
        counts = torch.bincount(t.code, minlength=d).tolist()
        self.rows, self.blocks, self.k = torch.split(order, counts), torch.split(dense, counts, dim=1), k

    @classmethod
    def from_parts(cls, rows: tuple[torch.Tensor, ...], blocks: tuple[torch.Tensor, ...], k: int) -> _DenseBlocks:
        self = cls.__new__(cls)
        self.rows, self.blocks, self.k = rows, blocks, k
        return self

    @staticmethod
    def maybe(t: _Tensors, x: torch.Tensor) -> _DenseBlocks | None:
        full = t.design.n_events * t.design.n_codes * x.shape[1]
        if not (0 < full <= _DENSE_MAX and x.numel() >= 0.5 * full):
            return None
        if t.blocks is None or t.blocks[0] is not x:  # built once per design values (least squares, then EM)
            t.blocks = (x, _DenseBlocks(t, x))
        return t.blocks[1]

    def excitation(self, a: torch.Tensor) -> torch.Tensor:
        """Σ_{j,u} a^u_{c_k j} X_{k,(j,u)} for every event (N,); one matrix-vector product per target code."""
        out = torch.zeros(sum(r.numel() for r in self.rows), dtype=a.dtype, device=a.device)
        for i, (rows, block) in enumerate(zip(self.rows, self.blocks)):  # loop over codes, not events
            if rows.numel():
                out[rows] = a[i].reshape(-1) @ block
        return out

    def gram_parts(self, to_end: torch.Tensor, beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Least-squares statistics from the blocks: the strictly-earlier part P of :func:`_gram` (D·K, D·K) and
        the sums Σ_{k: c_k = i} X_k (D, D·K), one matrix product per target code."""
        k = self.k
        dk = self.blocks[0].shape[0] if self.blocks else 0
        bsum = beta[:, None] + beta[None, :]  # (K, K)
        p = torch.zeros(len(self.blocks) * k, dk, dtype=beta.dtype, device=beta.device)
        s = torch.zeros(len(self.blocks), dk, dtype=beta.dtype, device=beta.device)
        for i, (rows, block) in enumerate(zip(self.rows, self.blocks)):  # loop over codes, not events
            if not rows.numel():
                continue
            # later event l (component u), earlier source (component v): β_u/(β_u+β_v)(1-e^{-(β_u+β_v)τ_l})
            weight = (beta[:, None] / bsum)[None] * -torch.expm1(-bsum[None] * to_end[rows][:, None, None])
            by_v = block.reshape(-1, k, block.shape[1])  # (D, K, n_i)
            for v in range(k):  # K components (one or a few)
                p[i * k:(i + 1) * k, v::k] = (by_v[:, v, :] @ weight[:, :, v]).T
            s[i] = block.sum(1)
        return p, s

    def em_sums(self, mu: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Σ_k log λ_k, baseline responsibilities Σ_{k: c_k = i} μ_i / λ_k (D,) and excitation responsibilities
        (D, D, K) for a baseline constant per code: two matrix-vector products per target code, in block order."""
        log_sum = mu.new_zeros(())
        mu_resp, resp = torch.zeros_like(mu), torch.zeros_like(a)
        for i, (rows, block) in enumerate(zip(self.rows, self.blocks)):  # loop over codes, not events
            if not rows.numel():
                continue
            lam = a[i].reshape(-1) @ block
            lam += mu[i]
            log_sum = log_sum + torch.log(lam).sum()
            w = lam.reciprocal_()
            mu_resp[i] = mu[i] * w.sum()
            resp[i] = a[i] * (block @ w).reshape(a.shape[1], self.k)
        return log_sum, mu_resp, resp

    def responsibilities(self, a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Σ_{k: c_k = i} a^u_ij X_{k,(j,u)} / λ_k as (D, D, K)."""
        resp = torch.zeros_like(a)
        for i, (rows, block) in enumerate(zip(self.rows, self.blocks)):
            if rows.numel():
                resp[i] = a[i] * (block @ w[rows]).reshape(a.shape[1], self.k)
        return resp


# ------------------------------------------------------------------------------------------------------------------
# least squares: shared quadratic statistics + FISTA
# ------------------------------------------------------------------------------------------------------------------
def least_squares_stats(tensors: _Tensors, decays: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Q ((1+DK)², shared by all targets) and B (D, 1+DK) with contrast_i(θ_i) = θ_iᵀ Q θ_i - 2 θ_iᵀ b_i.

    θ_i = (μ_i, a_i[j, u] for j, u): ∫λ_i² = μ_i² T + 2 μ_i Σ a G + aᵀ H a and
    Σ_{k: c_k = i} λ_i(t_k) = N_i μ_i + a·S_i.
    """
    design, dev = tensors.design, tensors.device
    d, k = design.n_codes, len(decays)
    beta = torch.as_tensor(decays, dtype=torch.float64, device=dev)
    dense = tensors.dense_blocks(beta)
    if dense is None:
        x, g = tensors.values(beta)
        dense = None if x.requires_grad else _DenseBlocks.maybe(tensors, x)
    else:  # dense design: blocks straight from the index, the N·D entries are never made
        g = tensors.integrals(beta)
    p = 1 + d * k
    q = torch.zeros(p, p, dtype=torch.float64, device=dev)
    q[0, 0] = tensors.duration.sum()
    q[0, 1:] = g.reshape(-1)
    q[1:, 0] = g.reshape(-1)
    b = torch.zeros(d, p, dtype=torch.float64, device=dev)
    b[:, 0] = torch.bincount(tensors.code, minlength=d).to(torch.float64)
    if dense is not None:  # long realizations: per-code BLAS products instead of scatters over the N·D entries
        upper, s = dense.gram_parts(tensors.to_end, beta)
        q[1:, 1:] = upper + upper.T + _tie_gram(design, beta, dev)
        b[:, 1:] = s
        return q, b
    q[1:, 1:] = _gram(tensors, x, beta)
    s = torch.zeros(d * d, k, dtype=torch.float64, device=dev)
    for lo in range(0, x.shape[0], 1 << 20):  # loop over chunks of entries, not over events
        s.index_add_(0, tensors.flat_chunk(lo, lo + (1 << 20)), x[lo:lo + (1 << 20)].to(torch.float64))
    b[:, 1:] = s.reshape(d, d * k)
    return q, b


def _gram(tensors: _Tensors, x: torch.Tensor, beta: torch.Tensor, chunk: int = 1 << 20) -> torch.Tensor:
    """H[(j,u),(j',v)] = ∫ g^u_j g^v_j' over all windows (strictly earlier pairs through X, ties explicitly).

    Accumulated over chunks of entries: the (chunk, K, K) temporaries stay bounded whatever the design size.
    """
    design, dev = tensors.design, tensors.device
    d, k = design.n_codes, beta.numel()
    bsum = beta[:, None] + beta[None, :]  # (K, K)
    ar = torch.arange(k, device=dev)
    p = torch.zeros((d * k) ** 2, dtype=torch.float64, device=dev)
    for lo in range(0, x.shape[0], chunk):  # loop over chunks of entries, not over events
        row, col = tensors.row[lo:lo + chunk], tensors.col[lo:lo + chunk]
        to_end_row = tensors.to_end[row]
        # later event l (row, component u), earlier source (col, component v): β_u/(β_u+β_v)(1-e^{-(β_u+β_v)τ_l}) X
        vals = (beta[:, None] / bsum)[None] * -torch.expm1(-bsum[None] * to_end_row[:, None, None])  # (m, K, K)
        vals *= x[lo:lo + chunk, None, :]
        idx = ((tensors.code[row] * k)[:, None, None] + ar[None, :, None]) * (d * k) \
            + (col.long() * k)[:, None, None] + ar[None, None, :]
        p.index_add_(0, idx.reshape(-1), vals.reshape(-1))
    p = p.reshape(d * k, d * k)
    return p + p.T + _tie_gram(design, beta, dev)


def _tie_gram(design: _Design, beta: torch.Tensor, dev: torch.device) -> torch.Tensor:
    """Pairs at the same time in the same sequence (including each event with itself)."""
    d, k, n = design.n_codes, beta.numel(), design.n_events
    new = np.ones(n, dtype=bool)
    new[1:] = (design.seq[1:] != design.seq[:-1]) | (design.time[1:] != design.time[:-1])
    bsum = beta[:, None] + beta[None, :]
    self_term = (beta[:, None] * beta[None, :] / bsum)[None] * -torch.expm1(
        -bsum[None] * torch.as_tensor(design.to_end, device=dev)[:, None, None])  # (N, K, K): each event with itself
    h = torch.zeros(d, k, d, k, dtype=torch.float64, device=dev)
    diag = torch.zeros(d, k, k, dtype=torch.float64, device=dev).index_add_(
        0, torch.as_tensor(design.code, device=dev), self_term)
    h[torch.arange(d), :, torch.arange(d), :] = diag
    h = h.reshape(d * k, d * k)
    if new.all():  # no ties: only the events themselves
        return h
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    size = np.diff(np.append(starts, n))[group]
    left = np.repeat(np.arange(n), size)
    right = np.repeat(starts[group], size) + np.arange(left.size) - np.repeat(np.cumsum(size) - size, size)
    pair = left != right  # distinct events at one time (each event with itself is counted above)
    left, right = left[pair], right[pair]
    to_end = torch.as_tensor(design.to_end[left], device=dev)
    vals = (beta[:, None] * beta[None, :] / bsum)[None] * -torch.expm1(-bsum[None] * to_end[:, None, None])
    cl = torch.as_tensor(design.code[left], device=dev)
    cr = torch.as_tensor(design.code[right], device=dev)
    ar = torch.arange(k, device=dev)
    idx = ((cl * k)[:, None, None] + ar[None, :, None]) * (d * k) + (cr * k)[:, None, None] + ar[None, None, :]
    return h + torch.zeros((d * k) ** 2, dtype=torch.float64, device=dev).index_add(
        0, idx.reshape(-1), vals.reshape(-1)).reshape(d * k, d * k)


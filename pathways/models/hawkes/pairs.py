"""Pairs and scans behind the exponential-kernel Hawkes design (:mod:`pathways.models.hawkes.design`).

* :func:`linear_scan` / :func:`blocked_scan`: the recurrence h_l = a_l h_{l-1} + b_l over many streams at once
  (the decayed counts S of every stream);
* :func:`_sparse_pairs` / :func:`_dense_pairs`: the stored (event, source code seen earlier in its sequence) pairs,
  by binary searches or by one cumulative count of the one-hot marks;
* compact dtypes of the pair arrays, chunking of the pair construction, and :func:`_trim_heap`.
"""
from __future__ import annotations

import ctypes

import numpy as np
import torch

from pathways.encode.sequences import Sequences


def linear_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve h_l = a_l h_{l-1} + b_l (h_{-1} = 0) along dim 0 by Hillis-Steele doubling (log2(n) vector steps).

    Setting a_l = 0 restarts the recurrence, so one call scans many segments. Differentiable (no in-place ops).
    """
    n, off = a.shape[0], 1
    while off < n:
        b = torch.cat([b[:off], b[off:] + a[off:] * b[:-off]])
        a = torch.cat([a[:off], a[off:] * a[:-off]])
        off *= 2
    return b


def blocked_scan(a: torch.Tensor, b: torch.Tensor, block: int = 32) -> torch.Tensor:
    """Same recurrence as :func:`linear_scan` in O(n) work: doubling inside blocks of ``block`` rows (log2(block)
    steps), then over the block ends (n / block rows), then one fix-up pass. Not for gradients (in place).

    Examples
    --------
    >>> a = torch.tensor([[0.0], [0.5], [0.5], [0.0], [2.0]], dtype=torch.float64)
    >>> blocked_scan(a, torch.ones_like(a), block=2)[:, 0].tolist()
    [1.0, 1.5, 1.75, 1.0, 3.0]
    """
    n, k = a.shape[0], a.shape[1:]
    m = -(-n // block)
    if m <= 1:
        return linear_scan(a, b)
    pa = torch.ones((m * block, *k), dtype=a.dtype, device=a.device)  # padding rows: h = 1·h + 0
    pb = torch.zeros((m * block, *k), dtype=b.dtype, device=b.device)
    pa[:n], pb[:n] = a, b
    pa, pb = pa.reshape(m, block, *k), pb.reshape(m, block, *k)
    off = 1
    while off < block:  # inside every block at once: h within the block from h = 0 at its start
        pb[:, off:] += pa[:, off:] * pb[:, :-off].clone()
        pa[:, off:] *= pa[:, :-off].clone()
        off *= 2
    ends = linear_scan(pa[:, -1], pb[:, -1])  # h at each block's end
    pb[1:] += pa[1:] * ends[:-1, None]
    return pb.reshape(m * block, *k)[:n]


def _trim_heap() -> None:
    """Return the freed pages of the C heap to the system (glibc ``malloc_trim``; nothing elsewhere).

    Freed numpy / torch buffers below glibc's (adaptive, up to 32 MB) mmap threshold stay in the heap and keep
    counting in the resident set; after the large transient stages of a fit this hands them back.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _sparse_pairs(seq: np.ndarray, group_first: np.ndarray, order: np.ndarray, s_code: np.ndarray,
                  stream_start: np.ndarray, seq_streams: np.ndarray, reps: np.ndarray, max_pairs: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, last) of the stored pairs, by one ``searchsorted`` per (event, stream of its sequence)."""
    n = seq.size
    stream_of = np.repeat(np.arange(stream_start.size), np.diff(np.append(stream_start, n)))
    keys = stream_of * (n + 1) + order  # increasing: by stream, then by position in the flat order
    del stream_of
    idx = _index_dtype(n)  # int32 entries while positions fit: half the memory of the N·D index arrays
    parts: list[list[np.ndarray]] = [[], [], []]
    for lo, hi in _chunks(reps, max_pairs):  # loop over chunks of ~max_pairs pairs, not over events
        rk = np.repeat(np.arange(lo, hi, dtype=idx), reps[lo:hi])
        first = np.repeat(np.cumsum(reps[lo:hi]) - reps[lo:hi], reps[lo:hi])
        st = seq_streams[seq[rk]] + np.arange(rk.size) - first
        del first
        pos = np.searchsorted(keys, st * (n + 1) + group_first[rk], side="left")
        keep = pos > stream_start[st]  # some event of the stream before t_k
        st = st[keep]
        parts[0].append(rk[keep]), parts[1].append(s_code[stream_start[st]].astype(_code_dtype(s_code)))
        parts[2].append((pos[keep] - 1).astype(idx))  # cast per chunk: the full-size int64 parts never coexist
    del keys
    out = []
    for dtype, chunks in zip((idx, _code_dtype(s_code), idx), parts):  # one full-size array at a time: its
        out.append(np.concatenate(chunks) if chunks else np.zeros(0, dtype))  # parts are freed once it is made
        chunks.clear()
    return out[0], out[1], out[2]


def _dense_pairs(seqs: Sequences, seq: np.ndarray, group_first: np.ndarray, s_code: np.ndarray,
                 stream_start: np.ndarray, seq_streams: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Same pairs as :func:`_sparse_pairs` when nearly every event sees every code (long realizations, few codes).

    Counts of earlier events per code come from one cumulative sum of the one-hot marks (N x D, bounded by
    ``_DENSE_MAX``) instead of N·D binary searches: several times faster, identical output and order.
    """
    n, d = seqs.n_events, seqs.n_codes
    cum = np.zeros((n + 1, d), dtype=np.int32 if n < 2 ** 31 - 1 else np.int64)
    cum[np.arange(1, n + 1), seqs.marks] = 1
    np.cumsum(cum, axis=0, out=cum)  # cum[k, j] = events of code j among the first k flat events
    before = cum[group_first]
    before -= cum[seqs.offsets[:-1][seq]]  # restart at each sequence
    del cum
    flat = np.flatnonzero(before)  # by event, then by code: the order of the sparse path
    row = flat // d
    col = flat - row * d
    # l* = first stream-sorted position of stream (sequence, code) + count - 1, assembled in place on an N x D array
    first_pos = np.zeros((len(seqs), d), dtype=np.int64)
    stream_seq = np.repeat(np.arange(len(seqs)), np.diff(seq_streams))
    first_pos[stream_seq, s_code[stream_start]] = stream_start - 1
    last_all = first_pos[seq]
    last_all += before
    last = last_all.reshape(-1)[flat]
    del last_all
    idx = _index_dtype(n)
    return row.astype(idx), col.astype(_code_dtype(seqs.marks)), last.astype(idx)


def _code_dtype(codes: np.ndarray) -> type:
    """int16 source codes below 2^15 codes (2 B per entry), int32 beyond; users widen before multiplying."""
    return np.int16 if codes.size == 0 or int(codes.max()) < 2 ** 15 else np.int32


def _index_dtype(n: int) -> type:
    """int32 for positions and counts below 2^31 (every realistic log), int64 beyond."""
    return np.int32 if n < 2 ** 31 - 1 else np.int64


def _chunks(reps: np.ndarray, max_pairs: int) -> list[tuple[int, int]]:
    """Split event positions into ranges whose repeat counts sum to about ``max_pairs``."""
    if reps.size == 0:
        return []
    cum = np.cumsum(reps)
    cuts = np.searchsorted(cum, np.arange(max_pairs, int(cum[-1]), max_pairs), side="right")
    bounds = np.unique(np.concatenate([[0], cuts, [reps.size]]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))

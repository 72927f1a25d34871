"""Parametric Hawkes learners with exponential and sum-of-exponential kernels (torch underneath, CPU or CUDA).

Kernel: φ_ij(t) = Σ_u a^u_ij β_u e^{-β_u t}; ``adjacency_[i, j] = Σ_u a^u_ij`` (the kernel's L1 norm, tick's
convention). Baseline μ_i, optionally modulated per patient by covariates: μ_{p,i} = μ_i exp(z_p · γ_i).

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

Solvers
-------
* ``fit_method="least-squares"``: the contrast ∫λ² - 2Σλ(t_k) is quadratic with one Hessian shared by all target
  codes (sufficient statistics of size (1 + DK)²), minimised by FISTA with the penalty's proximal operator and
  positivity.
* ``fit_method="likelihood"`` (default): warm start from least squares, then the branching-structure EM
  (minorise-maximise: monotone, positive, no step size, closed-form penalised M-step for none / L1 / L2 /
  elastic-net; a Poisson-GLM Newton step for covariates), accelerated by SQUAREM with a monotone safeguard.
  ``learn_decay`` maximises the profile likelihood over each log decay (bounded Brent, warm-started EM inside). The
  nuclear penalty uses monotone FISTA with backtracking and an exact (Dykstra) proximal step on the autograd gradient.
* Dense designs (long realizations over few codes, every event sees every code) are kept as one dense block per
  target code: the least-squares statistics and the EM maps are then matrix products per code (BLAS), no scatters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import scipy.optimize
import scipy.sparse
import torch

from pathways.data.eventlog import EventLog
from pathways.encode.sequences import Sequences
from pathways.errors import PathwaysInputError
from pathways.models.hawkes.base import HawkesBase
from pathways.synthetic.hawkes import simulate_hawkes
from pathways.device import resolve_device
from pathways.utils import SeedLike, logger, offsets_from_sorted, segment_ids

_PENALTIES = (None, "none", "l1", "l2", "elasticnet", "nuclear")
_METHODS = ("likelihood", "least-squares")
_DENSE_MAX = 30_000_000  # largest dense design (values) the EM keeps as per-code blocks


# ------------------------------------------------------------------------------------------------------------------
# design: β-independent index structure + β-dependent values
# ------------------------------------------------------------------------------------------------------------------
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


@dataclass
class _Design:
    """Sparse design of the exponential recurrences for one Sequences object (see module docstring)."""

    n_events: int
    n_codes: int
    code: np.ndarray        # (N,) mark of each event
    seq: np.ndarray         # (N,) sequence of each event
    time: np.ndarray        # (N,) event times
    since_start: np.ndarray  # (N,) t_k - start_p
    to_end: np.ndarray      # (N,) end_p - t_k
    duration: np.ndarray    # (P,) window lengths
    stream_gap: np.ndarray  # (N,) gap to previous event of the same stream (stream-sorted order), inf at starts
    row: np.ndarray         # (M,) event of each entry
    col: np.ndarray         # (M,) source code of each entry
    lag: np.ndarray         # (M,) t_k - t_{l*}
    last: np.ndarray        # (M,) stream-sorted position of l*
    count: np.ndarray       # (M,) number of source events strictly before t_k

    @property
    def n_entries(self) -> int:
        return int(self.row.size)


def build_design(seqs: Sequences, max_pairs: int = 1 << 22) -> _Design:
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
    if 0 < n * d <= _DENSE_MAX and reps.sum() >= 0.5 * n * d:
        row, col, last, count = _dense_pairs(seqs, seq, group_first, s_code, stream_start, seq_streams)
    else:
        row, col, last, count = _sparse_pairs(seq, group_first, order, s_code, stream_start, seq_streams, reps,
                                              max_pairs)
    return _Design(n, d, c, seq, t, t - seqs.start[seq], seqs.end[seq] - t, seqs.end - seqs.start, gap, row, col,
                   t[row] - s_time[last], last, count)


def _sparse_pairs(seq: np.ndarray, group_first: np.ndarray, order: np.ndarray, s_code: np.ndarray,
                  stream_start: np.ndarray, seq_streams: np.ndarray, reps: np.ndarray, max_pairs: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, last, count) of the stored pairs, by one ``searchsorted`` per (event, stream of its sequence)."""
    n = seq.size
    stream_of = np.repeat(np.arange(stream_start.size), np.diff(np.append(stream_start, n)))
    keys = stream_of * (n + 1) + order  # increasing: by stream, then by position in the flat order
    rows, cols, lasts, counts = [], [], [], []
    for lo, hi in _chunks(reps, max_pairs):  # loop over chunks of ~max_pairs pairs, not over events
        rk = np.repeat(np.arange(lo, hi), reps[lo:hi])
        first = np.repeat(np.cumsum(reps[lo:hi]) - reps[lo:hi], reps[lo:hi])
        st = seq_streams[seq[rk]] + np.arange(rk.size) - first
        pos = np.searchsorted(keys, st * (n + 1) + group_first[rk], side="left")
        cnt = pos - stream_start[st]
        keep = cnt > 0
        rows.append(rk[keep]), cols.append(s_code[stream_start[st[keep]]])
        lasts.append(pos[keep] - 1), counts.append(cnt[keep])
    # astype(copy=False): the parts already have these dtypes, a copy of ~N·D entries is pure waste
    cat = lambda parts, dt: (np.concatenate(parts) if len(parts) > 1 else parts[0]).astype(dt, copy=False) \
        if parts else np.zeros(0, dt)  # noqa: E731
    return cat(rows, np.int64), cat(cols, np.int64), cat(lasts, np.int64), cat(counts, np.float64)


def _dense_pairs(seqs: Sequences, seq: np.ndarray, group_first: np.ndarray, s_code: np.ndarray,
                 stream_start: np.ndarray, seq_streams: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
    count = before.reshape(-1)[flat].astype(np.float64)
    return row, col, last, count


def _chunks(reps: np.ndarray, max_pairs: int) -> list[tuple[int, int]]:
    """Split event positions into ranges whose repeat counts sum to about ``max_pairs``."""
    if reps.size == 0:
        return []
    cum = np.cumsum(reps)
    cuts = np.searchsorted(cum, np.arange(max_pairs, int(cum[-1]), max_pairs), side="right")
    bounds = np.unique(np.concatenate([[0], cuts, [reps.size]]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


class _Tensors:
    """Design arrays moved to a torch device once, plus β-dependent values (cached for fixed decays)."""

    def __init__(self, design: _Design, device: torch.device):
        as_t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        self.design, self.device = design, device
        self.code, self.seq, self.row, self.col = (as_t(design.code), as_t(design.seq), as_t(design.row),
                                                   as_t(design.col))
        self.flat = as_t(design.code[design.row] * design.n_codes + design.col)  # (target, source) of each entry
        self.lag, self.last, self.count = as_t(design.lag), as_t(design.last), as_t(design.count)
        self.gap, self.to_end = as_t(design.stream_gap), as_t(design.to_end)
        self.duration, self.since_start = as_t(design.duration), as_t(design.since_start)
        self._cache: tuple[tuple[float, ...], torch.Tensor, torch.Tensor] | None = None
        self.blocks: tuple[torch.Tensor, _DenseBlocks] | None = None  # dense per-code blocks of cached X

    def values(self, decays: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Design values X (M, K) and per-source integrals G (D, K) = Σ_l (1 - e^{-β (end - t_l)})."""
        key = tuple(decays.detach().cpu().tolist())
        if not decays.requires_grad and self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        decay_factor = torch.exp(-self.gap[:, None] * decays[None, :])  # 0 at stream starts (gap = inf)
        s = linear_scan(decay_factor, torch.ones_like(decay_factor))
        if decays.requires_grad:
            x = decays[None, :] * torch.exp(-self.lag[:, None] * decays[None, :]) * s[self.last]
        else:  # same values, in place: two (M, K) allocations instead of six on the N·D entries
            x = self.lag[:, None] * -decays[None, :]
            x.exp_().mul_(decays[None, :]).mul_(torch.index_select(s, 0, self.last))
        tail = -torch.expm1(-self.to_end[:, None] * decays[None, :])
        g = torch.zeros(self.design.n_codes, decays.numel(), dtype=x.dtype, device=self.device)
        g = g.index_add(0, self.code, tail)
        if not decays.requires_grad:
            self._cache = (key, x, g)
        return x, g


# ------------------------------------------------------------------------------------------------------------------
# parameters and objective
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class _Layout:
    """Positions of μ (scaled), A (D, D, K) and γ (D, q) in the flat parameter vector."""

    d: int
    k: int
    q: int

    @property
    def sizes(self) -> list[int]:
        return [self.d, self.d * self.d * self.k, self.d * self.q]

    @property
    def size(self) -> int:
        return sum(self.sizes)

    def split(self, theta: torch.Tensor) -> list[torch.Tensor]:
        mu, a, gamma = torch.split(theta, self.sizes)
        return [mu, a.reshape(self.d, self.d, self.k), gamma.reshape(self.d, self.q)]


class _Objective:
    """Negative log-likelihood per event (+ smooth penalty) of the exp-kernel Hawkes model, with torch autograd.

    Differentiable counterpart of :class:`_EM`'s objective: the smooth part of the nuclear-penalised fit, and the
    reference the tests check gradients against (finite differences) for every penalty and covariates.
    """

    def __init__(self, tensors: _Tensors, layout: _Layout, decays: np.ndarray, mu_scale: np.ndarray,
                 covariates: np.ndarray | None, strength: float, penalty: str | None, ratio: float):
        self.t, self.layout = tensors, layout
        dev = tensors.device
        self.decays = torch.as_tensor(decays, dtype=torch.float64, device=dev)
        self.mu_scale = torch.as_tensor(mu_scale, dtype=torch.float64, device=dev)
        self.z = None if covariates is None else torch.as_tensor(covariates, dtype=torch.float64, device=dev)
        self.strength, self.penalty, self.ratio = strength, penalty, ratio
        self.n = max(tensors.design.n_events, 1)

    def parts(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(baseline per event (N,), excitation per event (N,), integral of λ) at ``theta``."""
        mu_s, a, gamma = self.layout.split(theta)
        mu = mu_s * self.mu_scale
        x, g = self.t.values(self.decays)
        exc = torch.zeros(self.t.design.n_events, dtype=theta.dtype, device=theta.device)
        if x.shape[0]:
            exc = exc.index_add(0, self.t.row, (a.reshape(-1, self.layout.k)[self.t.flat] * x).sum(1))
        base_integral = mu * self.t.duration.sum()
        base = mu[self.t.code]
        if self.z is not None:
            scale = torch.exp(self.z @ gamma.T)  # (P, D)
            base = base * scale[self.t.seq, self.t.code]
            base_integral = mu * (scale * self.t.duration[:, None]).sum(0)
        integral = base_integral.sum() + (a * g[None, :, :]).sum()
        return base, exc, integral

    def smooth_penalty(self, theta: torch.Tensor) -> torch.Tensor:
        a = self.layout.split(theta)[1]
        if self.penalty == "l1":
            return self.strength * a.sum()  # a >= 0: |a| = a, smooth on the feasible set
        if self.penalty == "l2":
            return 0.5 * self.strength * (a * a).sum()
        if self.penalty == "elasticnet":
            return self.strength * (self.ratio * a.sum() + 0.5 * (1 - self.ratio) * (a * a).sum())
        return theta.new_zeros(())

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        base, exc, integral = self.parts(theta)
        return (integral - torch.log(base + exc).sum()) / self.n + self.smooth_penalty(theta)

    def value_and_grad(self, theta_np: np.ndarray) -> tuple[float, np.ndarray]:
        theta = torch.as_tensor(theta_np, dtype=torch.float64, device=self.t.device).requires_grad_(True)
        value = self(theta)
        (grad,) = torch.autograd.grad(value, theta)
        v = float(value.detach())
        if not math.isfinite(v):  # outside the domain (cannot happen within the bounds): steer the line search
            return 1e300, np.zeros_like(theta_np)
        return v, grad.detach().cpu().numpy()


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
    x, g = tensors.values(beta)
    p = 1 + d * k
    q = torch.zeros(p, p, dtype=torch.float64, device=dev)
    q[0, 0] = tensors.duration.sum()
    q[0, 1:] = g.reshape(-1)
    q[1:, 0] = g.reshape(-1)
    b = torch.zeros(d, p, dtype=torch.float64, device=dev)
    b[:, 0] = torch.bincount(tensors.code, minlength=d).to(torch.float64)
    dense = None if x.requires_grad else _DenseBlocks.maybe(tensors, x)
    if dense is not None:  # long realizations: per-code BLAS products instead of scatters over the N·D entries
        upper, s = dense.gram_parts(tensors.to_end, beta)
        q[1:, 1:] = upper + upper.T + _tie_gram(design, beta, dev)
        b[:, 1:] = s
        return q, b
    q[1:, 1:] = _gram(tensors, x, beta)
    s = torch.zeros(d * d, k, dtype=torch.float64, device=dev).index_add(0, tensors.flat, x)
    b[:, 1:] = s.reshape(d, d * k)
    return q, b


def _gram(tensors: _Tensors, x: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """H[(j,u),(j',v)] = ∫ g^u_j g^v_j' over all windows (strictly earlier pairs through X, ties explicitly)."""
    design, dev = tensors.design, tensors.device
    d, k = design.n_codes, beta.numel()
    bsum = beta[:, None] + beta[None, :]  # (K, K)
    to_end_row = tensors.to_end[tensors.row]
    # later event l (row, component u) and earlier source (col, component v): β_u/(β_u+β_v)(1-e^{-(β_u+β_v)(T-t_l)}) X
    weight = (beta[:, None] / bsum)[None] * -torch.expm1(-bsum[None] * to_end_row[:, None, None])  # (M, K, K)
    vals = weight * x[:, None, :]
    idx = ((tensors.code[tensors.row] * k)[:, None, None] + torch.arange(k, device=dev)[None, :, None]) * (d * k) \
        + (tensors.col * k)[:, None, None] + torch.arange(k, device=dev)[None, None, :]
    p = torch.zeros((d * k) ** 2, dtype=torch.float64, device=dev).index_add(0, idx.reshape(-1), vals.reshape(-1))
    p = p.reshape(d * k, d * k)
    return p + p.T + _tie_gram(design, beta, dev)


def _tie_gram(design: _Design, beta: torch.Tensor, dev: torch.device) -> torch.Tensor:
    """Pairs at the same time in the same sequence (including each event with itself)."""
    d, k, n = design.n_codes, beta.numel(), design.n_events
    new = np.ones(n, dtype=bool)
    new[1:] = (design.seq[1:] != design.seq[:-1]) | (design.time[1:] != design.time[:-1])
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    size = np.diff(np.append(starts, n))[group]
    left = np.repeat(np.arange(n), size)
    right = np.repeat(starts[group], size) + np.arange(left.size) - np.repeat(np.cumsum(size) - size, size)
    bsum = beta[:, None] + beta[None, :]
    to_end = torch.as_tensor(design.to_end[left], device=dev)
    vals = (beta[:, None] * beta[None, :] / bsum)[None] * -torch.expm1(-bsum[None] * to_end[:, None, None])
    cl = torch.as_tensor(design.code[left], device=dev)
    cr = torch.as_tensor(design.code[right], device=dev)
    ar = torch.arange(k, device=dev)
    idx = ((cl * k)[:, None, None] + ar[None, :, None]) * (d * k) + (cr * k)[:, None, None] + ar[None, None, :]
    h = torch.zeros((d * k) ** 2, dtype=torch.float64, device=dev).index_add(0, idx.reshape(-1), vals.reshape(-1))
    return h.reshape(d * k, d * k)


def prox_penalty(a: torch.Tensor, step: float, penalty: str | None, strength: float, ratio: float) -> torch.Tensor:
    """Proximal operator of step·strength·pen restricted to a ≥ 0, for A shaped (D, D, K)."""
    if penalty == "l1":
        return torch.clamp(a - step * strength, min=0.0)
    if penalty == "l2":
        return torch.clamp(a, min=0.0) / (1 + step * strength)
    if penalty == "elasticnet":
        return torch.clamp(a - step * strength * ratio, min=0.0) / (1 + step * strength * (1 - ratio))
    if penalty == "nuclear":
        return torch.stack([_prox_nuclear_positive(a[:, :, u], step * strength) for u in range(a.shape[2])], -1)
    return torch.clamp(a, min=0.0)


def _prox_nuclear_positive(m: torch.Tensor, tau: float, n_iter: int = 30) -> torch.Tensor:
    """argmin_X ½||X - m||² + τ||X||_* + 1{X ≥ 0} by Dykstra's alternating projections (two prox operators)."""
    x, p, q = m, torch.zeros_like(m), torch.zeros_like(m)
    for _ in range(n_iter):  # fixed, small number of D x D SVDs, independent of the number of events
        u, s, vh = torch.linalg.svd(x + p, full_matrices=False)
        y = (u * torch.clamp(s - tau, min=0.0)) @ vh
        p = x + p - y
        x_new = torch.clamp(y + q, min=0.0)
        q = y + q - x_new
        if torch.allclose(x_new, x, atol=1e-12, rtol=1e-9):
            x = x_new
            break
        x = x_new
    return x


def fista_least_squares(q: torch.Tensor, b: torch.Tensor, theta0: torch.Tensor, n: int, mu_floor: torch.Tensor,
                        penalty: str | None, strength: float, ratio: float, max_iter: int, tol: float,
                        k: int) -> tuple[torch.Tensor, int, bool, list[float]]:
    """Minimise Σ_i (θ_iᵀQθ_i - 2θ_iᵀb_i)/n + pen(A) over μ ≥ floor, A ≥ 0 (all targets at once).

    FISTA with adaptive restart, on variables scaled by 1/sqrt(diag Q) (Jacobi preconditioning: codes of very
    different frequencies otherwise make Q badly conditioned); separable penalties keep closed-form proximal steps in
    the scaled variables. The nuclear penalty is not separable and runs unscaled.
    """
    d = b.shape[0]
    scale = torch.ones(q.shape[0], dtype=q.dtype, device=q.device)
    if penalty != "nuclear":
        scale = 1.0 / torch.sqrt(torch.clamp(torch.diagonal(q), min=1e-300 * float(torch.diagonal(q).max())))
    qs, bs = q * scale[:, None] * scale[None, :], b * scale[None, :]
    step = n / (2 * max(float(torch.linalg.eigvalsh(qs)[-1]), 1e-300))
    l1 = strength * {"l1": 1.0, "elasticnet": ratio}.get(penalty or "", 0.0) * scale[1:]
    l2 = strength * {"l2": 1.0, "elasticnet": 1.0 - ratio}.get(penalty or "", 0.0) * scale[1:] ** 2
    floor = (mu_floor / scale[0])[:, None]
    contrast = lambda th: float(((th @ qs) * th).sum() - 2 * (th * bs).sum()) / n  # noqa: E731

    def project(th: torch.Tensor) -> torch.Tensor:
        if penalty == "nuclear":
            a = prox_penalty(th[:, 1:].reshape(d, d, k), step, penalty, strength, ratio).reshape(d, d * k)
        else:
            a = torch.clamp(th[:, 1:] - step * l1, min=0.0) / (1 + step * l2)
        return torch.cat([torch.maximum(th[:, :1], floor), a], 1)

    x = y = project(theta0 / scale[None, :])
    t_mom, history, converged, it = 1.0, [], False, 0
    for it in range(1, max_iter + 1):  # iterations on (D, 1+DK) matrices: cost independent of the events
        x_new = project(y - step * 2 * (y @ qs - bs) / n)
        if float(((y - x_new) * (x_new - x)).sum()) > 0:  # gradient-based restart (O'Donoghue & Candes)
            t_mom = 1.0
        t_next = (1 + math.sqrt(1 + 4 * t_mom * t_mom)) / 2
        y = x_new + ((t_mom - 1) / t_next) * (x_new - x)
        change = float(torch.linalg.norm(x_new - x)) / max(float(torch.linalg.norm(x_new)), 1e-300)
        x, t_mom = x_new, t_next
        if it % 10 == 0 or change < tol:
            history.append(contrast(x))
        if change < tol:
            converged = True
            break
    return x * scale[None, :], it, converged, history


# ------------------------------------------------------------------------------------------------------------------
# likelihood: EM (minorise-maximise) updates
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class _State:
    """Parameters μ (D,), A (D, D, K), γ (D, q) and the convergence report of the run that produced them."""

    mu: torch.Tensor
    a: torch.Tensor
    gamma: torch.Tensor
    n_iter: int = 0
    converged: bool = False
    objective: float = float("nan")


class _EM:
    """Penalised maximum likelihood by the branching-structure EM: monotone, positive, no step size.

    Each event k is attributed to the baseline with probability b_k / λ_k and to earlier source j (component u)
    with probability a^u_{c_k j} X_{k,(j,u)} / λ_k; the M-step is then closed form per entry:
    μ_i = Σ_k resp / T (a Poisson GLM Newton step with covariates) and, with L = G^u_j + N s_1 and Q = N s_2 the
    linear and quadratic penalty weights, a = resp / L or the positive root of Q a² + L a - resp = 0. One iteration
    costs two passes over the design entries; the multiplicative updates are scale-free, which matters when code
    frequencies span orders of magnitude.
    """

    def __init__(self, tensors: _Tensors, covariates: np.ndarray | None, penalty: str | None, strength: float,
                 ratio: float, max_iter: int, tol: float, mu_floor: np.ndarray, accelerate: bool = True):
        self.t, self.accelerate, self.dense = tensors, accelerate, None
        dev = tensors.device
        self.n = max(tensors.design.n_events, 1)
        self.z = None if covariates is None else torch.as_tensor(covariates, dtype=torch.float64, device=dev)
        l1 = {"l1": 1.0, "elasticnet": ratio}.get(penalty or "", 0.0)
        l2 = {"l2": 1.0, "elasticnet": 1.0 - ratio}.get(penalty or "", 0.0)
        self.s1, self.s2 = strength * l1, strength * l2
        self.max_iter, self.tol = max_iter, tol
        self.log_floor = torch.log(torch.as_tensor(mu_floor, dtype=torch.float64, device=dev))

    def _baseline_terms(self, st: _State) -> tuple[torch.Tensor, torch.Tensor]:
        """Baseline at every event (N,) and its integral over all windows (D,)."""
        t = self.t
        if self.z is None:
            return st.mu[t.code], st.mu * t.duration.sum()
        scale = torch.exp(self.z @ st.gamma.T)  # (P, D)
        return st.mu[t.code] * scale[t.seq, t.code], st.mu * (scale * t.duration[:, None]).sum(0)

    def objective(self, st: _State, x: torch.Tensor, g: torch.Tensor
                  ) -> tuple[float, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Penalised negative log-likelihood per event, with the baseline and total intensity at every event and
        the excitation a·X of every design entry (M, K)."""
        t = self.t
        base, base_int = self._baseline_terms(st)
        if self.dense is not None:
            ax, lam = None, base + self.dense.excitation(st.a)
        else:
            # index_select (not advanced indexing): the gathers over M entries dominate the cost of an iteration
            ax = torch.index_select(st.a.reshape(-1, x.shape[1]), 0, t.flat) * x
            lam = base.index_add(0, t.row, ax.sum(1) if x.shape[1] > 1 else ax[:, 0])
        pen = self.s1 * st.a.sum() + 0.5 * self.s2 * (st.a * st.a).sum()
        value = (base_int.sum() + (st.a * g[None]).sum() - torch.log(lam).sum()) / self.n + pen
        return float(value), base, lam, ax

    def step(self, st: _State, x: torch.Tensor, g: torch.Tensor) -> tuple[float, _State]:
        """One EM map: the objective at ``st`` and the updated parameters."""
        t = self.t
        if self.dense is not None and self.z is None:  # per-code blocks, all in block order: no N-sized gathers
            log_sum, mu_resp, resp = self.dense.em_sums(st.mu, st.a)
            pen = self.s1 * st.a.sum() + 0.5 * self.s2 * (st.a * st.a).sum()
            total = t.duration.sum()
            value = float((st.mu * total).sum() + (st.a * g[None]).sum() - log_sum) / self.n + float(pen)
            a = _penalised_root(resp, g[None, :, :] + self.n * self.s1, self.n * self.s2)
            return value, _State(mu_resp / total, a, st.gamma)
        value, base, lam, ax = self.objective(st, x, g)
        w = 1.0 / lam
        mu, gamma = st.mu, st.gamma
        if self.z is None:
            mu = torch.zeros_like(mu).index_add(0, t.code, base * w) / t.duration.sum()
        else:
            mu, gamma = self._baseline_glm(mu, gamma, base * w)
        if self.dense is not None:
            resp = self.dense.responsibilities(st.a, w)
        else:
            resp = torch.zeros(st.a.shape[0] * st.a.shape[1], x.shape[1], dtype=x.dtype, device=x.device)
            resp = resp.index_add(0, t.flat, ax * torch.index_select(w, 0, t.row)[:, None]).reshape(st.a.shape)
        a = _penalised_root(resp, g[None, :, :] + self.n * self.s1, self.n * self.s2)
        return value, _State(mu, a, gamma)

    def run(self, st: _State, decays: np.ndarray, history: list[dict] | None) -> _State:
        """SQUAREM-accelerated EM from ``st`` until a cycle lowers the objective by less than ``tol`` (relative).

        A cycle (Varadhan & Roland 2008) takes two EM maps θ1 = F(θ0), θ2 = F(θ1), extrapolates
        θ' = θ0 - 2α r + α² v (r = θ1 - θ0, v = θ2 - 2θ1 + θ0, α = -|r|/|v| ≤ -1), projects onto the constraints and
        applies F once more; when the extrapolated point is worse than θ0 the cycle falls back to plain EM (θ2), so
        the objective never increases. Three passes over the design per cycle, typically several times fewer passes
        than plain EM.
        """
        t = self.t
        x, g = t.values(torch.as_tensor(decays, dtype=torch.float64, device=t.device))
        self.dense = _DenseBlocks.maybe(t, x)
        cur, prev, converged, it, value = _State(st.mu.clone(), st.a.clone(), st.gamma.clone()), math.inf, False, 0, \
            math.nan
        for it in range(1, self.max_iter + 1):
            value, one = self.step(cur, x, g)
            if history is not None:
                history.append({"stage": "em", "iter": it, "objective": value})
            if prev - value <= self.tol * max(abs(value), 1.0):
                converged = True
                break
            if not self.accelerate:
                prev, cur = value, one
                continue
            _, two = self.step(one, x, g)
            jump = self._extrapolate(cur, one, two)
            jump_value, after = self.step(jump, x, g)
            prev, cur = value, (after if jump_value <= value else two)
        return _State(cur.mu, cur.a, cur.gamma, it, converged, value)

    def _extrapolate(self, s0: _State, s1: _State, s2: _State) -> _State:
        flat = [torch.cat([s.mu, s.a.reshape(-1), s.gamma.reshape(-1)]) for s in (s0, s1, s2)]
        r, v = flat[1] - flat[0], flat[2] - 2 * flat[1] + flat[0]
        alpha = min(-float(torch.linalg.norm(r)) / max(float(torch.linalg.norm(v)), 1e-300), -1.0)
        new = flat[0] - 2 * alpha * r + alpha * alpha * v
        d, na = s0.mu.numel(), s0.a.numel()
        # stay strictly inside: an entry pushed to 0 would stay 0 forever (zeros are fixed points of EM)
        mu = torch.maximum(new[:d], torch.maximum(0.1 * s0.mu, torch.exp(self.log_floor)))
        a = torch.maximum(new[d:d + na], 0.1 * flat[0][d:d + na]).reshape(s0.a.shape)
        return _State(mu, a, new[d + na:].reshape(s0.gamma.shape))

    def prune(self, st: _State, decays: np.ndarray) -> torch.Tensor:
        """Exact zeros for sparse penalties, by the KKT condition of a ≥ 0.

        The multiplicative updates only shrink an entry whose optimum is 0 geometrically. An entry is set to 0 when
        the objective still decreases toward 0 (EM ratio resp / (a L) < 1, i.e. a positive partial derivative) and
        its whole linear term a L / N is below sqrt(tol).
        """
        if self.s1 <= 0:
            return st.a
        t = self.t
        x, g = t.values(torch.as_tensor(decays, dtype=torch.float64, device=t.device))
        self.dense = None  # the entry-wise path gives a·X per entry
        _, _, lam, ax = self.objective(st, x, g)
        resp = torch.zeros(st.a.shape[0] * st.a.shape[1], x.shape[1], dtype=x.dtype, device=x.device).index_add(
            0, t.flat, ax * torch.index_select(1.0 / lam, 0, t.row)[:, None]).reshape(st.a.shape)
        lin = g[None, :, :] + self.n * self.s1
        shrinking = resp < st.a * lin
        small = st.a * lin / self.n < math.sqrt(self.tol)
        return torch.where(shrinking & small, torch.zeros_like(st.a), st.a)

    def _baseline_glm(self, mu: torch.Tensor, gamma: torch.Tensor, resp: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """M-step of (log μ_i, γ_i): Poisson GLM with offsets log T_p, two damped Newton steps for all codes."""
        t, z = self.t, self.z
        zt = torch.cat([torch.ones(z.shape[0], 1, dtype=z.dtype, device=z.device), z], 1)  # (P, 1+q)
        r = torch.zeros(mu.shape[0], zt.shape[1], dtype=z.dtype, device=z.device).index_add(
            0, t.code, resp[:, None] * zt[t.seq])
        theta = torch.cat([torch.log(torch.clamp(mu, min=1e-300))[:, None], gamma], 1)
        gain = lambda th: (r * th).sum(1) - (torch.exp(zt @ th.T) * t.duration[:, None]).sum(0)  # noqa: E731
        for _ in range(2):
            e = torch.exp(zt @ theta.T) * t.duration[:, None]  # (P, D)
            grad = r - e.T @ zt
            hess = torch.einsum("pi,pa,pb->iab", e, zt, zt) + 1e-10 * torch.eye(zt.shape[1], dtype=z.dtype,
                                                                              device=z.device)
            step = torch.linalg.solve(hess, grad[:, :, None])[:, :, 0]
            old, best = gain(theta), theta
            done = torch.zeros(theta.shape[0], dtype=torch.bool, device=z.device)
            for halving in range(12):  # per-code step halving until the M-step objective improves
                cand = theta + step / (2 ** halving)
                ok = (gain(cand) >= old) & ~done
                best = torch.where(ok[:, None], cand, best)
                done |= ok
            theta = best
            theta[:, 0] = torch.maximum(theta[:, 0], self.log_floor)
        return torch.exp(theta[:, 0]), theta[:, 1:]


class _DenseBlocks:
    """The design as one dense block per target code (its events x D·K sources): BLAS products, no gathers.

    Used when the design is dense anyway (long realizations over few codes, where every event sees every code), as
    long as the N x D·K block fits in ``_DENSE_MAX`` values; patient data keep the sparse entries.
    """

    def __init__(self, t: _Tensors, x: torch.Tensor):
        d, k, n = t.design.n_codes, x.shape[1], t.design.n_events
        order = torch.argsort(t.code, stable=True)
        position = torch.empty_like(order)
        position[order] = torch.arange(n, device=order.device)
        dense = torch.zeros(n, d * k, dtype=x.dtype, device=x.device)
        cols = (t.col * k)[:, None] + torch.arange(k, device=x.device)[None, :]
        dense[position[t.row][:, None].expand(-1, k), cols] = x  # rows sorted by target code
        counts = torch.bincount(t.code, minlength=d).tolist()
        self.rows, self.blocks, self.k = torch.split(order, counts), torch.split(dense, counts), k

    @staticmethod
    def maybe(t: _Tensors, x: torch.Tensor) -> "_DenseBlocks | None":
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
                out[rows] = block @ a[i].reshape(-1)
        return out

    def gram_parts(self, to_end: torch.Tensor, beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Least-squares statistics from the blocks: the strictly-earlier part P of :func:`_gram` (D·K, D·K) and
        the sums Σ_{k: c_k = i} X_k (D, D·K), one matrix product per target code."""
        k = self.k
        dk = self.blocks[0].shape[1] if self.blocks else 0
        bsum = beta[:, None] + beta[None, :]  # (K, K)
        p = torch.zeros(len(self.blocks) * k, dk, dtype=beta.dtype, device=beta.device)
        s = torch.zeros(len(self.blocks), dk, dtype=beta.dtype, device=beta.device)
        for i, (rows, block) in enumerate(zip(self.rows, self.blocks)):  # loop over codes, not events
            if not rows.numel():
                continue
            # later event l (component u), earlier source (component v): β_u/(β_u+β_v)(1-e^{-(β_u+β_v)τ_l})
            weight = (beta[:, None] / bsum)[None] * -torch.expm1(-bsum[None] * to_end[rows][:, None, None])
            by_v = block.reshape(block.shape[0], -1, k)  # (n_i, D, K)
            for v in range(k):  # K components (one or a few)
                p[i * k:(i + 1) * k, v::k] = weight[:, :, v].T @ by_v[:, :, v]
            s[i] = block.sum(0)
        return p, s

    def em_sums(self, mu: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Σ_k log λ_k, baseline responsibilities Σ_{k: c_k = i} μ_i / λ_k (D,) and excitation responsibilities
        (D, D, K) for a baseline constant per code: two matrix-vector products per target code, in block order."""
        log_sum = mu.new_zeros(())
        mu_resp, resp = torch.zeros_like(mu), torch.zeros_like(a)
        for i, (rows, block) in enumerate(zip(self.rows, self.blocks)):  # loop over codes, not events
            if not rows.numel():
                continue
            lam = block @ a[i].reshape(-1) + mu[i]
            log_sum = log_sum + torch.log(lam).sum()
            w = torch.reciprocal(lam)
            mu_resp[i] = mu[i] * w.sum()
            resp[i] = a[i] * (block.T @ w).reshape(a.shape[1], self.k)
        return log_sum, mu_resp, resp

    def responsibilities(self, a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Σ_{k: c_k = i} a^u_ij X_{k,(j,u)} / λ_k as (D, D, K)."""
        resp = torch.zeros_like(a)
        for i, (rows, block) in enumerate(zip(self.rows, self.blocks)):
            if rows.numel():
                resp[i] = a[i] * (block.T @ w[rows]).reshape(a.shape[1], self.k)
        return resp


def _penalised_root(resp: torch.Tensor, lin: torch.Tensor, quad: float) -> torch.Tensor:
    """argmax_a resp log a - lin a - quad a²/2 over a ≥ 0 (0 where nothing is attributed)."""
    if quad > 0:
        root = lin + torch.sqrt(lin * lin + 4 * quad * resp)
        return 2 * resp / torch.clamp(root, min=1e-300)  # stable form of the positive root
    return torch.where(resp > 0, resp / torch.clamp(lin, min=1e-300), torch.zeros_like(resp))


# ------------------------------------------------------------------------------------------------------------------
# estimators
# ------------------------------------------------------------------------------------------------------------------
class HawkesSumExpKernel(HawkesBase):
    """Multivariate Hawkes process with sum-of-exponential kernels φ_ij(t) = Σ_u a^u_ij β_u e^{-β_u t}.

    Parameters
    ----------
    decays : the K decays β_u (rate units: 1 / time unit of the data).
    penalty : None, ``"l1"`` (sparse), ``"l2"``, ``"elasticnet"`` or ``"nuclear"`` (low rank, per component).
    C : inverse penalty strength (tick's convention: objective = loss per event + pen / C).
    fit_method : ``"likelihood"`` (default; warm-started from least squares) or ``"least-squares"``.
    learn_decay : also learn the decays (likelihood fit; not with the nuclear penalty).
    covariates : names of patient covariates modulating the baseline log-linearly: columns of ``log.patients``;
        ``"age"`` is computed at observation start from ``birth`` (in years when the log is in days) and ``"sex"``
        is 1 for ``"F"``, 0 for ``"M"``. With Sequences input pass ``covariate_values`` to ``fit``. Covariates are
        standardised; ``baseline_`` is the baseline at the average patient. Likelihood fit only.
    elastic_net_ratio : L1 share of the elastic-net penalty.
    max_iter, tol : iteration budget and relative tolerance of the solver.
    accelerate : SQUAREM extrapolation of the EM iterations (likelihood fit); False = plain EM.
    device : ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    verbose : log solver progress on the ``pathways`` logger.

    Attributes
    ----------
    baseline_ : (D,) baseline intensities.  adjacency_ : (D, D) kernel norms, [target, source].
    component_adjacency_ : (K, D, D) per-decay norms a^u.  decays_ : (K,) decays used (learned or given).
    covariate_coef_ : (D, q) baseline log-rate coefficients per standardised covariate (when ``covariates``).
    codes_, vocab_ : code order of rows/columns.  n_iter_, converged_, history_, objective_ : convergence report.

    Examples
    --------
    >>> from pathways.synthetic import simulate_hawkes
    >>> seqs = simulate_hawkes(np.array([0.2, 0.1]), np.array([[0.3, 0.0], [0.5, 0.2]]), end=500.0,
    ...                        n_sequences=20, seed=0)
    >>> model = HawkesExpKernel(decay=1.0).fit(seqs)
    >>> model.adjacency_.shape
    (2, 2)
    """

    def __init__(self, decays: Sequence[float] = (0.5, 2.0), penalty: str | None = None, C: float = 1e3,
                 fit_method: str = "likelihood", learn_decay: bool = False, covariates: Sequence[str] | None = None,
                 elastic_net_ratio: float = 0.95, max_iter: int = 500, tol: float = 1e-8, accelerate: bool = True,
                 device: str = "cpu", verbose: bool = False):
        self.decays = decays
        self.penalty = penalty
        self.C = C
        self.fit_method = fit_method
        self.learn_decay = learn_decay
        self.covariates = covariates
        self.elastic_net_ratio = elastic_net_ratio
        self.max_iter = max_iter
        self.tol = tol
        self.accelerate = accelerate
        self.device = device
        self.verbose = verbose

    # -- parameters -----------------------------------------------------------------------------------------------
    def _init_decays(self) -> np.ndarray:
        decays = np.atleast_1d(np.asarray(self.decays, dtype=np.float64))
        if decays.ndim != 1 or decays.size == 0 or not np.all(np.isfinite(decays)) or np.any(decays <= 0):
            raise PathwaysInputError(f"decays: expected positive finite values, got {self.decays!r}")
        if np.unique(decays).size < decays.size:
            # two components with one decay are the same kernel: their split of the adjacency is not identified
            raise PathwaysInputError(f"decays: expected distinct values, got {self.decays!r}")
        return decays

    def _check_params(self) -> None:
        if self.penalty not in _PENALTIES:
            raise PathwaysInputError(f"penalty: expected one of {_PENALTIES}, got {self.penalty!r}")
        if self.fit_method not in _METHODS:
            raise PathwaysInputError(f"fit_method: expected one of {_METHODS}, got {self.fit_method!r}")
        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise PathwaysInputError(f"C: must be a positive number, got {self.C!r}")
        if not 0 <= self.elastic_net_ratio <= 1:
            raise PathwaysInputError(f"elastic_net_ratio: must be in [0, 1], got {self.elastic_net_ratio!r}")
        if int(self.max_iter) < 1 or not self.tol > 0:
            raise PathwaysInputError(f"max_iter/tol: need max_iter >= 1 and tol > 0, got {self.max_iter}, {self.tol}")
        if self.fit_method == "least-squares" and (self.learn_decay or self.covariates):
            raise PathwaysInputError("fit_method: learn_decay and covariates need fit_method='likelihood'")
        if self.learn_decay and self.penalty == "nuclear":
            raise PathwaysInputError("learn_decay: not available with penalty='nuclear'")

    def _device(self) -> torch.device:
        # one device policy for every torch model: "auto", "cpu", "cuda[:N]", unknown names rejected by name
        return resolve_device(self.device)

    @property
    def _penalty_kind(self) -> str | None:
        return None if self.penalty in (None, "none") else self.penalty

    # -- covariates -----------------------------------------------------------------------------------------------
    def _sequence_covariates(self, data: Any, seqs: Sequences, covariate_values: np.ndarray | None
                             ) -> np.ndarray | None:
        names = list(self.covariates or [])
        if not names:
            if covariate_values is not None:
                raise PathwaysInputError("covariate_values: set covariates=[...] names to use covariates")
            return None
        if covariate_values is not None:
            raw = np.asarray(covariate_values, dtype=np.float64)
            if raw.ndim == 1:
                raw = raw[:, None]
            if raw.shape != (len(seqs), len(names)):
                raise PathwaysInputError(f"covariate_values: expected shape ({len(seqs)}, {len(names)}), "
                                         f"got {raw.shape}")
        elif isinstance(data, EventLog):
            raw = _patient_covariates(data, names)[seqs.patient_index]
        else:
            raise PathwaysInputError("covariate_values: required with covariates when data is not an EventLog")
        bad = ~np.isfinite(raw)
        if bad.any():
            r, col = np.argwhere(bad)[0]
            raise PathwaysInputError(f"covariate '{names[col]}': {int(bad.sum())} missing or non-finite values, "
                                     f"first at sequence {int(r)}")
        if not hasattr(self, "covariate_mean_") or getattr(self, "_fitting", False):
            self.covariate_mean_ = raw.mean(0)
            self.covariate_scale_ = np.where(raw.std(0) > 0, raw.std(0), 1.0)
        return (raw - self.covariate_mean_) / self.covariate_scale_

    def _sequence_baselines(self, seqs: Sequences, covariates: np.ndarray | None) -> np.ndarray:
        base = np.broadcast_to(self.baseline_, (len(seqs), self.n_codes_)).copy()
        if covariates is not None:
            base *= np.exp(covariates @ self.covariate_coef_.T)
        return base

    # -- fitting --------------------------------------------------------------------------------------------------
    def fit(self, data: Any, *, end_times: Any = None, covariate_values: np.ndarray | None = None
            ) -> "HawkesSumExpKernel":
        """Fit on an EventLog, Sequences or tick's format (see :meth:`HawkesBase.fit`). Returns self."""
        self._check_params()
        self._fitting = True
        try:
            return super().fit(data, end_times=end_times, covariate_values=covariate_values)
        finally:
            self._fitting = False

    def _fit_sequences(self, seqs: Sequences, covariates: np.ndarray | None) -> None:
        decays, dev = self._init_decays(), self._device()
        total_time = float(np.sum(seqs.end - seqs.start))
        if total_time <= 0:
            raise PathwaysInputError("end: all observation windows have zero length")
        tensors = _Tensors(build_design(seqs), dev)
        rates = np.bincount(seqs.marks, minlength=seqs.n_codes) / total_time  # events per unit time, per code
        mu_scale = np.maximum(rates, 1.0 / total_time)  # natural unit of each baseline
        mu_floor = 1e-10 * mu_scale  # keeps every λ_k > 0 for events without history
        q = 0 if covariates is None else covariates.shape[1]
        gamma = np.zeros((seqs.n_codes, q))
        mu, a, report = self._least_squares(tensors, decays, rates, mu_floor)
        if self.fit_method == "likelihood":
            # warm start: least squares, kept away from 0 (zeros are fixed points of the EM updates)
            mu, a = np.maximum(mu, 0.5 * rates), a + 0.1 / a[:, :, 0].size
            solve = self._likelihood_nuclear if self._penalty_kind == "nuclear" else self._likelihood_em
            mu, a, gamma, decays, report = solve(tensors, decays, covariates, mu, a, gamma, mu_scale)
        self._store(mu, a, gamma, decays, covariates is not None, *report)

    def _least_squares(self, tensors: _Tensors, decays: np.ndarray, rates: np.ndarray, mu_floor: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, tuple[int, bool, float]]:
        """FISTA on the least-squares contrast (the final fit, or the warm start of the likelihood fit)."""
        dev, d, k = tensors.device, rates.size, decays.size
        q, b = least_squares_stats(tensors, decays)
        theta0 = torch.zeros(d, 1 + d * k, dtype=torch.float64, device=dev)
        theta0[:, 0] = torch.as_tensor(rates, device=dev)
        budget = int(self.max_iter) if self.fit_method == "least-squares" else min(int(self.max_iter), 300)
        ls, n_iter, converged, hist = fista_least_squares(
            q, b, theta0, max(tensors.design.n_events, 1), torch.as_tensor(mu_floor, device=dev), self._penalty_kind,
            1.0 / float(self.C), float(self.elastic_net_ratio), budget, float(self.tol), k)
        self.history_ = [{"stage": "least-squares", "iter": 10 * i + 10, "objective": v} for i, v in enumerate(hist)]
        report = (n_iter, converged, hist[-1] if hist else float("nan"))
        return ls[:, 0].cpu().numpy(), ls[:, 1:].reshape(d, d, k).cpu().numpy(), report

    def _likelihood_em(self, tensors: _Tensors, decays: np.ndarray, covariates: np.ndarray | None, mu: np.ndarray,
                       a: np.ndarray, gamma: np.ndarray, mu_scale: np.ndarray) -> tuple:
        """EM on the penalised likelihood (profile search over the decays first when ``learn_decay``)."""
        em = _EM(tensors, covariates, self._penalty_kind, 1.0 / float(self.C), float(self.elastic_net_ratio),
                 int(self.max_iter), float(self.tol), 1e-10 * mu_scale, bool(self.accelerate))
        state = _State(*(torch.as_tensor(v, dtype=torch.float64, device=tensors.device) for v in (mu, a, gamma)))
        if self.learn_decay:
            state, decays = self._profile_decays(em, state, decays)
        state = em.run(state, decays, self.history_)
        state.a = em.prune(state, decays)
        mu, a, gamma = (v.cpu().numpy() for v in (state.mu, state.a, state.gamma))
        return mu, a, gamma, decays, (state.n_iter, state.converged, state.objective)

    def _likelihood_nuclear(self, tensors: _Tensors, decays: np.ndarray, covariates: np.ndarray | None,
                            mu: np.ndarray, a: np.ndarray, gamma: np.ndarray, mu_scale: np.ndarray) -> tuple:
        """Proximal gradient on the likelihood with the nuclear penalty (μ scaled by the code rates)."""
        d, k = mu.size, decays.size
        layout = _Layout(d, k, gamma.shape[1])
        obj = _Objective(tensors, layout, decays, mu_scale, covariates, 1.0 / float(self.C), "nuclear",
                         float(self.elastic_net_ratio))
        theta = np.concatenate([mu / mu_scale, a.ravel(), gamma.ravel()])
        theta, n_iter, converged, objective = self._solve_nuclear(obj, layout, theta, np.full(d, 1e-10), decays)
        mu_s, a_t, g_t = layout.split(torch.as_tensor(theta))
        return mu_s.numpy() * mu_scale, a_t.numpy(), g_t.numpy(), decays, (n_iter, converged, objective)

    def _store(self, mu: np.ndarray, a: np.ndarray, gamma: np.ndarray, decays: np.ndarray, has_cov: bool,
               n_iter: int, converged: bool, objective: float) -> None:
        self.baseline_ = np.asarray(mu, dtype=np.float64)
        self.component_adjacency_ = np.ascontiguousarray(np.moveaxis(a, 2, 0))
        self.adjacency_ = self.component_adjacency_.sum(0)
        self.decays_ = np.asarray(decays, dtype=np.float64)
        if has_cov:
            self.covariate_coef_ = np.asarray(gamma, dtype=np.float64)
        self.n_iter_, self.converged_, self.objective_ = int(n_iter), bool(converged), float(objective)
        if not self.converged_:
            logger.warning("%s: solver stopped after %d iterations without reaching tol=%g",
                           type(self).__name__, self.n_iter_, self.tol)

    def _profile_decays(self, em: "_EM", state: "_State", decays: np.ndarray) -> tuple["_State", np.ndarray]:
        """Maximise the profile likelihood over each log decay in turn (bounded Brent, warm-started EM inside)."""
        decays = decays.copy()
        best = {"state": state}
        for _ in range(2 if decays.size > 1 else 1):  # coordinate cycles over the decays
            for u in range(decays.size):
                def profile(log_b: float, u: int = u) -> float:
                    trial = decays.copy()
                    trial[u] = math.exp(log_b)
                    fitted = em.run(best["state"], trial, None)
                    best["state"] = fitted  # warm start of the next evaluation
                    self.history_.append({"stage": "decay", "decays": trial.tolist(), "objective": fitted.objective})
                    return fitted.objective

                centre = math.log(decays[u])
                res = scipy.optimize.minimize_scalar(profile, bounds=(centre - 4.0, centre + 4.0), method="bounded",
                                                     options={"xatol": 1e-3})
                decays[u] = math.exp(res.x)
        return best["state"], decays

    def _solve_nuclear(self, obj: _Objective, layout: _Layout, theta: np.ndarray, mu_floor: np.ndarray,
                       decays: np.ndarray) -> tuple[np.ndarray, int, bool, float]:
        """Monotone FISTA with backtracking on the smooth loss and the exact nuclear + positivity prox."""
        dev = obj.t.device
        floor = torch.as_tensor(mu_floor, dtype=torch.float64, device=dev)
        d, k = layout.d, layout.k

        def smooth(th: torch.Tensor) -> tuple[float, torch.Tensor]:
            f, g = obj.value_and_grad(th.cpu().numpy())
            return f, torch.as_tensor(g, device=dev)

        def prox(th: torch.Tensor, step: float) -> torch.Tensor:
            mu, a, rest = th[:d], th[d:d + d * d * k], th[d + d * d * k:]
            a = prox_penalty(a.reshape(d, d, k), step, "nuclear", obj.strength, obj.ratio).reshape(-1)
            return torch.cat([torch.maximum(mu, floor), a, rest])

        def nuclear(th: torch.Tensor) -> float:
            a = th[d:d + d * d * k].reshape(d, d, k)
            return obj.strength * sum(float(torch.linalg.matrix_norm(a[:, :, u], "nuc")) for u in range(k))

        x = prox(torch.as_tensor(theta, dtype=torch.float64, device=dev), 0.0)
        y, t_mom, lip = x.clone(), 1.0, 1.0
        fx = smooth(x)[0] + nuclear(x)
        converged, it = False, 0
        for it in range(1, int(self.max_iter) + 1):
            fy, gy = smooth(y)
            while True:  # backtracking: the log-likelihood has no global Lipschitz constant
                z = prox(y - gy / lip, 1.0 / lip)
                fz_smooth = smooth(z)[0]
                diff = z - y
                if fz_smooth <= fy + float(gy @ diff) + 0.5 * lip * float(diff @ diff) + 1e-15 or lip > 1e16:
                    break
                lip *= 2.0
            fz = fz_smooth + nuclear(z)
            x_new = z if fz <= fx else x  # monotone variant: never accept an increase
            t_next = (1 + math.sqrt(1 + 4 * t_mom * t_mom)) / 2
            y = x_new + (t_mom / t_next) * (z - x_new) + ((t_mom - 1) / t_next) * (x_new - x)
            rel = abs(fx - min(fz, fx)) / max(abs(fx), 1e-300)
            x, fx, t_mom, lip = x_new, min(fz, fx), t_next, lip / 1.5
            self.history_.append({"stage": "likelihood", "iter": it, "objective": fx})
            if rel < float(self.tol) and it > 1:
                converged = True
                break
        return x.cpu().numpy(), it, converged, fx

    # -- hooks: likelihood pieces at the fitted parameters ----------------------------------------------------------
    def _fitted_values(self, seqs: Sequences) -> tuple[_Tensors, torch.Tensor, torch.Tensor]:
        tensors = _Tensors(build_design(seqs), torch.device("cpu"))
        x, g = tensors.values(torch.as_tensor(self.decays_, dtype=torch.float64))
        return tensors, x, g

    def _event_intensities(self, seqs: Sequences, baselines: np.ndarray) -> np.ndarray:
        tensors, x, _ = self._fitted_values(seqs)
        a = torch.as_tensor(np.moveaxis(self.component_adjacency_, 0, 2)).reshape(-1, self.decays_.size)
        exc = np.zeros(seqs.n_events)
        if x.shape[0]:
            exc = torch.zeros(seqs.n_events, dtype=torch.float64).index_add(
                0, tensors.row, (a[tensors.flat] * x).sum(1)).numpy()
        d = tensors.design
        return baselines[d.seq, d.code] + exc

    def _compensators(self, seqs: Sequences, baselines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tensors, x, _ = self._fitted_values(seqs)
        d, k = tensors.design, self.decays_.size
        beta = torch.as_tensor(self.decays_)
        a = torch.as_tensor(np.moveaxis(self.component_adjacency_, 0, 2)).reshape(-1, k)
        own = baselines[d.seq, d.code] * d.since_start
        if x.shape[0]:
            # ∫_{start}^{t_k} of the excitation = Σ_l (1 - e^{-β(t_k - t_l)}) = count - X / β
            integ = tensors.count[:, None] - x / beta[None, :]
            own = own + torch.zeros(seqs.n_events, dtype=torch.float64).index_add(
                0, tensors.row, (a[tensors.flat] * integ).sum(1)).numpy()
        tail = -np.expm1(-d.to_end[:, None] * self.decays_[None, :])  # (N, K)
        per_seq = np.zeros((len(seqs), self.n_codes_, k))
        np.add.at(per_seq, (d.seq, d.code), tail)
        total = baselines * d.duration[:, None] + np.einsum("pju,uij->pi", per_seq, self.component_adjacency_)
        return own, total

    def _kernel_columns(self, lags: np.ndarray, sources: np.ndarray) -> np.ndarray:
        lags = np.asarray(lags, dtype=np.float64)
        dens = np.where(lags[:, None] > 0, self.decays_[None, :] * np.exp(-np.maximum(lags, 0)[:, None]
                                                                            * self.decays_[None, :]), 0.0)
        comp = self.component_adjacency_[:, :, np.asarray(sources, dtype=np.int64)]  # (K, D, M)
        return np.einsum("mu,uim->mi", dens, comp)

    def _kernel_support_array(self) -> np.ndarray:
        return np.full((self.n_codes_, self.n_codes_), np.inf)

    def _simulate_sequences(self, start: np.ndarray, end: np.ndarray, seed: SeedLike) -> Sequences:
        radius = float(np.max(np.abs(np.linalg.eigvals(self.adjacency_))))
        if radius >= 1:
            raise PathwaysInputError(f"adjacency_: spectral radius {radius:.3f} >= 1, simulation would explode")
        return simulate_hawkes(self.baseline_, self.component_adjacency_, start=start, end=end,
                               decays=self.decays_, kernel="sumexp", seed=seed, vocab=self.vocab_)

    def _fisher_standard_errors(self, seqs: Sequences, baselines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Block-diagonal observed information (one (1+DK)² block per target code), inverted block by block."""
        tensors, x, _ = self._fitted_values(seqs)
        d, dim, k = tensors.design, self.n_codes_, self.decays_.size
        lam = self._event_intensities(seqs, baselines)
        p = 1 + dim * k
        base_deriv = baselines[d.seq, d.code] / np.where(self.baseline_ > 0, self.baseline_, 1.0)[d.code]
        rows = np.concatenate([np.arange(d.n_events), np.repeat(d.row, k)])
        cols = np.concatenate([d.code * p, (d.code[d.row] * p + 1)[:, None].repeat(k, 1).ravel()
                               + (d.col[:, None] * k + np.arange(k)[None, :]).ravel()])
        vals = np.concatenate([base_deriv / lam, (x.numpy() / lam[d.row][:, None]).ravel()])
        z = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(d.n_events, dim * p))
        info = (z.T @ z).tocsr()  # block diagonal: events only touch their own target's block
        counts = np.bincount(d.code, minlength=dim)
        b_se, a_se = np.full(dim, np.nan), np.full((dim, dim), np.nan)
        for i in np.flatnonzero(counts):  # D small dense inversions
            block = info[i * p:(i + 1) * p, i * p:(i + 1) * p].toarray()
            cov = np.linalg.pinv(block, hermitian=True)
            b_se[i] = math.sqrt(max(cov[0, 0], 0.0))
            sub = cov[1:, 1:].reshape(dim, k, dim, k)
            a_se[i] = np.sqrt(np.maximum(sub.sum(axis=(1, 3)).diagonal(), 0.0))  # var of Σ_u a^u_ij
        return b_se, a_se


class HawkesExpKernel(HawkesSumExpKernel):
    """Multivariate Hawkes process with exponential kernels φ_ij(t) = a_ij β e^{-βt} (one decay β for all pairs).

    Same parameters and attributes as :class:`HawkesSumExpKernel`, with ``decay`` (float) instead of ``decays``;
    ``decay_`` holds the decay used (learned when ``learn_decay``).

    Examples
    --------
    >>> from pathways.synthetic import simulate_hawkes
    >>> seqs = simulate_hawkes(np.array([0.2, 0.1]), np.array([[0.3, 0.0], [0.5, 0.2]]), end=2000.0,
    ...                        n_sequences=10, seed=0)
    >>> model = HawkesExpKernel(decay=1.0, penalty="l1", C=1e4).fit(seqs)
    >>> bool(model.converged_), model.baseline_.shape
    (True, (2,))
    """

    def __init__(self, decay: float = 1.0, penalty: str | None = None, C: float = 1e3,
                 fit_method: str = "likelihood", learn_decay: bool = False, covariates: Sequence[str] | None = None,
                 elastic_net_ratio: float = 0.95, max_iter: int = 500, tol: float = 1e-8, accelerate: bool = True,
                 device: str = "cpu", verbose: bool = False):
        self.decay = decay
        self.penalty = penalty
        self.C = C
        self.fit_method = fit_method
        self.learn_decay = learn_decay
        self.covariates = covariates
        self.elastic_net_ratio = elastic_net_ratio
        self.max_iter = max_iter
        self.tol = tol
        self.accelerate = accelerate
        self.device = device
        self.verbose = verbose

    def _init_decays(self) -> np.ndarray:
        decay = np.asarray(self.decay, dtype=np.float64)
        if decay.ndim != 0 or not np.isfinite(decay) or decay <= 0:
            raise PathwaysInputError(f"decay: expected one positive finite number, got {self.decay!r}")
        return decay.reshape(1)

    def _store(self, *args: Any, **kwargs: Any) -> None:
        super()._store(*args, **kwargs)
        self.decay_ = float(self.decays_[0])


def _patient_covariates(log: EventLog, names: list[str]) -> np.ndarray:
    """(P, q) float covariates from ``log.patients``: 'age' at start, 'sex' as 1 = F, others numeric columns."""
    pat = log.patients
    cols = []
    for name in names:
        if name == "age" and "age" not in pat.columns:
            years = 365.25 if log.time_unit == "days" else 1.0
            cols.append((pat["start"].to_numpy(np.float64) - pat["birth"].to_numpy(np.float64)) / years)
        elif name == "sex" and "sex" in pat.columns:
            sex = pat["sex"].astype(object)
            cols.append(np.where(sex == "F", 1.0, np.where(sex == "M", 0.0, np.nan)))
        elif name in pat.columns:
            cols.append(pd.to_numeric(pat[name], errors="coerce").to_numpy(np.float64))
        else:
            raise PathwaysInputError(f"covariates: column {name!r} not in log.patients "
                                     f"(available: {list(pat.columns)})")
    return np.column_stack(cols) if cols else np.zeros((log.n_patients, 0))

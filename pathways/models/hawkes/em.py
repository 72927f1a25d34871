"""Nonparametric multivariate Hawkes process: piecewise-constant kernels learned by EM.

The model is the one of Lewis & Mohler (2011) in its multivariate form, as in tick's ``HawkesEM``:

.. math::
    \\lambda_i(t) = \\mu_i + \\sum_j \\sum_{t^j_l < t} \\phi_{ij}(t - t^j_l), \\qquad
    \\phi_{ij}(s) = \\sum_m \\phi_{ijm} 1\\{e_m \\le s < e_{m+1}\\}, \\quad 0 \\le s < S,

with bin edges ``e_0 = 0 < e_1 < ... < e_B = S`` (uniform by default). Every step is vectorised over events:

* the pairs (event k, earlier event l of the same sequence with ``t_k - S < t_l < t_k``) are found once with one
  lexicographic sort of (sequence, time) keys; memory is linear in events x mean number of neighbours in the
  support, and the pairs are stored as two int32/int64 arrays (target event, flat kernel cell);
* one EM iteration is a gather of kernel values per pair, a scatter-add into the intensities at events, and a
  scatter-add of responsibilities into the kernel cells (``torch.index_select`` / ``index_add_``, CPU or CUDA).

Differences with tick, all on the side of the exact likelihood: each sequence's observation window
``[start, end]`` enters the compensator (tick divides kernel mass by ``n_events_j * bin width`` as if every event
were followed by a full support of observation, and the baseline by ``sum(end)`` as if every window started at 0);
only strictly earlier events excite (tick lets simultaneous events excite each other through the first bin); the
start point is deterministic (no random kernel start), which is safe because the log-likelihood is concave in
``(mu, phi)`` so EM climbs to the same maximum from any positive start.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence as TypingSequence

import numpy as np
import torch

from pathways.errors import PathwaysInputError, describe_bad_rows
from pathways.utils import SeedLike, rng

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
    starts = np.cumsum(counts) - counts
    d = np.arange(q.size, dtype=np.int64) - np.repeat(starts - lo, counts)
    return q, d


# --------------------------------------------------------------------------------------------------------------
# Design: what one EM iteration needs, built once per data set
# --------------------------------------------------------------------------------------------------------------
@dataclass
class EMDesign:
    """Sufficient structure of a data set for the piecewise-constant Hawkes likelihood.

    Attributes
    ----------
    marks : torch.Tensor (N,) int64, code of each event.
    target : torch.Tensor (P,) int32/int64, event index k of each pair (non-decreasing).
    cell : torch.Tensor (P,) int32/int64, flat kernel cell ``(mark_k * D + mark_l) * B + bin(t_k - t_l)``.
    exposure : torch.Tensor (D, B) float64, ``sum_{l of code j} |bin m ∩ [0, end - t_l)|``: the compensator of
        ``phi_ijm`` (the same for every target code i).
    total_time : float, summed window lengths ``sum(end - start)``: the compensator of each baseline.
    n_codes, n_bins, n_events, n_pairs : sizes.
    """

    marks: torch.Tensor
    target: torch.Tensor
    cell: torch.Tensor
    exposure: torch.Tensor
    total_time: float
    n_codes: int
    n_bins: int
    n_events: int
    n_pairs: int
    counts: torch.Tensor = field(repr=False)


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
    counts = hi - lo
    n_pairs = int(counts.sum())
    n_cells = n_codes * n_codes * n_bins
    index_dtype = np.int32 if max(times.size, n_cells) < 2**31 - 1 else np.int64
    target = np.empty(n_pairs, dtype=index_dtype)
    cell = np.empty(n_pairs, dtype=index_dtype)
    # chunk over events so that temporaries (lags, bins) stay O(_PAIR_CHUNK)
    cum = np.concatenate([[0], np.cumsum(counts)])
    bounds = np.unique(np.searchsorted(cum, np.arange(0, n_pairs + _PAIR_CHUNK, _PAIR_CHUNK), side="right") - 1)
    bounds = np.unique(np.concatenate([[0], np.clip(bounds, 0, times.size), [times.size]]))
    for a, b in zip(bounds[:-1], bounds[1:]):
        q, d = _expand_ranges(lo[a:b], hi[a:b])
        q += a
        m = bin_index(times[q] - times[d], edges)
        # lags are > 0 and < S by construction; clip guards the last ulp at S
        m = np.clip(m, 0, n_bins - 1)
        out = slice(cum[a], cum[b])
        target[out] = q
        cell[out] = (marks[q] * n_codes + marks[d]) * n_bins + m
    seq_end = np.repeat(np.asarray(end, dtype=np.float64), np.diff(offsets))
    exposure = _exposure(times, marks, seq_end, edges, n_codes)
    dev = torch.device(device)
    return EMDesign(
        marks=torch.from_numpy(marks).to(dev),
        target=torch.from_numpy(target).to(dev),
        cell=torch.from_numpy(cell).to(dev),
        exposure=torch.from_numpy(exposure).to(dev),
        total_time=float(np.sum(np.asarray(end, np.float64) - np.asarray(start, np.float64))),
        n_codes=int(n_codes),
        n_bins=int(n_bins),
        n_events=int(times.size),
        n_pairs=n_pairs,
        counts=torch.from_numpy(np.bincount(marks, minlength=n_codes).astype(np.float64)).to(dev),
    )


# --------------------------------------------------------------------------------------------------------------
# Likelihood and EM iterations
# --------------------------------------------------------------------------------------------------------------
def event_intensities(mu: torch.Tensor, kernel: torch.Tensor, design: EMDesign) -> tuple[torch.Tensor, torch.Tensor]:
    """Intensity of each event's own code just before it, and the kernel value carried by each pair.

    Returns
    -------
    (lam (N,), w (P,)) with ``lam_k = mu[mark_k] + sum_{pairs of k} w``.
    """
    w = kernel.reshape(-1).index_select(0, design.cell)
    lam = mu.index_select(0, design.marks).index_add(0, design.target, w)
    return lam, w


def compensator(mu: torch.Tensor, kernel: torch.Tensor, design: EMDesign) -> torch.Tensor:
    """Total integrated intensity over all windows and codes (scalar tensor)."""
    return mu.sum() * design.total_time + (kernel * design.exposure.unsqueeze(0)).sum()


def log_likelihood(mu: torch.Tensor, kernel: torch.Tensor, design: EMDesign) -> float:
    """Exact log-likelihood (sum over all sequences) of a piecewise-constant Hawkes model.

    ``-inf`` when an event has zero intensity (a code with zero baseline and no excitation reaching it).
    """
    lam, _ = event_intensities(mu, kernel, design)
    return float(torch.log(lam).sum() - compensator(mu, kernel, design))


def em_step(
    mu: torch.Tensor, kernel: torch.Tensor, design: EMDesign
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One EM iteration. Returns (new mu, new kernel, log-likelihood of the *input* parameters).

    E-step: the responsibility of pair (k, l) is ``phi(t_k - t_l) / lam_k``, that of the background
    ``mu / lam_k``. M-step (closed form, exact compensator): ``mu_i = sum_k bg_k / total_time`` and
    ``phi_ijm = sum_{pairs in cell} resp / exposure_jm``.
    """
    lam, w = event_intensities(mu, kernel, design)
    inv = lam.reciprocal()
    loglik = float(torch.log(lam).sum() - compensator(mu, kernel, design))
    resp = w * inv.index_select(0, design.target)
    d, b = design.n_codes, design.n_bins
    cell_mass = torch.zeros(d * d * b, dtype=lam.dtype, device=lam.device).index_add_(0, design.cell, resp)
    bg = mu.index_select(0, design.marks) * inv
    bg_mass = torch.zeros(d, dtype=lam.dtype, device=lam.device).index_add_(0, design.marks, bg)
    new_mu = bg_mass / design.total_time
    exposure = design.exposure.unsqueeze(0)
    # a cell never observed (no source events, or a bin beyond every window) has no information: keep it at 0
    new_kernel = torch.where(exposure > 0, cell_mass.view(d, d, b) / exposure.clamp_min(1e-300), 0.0)
    return new_mu, new_kernel, loglik


def initial_parameters(design: EMDesign) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic positive start: half of each code's events to the baseline, half spread over the kernels."""
    d, b = design.n_codes, design.n_bins
    counts = design.counts
    mu = 0.5 * counts / design.total_time
    total_exposure = design.exposure.sum()
    level = 0.5 * counts / total_exposure.clamp_min(1e-300)
    kernel = level.view(d, 1, 1).expand(d, d, b).clone()
    # positive everywhere so that EM (multiplicative updates) may move any cell; zeros would stay zero
    mu = torch.where(mu > 0, mu, torch.full_like(mu, 1e-12))
    return mu, kernel


@dataclass
class EMResult:
    """Outcome of :func:`fit_em`."""

    baseline: np.ndarray
    kernel: np.ndarray
    log_likelihood: float
    history: list[float]
    n_iter: int
    converged: bool


def _relative_change(new: torch.Tensor, old: torch.Tensor) -> float:
    scale = float(torch.linalg.vector_norm(old))
    diff = float(torch.linalg.vector_norm(new - old))
    return diff / scale if scale > 0 else diff


def fit_em(
    design: EMDesign,
    max_iter: int = 100,
    tol: float = 1e-5,
    baseline_start: np.ndarray | None = None,
    kernel_start: np.ndarray | None = None,
) -> EMResult:
    """Run EM to convergence on a prepared design.

    Stops when the relative change of both the baseline and the kernel (L2 norms, tick's criterion) is at most
    ``tol``, or after ``max_iter`` iterations. ``history`` holds the log-likelihood of every iterate including the
    last one; it is non-decreasing up to rounding (EM ascent property).
    """
    dev = design.exposure.device
    if baseline_start is None or kernel_start is None:
        mu0, k0 = initial_parameters(design)
    mu = torch.as_tensor(baseline_start, dtype=torch.float64, device=dev) if baseline_start is not None else mu0
    kernel = torch.as_tensor(kernel_start, dtype=torch.float64, device=dev) if kernel_start is not None else k0
    history: list[float] = []
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        new_mu, new_kernel, loglik = em_step(mu, kernel, design)
        history.append(loglik)
        change = max(_relative_change(new_mu, mu), _relative_change(new_kernel, kernel))
        mu, kernel = new_mu, new_kernel
        if change <= tol:
            converged = True
            break
    final = log_likelihood(mu, kernel, design)
    history.append(final)
    return EMResult(
        baseline=mu.cpu().numpy(),
        kernel=kernel.cpu().numpy(),
        log_likelihood=final,
        history=history,
        n_iter=n_iter,
        converged=converged,
    )


# --------------------------------------------------------------------------------------------------------------
# Simulation (branching / cluster representation), vectorised by generation
# --------------------------------------------------------------------------------------------------------------
def _sample_lags(
    cell_row: np.ndarray, kernel: np.ndarray, edges: np.ndarray, gen: np.random.Generator
) -> np.ndarray:
    """Draw one lag per child from the normalised kernel ``phi_ij`` of its (target, source) row ``i * D + j``.

    Rows of the cumulative mass are shifted by their row index so that one ``searchsorted`` on a single monotone
    array samples every child at once: row r occupies ``(r, r + 1]``.
    """
    d, _, b = kernel.shape
    mass = (kernel * np.diff(edges)[None, None, :]).reshape(d * d, b)
    norms = mass.sum(axis=1, keepdims=True)
    cdf = np.cumsum(mass, axis=1) / np.where(norms > 0, norms, 1.0)
    shifted = (cdf + np.arange(d * d)[:, None]).ravel()
    u = gen.random(cell_row.size)
    pos = np.searchsorted(shifted, cell_row + u, side="left")
    m = np.clip(pos - cell_row * b, 0, b - 1)
    return edges[m] + gen.random(cell_row.size) * (edges[m + 1] - edges[m])


def simulate_piecewise_hawkes(
    baseline: np.ndarray,
    kernel: np.ndarray,
    edges: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    seed: SeedLike = None,
    max_events: int = 50_000_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate independent realizations of a piecewise-constant Hawkes process on windows ``[start, end]``.

    Immigrants of code i arrive as a Poisson process of rate ``baseline[i]`` (or ``baseline[s, i]`` per
    sequence); each event of code j begets ``Poisson(adjacency[i, j])`` children of code i at lags drawn from the
    normalised kernel ``phi_ij``. One generation of all sequences is drawn at once; children after ``end`` are
    dropped (their descendants would be later still).

    Parameters
    ----------
    baseline : (D,) or (n, D) non-negative rates. kernel : (D, D, B) non-negative kernel values.
    edges : (B + 1,) bin edges. start, end : (n,) windows. seed : int, Generator or None.
    max_events : safety cap; exceeding it raises (explosive parameters).

    Returns
    -------
    (times, marks, offsets) : flat arrays sorted by (sequence, time, mark) and the (n + 1,) sequence offsets.

    Raises
    ------
    PathwaysInputError
        Negative parameters, a spectral radius of the adjacency >= 1, or more than ``max_events`` events.
    """
    gen = rng(seed)
    kernel = np.asarray(kernel, dtype=np.float64)
    start = np.atleast_1d(np.asarray(start, dtype=np.float64))
    end = np.atleast_1d(np.asarray(end, dtype=np.float64))
    d = kernel.shape[0]
    base = np.broadcast_to(np.asarray(baseline, dtype=np.float64), (start.size, d))
    if np.any(base < 0) or np.any(kernel < 0):
        raise PathwaysInputError("arguments 'baseline'/'kernel': simulation needs non-negative parameters")
    adjacency = (kernel * np.diff(edges)[None, None, :]).sum(axis=2)
    radius = float(np.max(np.abs(np.linalg.eigvals(adjacency)))) if d else 0.0
    if radius >= 1:
        raise PathwaysInputError(f"argument 'kernel': spectral radius of the adjacency is {radius:.3f} >= 1 "
                                 "(explosive process); scale the kernel down")
    n_imm = gen.poisson(base * (end - start)[:, None])
    seq = np.repeat(np.repeat(np.arange(start.size), d), n_imm.ravel())
    code = np.repeat(np.tile(np.arange(d), start.size), n_imm.ravel())
    time = start[seq] + gen.random(seq.size) * (end - start)[seq]
    all_seq, all_code, all_time = [seq], [code], [time]
    total = seq.size
    while seq.size:
        # children per (parent, target code)
        n_child = gen.poisson(adjacency[:, code].T)
        parent = np.repeat(np.arange(seq.size), n_child.sum(axis=1))
        child_code = np.repeat(np.tile(np.arange(d), seq.size), n_child.ravel())
        lag = _sample_lags(child_code * d + code[parent], kernel, edges, gen)
        child_time = time[parent] + lag
        keep = child_time <= end[seq[parent]]
        seq, code, time = seq[parent][keep], child_code[keep], child_time[keep]
        total += seq.size
        if total > max_events:
            raise PathwaysInputError(f"simulation exceeded max_events={max_events}; lower the baseline or windows")
        all_seq.append(seq)
        all_code.append(code)
        all_time.append(time)
    seq, code, time = (np.concatenate(a) for a in (all_seq, all_code, all_time))
    order = np.lexsort((code, time, seq))
    offsets = np.zeros(start.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(seq, minlength=start.size), out=offsets[1:])
    return time[order], code[order].astype(np.int64), offsets

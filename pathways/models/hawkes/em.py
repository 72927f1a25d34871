"""Nonparametric multivariate Hawkes process: piecewise-constant kernels learned by EM.

The model is the one of Lewis & Mohler (2011) in its multivariate form, as in tick's ``HawkesEM``:

.. math::
    \\lambda_i(t) = \\mu_i + \\sum_j \\sum_{t^j_l < t} \\phi_{ij}(t - t^j_l), \\qquad
    \\phi_{ij}(s) = \\sum_m \\phi_{ijm} 1\\{e_m \\le s < e_{m+1}\\}, \\quad 0 \\le s < S,

with bin edges ``e_0 = 0 < e_1 < ... < e_B = S`` (uniform by default). Every step is vectorised over events:

* the pairs (event k, earlier event l of the same sequence with ``t_k - S < t_l < t_k``) are found once with one
  lexicographic sort of (sequence, time) keys and stored as a sparse count matrix ``M`` (events x kernel cells),
  in CSR with its transpose: memory is linear in events x mean number of neighbours within the support;
* one EM iteration is two sparse matrix-vector products (``lam = mu[marks] + M @ phi`` and ``M^T @ (1 / lam)``)
  and a few element-wise passes over the events: scipy on CPU, torch CSR tensors on CUDA.

Differences with tick, all on the side of the exact likelihood: each sequence's observation window
``[start, end]`` enters the compensator (tick divides kernel mass by ``n_events_j * bin width`` as if every event
were followed by a full support of observation, and the baseline by ``sum(end)`` as if every window started at 0);
only strictly earlier events excite (tick lets simultaneous events excite each other through the first bin); the
start point is deterministic (no random kernel start), which is safe because the log-likelihood is concave in
``(mu, phi)`` so EM climbs to the same maximum from any positive start.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator, Sequence as TypingSequence

import numpy as np
import torch

from pathways.encode.sequences import Sequences
from pathways.errors import PathwaysInputError
from pathways.device import resolve_device
from pathways.models.hawkes.base import HawkesBase
from pathways.synthetic.hawkes import simulate_hawkes
from pathways.utils import SeedLike, ragged_arange

logger = logging.getLogger("pathways")

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
        from scipy import sparse

        n_rows = indptr.size - 1
        self.csr = sparse.csr_matrix((np.ones(indices.size), indices, indptr), shape=(n_rows, n_cols))
        self.csr_t = self.csr.T.tocsr()
        self.marks = marks
        self.n_codes = int(marks.max()) + 1 if marks.size else 0
        self.device = device
        if device.type != "cpu":
            self._m = _torch_csr(self.csr, device)
            self._mt = _torch_csr(self.csr_t, device)
            self._marks = torch.from_numpy(marks).to(device)

    def intensities(self, mu: np.ndarray, phi: np.ndarray) -> Any:
        """``lam = mu[marks] + M @ phi`` as a numpy array (CPU) or a tensor on the device."""
        if self.device.type == "cpu":
            return mu[self.marks] + self.csr @ phi
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float64, device=self.device)  # noqa: E731
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


def _torch_csr(m: Any, device: torch.device) -> torch.Tensor:
    return torch.sparse_csr_tensor(
        torch.from_numpy(m.indptr.astype(np.int64)), torch.from_numpy(m.indices.astype(np.int64)),
        torch.from_numpy(m.data), size=m.shape, device=device, check_invariants=False,
    )


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
# Likelihood and EM iterations
# --------------------------------------------------------------------------------------------------------------
def compensator(mu: np.ndarray, kernel: np.ndarray, design: EMDesign) -> float:
    """Total integrated intensity over all windows and codes."""
    return float(mu.sum() * design.total_time + (kernel * design.exposure[None]).sum())


def log_likelihood(mu: np.ndarray, kernel: np.ndarray, design: EMDesign) -> float:
    """Exact log-likelihood (sum over all sequences) of a piecewise-constant Hawkes model.

    ``-inf`` when an event has zero intensity (a code with zero baseline and no excitation reaching it).
    """
    lam = design.pairs.intensities(mu, kernel.reshape(-1))
    with np.errstate(divide="ignore"):
        log_sum, _, _ = design.pairs.statistics(lam, design.n_codes)
    return log_sum - compensator(mu, kernel, design)


def em_step(mu: np.ndarray, kernel: np.ndarray, design: EMDesign) -> tuple[np.ndarray, np.ndarray, float]:
    """One EM iteration. Returns (new mu, new kernel, log-likelihood of the *input* parameters).

    E-step: the responsibility of pair (k, l) is ``phi(t_k - t_l) / lam_k``, that of the background
    ``mu / lam_k``. M-step (closed form, exact compensator): ``mu_i = sum_k bg_k / total_time`` and
    ``phi_ijm = sum_{pairs in cell} resp / exposure_jm``. Responsibilities are never materialised per pair: their
    sum over a cell is ``phi_ijm * (M^T @ (1 / lam))_ijm`` and the background's is ``mu_i * sum_{k of i} 1/lam_k``.
    """
    lam = design.pairs.intensities(mu, kernel.reshape(-1))
    log_sum, per_cell, per_code = design.pairs.statistics(lam, design.n_codes)
    loglik = log_sum - compensator(mu, kernel, design)
    new_mu = mu * per_code / design.total_time
    exposure = design.exposure[None]
    cell_mass = kernel * per_cell.reshape(kernel.shape)
    # a cell never observed (no source events, or a bin beyond every window) has no information: keep it at 0
    new_kernel = np.divide(cell_mass, exposure, out=np.zeros_like(cell_mass), where=exposure > 0)
    return new_mu, new_kernel, loglik


def initial_parameters(design: EMDesign) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic positive start: half of each code's events to the baseline, half spread over the kernels."""
    d, b = design.n_codes, design.n_bins
    mu = np.maximum(0.5 * design.counts / design.total_time, 1e-12)
    level = 0.5 * design.counts / max(float(design.exposure.sum()), 1e-300)
    # positive everywhere so that EM (multiplicative updates) may move any cell; zeros would stay zero
    kernel = np.broadcast_to(level[:, None, None], (d, d, b)).copy()
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


def _relative_change(new: np.ndarray, old: np.ndarray) -> float:
    scale = float(np.linalg.norm(old))
    diff = float(np.linalg.norm(new - old))
    return diff / scale if scale > 0 else diff


class _EMMap:
    """The EM map on flat parameter vectors ``theta = (mu, phi)``, counting its evaluations (E-steps)."""

    def __init__(self, design: EMDesign):
        self.design = design
        self.n_codes = design.n_codes
        self.n_eval = 0

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d, b = self.n_codes, self.design.n_bins
        return theta[:d], theta[d:].reshape(d, d, b)

    def __call__(self, theta: np.ndarray) -> tuple[np.ndarray, float]:
        """(EM update of theta, log-likelihood of theta)."""
        self.n_eval += 1
        mu, kernel, loglik = em_step(*self.split(theta), self.design)
        return np.concatenate([mu, kernel.ravel()]), loglik


def _squarem_step(em: _EMMap, theta0: np.ndarray) -> tuple[np.ndarray, float]:
    """One SQUAREM cycle (Varadhan & Roland 2008, scheme S3) with a monotonicity safeguard; 3 E-steps.

    Two EM steps give ``r = F(t0) - t0`` and ``v = F(F(t0)) - 2 F(t0) + t0``; the extrapolated point
    ``t0 - 2 a r + a^2 v`` (``a = -|r| / |v|``, at most -1) is pulled back towards the plain double EM step
    (``a = -1``) until it is non-negative, then stabilised by one more EM step. If that does not improve on the
    log-likelihood of ``t0``, the plain double EM step is kept, so the iterates' log-likelihoods never decrease.
    Returns (next iterate, log-likelihood of ``theta0``).
    """
    theta1, ll0 = em(theta0)
    theta2, _ = em(theta1)
    r = theta1 - theta0
    v = theta2 - theta1 - r
    norm_v = float(np.linalg.norm(v))
    if norm_v == 0.0:
        return theta2, ll0
    alpha = min(-float(np.linalg.norm(r)) / norm_v, -1.0)
    proposal = theta0 - 2 * alpha * r + alpha**2 * v
    while np.any(proposal < 0) and alpha < -1.0:
        alpha = (alpha - 1.0) / 2 if alpha < -1.0 - 1e-6 else -1.0  # halve the distance to the EM step
        proposal = theta0 - 2 * alpha * r + alpha**2 * v
    if alpha == -1.0:
        proposal = theta2
    theta_new, ll_proposal = em(proposal)
    if not ll_proposal >= ll0:  # also catches nan
        return theta2, ll0
    return theta_new, ll0


def fit_em(
    design: EMDesign,
    max_iter: int = 100,
    tol: float = 1e-5,
    baseline_start: np.ndarray | None = None,
    kernel_start: np.ndarray | None = None,
    accelerate: bool = True,
) -> EMResult:
    """Run EM to convergence on a prepared design.

    Stops when the relative change of both the baseline and the kernel between successive iterates (L2 norms,
    tick's criterion) is at most ``tol``, or after ``max_iter`` E-steps (``n_iter`` counts E-steps, the unit of
    cost, with or without acceleration). With ``accelerate`` each iterate is a SQUAREM cycle of 3 E-steps, which
    typically reaches a given tolerance in several times fewer E-steps than plain EM. ``history`` holds the
    log-likelihood of every iterate including the last one; it is non-decreasing (EM ascent property, kept by the
    SQUAREM safeguard).
    """
    mu, kernel = initial_parameters(design)
    if baseline_start is not None:
        mu = np.array(baseline_start, dtype=np.float64)
    if kernel_start is not None:
        kernel = np.array(kernel_start, dtype=np.float64)
    em = _EMMap(design)
    theta = np.concatenate([mu, kernel.ravel()])
    history: list[float] = []
    converged = False
    d = design.n_codes
    while em.n_eval < max_iter:
        if accelerate and em.n_eval + 3 <= max_iter:
            new, loglik = _squarem_step(em, theta)
        else:
            new, loglik = em(theta)
        history.append(loglik)
        change = max(_relative_change(new[:d], theta[:d]), _relative_change(new[d:], theta[d:]))
        theta = new
        if change <= tol:
            converged = True
            break
    mu, kernel = em.split(theta)
    final = log_likelihood(mu, kernel, design)
    history.append(final)
    return EMResult(baseline=mu.copy(), kernel=kernel.copy(), log_likelihood=final, history=history,
                    n_iter=em.n_eval, converged=converged)


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
    from scipy import sparse

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
    from scipy import linalg, sparse

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


# --------------------------------------------------------------------------------------------------------------
# Estimator
# --------------------------------------------------------------------------------------------------------------
class HawkesEM(HawkesBase):
    """Multivariate Hawkes process with nonparametric piecewise-constant kernels, fitted by EM.

    Parameters
    ----------
    kernel_support : float
        Support ``S`` shared by all kernels, in the data's time unit (days for EventLogs built from dates).
        Events further apart than ``S`` do not interact.
    n_bins : int
        Number of equal-width bins on ``[0, S)``.
    kernel_discretization : array-like, optional
        Explicit bin edges ``0 = e_0 < ... < e_B`` (overrides ``kernel_support`` and ``n_bins``); e.g.
        ``np.geomspace`` edges for lags from days to years.
    max_iter : int
        Maximum number of E-steps (the unit of cost, as tick's ``max_iter``).
    tol : float
        Stop when the relative L2 change of both baseline and kernel between iterates is at most ``tol`` (tick's
        criterion, checked at every iterate).
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"``; the event-sized work of each iteration runs there in float64.
    accelerate : bool
        SQUAREM acceleration (3 E-steps per iterate, with a safeguard that keeps the log-likelihood
        non-decreasing); ``False`` gives plain EM, iterate by iterate as tick.
    warm_start : bool
        Start a new fit from the current fitted parameters (same codes and bins) instead of the default start;
        makes bootstrap intervals much cheaper.

    Attributes
    ----------
    baseline_ : (D,) baseline intensities.
    kernel_ : (D, D, B) kernel values; ``kernel_[i, j, m]`` is the effect of code j on code i at lags in bin m.
    adjacency_ : (D, D) kernel integrals ``sum_m kernel_[i, j, m] * width_m`` (tick's orientation).
    kernel_edges_ : (B + 1,) bin edges.
    codes_, vocab_, n_codes_ : the code order of rows and columns.
    n_iter_, converged_ : E-steps run and whether ``tol`` was reached.
    history_ : list of ``{"iter", "log_likelihood"}``: total log-likelihood of each iterate (the start, then
        each EM step or SQUAREM cycle), non-decreasing.
    log_likelihood_ : total log-likelihood of the fitted parameters on the training data.
    n_pairs_ : number of (event, earlier neighbour within the support) pairs in the training data.

    Notes
    -----
    The fit is exact maximum likelihood over each sequence's window ``[start, end]`` (see the module docstring for
    the differences with tick). Memory is linear in events x mean number of neighbours within ``S``; choose ``S``
    to cover the lags of interest, not more. ``score`` is the exact log-likelihood per event (base class).

    Examples
    --------
    >>> from pathways.synthetic import simulate_hawkes
    >>> seqs = simulate_hawkes(np.array([0.5, 0.5]), np.array([[0.3, 0.0], [0.4, 0.2]]), end=200.0,
    ...                        n_sequences=20, seed=0)
    >>> model = HawkesEM(kernel_support=5.0, n_bins=10).fit(seqs)
    >>> model.kernel_.shape, model.adjacency_.shape
    ((2, 2, 10), (2, 2))
    """

    def __init__(
        self,
        kernel_support: float | None = 30.0,
        n_bins: int = 30,
        kernel_discretization: TypingSequence[float] | None = None,
        max_iter: int = 100,
        tol: float = 1e-5,
        device: str = "cpu",
        accelerate: bool = True,
        warm_start: bool = False,
    ):
        self.kernel_support = kernel_support
        self.n_bins = n_bins
        self.kernel_discretization = kernel_discretization
        self.max_iter = max_iter
        self.tol = tol
        self.device = device
        self.accelerate = accelerate
        self.warm_start = warm_start

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """scikit-learn parameters; array edges are reported as a list so that checkpoints stay plain JSON."""
        params = super().get_params(deep)
        if isinstance(params.get("kernel_discretization"), np.ndarray):
            params["kernel_discretization"] = params["kernel_discretization"].tolist()
        return params

    # -- fitting ------------------------------------------------------------------------------------------------
    def _check_params(self) -> np.ndarray:
        if int(self.max_iter) != self.max_iter or self.max_iter < 1:
            raise PathwaysInputError(f"argument 'max_iter': expected a positive integer, got {self.max_iter!r}")
        if not (np.isfinite(self.tol) and self.tol >= 0):
            raise PathwaysInputError(f"argument 'tol': expected a finite non-negative float, got {self.tol!r}")
        return kernel_edges(self.kernel_support, self.n_bins, self.kernel_discretization)

    def _design(self, seqs: Sequences, edges: np.ndarray | None = None) -> EMDesign:
        return build_design(seqs.times, seqs.marks, seqs.offsets, seqs.start, seqs.end, seqs.n_codes,
                            self.kernel_edges_ if edges is None else edges, resolve_device(self.device))

    def _start(self, edges: np.ndarray, n_codes: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Previous fitted parameters when warm starting on the same codes and bins, else None."""
        fitted = getattr(self, "kernel_", None)
        if (self.warm_start and fitted is not None and fitted.shape == (n_codes, n_codes, edges.size - 1)
                and np.array_equal(self.kernel_edges_, edges)):
            # zeros are absorbing in EM: lift them a little so the fit may still move every cell
            floor = 1e-8 * max(float(fitted.max()), 1e-12)
            return np.maximum(self.baseline_, floor), np.maximum(fitted, floor)
        return None, None

    def _fit_sequences(self, seqs: Sequences, covariates: np.ndarray | None) -> None:
        edges = self._check_params()
        design = self._design(seqs, edges)
        mu0, k0 = self._start(edges, seqs.n_codes)
        result = fit_em(design, int(self.max_iter), float(self.tol), mu0, k0, bool(self.accelerate))
        self.kernel_edges_ = edges
        self.baseline_ = result.baseline
        self.kernel_ = result.kernel
        self.adjacency_ = (result.kernel * np.diff(edges)[None, None, :]).sum(axis=2)
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        self.log_likelihood_ = result.log_likelihood
        self.history_ = [{"iter": t, "log_likelihood": ll} for t, ll in enumerate(result.history)]
        self.n_pairs_ = design.n_pairs
        if not result.converged:
            logger.info("HawkesEM: tol=%g not reached after %d iterations", self.tol, result.n_iter)

    # -- hooks of HawkesBase ------------------------------------------------------------------------------------
    def _event_intensities(self, seqs: Sequences, baselines: np.ndarray) -> np.ndarray:
        design = self._design(seqs)
        excitation = design.pairs.to_numpy(design.pairs.intensities(np.zeros(seqs.n_codes), self.kernel_.ravel()))
        return baselines[seqs.sequence_ids, seqs.marks] + excitation

    def _compensators(self, seqs: Sequences, baselines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        args = (seqs.times, seqs.marks, seqs.offsets, seqs.start)
        own = own_compensators(*args, baselines, self.kernel_, self.kernel_edges_)
        total = window_compensators(*args, seqs.end, baselines, self.kernel_, self.kernel_edges_)
        return own, total

    def _kernel_columns(self, lags: np.ndarray, sources: np.ndarray) -> np.ndarray:
        lags = np.asarray(lags, dtype=np.float64)
        m = bin_index(lags, self.kernel_edges_)
        inside = (lags > 0) & (m >= 0) & (m < self.kernel_.shape[2])
        out = np.zeros((lags.size, self.n_codes_))
        out[inside] = self.kernel_[:, np.asarray(sources)[inside], m[inside]].T
        return out

    def _kernel_support_array(self) -> np.ndarray:
        return np.full((self.n_codes_, self.n_codes_), float(self.kernel_edges_[-1]))

    def _simulate_sequences(self, start: np.ndarray, end: np.ndarray, seed: SeedLike) -> Sequences:
        # step kernels: one uniform-delay component per bin, weighted by the bin's mass
        mass = np.moveaxis(self.kernel_ * np.diff(self.kernel_edges_)[None, None, :], 2, 0)
        return simulate_hawkes(self.baseline_, mass, start=start, end=end, kernel="step",
                               bin_edges=self.kernel_edges_, seed=seed, vocab=self.vocab_)

    def _fisher_standard_errors(self, seqs: Sequences, baselines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        design = self._design(seqs)
        lam = self._event_intensities(seqs, baselines)
        return observed_information_se(np.asarray(self.baseline_), self.kernel_, self.kernel_edges_, design, lam)

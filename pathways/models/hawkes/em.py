"""Nonparametric multivariate Hawkes process: piecewise-constant kernels learned by EM.

The model is the one of Lewis & Mohler (2011) in its multivariate form, as in tick's ``HawkesEM``:

.. math::
    \\lambda_i(t) = \\mu_i + \\sum_j \\sum_{t^j_l < t} \\phi_{ij}(t - t^j_l), \\qquad
    \\phi_{ij}(s) = \\sum_m \\phi_{ijm} 1\\{e_m \\le s < e_{m+1}\\}, \\quad 0 \\le s < S,

with bin edges ``e_0 = 0 < e_1 < ... < e_B = S`` (uniform by default). Every step is vectorised over events
(the pair design and the compensators live in :mod:`pathways.models.hawkes.em_design`):

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
from collections.abc import Sequence as TypingSequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pathways.device import resolve_device
from pathways.encode.sequences import Sequences
from pathways.errors import PathwaysInputError
from pathways.models.hawkes.base import HawkesBase
from pathways.models.hawkes.distributed import shared_design
from pathways.models.hawkes.em_design import (
    EMDesign,
    PairMatrix,
    bin_index,
    build_design,
    iter_pairs,
    kernel_edges,
    kernel_primitive_tables,
    observed_information_se,
    own_compensators,
    window_bounds,
    window_compensators,
)
from pathways.optim import squarem_step
from pathways.progress import progress_bar
from pathways.synthetic.hawkes import simulate_hawkes
from pathways.utils import SeedLike

logger = logging.getLogger("pathways")

__all__ = ["EMDesign", "EMResult", "HawkesEM", "PairMatrix", "bin_index", "build_design", "compensator", "em_step",
           "fit_em", "initial_parameters", "iter_pairs", "kernel_edges", "kernel_primitive_tables", "log_likelihood",
           "observed_information_se", "own_compensators", "window_bounds", "window_compensators"]


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
    """One SQUAREM cycle (:func:`pathways.optim.squarem_step`, scheme S3, 3 E-steps) on the negative
    log-likelihood: the step length is pulled back toward the plain double EM step until the extrapolated point is
    non-negative, and the plain double step is kept when the extrapolation does not improve the log-likelihood, so
    the iterates' log-likelihoods never decrease. Returns (next iterate, log-likelihood of ``theta0``).
    """
    def negative(theta: np.ndarray) -> tuple[np.ndarray, float]:
        new, loglik = em(theta)
        return new, -loglik

    cycle = squarem_step(negative, theta0, feasible=lambda p: not np.any(p < 0))
    return cycle.x, -cycle.value


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
    bar = progress_bar(total=max_iter, desc="Hawkes EM (nonparametric)", unit="E-step")
    while em.n_eval < max_iter:
        if accelerate and em.n_eval + 3 <= max_iter:
            new, loglik = _squarem_step(em, theta)
        else:
            new, loglik = em(theta)
        bar.update(em.n_eval - bar.n)
        history.append(loglik)
        change = max(_relative_change(new[:d], theta[:d]), _relative_change(new[d:], theta[d:]))
        theta = new
        if change <= tol:
            converged = True
            break
    bar.close()
    mu, kernel = em.split(theta)
    final = log_likelihood(mu, kernel, design)
    history.append(final)
    return EMResult(baseline=mu.copy(), kernel=kernel.copy(), log_likelihood=final, history=history,
                    n_iter=em.n_eval, converged=converged)

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
        if getattr(self, "_shard_reducer", None) is not None:  # sharded fit: statistics summed over the ranks
            design = shared_design(design, self._shard_reducer)
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

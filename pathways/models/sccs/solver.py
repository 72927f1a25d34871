"""Solver of ConvSCCS: conditional likelihood, proximal operators, batched FISTA with backtracking and restart.

The solver is FISTA with backtracking and adaptive restart on a *batch* of coefficient vectors (columns), each with
its own case weights: cross-validation folds and bootstrap replicates are fitted together, one sparse
matrix-matrix product per iteration. The TV prox is Condat's exact direct algorithm per coefficient block and the
group-lasso prox is vectorised (both in :mod:`pathways.optim.prox`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from pathways.models.sccs.design import LagDesign
from pathways.optim import fista as optim_fista
from pathways.optim import prox_group_l1
from pathways.optim.prox import prox_tv1d as tv1d  # re-exported: the one Condat TV prox

__all__ = ["batched_loss", "curvature", "fista", "penalty_prox", "penalty_value", "project", "support_projection",
           "tv1d"]


def batched_loss(d: LagDesign, beta: torch.Tensor, weights: torch.Tensor,
                 grad: bool = True) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Weighted negative conditional log-likelihood of a batch of coefficient vectors.

    Parameters
    ----------
    d : LagDesign
    beta : tensor (n_coeffs, B)
    weights : tensor (n_cases, B)
        Case weights per column (already normalised: the loss is ``-sum_i w_i loglik_i``).
    grad : bool
        Also return the gradient.

    Returns
    -------
    loss : tensor (B,)
    grad : tensor (n_coeffs, B) or None
    loglik : tensor (n_cases, B)
        Per-case conditional log-likelihood ``sum_t y_it (eta_it - logsumexp_{s < c_i} eta_is)``.
    """
    eta = d.X @ beta  # (R, B)
    # one shift per column (the largest predictor, or 0 for the zero rows) keeps every exp() <= 1; only a case whose
    # terms all underflow needs its own shift, computed by the slower per-case path
    shift = eta.amax(0).clamp_min(0.0) if eta.shape[0] else torch.zeros_like(beta[0])
    e = torch.exp(eta - shift)
    if d.row_weight is not None:  # time at risk (or likelihood weight) of the rows
        e = e * d.row_weight[:, None]
    s = d.S @ e + d.n_free[:, None] * torch.exp(-shift)
    if bool((s < 1e-250).any()):
        shift_case = _case_shift(d, eta)
        e = torch.exp(eta - shift_case[d.row_case])
        if d.row_weight is not None:
            e = e * d.row_weight[:, None]
        s = d.S @ e + d.n_free[:, None] * torch.exp(-shift_case)
        lse = shift_case + torch.log(s)
    else:
        lse = shift + torch.log(s)
    loglik = d.Y @ eta - d.n_outcomes[:, None] * lse
    loss = -(weights * loglik).sum(0)
    if not grad:
        return loss, None, loglik
    # d loss / d eta_r = w_i (N_i p_r - y_r), p_r = e_r / s_i: the y part is a fixed sparse product
    coef = weights * d.n_outcomes[:, None] / s
    g_eta = e * coef.index_select(0, d.row_case)
    return loss, d.Xt @ g_eta - d.XtY @ weights, loglik


def _case_shift(d: LagDesign, eta: torch.Tensor) -> torch.Tensor:
    """Per-case max of the linear predictor over observed buckets (zero rows count as 0)."""
    n, b = d.n_cases, eta.shape[1]
    start = torch.where(d.n_free > 0, 0.0, -math.inf).to(eta.dtype)[:, None].expand(n, b).contiguous()
    m = start.scatter_reduce(0, d.row_case[:, None].expand(-1, b), eta, reduce="amax", include_self=True)
    return torch.where(torch.isfinite(m), m, torch.zeros_like(m))


# ----------------------------------------------------------------------------------------------------------------
# Proximal operators
# ----------------------------------------------------------------------------------------------------------------
def penalty_prox(beta: torch.Tensor, precision: torch.Tensor, offsets: np.ndarray, penalized: np.ndarray,
                 C_tv: float | None, C_group_l1: float | None) -> torch.Tensor:
    """Prox of ``TV / C_tv + sqrt(block size) * ||block||_2 / C_group_l1`` over penalised blocks.

    ``precision`` (n_coeffs, B) is the inverse step, constant within a penalised block (the block's step scales
    both penalties). Applies the TV prox then the group soft-threshold: this composition is the exact prox of the
    sum, because the group shrinkage rescales a block uniformly and so preserves the TV solution's level sets (as in
    tick's ``ProxMulti((ProxTV, ProxGroupL1))``).
    """
    if C_tv is None and C_group_l1 is None:
        return beta
    out = beta.detach().cpu().numpy().copy()
    blocks = np.array([(int(offsets[j]), int(offsets[j + 1])) for j in np.flatnonzero(penalized)],
                      dtype=np.int64).reshape(-1, 2)
    if blocks.size == 0:
        return beta
    steps = 1.0 / precision[torch.as_tensor(blocks[:, 0], device=precision.device)].detach().cpu().numpy()
    if C_tv is not None:
        for col in range(out.shape[1]):
            for g, (lo, hi) in enumerate(blocks):
                if hi - lo > 1:
                    out[lo:hi, col] = tv1d(out[lo:hi, col].tolist(), float(steps[g, col]) / C_tv)
    if C_group_l1 is not None:
        block_id = np.repeat(np.arange(len(blocks)), blocks[:, 1] - blocks[:, 0])
        rows = np.concatenate([np.arange(lo, hi) for lo, hi in blocks])
        thr = np.sqrt(blocks[:, 1] - blocks[:, 0])[:, None] * steps / C_group_l1  # (n_blocks, B)
        out[rows] = prox_group_l1(out[rows], block_id, thr)
    return torch.as_tensor(out, dtype=beta.dtype, device=beta.device)


def penalty_value(beta: torch.Tensor, offsets: np.ndarray, penalized: np.ndarray, C_tv: float | None,
                  C_group_l1: float | None) -> torch.Tensor:
    """Penalty of every column, shape (B,)."""
    total = torch.zeros(beta.shape[1], dtype=beta.dtype, device=beta.device)
    for j in np.flatnonzero(penalized):
        block = beta[int(offsets[j]):int(offsets[j + 1])]
        if C_tv is not None and block.shape[0] > 1:
            total = total + (block[1:] - block[:-1]).abs().sum(0) / C_tv
        if C_group_l1 is not None:
            total = total + math.sqrt(block.shape[0]) * torch.linalg.vector_norm(block, dim=0) / C_group_l1
    return total


def support_projection(beta: torch.Tensor, offsets: np.ndarray, penalized: np.ndarray,
                       atol: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
    """Support of penalised solutions, as a projection: (segment id per coefficient and column, keep mask).

    Within a penalised block, consecutive equal coefficients form one segment (TV); an all-zero block is dropped
    (group lasso). Unpenalised coefficients are their own segments. Projecting onto the support = replacing each
    coefficient by its segment mean (0 when dropped) — used for the debiased refit.
    """
    p, b = beta.shape
    x = beta.detach().cpu().numpy()
    pen = np.zeros(p, dtype=bool)
    same_block = np.zeros(p, dtype=bool)  # coefficient k continues the block of k-1
    for j in np.flatnonzero(penalized):
        lo, hi = int(offsets[j]), int(offsets[j + 1])
        pen[lo:hi] = True
        same_block[lo + 1:hi] = True
    new_seg = np.ones((p, b), dtype=bool)
    new_seg[1:] = ~(same_block[1:, None] & (np.abs(np.diff(x, axis=0)) <= atol * np.maximum(1.0, np.abs(x[1:]))))
    seg = np.cumsum(new_seg, axis=0) - 1 + np.arange(b)[None, :] * p  # unique ids across columns
    keep = ~(pen[:, None] & (np.abs(x) <= atol))
    return torch.as_tensor(seg, device=beta.device), torch.as_tensor(keep, device=beta.device)


def project(beta: torch.Tensor, seg: torch.Tensor, keep: torch.Tensor,
            precision: torch.Tensor | None = None) -> torch.Tensor:
    """Segment means of ``beta`` weighted by ``precision`` (the projection in that metric); zero where not kept."""
    flat_seg = seg.reshape(-1)
    size = beta.shape[0] * beta.shape[1]
    weight = torch.ones_like(beta) if precision is None else precision
    sums = torch.zeros(size, dtype=beta.dtype, device=beta.device).index_add_(0, flat_seg,
                                                                              (weight * beta).reshape(-1))
    total = torch.zeros(size, dtype=beta.dtype, device=beta.device).index_add_(0, flat_seg, weight.reshape(-1))
    mean = (sums / total.clamp_min(1e-300))[flat_seg].reshape(beta.shape)
    return torch.where(keep, mean, torch.zeros_like(mean))


# ----------------------------------------------------------------------------------------------------------------
# Batched FISTA with backtracking and adaptive restart
# ----------------------------------------------------------------------------------------------------------------
def fista(d: LagDesign, weights: torch.Tensor, beta0: torch.Tensor, prox, penalty, *, lipschitz: torch.Tensor,
          metric: torch.Tensor | None = None, tol: float = 1e-6, max_iter: int = 500,
          reduce: Callable[..., tuple] | None = None) -> tuple[torch.Tensor, int, torch.Tensor]:
    """Minimise ``loss + penalty`` for every column, all columns in one sparse product per iteration
    (:func:`pathways.optim.fista` with ``columns=True``).

    ``prox(beta, precision)`` and ``penalty(beta)`` act column-wise; ``precision`` (n_coeffs, B) is the inverse
    step of every coefficient, ``lipschitz * metric``. The diagonal ``metric`` (default: ones) preconditions the
    gradient steps — the loss curvature differs by orders of magnitude between a drug taken by most cases and a rare
    one. Each column keeps its own Lipschitz estimate (backtracking in the metric's norm, relaxed by 0.9 per
    iteration so steps grow back), momentum, restart (objective increase) and stopping test
    (``||x_k - x_{k-1}||_2 / max(1, ||x_{k-1}||_2)`` below ``tol``, tick's criterion, or a relative objective change
    below ``tol**2``: flat directions — coefficients that no case informs — can keep the iterates drifting without
    any effect on the fit); converged columns are frozen. ``reduce`` (a sharded fit's sum over ranks) totals the loss
    and gradient over the cases of every rank.

    Returns
    -------
    beta : tensor (n_coeffs, B)
    n_iter : int
    lipschitz : tensor (B,), reusable as a warm start
    """
    metric = torch.ones_like(beta0) if metric is None else metric

    def smooth(beta: torch.Tensor, need_grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        loss, grad, _ = batched_loss(d, beta, weights, grad=need_grad)
        if reduce is not None:
            loss, grad = reduce(loss, grad) if need_grad else (reduce(loss)[0], None)
        return loss, grad

    res = optim_fista(smooth, prox, prox(beta0, lipschitz * metric), penalty=penalty, lipschitz=lipschitz,
                      metric=metric, columns=True, relax=0.9, restart="objective", tol=tol, objective_tol=tol * tol,
                      max_iter=max_iter)
    return res.x, res.n_iter, res.lipschitz


def curvature(d: LagDesign, beta: torch.Tensor, weights: torch.Tensor, offsets: np.ndarray,
              blockwise: np.ndarray | None = None, reduce: Callable[..., tuple] | None = None) -> torch.Tensor:
    """Diagonal preconditioner: ``sum_i w_i N_i E_{p_i}[x_j^2]``, an upper bound of the loss Hessian's diagonal.

    Coefficients of features in ``blockwise`` share their block's mean (so the TV and group proxes stay exact with
    one step per block). Floored at 1e-3 of the column's largest value (per column of ``beta``), since coefficients no case reaches have
    zero curvature.
    """
    eta = d.X @ beta
    shift = _case_shift(d, eta)
    e = torch.exp(eta - shift[d.row_case])
    if d.row_weight is not None:
        e = e * d.row_weight[:, None]
    s = d.S @ e + d.n_free[:, None] * torch.exp(-shift)
    diag = d.X2t @ (e * (weights * d.n_outcomes[:, None] / s).index_select(0, d.row_case))
    if reduce is not None:  # sharded fit: the sum over every rank's cases
        diag = reduce(diag)[0]
    if blockwise is not None:
        for j in np.flatnonzero(blockwise):
            lo, hi = int(offsets[j]), int(offsets[j + 1])
            diag[lo:hi] = diag[lo:hi].mean(0, keepdim=True)
    # the floor per column: a column's steps do not depend on the columns batched with it (bootstrap batches,
    # CV folds split over ranks)
    return diag.clamp_min(1e-3 * diag.amax(0, keepdim=True).clamp_min(1e-12))

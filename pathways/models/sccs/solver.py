"""Solver of ConvSCCS: conditional likelihood, proximal operators, batched FISTA with backtracking and restart.

The solver is FISTA with backtracking and adaptive restart on a *batch* of coefficient vectors (columns), each with
its own case weights: cross-validation folds and bootstrap replicates are fitted together, one sparse
matrix-matrix product per iteration. The TV prox is Condat's exact direct algorithm per coefficient block; the
group-lasso prox is vectorised.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pathways.models.sccs.design import LagDesign

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
    s = d.S @ e + d.n_free[:, None] * torch.exp(-shift)
    if bool((s < 1e-250).any()):
        shift_case = _case_shift(d, eta)
        e = torch.exp(eta - shift_case[d.row_case])
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
def tv1d(y: list[float], lam: float) -> list[float]:
    """Exact proximal operator of ``lam * sum |x[k+1] - x[k]|`` (Condat's direct algorithm, 2013/2017 version).

    Condat's algorithm is inherently sequential (it scans the signal once, occasionally restarting at the last
    segment start) and linear in the length, so it runs over the coefficients of one block — never over events or
    patients; blocks hold ``n_lags + 1`` values.
    """
    n = len(y)
    if n == 0 or lam <= 0.0:
        return list(y)
    out = [0.0] * n
    k = k0 = kplus = kminus = 0
    umin, umax = lam, -lam
    vmin, vmax = y[0] - lam, y[0] + lam
    twolam, minlam = 2.0 * lam, -lam
    while True:
        while k == n - 1:  # right boundary
            if umin < 0.0:  # vmin too high: negative jump
                while k0 <= kminus:
                    out[k0] = vmin
                    k0 += 1
                k = kminus = k0
                vmin = y[k]
                umin = lam
                umax = vmin + umin - vmax
            elif umax > 0.0:  # vmax too low: positive jump
                while k0 <= kplus:
                    out[k0] = vmax
                    k0 += 1
                k = kplus = k0
                vmax = y[k]
                umax = minlam
                umin = vmax + umax - vmin
            else:
                vmin += umin / (k - k0 + 1)
                while k0 <= k:
                    out[k0] = vmin
                    k0 += 1
                return out
        umin += y[k + 1] - vmin
        if umin < minlam:  # negative jump
            while k0 <= kminus:
                out[k0] = vmin
                k0 += 1
            k = kplus = kminus = k0
            vmin = y[k]
            vmax = vmin + twolam
            umin, umax = lam, minlam
            continue
        umax += y[k + 1] - vmax
        if umax > lam:  # positive jump
            while k0 <= kplus:
                out[k0] = vmax
                k0 += 1
            k = kplus = kminus = k0
            vmax = y[k]
            vmin = vmax - twolam
            umin, umax = lam, minlam
            continue
        k += 1  # no jump
        if umin >= lam:
            kminus = k
            vmin += (umin - lam) / (kminus - k0 + 1)
            umin = lam
        if umax <= minlam:
            kplus = k
            vmax += (umax + lam) / (kplus - k0 + 1)
            umax = minlam


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
        norms = np.sqrt(np.add.reduceat(out[rows] ** 2, np.searchsorted(block_id, np.arange(len(blocks))),
                                        axis=0))  # (n_blocks, B)
        thr = np.sqrt(blocks[:, 1] - blocks[:, 0])[:, None] * steps / C_group_l1
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(norms > thr, 1.0 - thr / norms, 0.0)
        out[rows] *= scale[block_id]
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
          metric: torch.Tensor | None = None, tol: float = 1e-6,
          max_iter: int = 500) -> tuple[torch.Tensor, int, torch.Tensor]:
    """Minimise ``loss + penalty`` for every column, all columns in one sparse product per iteration.

    ``prox(beta, precision)`` and ``penalty(beta)`` act column-wise; ``precision`` (n_coeffs, B) is the inverse
    step of every coefficient, ``lipschitz * metric``. The diagonal ``metric`` (default: ones) preconditions the
    gradient steps — the loss curvature differs by orders of magnitude between a drug taken by most cases and a rare
    one. Each column keeps its own Lipschitz estimate (backtracking in the metric's norm, slowly relaxed so steps grow
    back), momentum, restart (objective increase) and stopping test (``||x_k - x_{k-1}||_2 / max(1, ||x_{k-1}||_2)``
    below ``tol``, tick's criterion, or a relative objective change below ``tol**2``); converged columns are
    frozen.

    Returns
    -------
    beta : tensor (n_coeffs, B)
    n_iter : int
    lipschitz : tensor (B,), reusable as a warm start
    """
    metric = torch.ones_like(beta0) if metric is None else metric
    lip = lipschitz.clone()
    x = prox(beta0, lip * metric)
    z, t_mom = x.clone(), torch.ones_like(lipschitz)
    f_x = batched_loss(d, x, weights, grad=False)[0] + penalty(x)
    active = torch.ones_like(lip, dtype=torch.bool)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        f_z, g_z, _ = batched_loss(d, z, weights)
        lip = lip * 0.9  # let the step grow back when the curvature is lower here
        while True:  # backtracking: quadratic upper bound must hold for every column
            precision = lip * metric
            x_new = prox(z - g_z / precision, precision)
            diff = x_new - z
            f_new = batched_loss(d, x_new, weights, grad=False)[0]
            bound = f_z + (g_z * diff).sum(0) + 0.5 * (precision * diff * diff).sum(0)
            bad = (f_new > bound + 1e-12 * f_z.abs().clamp_min(1.0)) & active
            if not bool(bad.any()):
                break
            lip = torch.where(bad, lip * 2.0, lip)
        obj_new = f_new + penalty(x_new)
        f_prev = f_x
        restart = obj_new > f_x
        change = torch.linalg.vector_norm(x_new - x, dim=0) / torch.linalg.vector_norm(x, dim=0).clamp_min(1.0)
        t_next = (1.0 + torch.sqrt(1.0 + 4.0 * t_mom * t_mom)) / 2.0
        momentum = torch.where(restart, torch.zeros_like(t_mom), (t_mom - 1.0) / t_next)
        z_new = x_new + momentum * (x_new - x)
        # frozen columns keep their iterate
        x = torch.where(active, x_new, x)
        z = torch.where(active, z_new, z)
        f_x = torch.where(active, obj_new, f_x)
        t_mom = torch.where(restart, torch.ones_like(t_next), t_next)
        # converged: iterates settled, or the objective no longer moves (flat directions — coefficients that no
        # case informs — can keep the iterates drifting without any effect on the fit)
        stalled = (obj_new - f_prev).abs() <= tol * tol * f_prev.abs().clamp_min(1.0)
        active = active & (change > tol) & ~stalled
        if not bool(active.any()):
            break
    return x, n_iter, lip


def curvature(d: LagDesign, beta: torch.Tensor, weights: torch.Tensor, offsets: np.ndarray,
              blockwise: np.ndarray | None = None) -> torch.Tensor:
    """Diagonal preconditioner: ``sum_i w_i N_i E_{p_i}[x_j^2]``, an upper bound of the loss Hessian's diagonal.

    Coefficients of features in ``blockwise`` share their block's mean (so the TV and group proxes stay exact with
    one step per block). Floored at 1e-3 of the column's largest value, since coefficients no case reaches have
    zero curvature.
    """
    eta = d.X @ beta
    shift = _case_shift(d, eta)
    e = torch.exp(eta - shift[d.row_case])
    s = d.S @ e + d.n_free[:, None] * torch.exp(-shift)
    diag = d.X2t @ (e * (weights * d.n_outcomes[:, None] / s).index_select(0, d.row_case))
    if blockwise is not None:
        for j in np.flatnonzero(blockwise):
            lo, hi = int(offsets[j]), int(offsets[j + 1])
            diag[lo:hi] = diag[lo:hi].mean(0, keepdim=True)
    return diag.clamp_min(1e-3 * float(diag.max().clamp_min(1e-12)))

"""Projected Newton steps for the exponential-kernel likelihood on dense per-code blocks.

With fixed decays and a baseline constant per code, the penalised negative log-likelihood separates over target
codes i into ``f_i(θ_i) = μ_i T + a_i·(G + N s1) + N s2 |a_i|²/2 - Σ_{k: c_k = i} log(μ_i + a_i·X_k)``, convex in
``θ_i = (μ_i, a_i)``. Its gradient and Hessian come from one pass over the block of code i (one matrix-vector and
one (D·K) x n_i by n_i x (D·K) product), so a Newton step costs a few EM maps but converges quadratically near the
optimum, where EM (even SQUAREM-accelerated) converges linearly. The bounds ``μ_i ≥ floor``, ``a ≥ 0`` are handled by
a projected Newton step (Bertsekas 1982): coordinates at their bound whose gradient pushes outward are moved to the
bound and decoupled, the others take the reduced Newton step, and a per-code backtracking line search on the
projected path keeps every f_i from increasing.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from pathways.models.hawkes.design import _DenseBlocks
from pathways.progress import progress_bar

ENABLED = True  # dense blocks, no covariates: projected Newton instead of SQUAREM EM
# parameters per target code (1 + D·K) up to which Newton (Hessian pass ~ n·p² flops, D·p² values) is used: it beat
# SQUAREM EM at p = 11, 31 and 61 (3e5-1e6 events, hawkes_vs_tick.md); beyond, the Hessian's cost grows as p²
MAX_PARAMS = 64


def applies(n_excitation: int) -> bool:
    """Whether a target code with ``n_excitation`` kernel parameters (D·K) is fitted by Newton steps.

    Examples
    --------
    >>> applies(10), applies(1000)
    (True, False)
    """
    return ENABLED and 1 + n_excitation <= MAX_PARAMS


def code_terms(dense: _DenseBlocks, theta: torch.Tensor, hessian: bool
               ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Data part per code: ``-Σ log λ`` (D,), and with ``hessian`` its gradient (D, p) and Hessian (D, p, p),
    ``p = 1 + D·K`` (sums over this shard's events: a sharded fit sums them across ranks).

    ``theta`` is (D, p): column 0 the baseline, then the flattened row ``a_i``.
    """
    d, p = theta.shape
    value = torch.zeros(d, dtype=theta.dtype, device=theta.device)
    grad = torch.zeros(d, p, dtype=theta.dtype, device=theta.device) if hessian else None
    hess = torch.zeros(d, p, p, dtype=theta.dtype, device=theta.device) if hessian else None
    for i, (rows, block) in enumerate(zip(dense.rows, dense.blocks)):  # loop over codes, not events
        if not rows.numel():
            continue
        lam = theta[i, 1:] @ block
        lam += theta[i, 0]
        value[i] = -torch.log(lam).sum()
        if not hessian:
            continue
        w = lam.reciprocal_()
        grad[i, 0] = -w.sum()
        grad[i, 1:] = -(block @ w)
        w2 = w * w
        xw2 = block @ w2
        hess[i, 0, 0] = w2.sum()
        hess[i, 0, 1:] = xw2
        hess[i, 1:, 0] = xw2
        hess[i, 1:, 1:] = (block * w2) @ block.T
    return value, grad, hess


def _add_smooth(theta: torch.Tensor, value: torch.Tensor, grad: torch.Tensor | None, hess: torch.Tensor | None,
                lin: torch.Tensor, total: torch.Tensor, quad: float) -> torch.Tensor:
    """Add the terms that need no data pass (baseline and kernel integrals, penalty) to the reduced data part."""
    mu, a = theta[:, 0], theta[:, 1:]
    value = value + mu * total + a @ lin + 0.5 * quad * (a * a).sum(1)
    if grad is not None:
        grad[:, 0] += total
        grad[:, 1:] += lin[None, :] + quad * a
        if quad:
            hess[:, 1:, 1:].diagonal(dim1=1, dim2=2).add_(quad)
    return value


def newton_direction(theta: torch.Tensor, lower: torch.Tensor, grad: torch.Tensor, hess: torch.Tensor
                     ) -> torch.Tensor:
    """Projected Newton direction (D, p): coordinates near their bound with an outward gradient go to the bound,
    the free ones solve the reduced Newton system (a tiny ridge keeps it solvable).

    Examples
    --------
    >>> theta, lower = torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2)
    >>> newton_direction(theta, lower, torch.tensor([[-1.0, 2.0]]), 2 * torch.eye(2)[None]).tolist()
    [[0.5, -0.0]]
    """
    diag = hess.diagonal(dim1=1, dim2=2)
    room = theta - lower
    scale = torch.clamp(diag, min=1e-300)
    active = (grad > 0) & (room <= grad / scale)
    free = (~active).to(hess.dtype)
    h = hess * free[:, :, None] * free[:, None, :]
    ridge = 1e-12 * diag.amax(1, keepdim=True) + 1e-300
    h = h + torch.diag_embed(torch.where(active, torch.ones_like(diag), ridge))
    step = torch.linalg.solve(h, (-grad * free)[:, :, None])[:, :, 0]
    return torch.where(active, -room, step)


def newton_run(dense: _DenseBlocks, mu: torch.Tensor, a: torch.Tensor, g: torch.Tensor, total_time: torch.Tensor,
               n: float, s1: float, s2: float, mu_floor: torch.Tensor, tol: float, max_iter: int,
               reduce: Callable[..., tuple], history: list[dict] | None, start_iter: int = 0
               ) -> tuple[torch.Tensor, torch.Tensor, int, bool, float]:
    """Projected Newton iterations until one lowers the objective by less than ``tol`` (relative), as the EM loop.

    Returns ``(mu, a, iterations, converged, objective)``; the objective is per event, as :meth:`_EM.step` reports.
    """
    d = a.shape[0]
    shape = a.shape
    lin = (g + n * s1).reshape(-1)
    quad = n * s2
    total = total_time.expand(d) if total_time.dim() == 0 else total_time
    theta = torch.cat([mu[:, None], a.reshape(d, -1)], 1)
    lower = torch.zeros_like(theta)
    lower[:, 0] = mu_floor
    theta = torch.maximum(theta, lower)
    prev, converged, it, value = float("inf"), False, start_iter, float("nan")
    for it in progress_bar(range(start_iter + 1, max_iter + 1), desc="Hawkes Newton", unit="iter"):  # closed on break
        per_code, grad, hess = reduce(*code_terms(dense, theta, hessian=True))
        per_code = _add_smooth(theta, per_code, grad, hess, lin, total, quad)
        value = float(per_code.sum()) / n
        if history is not None:
            history.append({"stage": "newton", "iter": it, "objective": value})
        if prev - value <= tol * max(abs(value), 1.0):
            converged = True
            break
        prev = value
        direction = newton_direction(theta, lower, grad, hess)
        step = torch.ones(d, dtype=theta.dtype, device=theta.device)
        pending = torch.ones(d, dtype=torch.bool, device=theta.device)
        best = theta.clone()
        for _ in range(30):  # per-code backtracking on the projected path: no f_i increases
            cand = torch.maximum(theta + step[:, None] * direction, lower)
            cand_value = _add_smooth(cand, reduce(code_terms(dense, cand, hessian=False)[0])[0], None, None, lin,
                                     total, quad)
            ok = pending & (cand_value <= per_code)
            best[ok] = cand[ok]
            pending &= ~ok
            if not bool(pending.any()):
                break
            step = torch.where(pending, 0.5 * step, step)
        theta = best
    return theta[:, 0].clone(), theta[:, 1:].reshape(shape).clone(), it, converged, value

"""FISTA (Beck & Teboulle 2009) with backtracking and adaptive restart, on torch tensors.

One routine serves a single parameter vector (or matrix treated as one variable) and a batch of independent
problems stored as the columns of an ``(n, B)`` tensor (``columns=True``): every column keeps its own step,
momentum, restart and stopping test, and the smooth part is evaluated for all columns in one call.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from pathways.progress import progress_bar

Smooth = Callable[[torch.Tensor, bool], "tuple[torch.Tensor | float, torch.Tensor | None]"]
Prox = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_RESTARTS = ("objective", "gradient", "monotone")


@dataclass
class FistaResult:
    """Solution ``x``, iterations run, whether every column met the stopping test, the recorded objectives
    (summed over columns) and the final Lipschitz estimates (reusable as a warm start)."""

    x: torch.Tensor
    n_iter: int
    converged: bool
    history: list[float] = field(default_factory=list)
    lipschitz: torch.Tensor | None = None


def fista(smooth: Smooth, prox: Prox, x0: torch.Tensor, *,
          penalty: Callable[[torch.Tensor], torch.Tensor | float] | None = None,
          lipschitz: float | torch.Tensor = 1.0, metric: torch.Tensor | None = None, columns: bool = False,
          backtrack: bool = True, relax: float = 0.9, max_lipschitz: float = math.inf,
          restart: str = "objective", tol: float = 1e-6, objective_tol: float = 0.0, scale_floor: float = 1.0,
          max_iter: int = 500, record_every: int = 0, progress_desc: str | None = None) -> FistaResult:
    """Minimise ``smooth(x) + penalty(x)`` by accelerated proximal gradient steps from the feasible ``x0``.

    Parameters
    ----------
    smooth : ``(x, need_grad) -> (value, gradient or None)``; the value is a scalar, or (B,) with ``columns``.
    prox : ``(v, precision) -> x``: prox of the penalty (and constraints) with step ``1 / precision``;
        ``precision = lipschitz * metric`` broadcasts against ``x``.
    x0 : starting point, already feasible (the caller applies its prox or projection).
    penalty : non-smooth part, evaluated for the restart and stopping tests (default 0).
    lipschitz : initial Lipschitz estimate (scalar or (B,)); with ``backtrack=False`` it must be a valid bound.
    metric : diagonal preconditioner shaped like ``x`` (default ones); backtracking uses its norm.
    columns : treat the columns of a 2-D ``x`` as independent problems.
    backtrack : double the estimate until the quadratic upper bound holds; each iteration first multiplies it by
        ``relax`` so that steps grow back where the curvature is lower, never beyond ``max_lipschitz``. The bound
        is tested up to ``1e-12 * max(|f|, 1)`` (rounding), so relaxed steps are reliable down to relative changes
        of about 1e-6; use ``relax=1.0`` for tighter tolerances.
    restart : ``"objective"`` (momentum reset when the objective increases, O'Donoghue & Candès),
        ``"gradient"`` (reset when the step opposes the momentum) or ``"monotone"`` (MFISTA: an increase is never
        accepted).
    tol : stop a column when ``||x_k - x_{k-1}|| / max(||x_{k-1}||, scale_floor) <= tol``, or when
        ``objective_tol > 0`` and the relative objective change is at most ``objective_tol``; stopped columns are
        frozen.
    record_every : append the objective every that many iterations and at the end (0: never).
    progress_desc : label of a progress bar over the iterations (shown per :mod:`pathways.progress`); None: no bar
        (inner solves of a loop that has its own bar).

    Examples
    --------
    >>> q = torch.tensor([[2.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    >>> b = torch.tensor([2.0, 4.0], dtype=torch.float64)
    >>> res = fista(lambda x, g: (0.5 * x @ q @ x - b @ x, q @ x - b if g else None),
    ...             lambda v, p: v, torch.zeros(2, dtype=torch.float64), relax=1.0, tol=1e-12, max_iter=1000)
    >>> [round(v, 8) for v in res.x.tolist()], res.converged
    ([1.0, 1.0], True)
    """
    if restart not in _RESTARTS:
        raise ValueError(f"restart must be one of {_RESTARTS}, got {restart!r}")
    red = (lambda t: t.sum(0)) if columns else (lambda t: t.sum())
    as_t = lambda v: torch.as_tensor(v, dtype=x0.dtype, device=x0.device)
    nonsmooth = (lambda x: as_t(0.0)) if penalty is None else (lambda x: as_t(penalty(x)))
    objective = lambda x: as_t(smooth(x, False)[0]) + nonsmooth(x)
    need_objective = backtrack or restart != "gradient" or objective_tol > 0 or record_every > 0
    lip = as_t(lipschitz).clone()
    x, y = x0, x0.clone()
    t_mom = torch.ones_like(red(x0))
    f_x = objective(x) if need_objective else None
    active = torch.ones_like(t_mom, dtype=torch.bool)
    history: list[float] = []
    n_iter = 0
    bar_setting = None if progress_desc else False  # a bar only for the callers that name one
    for n_iter in progress_bar(range(1, max_iter + 1), desc=progress_desc, unit="iter", progress=bar_setting):
        f_y, g_y = smooth(y, True)
        f_y = as_t(f_y)
        if backtrack:
            lip = torch.where(active, lip * relax, lip)  # a frozen column keeps its step (warm starts)
        while True:
            precision = lip if metric is None else lip * metric
            x_new = prox(y - g_y / precision, precision)
            if not backtrack:
                break
            diff = x_new - y
            f_new = as_t(smooth(x_new, False)[0])
            bound = f_y + red(g_y * diff) + 0.5 * red(precision * diff * diff)
            bad = (f_new > bound + 1e-12 * f_y.abs().clamp_min(1.0)) & active & (lip < max_lipschitz)
            if not bool(bad.any()):
                break
            lip = torch.where(bad, lip * 2.0, lip)
        obj_new = None
        if need_objective:
            obj_new = (f_new if backtrack else as_t(smooth(x_new, False)[0])) + nonsmooth(x_new)
        t_next = (1.0 + torch.sqrt(1.0 + 4.0 * t_mom * t_mom)) / 2.0
        if restart == "monotone":
            keep = obj_new <= f_x
            x_acc = torch.where(keep, x_new, x)
            y_new = x_acc + (t_mom / t_next) * (x_new - x_acc) + ((t_mom - 1.0) / t_next) * (x_acc - x)
            obj_acc, t_new = torch.minimum(obj_new, f_x), t_next
        elif restart == "objective":
            reset = obj_new > f_x
            x_acc, obj_acc = x_new, obj_new
            y_new = x_new + torch.where(reset, torch.zeros_like(t_mom), (t_mom - 1.0) / t_next) * (x_new - x)
            t_new = torch.where(reset, torch.ones_like(t_next), t_next)
        else:
            reset = red((y - x_new) * (x_new - x)) > 0
            t_mom = torch.where(reset, torch.ones_like(t_mom), t_mom)
            t_next = (1.0 + torch.sqrt(1.0 + 4.0 * t_mom * t_mom)) / 2.0
            x_acc, obj_acc, t_new = x_new, obj_new, t_next
            y_new = x_new + ((t_mom - 1.0) / t_next) * (x_new - x)
        # the prox-gradient step measures convergence (a rejected monotone step leaves x but not x_new unchanged)
        change = torch.sqrt(red((x_new - x) ** 2)) / torch.sqrt(red(x * x)).clamp_min(scale_floor)
        done = change <= tol
        if objective_tol > 0:
            done = done | ((obj_new - f_x).abs() <= objective_tol * f_x.abs().clamp_min(scale_floor))
        x = torch.where(active, x_acc, x)
        y = torch.where(active, y_new, y)
        if need_objective:
            f_x = torch.where(active, obj_acc, f_x)
        t_mom = torch.where(active, t_new, t_mom)
        active = active & ~done
        finished = not bool(active.any())
        if record_every and (n_iter % record_every == 0 or finished):
            history.append(float(f_x.sum()))
        if finished:
            break
    return FistaResult(x, n_iter, not bool(active.any()), history, lip)

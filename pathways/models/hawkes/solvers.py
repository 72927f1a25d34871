"""Solvers of the exponential-kernel Hawkes learners, built on :mod:`pathways.optim`.

* ``fit_method="least-squares"``: the contrast ∫λ² - 2Σλ(t_k) is quadratic with one Hessian shared by all target
  codes (sufficient statistics of size (1 + DK)²), minimised by FISTA with the penalty's proximal operator and
  positivity.
* ``fit_method="likelihood"`` (default): warm start from least squares, then the EM of
  :mod:`pathways.models.hawkes.em_exp`. The nuclear penalty uses monotone FISTA with backtracking and an exact
  (Dykstra) proximal step on the autograd gradient.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pathways.models.hawkes.design import _Tensors
from pathways.optim import (
    fista,
    prox_elastic_net,
    prox_nuclear_positive,
    prox_positive,
)


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
# proximal steps and FISTA
# ------------------------------------------------------------------------------------------------------------------
def penalty_weights(penalty: str | None, strength: float, ratio: float) -> tuple[float, float]:
    """(L1 weight, L2 weight) of a penalty: pen(a) = l1 Σ a + l2/2 Σ a² on a ≥ 0 (0, 0 for none / nuclear)."""
    l1 = strength * {"l1": 1.0, "elasticnet": ratio}.get(penalty or "", 0.0)
    l2 = strength * {"l2": 1.0, "elasticnet": 1.0 - ratio}.get(penalty or "", 0.0)
    return l1, l2


def prox_penalty(a: torch.Tensor, step: float, penalty: str | None, strength: float, ratio: float) -> torch.Tensor:
    """Proximal operator of step·strength·pen restricted to a ≥ 0, for A shaped (D, D, K)."""
    if penalty == "nuclear":
        return torch.stack([prox_nuclear_positive(a[:, :, u], step * strength) for u in range(a.shape[2])], -1)
    if penalty in ("l1", "l2", "elasticnet"):
        l1, l2 = penalty_weights(penalty, strength, ratio)
        return prox_elastic_net(a, step * l1, step * l2, positive=True)
    return prox_positive(a)


def fista_least_squares(q: torch.Tensor, b: torch.Tensor, theta0: torch.Tensor, n: int, mu_floor: torch.Tensor,
                        penalty: str | None, strength: float, ratio: float, max_iter: int, tol: float,
                        k: int) -> tuple[torch.Tensor, int, bool, list[float]]:
    """Minimise Σ_i (θ_iᵀQθ_i - 2θ_iᵀb_i)/n + pen(A) over μ ≥ floor, A ≥ 0 (all targets at once).

    FISTA with gradient restart and the exact step 1/L, on variables scaled by 1/sqrt(diag Q) (Jacobi
    preconditioning: codes of very different frequencies otherwise make Q badly conditioned); separable penalties
    keep closed-form proximal steps in the scaled variables. The nuclear penalty is not separable and runs unscaled.
    Returns (θ, iterations, converged, contrast every 10 iterations and at the end).
    """
    d = b.shape[0]
    scale = torch.ones(q.shape[0], dtype=q.dtype, device=q.device)
    if penalty != "nuclear":
        scale = 1.0 / torch.sqrt(torch.clamp(torch.diagonal(q), min=1e-300 * float(torch.diagonal(q).max())))
    qs, bs = q * scale[:, None] * scale[None, :], b * scale[None, :]
    step = n / (2 * max(float(torch.linalg.eigvalsh(qs)[-1]), 1e-300))
    l1, l2 = penalty_weights(penalty, strength, ratio)
    l1, l2 = l1 * scale[1:], l2 * scale[1:] ** 2
    floor = (mu_floor / scale[0])[:, None]

    def project(th: torch.Tensor, precision: torch.Tensor | float = 1.0 / step) -> torch.Tensor:
        if penalty == "nuclear":
            a = prox_penalty(th[:, 1:].reshape(d, d, k), step, penalty, strength, ratio).reshape(d, d * k)
        else:
            a = prox_elastic_net(th[:, 1:], step * l1, step * l2, positive=True)
        return torch.cat([torch.maximum(th[:, :1], floor), a], 1)

    def contrast(th: torch.Tensor, need_grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        qth = th @ qs
        value = ((qth * th).sum() - 2 * (th * bs).sum()) / n
        return value, (2 * (qth - bs) / n if need_grad else None)

    if penalty != "nuclear":  # separable penalty: the same iterations on preallocated buffers
        x, n_iter, converged, hist = _fista_separable(qs, bs, project(theta0 / scale[None, :]), n, step, l1, l2,
                                                       floor, tol, max_iter)
        return x * scale[None, :], n_iter, converged, hist
    # iterations on (D, 1+DK) matrices: cost independent of the events
    res = fista(contrast, project, project(theta0 / scale[None, :]), lipschitz=1.0 / step, backtrack=False,
                restart="gradient", tol=tol, scale_floor=1e-300, max_iter=max_iter, record_every=10)
    return res.x * scale[None, :], res.n_iter, res.converged, res.history


def _fista_separable(qs: torch.Tensor, bs: torch.Tensor, x0: torch.Tensor, n: int, step: float,
                     l1: torch.Tensor | float, l2: torch.Tensor | float, floor: torch.Tensor, tol: float,
                     max_iter: int) -> tuple[torch.Tensor, int, bool, list[float]]:
    """:func:`pathways.optim.fista` with ``backtrack=False, restart="gradient"`` on the scaled contrast and a
    separable positive elastic-net penalty, written in place on five preallocated (D, 1+DK) buffers: no
    allocation per iteration (at D = 1 000 each such array is 8 MB, and a dozen of them per iteration fragment
    the heap), and the contrast evaluated only when recorded (every 10 iterations and at the end)."""
    x, y = x0.clone(), x0.clone()
    x_new, grad, diff = torch.empty_like(x0), torch.empty_like(x0), torch.empty_like(x0)
    shrink = 1.0 + step * l2
    contrast = lambda th: float(((th @ qs) * th).sum() - 2 * (th * bs).sum()) / n
    t_mom, history, done, it = 1.0, [], False, 0
    for it in range(1, max_iter + 1):
        torch.matmul(y, qs, out=grad)
        grad.sub_(bs)  # the gradient is 2 grad / n
        torch.add(y, grad, alpha=-2.0 * step / n, out=x_new)
        torch.maximum(x_new[:, :1], floor, out=x_new[:, :1])
        a = x_new[:, 1:]
        a.sub_(step * l1).clamp_(min=0.0).div_(shrink)
        torch.sub(x_new, x, out=diff)
        y.sub_(x_new)
        if float(torch.dot(y.reshape(-1), diff.reshape(-1))) > 0:  # the step opposes the momentum: restart
            t_mom = 1.0
        t_next = (1.0 + math.sqrt(1.0 + 4.0 * t_mom * t_mom)) / 2.0
        change = float(torch.linalg.vector_norm(diff)) / max(float(torch.linalg.vector_norm(x)), 1e-300)
        torch.add(x_new, diff, alpha=(t_mom - 1.0) / t_next, out=y)
        x, x_new = x_new, x
        t_mom, done = t_next, change <= tol
        if it % 10 == 0 or done:
            history.append(contrast(x))
        if done:
            break
    return x, it, done, history


def solve_nuclear(obj: _Objective, theta: np.ndarray, mu_floor: np.ndarray, max_iter: int, tol: float,
                  history: list[dict]) -> tuple[np.ndarray, int, bool, float]:
    """Monotone FISTA with backtracking on the smooth loss and the exact nuclear + positivity prox."""
    dev, layout = obj.t.device, obj.layout
    floor = torch.as_tensor(mu_floor, dtype=torch.float64, device=dev)
    d, k = layout.d, layout.k

    def smooth(th: torch.Tensor, need_grad: bool) -> tuple[float, torch.Tensor | None]:
        if need_grad:
            f, g = obj.value_and_grad(th.cpu().numpy())
            return f, torch.as_tensor(g, device=dev)
        with torch.no_grad():
            f = float(obj(th))
        return (f if math.isfinite(f) else 1e300), None

    def prox(th: torch.Tensor, precision: torch.Tensor | float) -> torch.Tensor:
        mu, a, rest = th[:d], th[d:d + d * d * k], th[d + d * d * k:]
        a = prox_penalty(a.reshape(d, d, k), 1.0 / float(precision), "nuclear", obj.strength, obj.ratio)
        return torch.cat([torch.maximum(mu, floor), a.reshape(-1), rest])

    def nuclear(th: torch.Tensor) -> float:
        a = th[d:d + d * d * k].reshape(d, d, k)
        return obj.strength * sum(float(torch.linalg.matrix_norm(a[:, :, u], "nuc")) for u in range(k))

    # the log-likelihood has no global Lipschitz constant: backtracking from 1, relaxed by 1.5 each iteration
    res = fista(smooth, prox, prox(torch.as_tensor(theta, dtype=torch.float64, device=dev), math.inf),
                penalty=nuclear, lipschitz=1.5, relax=1 / 1.5, max_lipschitz=1e16, restart="monotone", tol=0.0,
                objective_tol=tol, scale_floor=1e-300, max_iter=max_iter, record_every=1,
                progress_desc="Hawkes likelihood (nuclear)")
    history.extend({"stage": "likelihood", "iter": i + 1, "objective": v} for i, v in enumerate(res.history))
    objective = res.history[-1] if res.history else float("nan")
    return res.x.cpu().numpy(), res.n_iter, res.converged, objective

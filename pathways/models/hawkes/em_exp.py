"""The likelihood solver of the exponential-kernel Hawkes learners: the branching-structure EM.

Minorise-maximise: monotone, positive, no step size, closed-form penalised M-step for none / L1 / L2 / elastic-net,
a Poisson-GLM Newton step for covariates, accelerated by SQUAREM with a monotone safeguard; with dense design blocks
and few parameters per code, projected Newton per target code (:mod:`pathways.models.hawkes.newton`) replaces the
EM maps. ``learn_decay`` maximises the profile likelihood over each log decay (bounded Brent, warm-started EM
inside). The warm start is the least-squares fit of :mod:`pathways.models.hawkes.solvers`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch

from pathways.models.hawkes import newton
from pathways.models.hawkes.design import _DenseBlocks, _Tensors, _trim_heap
from pathways.models.hawkes.solvers import penalty_weights
from pathways.optim import squarem_step
from pathways.progress import progress_bar


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
                 ratio: float, max_iter: int, tol: float, mu_floor: np.ndarray, accelerate: bool = True,
                 reduce: Callable[..., tuple] | None = None):
        self.t, self.accelerate, self.dense = tensors, accelerate, None
        dev = tensors.device
        # sums over patients pass through `reduce` (identity; a sharded fit sums them across ranks)
        self.reduce = reduce or (lambda *values: values)
        self.n = max(self.reduce(tensors.design.n_events)[0], 1)
        self.total_time = self.reduce(tensors.duration.sum())[0]
        self.z = None if covariates is None else torch.as_tensor(covariates, dtype=torch.float64, device=dev)
        self.s1, self.s2 = penalty_weights(penalty, strength, ratio)
        self.max_iter, self.tol = max_iter, tol
        self.log_floor = torch.log(torch.as_tensor(mu_floor, dtype=torch.float64, device=dev))

    def _baseline_terms(self, st: _State) -> tuple[torch.Tensor, torch.Tensor]:
        """Baseline at every event (N,) and its integral over all windows (D,)."""
        t = self.t
        if self.z is None:
            return st.mu[t.code], st.mu * self.total_time
        scale = torch.exp(self.z @ st.gamma.T)  # (P, D)
        return st.mu[t.code] * scale[t.seq, t.code], st.mu * (scale * t.duration[:, None]).sum(0)

    def objective(self, st: _State, x: torch.Tensor, g: torch.Tensor
                  ) -> tuple[float, torch.Tensor, torch.Tensor]:
        """Penalised negative log-likelihood per event, with the baseline and total intensity at every event."""
        t = self.t
        base, base_int = self._baseline_terms(st)
        if self.dense is not None:
            lam = base + self.dense.excitation(st.a)
        else:
            lam = base.clone()
            a_flat = st.a.reshape(-1, x.shape[1])
            for lo, hi, flat in self._chunks(x):  # loop over chunks of entries: no (M, K) temporary
                ax = torch.index_select(a_flat, 0, flat).mul_(x[lo:hi])
                lam.index_add_(0, t.row[lo:hi], ax.sum(1) if x.shape[1] > 1 else ax[:, 0])
        pen = _penalty(st.a, self.s1, self.s2)
        value = (base_int.sum() + _integral(st.a, g) - self.reduce(torch.log(lam).sum())[0]) / self.n + pen
        return float(value), base, lam

    def _chunks(self, x: torch.Tensor, chunk: int = 1 << 18):
        """(lo, hi, (target, source) index) over chunks of design entries."""
        for lo in range(0, x.shape[0], chunk):
            hi = min(lo + chunk, x.shape[0])
            yield lo, hi, self.t.flat_chunk(lo, hi)

    def _responsibilities(self, a: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Σ_{entries of target i, source j} a^u_ij X_(k,u) / λ_k as (D, D, K), chunk by chunk."""
        if self.dense is not None:
            return self.dense.responsibilities(a, w)
        resp = torch.zeros(a.shape[0] * a.shape[1], x.shape[1], dtype=a.dtype, device=x.device)
        a_flat = a.reshape(-1, x.shape[1])
        for lo, hi, flat in self._chunks(x):  # loop over chunks of entries, not over events
            ax = torch.index_select(a_flat, 0, flat).mul_(x[lo:hi])
            ax.mul_(torch.index_select(w, 0, self.t.row[lo:hi])[:, None])
            resp.index_add_(0, flat, ax)
        return resp.reshape(a.shape)

    def step(self, st: _State, x: torch.Tensor | None, g: torch.Tensor) -> tuple[float, _State]:
        """One EM map: the objective at ``st`` and the updated parameters."""
        t = self.t
        if self.dense is not None and self.z is None:  # per-code blocks, all in block order: no N-sized gathers
            log_sum, mu_resp, resp = self.reduce(*self.dense.em_sums(st.mu, st.a))
            pen = _penalty(st.a, self.s1, self.s2)
            total = self.total_time
            value = float((st.mu * total).sum() + _integral(st.a, g) - log_sum) / self.n + float(pen)
            a = _penalised_root(resp, g[None, :, :] + self.n * self.s1, self.n * self.s2)
            return value, _State(mu_resp / total, a, st.gamma)
        value, base, lam = self.objective(st, x, g)
        w = torch.reciprocal(lam)
        mu, gamma = st.mu, st.gamma
        if self.z is None:
            mu = torch.zeros_like(mu).index_add(0, t.code, base * w)
        else:
            mu, gamma = self._baseline_glm(mu, gamma, base * w)
        resp = self._responsibilities(st.a, x, w)
        if self.z is None:
            mu, resp = self.reduce(mu, resp)
            mu = mu / self.total_time
        else:
            resp = self.reduce(resp)[0]
        a = _penalised_root(resp, g[None, :, :] + self.n * self.s1, self.n * self.s2)
        _trim_heap()  # sparse path: hand back the freed chunk and D x D temporaries of this map (~ms)
        return value, _State(mu, a, gamma)

    def run(self, st: _State, decays: np.ndarray, history: list[dict] | None) -> _State:
        """SQUAREM-accelerated EM from ``st`` until a cycle lowers the objective by less than ``tol`` (relative).

        A cycle (:func:`pathways.optim.squarem_step`) takes two EM maps, extrapolates, projects onto the
        constraints and applies the map once more; when the extrapolated point is worse than the cycle's start it
        falls back to plain EM, so the objective never increases. Three passes over the design per cycle, typically
        several times fewer passes than plain EM. On dense per-code blocks without covariates the (convex, per
        code separable) objective is minimised by projected Newton steps instead (:mod:`.newton`), same stopping rule.
        """
        t = self.t
        beta = torch.as_tensor(decays, dtype=torch.float64, device=t.device)
        self.dense = t.dense_blocks(beta)  # dense design: per-code blocks without the N·D entries
        if self.dense is None:
            x, g = t.values(beta)
            self.dense = _DenseBlocks.maybe(t, x)
        else:
            x, g = None, t.integrals(beta)  # every map then goes through the blocks only
        g = self.reduce(g)[0]
        shapes = (st.mu.shape, st.a.shape, st.gamma.shape)
        self._n_a = st.a.numel()
        if self.dense is not None and self.z is None and newton.applies(st.a[0].numel()):  # convex per code
            mu, a, it, converged, value = newton.newton_run(self.dense, st.mu, st.a, g, self.total_time, self.n, self.s1,
                                                     self.s2, torch.exp(self.log_floor), self.tol, self.max_iter,
                                                     self.reduce, history)
            return _State(mu, a, st.gamma.clone(), it, converged, value)

        def fmap(theta: torch.Tensor) -> tuple[torch.Tensor, float]:
            value, new = self.step(_unflatten(theta, shapes), x, g)
            return _flatten(new), value

        cur, prev, converged, it, value = _State(st.mu.clone(), st.a.clone(), st.gamma.clone()), math.inf, False, 0, \
            math.nan
        for it in progress_bar(range(1, self.max_iter + 1), desc="Hawkes EM", unit="iter"):  # closed on break
            value, one = self.step(cur, x, g)
            if history is not None:
                history.append({"stage": "em", "iter": it, "objective": value})
            if prev - value <= self.tol * max(abs(value), 1.0):
                converged = True
                break
            if not self.accelerate:
                prev, cur = value, one
                continue
            cycle = squarem_step(fmap, _flatten(cur), first=(_flatten(one), value), project=self._project)
            prev, cur = value, _unflatten(cycle.x, shapes)
        return _State(cur.mu, cur.a, cur.gamma, it, converged, value)

    def _project(self, new: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """Keep an extrapolated point strictly inside: an entry pushed to 0 would stay 0 forever (zeros are fixed
        points of EM), so μ ≥ max(μ0 / 10, floor) and A ≥ A0 / 10; γ is free."""
        d, na = self.log_floor.numel(), self._n_a
        mu = torch.maximum(new[:d], torch.maximum(0.1 * start[:d], torch.exp(self.log_floor)))
        a = torch.maximum(new[d:d + na], 0.1 * start[d:d + na])
        return torch.cat([mu, a, new[d + na:]])
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
        g = self.reduce(g)[0]
        self.dense = None  # the entry-wise path
        _, _, lam = self.objective(st, x, g)
        resp = self.reduce(self._responsibilities(st.a, x, torch.reciprocal(lam)))[0]
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
        gain = lambda th: (r * th).sum(1) - (torch.exp(zt @ th.T) * t.duration[:, None]).sum(0)
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


def _penalised_root(resp: torch.Tensor, lin: torch.Tensor, quad: float) -> torch.Tensor:
    """argmax_a resp log a - lin a - quad a²/2 over a ≥ 0 (0 where nothing is attributed)."""
    if quad > 0:
        root = lin + torch.sqrt(lin * lin + 4 * quad * resp)
        return 2 * resp / torch.clamp(root, min=1e-300)  # stable form of the positive root
    return resp / torch.clamp(lin, min=1e-300)  # resp >= 0: 0 where nothing is attributed


def _penalty(a: torch.Tensor, s1: float, s2: float) -> torch.Tensor:
    """s1 Σ a + s2/2 Σ a² without a (D, D, K) temporary."""
    flat = a.reshape(-1)
    return s1 * flat.sum() + 0.5 * s2 * torch.dot(flat, flat)


def _integral(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Σ_{i,j,u} a^u_ij G^u_j = Σ_{j,u} G^u_j Σ_i a^u_ij, without a (D, D, K) temporary."""
    return (a.sum(0) * g).sum()


def _flatten(st: _State) -> torch.Tensor:
    return torch.cat([st.mu, st.a.reshape(-1), st.gamma.reshape(-1)])


def _unflatten(theta: torch.Tensor, shapes: tuple[torch.Size, torch.Size, torch.Size]) -> _State:
    sizes = [math.prod(s) for s in shapes]
    mu, a, gamma = torch.split(theta, sizes)
    return _State(mu.reshape(shapes[0]), a.reshape(shapes[1]), gamma.reshape(shapes[2]))


def profile_decays(em: _EM, state: _State, decays: np.ndarray, history: list[dict]) -> tuple[_State, np.ndarray]:
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
                history.append({"stage": "decay", "decays": trial.tolist(), "objective": fitted.objective})
                return fitted.objective

            centre = math.log(decays[u])
            res = scipy.optimize.minimize_scalar(profile, bounds=(centre - 4.0, centre + 4.0), method="bounded",
                                                 options={"xatol": 1e-3})
            decays[u] = math.exp(res.x)
    return best["state"], decays

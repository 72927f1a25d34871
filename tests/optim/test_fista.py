"""FISTA reaches known minimisers: least squares (closed form), lasso (coordinate descent to machine precision)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pathways.optim import fista, prox_l1


def _problem(seed=0, n=40, p=6, b=1):
    gen = np.random.default_rng(seed)
    a = torch.as_tensor(gen.normal(size=(n, p)))
    y = torch.as_tensor(gen.normal(size=(n, b)))
    return a, y


def _smooth(a, y):
    def f(x, grad):
        r = a @ x - (y[:, 0] if x.ndim == 1 else y)
        val = 0.5 * (r * r).sum(0)
        return val, (a.T @ r if grad else None)
    return f


def _lasso_cd(a, y, lam, n_sweeps=5000):
    """Reference lasso solution by cyclic coordinate descent (exact 1-D minimisations)."""
    a, y = a.numpy(), y.numpy()[:, 0]
    x = np.zeros(a.shape[1])
    col = (a * a).sum(0)
    for _ in range(n_sweeps):
        for j in range(a.shape[1]):
            rho = a[:, j] @ (y - a @ x + a[:, j] * x[j])
            x[j] = np.sign(rho) * max(abs(rho) - lam, 0.0) / col[j]
    return x


@pytest.mark.parametrize("restart", ["objective", "gradient", "monotone"])
def test_least_squares_minimiser_to_1e8(restart):
    a, y = _problem()
    exact = torch.linalg.lstsq(a, y).solution[:, 0]
    lip = float(torch.linalg.eigvalsh(a.T @ a)[-1])
    kwargs = {"backtrack": False, "lipschitz": lip} if restart == "gradient" else {"relax": 1.0}
    res = fista(_smooth(a, y), lambda v, prec: v, torch.zeros(6, dtype=torch.float64), restart=restart,
                tol=1e-13, max_iter=5000, **kwargs)
    assert res.converged
    np.testing.assert_allclose(res.x, exact, atol=1e-8)


def test_lasso_minimiser_to_1e8_and_history_decreases():
    a, y = _problem(seed=1)
    lam = 8.0
    res = fista(_smooth(a, y), lambda v, prec: prox_l1(v, lam / prec), torch.zeros(6, dtype=torch.float64),
                penalty=lambda x: lam * x.abs().sum(), relax=1.0, restart="monotone", tol=1e-13, max_iter=5000,
                record_every=1)
    ref = _lasso_cd(a, y, lam)
    np.testing.assert_allclose(res.x, ref, atol=1e-8)
    assert (ref == 0).any()  # the penalty is strong enough to zero some coefficients
    assert np.all(np.diff(res.history) <= 1e-12)  # monotone variant


def test_batched_columns_match_separate_solves():
    a, y = _problem(seed=2, b=3)
    lams = torch.tensor([0.5, 2.0, 6.0], dtype=torch.float64)
    res = fista(_smooth(a, y), lambda v, prec: prox_l1(v, lams / prec), torch.zeros(6, 3, dtype=torch.float64),
                penalty=lambda x: (lams * x.abs()).sum(0), lipschitz=torch.ones(3, dtype=torch.float64),
                columns=True, relax=1.0, tol=1e-13, max_iter=5000)
    assert res.converged and res.lipschitz.shape == (3,)
    for c in range(3):
        np.testing.assert_allclose(res.x[:, c], _lasso_cd(a, y[:, c:c + 1], float(lams[c])), atol=1e-8)


def test_preconditioned_steps_reach_the_same_minimiser():
    a, y = _problem(seed=3)
    a = a * torch.tensor([1.0, 10.0, 0.1, 1.0, 5.0, 1.0], dtype=torch.float64)  # badly scaled columns
    exact = torch.linalg.lstsq(a, y).solution[:, 0]
    metric = (a * a).sum(0)
    res = fista(_smooth(a, y), lambda v, prec: v, torch.zeros(6, dtype=torch.float64), metric=metric / metric.max(),
                relax=1.0, tol=1e-14, max_iter=20000)
    np.testing.assert_allclose(res.x, exact, atol=1e-8)


def test_unknown_restart_is_refused():
    a, y = _problem()
    with pytest.raises(ValueError, match="restart"):
        fista(_smooth(a, y), lambda v, p: v, torch.zeros(6, dtype=torch.float64), restart="never")

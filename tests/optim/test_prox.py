"""Proximal operators against their closed forms (and a brute-force minimisation where none exists)."""
from __future__ import annotations

import numpy as np
import torch
from scipy import optimize

from pathways.optim import (
    prox_elastic_net,
    prox_group_l1,
    prox_l1,
    prox_l2,
    prox_nuclear_positive,
    prox_positive,
    prox_tv1d,
)


def _rand(shape, seed=0):
    return torch.as_tensor(np.random.default_rng(seed).normal(size=shape))


def test_separable_proxes_match_closed_forms():
    v = _rand(50)
    np.testing.assert_allclose(prox_l1(v, 0.3), np.sign(v) * np.maximum(np.abs(v) - 0.3, 0))
    np.testing.assert_allclose(prox_l1(v, 0.3, positive=True), np.maximum(v - 0.3, 0))
    np.testing.assert_allclose(prox_l2(v, 0.5), v / 1.5)
    np.testing.assert_allclose(prox_l2(v, 0.5, positive=True), np.maximum(v, 0) / 1.5)
    np.testing.assert_allclose(prox_elastic_net(v, 0.3, 0.5), np.sign(v) * np.maximum(np.abs(v) - 0.3, 0) / 1.5)
    np.testing.assert_allclose(prox_positive(v), np.maximum(v, 0))


def test_elastic_net_prox_minimises_its_objective():
    v = _rand(7, seed=1).numpy()
    got = prox_elastic_net(torch.as_tensor(v), 0.2, 0.4, positive=True).numpy()
    for i, vi in enumerate(v):  # one-dimensional problems: bounded scalar minimisation
        def f(x: float, vi: float = vi) -> float:
            return 0.5 * (x - vi) ** 2 + 0.2 * abs(x) + 0.2 * x * x

        ref = optimize.minimize_scalar(f, bounds=(0.0, 10.0), method="bounded", options={"xatol": 1e-12}).x
        assert abs(got[i] - ref) < 1e-8


def test_nuclear_positive_prox_of_a_positive_diagonal_is_singular_value_thresholding():
    m = torch.diag(torch.tensor([3.0, 1.0, 0.2], dtype=torch.float64))
    np.testing.assert_allclose(prox_nuclear_positive(m, 0.5), np.diag([2.5, 0.5, 0.0]), atol=1e-12)


def test_nuclear_positive_prox_is_feasible_and_optimal():
    m = _rand((4, 4), seed=2)
    tau = 0.3
    x = prox_nuclear_positive(m, tau, n_iter=500)
    assert float(x.min()) >= 0.0
    obj = lambda y: 0.5 * float(((y - m) ** 2).sum()) + tau * float(torch.linalg.matrix_norm(y, "nuc"))
    gen = np.random.default_rng(3)
    for _ in range(50):  # no feasible perturbation does better
        y = torch.clamp(x + 1e-3 * torch.as_tensor(gen.normal(size=(4, 4))), min=0.0)
        assert obj(y) >= obj(x) - 1e-9


def test_group_l1_prox_shrinks_each_block_norm():
    v = np.array([[3.0, 0.0], [4.0, 1.0], [0.1, 2.0]])
    out = prox_group_l1(v, np.array([0, 0, 1]), np.array([[1.0, 10.0], [1.0, 1.0]]))
    np.testing.assert_allclose(out, [[2.4, 0.0], [3.2, 0.0], [0.0, 1.0]])


def test_tv1d_prox_matches_a_generic_solver():
    y = np.random.default_rng(4).normal(size=12)
    lam = 0.4
    got = np.array(prox_tv1d(y.tolist(), lam))
    # dual of the 1-D TV prox: min_u ½||y - D'u||² over |u| <= lam, x = y - D'u (a bound-constrained QP)
    d = np.diff(np.eye(12), axis=0)
    res = optimize.minimize(lambda u: 0.5 * np.sum((y - d.T @ u) ** 2), np.zeros(11),
                            jac=lambda u: -d @ (y - d.T @ u), bounds=[(-lam, lam)] * 11, method="L-BFGS-B",
                            options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10000})
    np.testing.assert_allclose(got, y - d.T @ res.x, atol=1e-6)
    assert prox_tv1d([], 1.0) == [] and prox_tv1d([1.0, 2.0], 0.0) == [1.0, 2.0]

"""SQUAREM reaches the fixed point of a known contraction and never increases the objective."""
from __future__ import annotations

import numpy as np
import torch

from pathways.optim import squarem_step


def _contraction(m, c):
    """Affine contraction F(x) = M x + c; the objective |x - x*|² decreases along it (|M| < 1)."""
    fixed = np.linalg.solve(np.eye(len(c)) - m, c)
    return (lambda x: (m @ x + c, float((x - fixed) @ (x - fixed)))), fixed


def test_reaches_the_fixed_point_faster_than_the_plain_map():
    gen = np.random.default_rng(0)
    q = np.linalg.qr(gen.normal(size=(5, 5)))[0]
    m = q @ np.diag([0.99, 0.95, 0.9, 0.5, 0.1]) @ q.T
    fmap, fixed = _contraction(m, gen.normal(size=5))
    x, values, maps = np.zeros(5), [], 0
    while maps < 300:
        step = squarem_step(fmap, x)
        values.append(step.value)
        maps += step.n_maps
        x = step.x
        if np.linalg.norm(x - fixed) < 1e-12:
            break
    np.testing.assert_allclose(x, fixed, atol=1e-10)
    assert maps < 300 and 0.99 ** maps > 1e-2  # the plain map would still be far away after as many steps
    assert np.all(np.diff(values) <= 0)


def test_safeguard_falls_back_to_the_double_step():
    # the extrapolation lands on the fixed point 0, where this objective is made worse: the cycle keeps F(F(x0))
    fmap = lambda x: (0.5 * x, 100.0 if np.abs(x).sum() < 1e-9 else float(np.abs(x).sum()))
    x0 = np.array([1.0, -2.0])
    step = squarem_step(fmap, x0)
    np.testing.assert_allclose(step.x, 0.25 * x0)
    assert not step.accepted and step.n_maps == 3 and step.value == 3.0


def test_monotone_on_an_em_map_with_feasibility_and_projection():
    # EM for the mixing weights of two known densities: the negative log-likelihood never increases
    gen = np.random.default_rng(1)
    dens = np.stack([np.exp(-0.5 * gen.normal(size=400) ** 2), np.full(400, 0.2)], 1)

    def em(w):
        resp = dens * w / (dens @ w)[:, None]
        return resp.mean(0), float(-np.log(dens @ w).sum())

    w, values = np.array([0.5, 0.5]), []
    for _ in range(30):
        step = squarem_step(em, w, feasible=lambda p: bool(np.all(p >= 0)), project=lambda p, x0: p / p.sum())
        values.append(step.value)
        w = step.x
    assert np.all(np.diff(values) <= 1e-12)
    np.testing.assert_allclose(em(w)[0], w, atol=1e-8)


def test_torch_tensors_and_a_precomputed_first_map():
    fmap = lambda x: (0.5 * x + 1.0, float(((x - 2.0) ** 2).sum()))
    x0 = torch.zeros(3, dtype=torch.float64)
    step = squarem_step(fmap, x0, first=fmap(x0))
    assert step.n_maps == 2 and step.accepted
    torch.testing.assert_close(step.x, torch.full((3,), 2.0, dtype=torch.float64))

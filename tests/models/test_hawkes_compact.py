"""HawkesExpKernel compact fit storage (issue 22): released positions, float32 values, chunked EM, in-place FISTA."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import pathways.models.hawkes.design as design_module
import pathways.models.hawkes.em_exp as em_module
import pathways.models.hawkes.solvers as solvers_module
from pathways.models.hawkes import HawkesExpKernel
from pathways.models.hawkes.design import _Tensors, build_design
from pathways.optim import fista, prox_elastic_net
from pathways.synthetic.hawkes import simulate_hawkes



@pytest.fixture(scope="module")
def windows():
    """Many short windows over 40 codes: a sparse design (the entries path, not the dense blocks)."""
    gen = np.random.default_rng(4)
    adj = np.zeros((40, 40))
    adj.flat[gen.choice(1600, 60, replace=False)] = gen.uniform(0.1, 0.4, 60)
    adj *= 0.5 / np.max(np.abs(np.linalg.eigvals(adj)))
    return simulate_hawkes(np.full(40, 0.03), adj, start=0.0, end=12.0, n_sequences=400, decays=1.5, seed=4)


def test_compact_values_release_the_positions_and_refuse_other_decays(windows):
    beta = torch.tensor([1.5], dtype=torch.float64)
    full = _Tensors(build_design(windows), torch.device("cpu"))
    assert full.design.dense is None
    x_full, _ = full.values(beta)
    compact = _Tensors(build_design(windows), torch.device("cpu"), compact=True)
    x, _ = compact.values(beta)
    assert x.dtype == torch.float64  # small design: float64 values
    torch.testing.assert_close(x, x_full, rtol=0, atol=0)
    assert compact.design.entries[2] is None  # l* released
    assert compact.values(beta)[0] is x  # same decays: the cached values
    with pytest.raises(RuntimeError, match="released"):
        compact.values(torch.tensor([0.7], dtype=torch.float64))


def test_float32_values_give_the_float64_fit(windows, monkeypatch):
    reference = HawkesExpKernel(decay=1.5, penalty="l1", C=1e3).fit(windows)
    monkeypatch.setattr(design_module, "_FLOAT32_MIN", 1)  # every compact design stores X as float32
    seen = []
    original = design_module._Tensors.values

    def values(self, decays, *args, **kwargs):
        out = original(self, decays, *args, **kwargs)
        seen.append(out[0].dtype)
        return out

    monkeypatch.setattr(design_module._Tensors, "values", values)
    single = HawkesExpKernel(decay=1.5, penalty="l1", C=1e3).fit(windows)
    assert torch.float32 in seen
    # X rounded to 6e-8 relative, every sum in float64: the estimate moves far less than its statistical error
    np.testing.assert_allclose(single.adjacency_, reference.adjacency_, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(single.baseline_, reference.baseline_, rtol=1e-5)
    assert abs(single.objective_ - reference.objective_) <= 1e-7 * abs(reference.objective_)


def test_em_over_small_chunks_equals_one_chunk(windows, monkeypatch):
    reference = HawkesExpKernel(decay=1.5).fit(windows)
    chunks = em_module._EM._chunks
    monkeypatch.setattr(em_module._EM, "_chunks", lambda self, x, chunk=0: chunks(self, x, 1009))
    chunked = HawkesExpKernel(decay=1.5).fit(windows)
    np.testing.assert_allclose(chunked.adjacency_, reference.adjacency_, rtol=1e-10, atol=1e-13)
    assert chunked.n_iter_ == reference.n_iter_


@pytest.mark.parametrize("l1, l2", [(0.0, 0.0), (0.05, 0.0), (0.02, 0.3)])
def test_in_place_least_squares_fista_follows_the_generic_one(l1, l2):
    gen = np.random.default_rng(0)
    d, p = 4, 6
    m = gen.normal(size=(40, p))
    q = torch.as_tensor(m.T @ m / 40 + 0.05 * np.eye(p))
    b = torch.as_tensor(gen.normal(size=(d, p)))
    n, step = 3, 3 / (2 * float(torch.linalg.eigvalsh(q)[-1]))
    floor = torch.full((d, 1), 0.01, dtype=torch.float64)
    l1_t, l2_t = torch.full((p - 1,), l1, dtype=torch.float64), torch.full((p - 1,), l2, dtype=torch.float64)

    def project(th, precision=None):
        a = prox_elastic_net(th[:, 1:], step * l1_t, step * l2_t, positive=True)
        return torch.cat([torch.maximum(th[:, :1], floor), a], 1)

    def contrast(th, need_grad):
        qth = th @ q
        return ((qth * th).sum() - 2 * (th * b).sum()) / n, (2 * (qth - b) / n if need_grad else None)

    x0 = project(torch.zeros(d, p, dtype=torch.float64))
    ref = fista(contrast, project, x0, lipschitz=1.0 / step, backtrack=False, restart="gradient", tol=1e-10,
                scale_floor=1e-300, max_iter=400, record_every=10)
    x, n_iter, converged, history = solvers_module._fista_separable(q, b, x0, n, step, l1_t, l2_t, floor, 1e-10,
                                                                    400)
    torch.testing.assert_close(x, ref.x, rtol=1e-9, atol=1e-12)
    assert (n_iter, converged) == (ref.n_iter, ref.converged)
    np.testing.assert_allclose(history, ref.history, rtol=1e-9)

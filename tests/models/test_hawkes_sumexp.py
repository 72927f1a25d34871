"""HawkesSumExpKernel: exact likelihood with several decays, component recovery, agreement with the exp kernel."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hawkes_reference import naive_terms, random_sequences

from pathways.encode.sequences import Sequences
from pathways.errors import PathwaysInputError
from pathways.models.hawkes import HawkesExpKernel, HawkesSumExpKernel
from pathways.models.hawkes.design import _Tensors, build_design, least_squares_stats
from pathways.models.hawkes.solvers import _Layout, _Objective
from pathways.synthetic.hawkes import simulate_hawkes

DECAYS = np.array([0.5, 4.0])
COMP = np.array([[[0.2, 0.0], [0.1, 0.1]], [[0.0, 0.3], [0.2, 0.0]]])  # (K, D, D)
MU = np.array([0.1, 0.15])


def _with_params(mu: np.ndarray, comp: np.ndarray, decays: np.ndarray) -> HawkesSumExpKernel:
    model = HawkesSumExpKernel(decays=list(decays))
    d = mu.size
    model.n_codes_, model.codes_, model.vocab_ = d, np.arange(d).astype(str).astype(object), None
    model.baseline_, model.component_adjacency_ = mu, comp
    model.adjacency_, model.decays_ = comp.sum(0), decays
    return model


@pytest.fixture(scope="module")
def data() -> Sequences:
    return simulate_hawkes(MU, COMP, start=0.0, end=500.0, n_sequences=80, decays=DECAYS, kernel="sumexp", seed=2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_likelihood_matches_naive_reference(seed: int) -> None:
    seqs = random_sequences(seed, d=3)
    gen = np.random.default_rng(seed)
    decays = np.array([0.7, 3.0, 11.0])
    model = _with_params(gen.uniform(0.1, 1, 3), gen.uniform(0, 0.2, (3, 3, 3)), decays)
    lam, own, total = naive_terms(seqs, np.tile(model.baseline_, (len(seqs), 1)), model.component_adjacency_, decays)
    ref = np.log(lam).sum() - total.sum()
    assert abs(model.log_likelihood(seqs) - ref) <= 1e-8 * abs(ref)
    got_own, _ = model._compensators(seqs, np.tile(model.baseline_, (len(seqs), 1)))
    np.testing.assert_allclose(got_own, own, rtol=1e-10, atol=1e-12)


def test_gradient_matches_finite_differences() -> None:
    seqs = random_sequences(3, d=2)
    tensors = _Tensors(build_design(seqs), torch.device("cpu"))
    obj = _Objective(tensors, _Layout(2, 2, 0), DECAYS, np.array([1.0, 0.5]), None, 0.01, "l1", 1.0)
    theta = np.random.default_rng(0).uniform(0.05, 0.6, 2 + 8)
    _, grad = obj.value_and_grad(theta)
    for j in range(theta.size):
        step = np.zeros_like(theta)
        step[j] = 1e-6
        numeric = (obj.value_and_grad(theta + step)[0] - obj.value_and_grad(theta - step)[0]) / 2e-6
        assert grad[j] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_gram_is_symmetric_positive_semidefinite() -> None:
    seqs = random_sequences(4, d=3)
    q, _ = least_squares_stats(_Tensors(build_design(seqs), torch.device("cpu")), np.array([0.5, 2.0]))
    np.testing.assert_allclose(q.numpy(), q.numpy().T, rtol=1e-12)
    assert float(torch.linalg.eigvalsh(q)[0]) > -1e-9 * float(torch.linalg.eigvalsh(q)[-1])


def test_components_recovered(data: Sequences) -> None:
    model = HawkesSumExpKernel(decays=list(DECAYS)).fit(data)
    assert model.converged_
    assert model.component_adjacency_.shape == (2, 2, 2)
    np.testing.assert_allclose(model.adjacency_, COMP.sum(0), atol=0.06)
    np.testing.assert_allclose(model.component_adjacency_, COMP, atol=0.08)
    np.testing.assert_allclose(model.baseline_, MU, rtol=0.2)


def test_single_decay_equals_the_exp_kernel(data: Sequences) -> None:
    one = HawkesSumExpKernel(decays=[1.0], penalty="l1", C=1e3).fit(data)
    exp = HawkesExpKernel(decay=1.0, penalty="l1", C=1e3).fit(data)
    np.testing.assert_allclose(one.adjacency_, exp.adjacency_, rtol=1e-12)
    assert one.score(data) == pytest.approx(exp.score(data), rel=1e-12)


def test_learn_decays_improves_the_likelihood(data: Sequences) -> None:
    data = data[np.arange(30)]
    start = HawkesSumExpKernel(decays=[1.0, 2.0], max_iter=200).fit(data)
    learned = HawkesSumExpKernel(decays=[1.0, 2.0], learn_decay=True, max_iter=200).fit(data)
    assert learned.score(data) > start.score(data)
    assert learned.decays_.min() < 1.0 and learned.decays_.max() > 2.0  # moves toward the true 0.5 and 4


def test_bad_decays() -> None:
    seqs = random_sequences(0, d=2)
    for decays in ([], [1.0, -2.0], [np.inf]):
        with pytest.raises(PathwaysInputError, match="decays"):
            HawkesSumExpKernel(decays=decays).fit(seqs)
    with pytest.raises(PathwaysInputError, match="decays: expected distinct values"):
        HawkesSumExpKernel(decays=[1.0, 1.0]).fit(seqs)

"""HawkesEM: exact windowed likelihood vs a naive reference, EM ascent, kernel recovery, windows, common face."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from pathways.encode import Sequences
from pathways.errors import PathwaysInputError
from pathways.models import HawkesEM, PathwaysEstimator
from pathways.models.hawkes import em
from pathways.synthetic import simulate_hawkes


# ----------------------------------------------------------------------------------------------------------------
# naive O(N^2) float64 references (explicit loops over events: test helpers only)
# ----------------------------------------------------------------------------------------------------------------
def _phi(kernel, edges, i, j, lag):
    if lag <= 0 or lag >= edges[-1]:
        return 0.0
    return kernel[i, j, np.searchsorted(edges, lag, side="right") - 1]


def _primitive(kernel, edges, i, j, r):
    r = min(max(r, 0.0), edges[-1])
    widths = np.clip(r - edges[:-1], 0.0, np.diff(edges))
    return float(np.sum(kernel[i, j] * widths))


def naive_terms(seqs, mu, kernel, edges):
    """(lambda at events, own compensator at events, total compensator (n, D), log-likelihood)."""
    lam, own = np.zeros(seqs.n_events), np.zeros(seqs.n_events)
    total = np.zeros((len(seqs), seqs.n_codes))
    for p in range(len(seqs)):
        lo, hi = seqs.offsets[p], seqs.offsets[p + 1]
        t, c = seqs.times[lo:hi], seqs.marks[lo:hi]
        for i in range(seqs.n_codes):
            total[p, i] = mu[i] * (seqs.end[p] - seqs.start[p]) + sum(
                _primitive(kernel, edges, i, c[l], seqs.end[p] - t[l]) for l in range(t.size))
        for k in range(t.size):
            lam[lo + k] = mu[c[k]] + sum(_phi(kernel, edges, c[k], c[l], t[k] - t[l]) for l in range(t.size))
            own[lo + k] = mu[c[k]] * (t[k] - seqs.start[p]) + sum(
                _primitive(kernel, edges, c[k], c[l], t[k] - t[l]) for l in range(t.size) if t[l] < t[k])
    return lam, own, total, float(np.log(lam).sum() - total.sum())


def _step_data(kernel, edges, mu, n_seq, length, seed, start_spread=0.0):
    """Simulate a step-kernel Hawkes process with the package's simulator (independent of em.py)."""
    gen = np.random.default_rng(seed)
    start = gen.uniform(0, start_spread, n_seq) if start_spread else np.zeros(n_seq)
    mass = np.moveaxis(kernel * np.diff(edges)[None, None, :], 2, 0)
    return simulate_hawkes(mu, mass, start=start, end=start + length, kernel="step", bin_edges=edges, seed=seed)


EDGES = np.array([0.0, 0.5, 1.0, 2.0])
KERNEL = np.array([[[0.6, 0.2, 0.05], [0.0, 0.0, 0.0]],
                   [[0.1, 0.3, 0.2], [0.4, 0.0, 0.1]]])  # [target, source, bin]; adjacency = sum * widths
MU = np.array([0.4, 0.3])


@pytest.fixture(scope="module")
def small():
    """A few short sequences with shifted windows and a tie, for exact comparisons."""
    seqs = _step_data(KERNEL, EDGES, MU, n_seq=6, length=8.0, seed=3, start_spread=5.0)
    times = seqs.times.copy()
    times[1] = times[0]  # a same-time pair: must not excite each other
    return Sequences(times, seqs.marks, seqs.offsets, seqs.start, seqs.end, 2)


@pytest.fixture(scope="module")
def large():
    return _step_data(KERNEL, EDGES, MU, n_seq=400, length=60.0, seed=11)


@pytest.fixture(scope="module")
def fitted(large):
    return HawkesEM(kernel_discretization=EDGES, max_iter=300, tol=1e-7).fit(large)


# ----------------------------------------------------------------------------------------------------------------
# exact likelihood
# ----------------------------------------------------------------------------------------------------------------
def test_likelihood_and_compensators_match_naive_reference(small):
    gen = np.random.default_rng(0)
    kernel, mu = gen.uniform(0.05, 0.5, KERNEL.shape), np.array([0.3, 0.7])
    lam, own, total, loglik = naive_terms(small, mu, kernel, EDGES)
    design = em.build_design(small.times, small.marks, small.offsets, small.start, small.end, 2, EDGES)
    assert em.log_likelihood(mu, kernel, design) == pytest.approx(loglik, rel=1e-12)
    np.testing.assert_allclose(design.pairs.intensities(mu, kernel.ravel()), lam, rtol=1e-12)
    baselines = np.tile(mu, (len(small), 1))
    args = (small.times, small.marks, small.offsets, small.start)
    np.testing.assert_allclose(em.own_compensators(*args, baselines, kernel, EDGES), own, rtol=1e-11)
    np.testing.assert_allclose(em.window_compensators(*args, small.end, baselines, kernel, EDGES), total,
                               rtol=1e-12)


def test_estimator_score_is_exact_loglik_per_event(small):
    model = HawkesEM(kernel_discretization=EDGES, max_iter=5).fit(small)
    _, _, _, loglik = naive_terms(small, model.baseline_, model.kernel_, EDGES)
    assert model.score(small) == pytest.approx(loglik / small.n_events, rel=1e-11)
    assert model.log_likelihood_ == pytest.approx(loglik, rel=1e-11)


def test_neighbours_never_cross_sequences_and_ties_do_not_excite():
    # two sequences over the same absolute times: pairs stay within each sequence
    times = np.array([1.0, 1.0, 1.5, 1.0, 1.2])
    marks = np.array([0, 1, 0, 1, 1])
    seqs = Sequences(times, marks, np.array([0, 3, 5]), np.zeros(2), np.full(2, 3.0), 2)
    design = em.build_design(seqs.times, seqs.marks, seqs.offsets, seqs.start, seqs.end, 2, np.array([0.0, 1.0]))
    rows = np.repeat(np.arange(5), np.diff(design.pairs.csr.indptr))
    sources = design.pairs.csr.indices // 1 % 2  # cell = (i*D + j)*B + m with B = 1 -> j = cell % D
    assert rows.tolist() == [2, 2, 4]  # event 2 sees events 0 and 1 (tied with each other); event 4 sees event 3
    assert sorted(sources[:2].tolist()) == [0, 1] and sources[2] == 1


def test_shifting_a_window_leaves_the_likelihood_unchanged(small):
    gen = np.random.default_rng(1)
    kernel, mu = gen.uniform(0.05, 0.5, KERNEL.shape), np.array([0.3, 0.7])
    shift = gen.uniform(-50, 50, len(small))
    moved = Sequences(small.times + np.repeat(shift, small.lengths), small.marks, small.offsets,
                      small.start + shift, small.end + shift, 2)
    design = em.build_design(small.times, small.marks, small.offsets, small.start, small.end, 2, EDGES)
    design2 = em.build_design(moved.times, moved.marks, moved.offsets, moved.start, moved.end, 2, EDGES)
    assert em.log_likelihood(mu, kernel, design2) == pytest.approx(em.log_likelihood(mu, kernel, design), rel=1e-11)


# ----------------------------------------------------------------------------------------------------------------
# EM behaviour and recovery
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("accelerate", [False, True])
def test_em_log_likelihood_is_monotone(small, large, accelerate):
    for data in (small, large[:60]):
        model = HawkesEM(kernel_discretization=EDGES, max_iter=60, tol=0.0, accelerate=accelerate).fit(data)
        history = np.array([h["log_likelihood"] for h in model.history_])
        assert np.all(np.diff(history) >= -1e-9 * np.abs(history[-1]))
        assert history[-1] > history[0]
        assert model.n_iter_ == 60 and not model.converged_


def test_acceleration_reaches_the_same_maximum_with_fewer_e_steps(large):
    plain = HawkesEM(kernel_discretization=EDGES, max_iter=3000, tol=1e-9, accelerate=False).fit(large[:100])
    fast = HawkesEM(kernel_discretization=EDGES, max_iter=3000, tol=1e-9, accelerate=True).fit(large[:100])
    assert fast.converged_ and plain.converged_
    assert fast.n_iter_ < plain.n_iter_ / 2
    assert fast.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-8)
    np.testing.assert_allclose(fast.kernel_, plain.kernel_, atol=1e-3)


def test_recovers_a_known_piecewise_kernel(fitted):
    np.testing.assert_allclose(fitted.kernel_, KERNEL, atol=0.06)
    true_adjacency = (KERNEL * np.diff(EDGES)).sum(axis=2)
    assert np.linalg.norm(fitted.adjacency_ - true_adjacency) / np.linalg.norm(true_adjacency) < 0.06
    np.testing.assert_allclose(fitted.baseline_, MU, rtol=0.08)
    assert fitted.adjacency_[0, 1] < 0.03  # the absent edge stays near zero
    assert fitted.converged_


def test_recovers_an_exponential_kernel_by_its_bin_averages():
    adjacency, decay = np.array([[0.3, 0.0], [0.5, 0.2]]), 2.0
    seqs = simulate_hawkes(np.array([0.5, 0.3]), adjacency, end=400.0, n_sequences=40, decays=decay, seed=5)
    model = HawkesEM(kernel_support=3.0, n_bins=6, max_iter=200).fit(seqs)
    edges = model.kernel_edges_
    # bin average of a * b * exp(-b t): a * (exp(-b e_m) - exp(-b e_m+1)) / width
    expected = adjacency[:, :, None] * (np.exp(-decay * edges[:-1]) - np.exp(-decay * edges[1:])) / np.diff(edges)
    np.testing.assert_allclose(model.kernel_, expected, atol=0.1)
    np.testing.assert_allclose(model.adjacency_, adjacency, atol=0.06)


def test_windows_enter_the_kernel_compensator():
    """Short windows cut the kernels' tails: the exact compensator stays unbiased, tick's n_j * width is not."""
    edges = np.array([0.0, 1.0, 2.0, 3.0])
    kernel = np.full((1, 1, 3), 0.2)
    seqs = _step_data(kernel, edges, np.array([0.8]), n_seq=3000, length=3.0, seed=2, start_spread=10.0)
    design = em.build_design(seqs.times, seqs.marks, seqs.offsets, seqs.start, seqs.end, 1, edges)
    exact = em.fit_em(design, max_iter=500, tol=1e-8)
    # tick's M-step: every event is assumed followed by the full support
    design.exposure = design.counts[:, None] * np.diff(edges)[None, :]
    naive = em.fit_em(design, max_iter=500, tol=1e-8)
    np.testing.assert_allclose(exact.kernel[0, 0], kernel[0, 0], atol=0.04)
    assert naive.kernel[0, 0, 2] < 0.5 * kernel[0, 0, 2]  # the last bin is mostly unobserved
    assert np.abs(exact.kernel - kernel).sum() < 0.5 * np.abs(naive.kernel - kernel).sum()


def test_matches_tick_em_step_when_no_event_is_near_the_end():
    tick_hawkes = pytest.importorskip("tick.hawkes", reason="tick (bench extra) is optional")
    seqs = _step_data(KERNEL, EDGES, MU, n_seq=1, length=400.0, seed=4)
    keep = seqs.times < 400.0 - EDGES[-1] - 0.1  # then tick's n_j * width equals the exact exposure
    seqs = Sequences(seqs.times[keep], seqs.marks[keep], np.array([0, keep.sum()]), seqs.start, seqs.end, 2)
    mu0, k0 = np.array([0.5, 0.5]), np.full(KERNEL.shape, 0.1)
    learner = tick_hawkes.HawkesEM(kernel_discretization=EDGES, max_iter=1)
    learner.fit(seqs.to_tick(), end_times=seqs.tick_end_times(), baseline_start=mu0, kernel_start=k0)
    design = em.build_design(seqs.times, seqs.marks, seqs.offsets, seqs.start, seqs.end, 2, EDGES)
    mu1, k1, _ = em.em_step(mu0, k0, design)
    np.testing.assert_allclose(mu1, learner.baseline, rtol=1e-10)
    np.testing.assert_allclose(k1, learner.kernel, rtol=1e-10)


# ----------------------------------------------------------------------------------------------------------------
# common face
# ----------------------------------------------------------------------------------------------------------------
def test_common_face(fitted, large):
    assert isinstance(fitted, PathwaysEstimator)
    np.testing.assert_allclose(fitted.get_kernel_norms(), fitted.adjacency_)
    np.testing.assert_allclose(fitted.get_kernel_supports(), np.full((2, 2), EDGES[-1]))
    values = fitted.get_kernel_values(1, 0, np.array([-1.0, 0.0, 0.25, 0.75, 1.5, 2.0, 5.0]))
    np.testing.assert_allclose(values, [0, 0, *fitted.kernel_[1, 0], 0, 0])
    one = large[[3]]
    t = one.times[:5] + 1e-9
    lam = fitted.intensity(one, t)
    for q in range(t.size):  # intensity just after an event includes that event
        past = one.times <= t[q]
        expect = fitted.baseline_ + np.array([
            sum(_phi(fitted.kernel_, EDGES, i, c, t[q] - s) for s, c in zip(one.times[past], one.marks[past]))
            for i in range(2)])
        np.testing.assert_allclose(lam[q], expect, rtol=1e-12)
    assert fitted.score(large) == pytest.approx(fitted.log_likelihood_ / large.n_events, rel=1e-10)
    sims = fitted.simulate(50.0, n=4, seed=0)
    assert len(sims) == 4 and sims.n_codes == 2 and np.all(sims.times <= 50.0)
    again = fitted.simulate(50.0, n=4, seed=0)
    np.testing.assert_array_equal(sims.times, again.times)


def test_goodness_of_fit_on_one_long_realization():
    seqs = _step_data(KERNEL, EDGES, MU, n_seq=1, length=3000.0, seed=8)
    model = HawkesEM(kernel_discretization=EDGES, max_iter=200).fit(seqs)
    gof = model.goodness_of_fit(seqs)
    assert list(gof.columns) == ["code", "n_events", "ks_statistic", "p_value"]
    assert gof["n_events"].sum() == seqs.n_events
    assert np.all(gof["p_value"] > 1e-3) and np.all(gof["ks_statistic"] < 0.05)
    # a model without excitation is rejected on the same data
    model.kernel_ = np.zeros_like(model.kernel_)
    model.adjacency_ = np.zeros_like(model.adjacency_)
    assert np.all(model.goodness_of_fit(seqs)["p_value"] < 1e-6)


def test_fisher_intervals_cover_the_truth(fitted, large):
    ci = fitted.confidence_intervals(large, method="fisher", alpha=0.01)
    truth = (KERNEL * np.diff(EDGES)).sum(axis=2)
    # over 30 replicate data sets the adjacency estimates spread with SD 0.003-0.010; the SEs must match that
    half_width = (ci.adjacency_high - fitted.adjacency_)[truth > 0] / 2.576
    assert np.all((half_width > 0.004) & (half_width < 0.015))
    inside = (ci.adjacency_low <= truth + 1e-12) & (truth <= ci.adjacency_high)
    assert inside[truth > 0].all()
    assert np.all(ci.adjacency_high > ci.adjacency_low)
    # baseline SEs match the replicate SD (about 0.006); this data set's mu_1 sits 2.9 SE low (it is negatively
    # correlated with the self-excitation estimate, 2.2 SE high), so check the SE size and a 4-SE band
    mu_se = (ci.baseline_high - fitted.baseline_) / 2.576
    assert np.all((mu_se > 0.004) & (mu_se < 0.01))
    assert np.all(np.abs(fitted.baseline_ - MU) < 4 * mu_se)


def test_bootstrap_intervals_with_warm_start(fitted, large):
    model = HawkesEM(kernel_discretization=EDGES, max_iter=30, warm_start=True).fit(large)
    ci = model.confidence_intervals(large, method="bootstrap", n_boot=8, seed=0)
    assert np.all(ci.adjacency_low <= model.adjacency_ + 1e-9) and np.all(model.adjacency_ <= ci.adjacency_high + 1e-9)
    again = model.confidence_intervals(large, method="bootstrap", n_boot=8, seed=0)
    np.testing.assert_array_equal(ci.adjacency_high, again.adjacency_high)


def test_export_import_round_trip(fitted, small):
    state = fitted.export_state()
    loaded = PathwaysEstimator.import_state(state)
    assert type(loaded) is HawkesEM
    np.testing.assert_array_equal(loaded.kernel_, fitted.kernel_)
    assert loaded.score(small) == fitted.score(small)
    assert loaded.get_params() == fitted.get_params()
    fresh = clone(fitted)  # array edges are reported as a list, and sklearn's clone accepts the round trip
    assert fresh.get_params()["kernel_discretization"] == EDGES.tolist() and not hasattr(fresh, "kernel_")


def test_log_spaced_discretization_and_sklearn_params():
    model = HawkesEM(kernel_discretization=[0.0, 0.1, 1.0, 10.0], max_iter=5)
    assert model.get_params()["kernel_discretization"] == [0.0, 0.1, 1.0, 10.0]
    seqs = simulate_hawkes(np.array([0.5]), np.array([[0.4]]), end=200.0, n_sequences=5, decays=0.5, seed=0)
    model.fit(seqs)
    assert model.kernel_.shape == (1, 1, 3) and model.n_pairs_ > 0
    np.testing.assert_allclose(model.adjacency_, (model.kernel_ * np.array([0.1, 0.9, 9.0])).sum(axis=2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.gpu
def test_cuda_matches_cpu(large):
    cpu = HawkesEM(kernel_discretization=EDGES, max_iter=40, tol=0.0).fit(large)
    gpu = HawkesEM(kernel_discretization=EDGES, max_iter=40, tol=0.0, device="cuda").fit(large)
    np.testing.assert_allclose(gpu.kernel_, cpu.kernel_, rtol=1e-9, atol=1e-12)
    assert gpu.score(large) == pytest.approx(cpu.score(large), rel=1e-10)


# ----------------------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("params, match", [
    ({"kernel_support": 0.0}, "kernel_support"),
    ({"kernel_support": float("nan")}, "kernel_support"),
    ({"kernel_support": None}, "kernel_support"),
    ({"n_bins": 0}, "n_bins"),
    ({"kernel_discretization": [0.0, 1.0, 1.0]}, "kernel_discretization"),
    ({"kernel_discretization": [0.5, 1.0]}, "kernel_discretization"),
    ({"max_iter": 0}, "max_iter"),
    ({"tol": -1.0}, "tol"),
    ({"device": "tpu-please"}, "device"),
])
def test_bad_parameters(small, params, match):
    with pytest.raises(PathwaysInputError, match=match):
        HawkesEM(**params).fit(small)


def test_bad_data(fitted):
    empty = Sequences(np.array([]), np.array([], dtype=np.int64), np.array([0, 0]), np.zeros(1), np.ones(1), 2)
    with pytest.raises(PathwaysInputError, match="empty"):
        HawkesEM().fit(empty)
    with pytest.raises(PathwaysInputError, match="non-finite"):
        HawkesEM().fit(Sequences(np.array([0.5, np.nan]), np.array([0, 1]), np.array([0, 2]), np.zeros(1),
                                 np.ones(1), 2, validate=False))
    with pytest.raises(PathwaysInputError, match="codes"):
        fitted.score(Sequences(np.array([0.5]), np.array([2]), np.array([0, 1]), np.zeros(1), np.ones(1), 3))
    with pytest.raises(PathwaysInputError, match="fit"):
        HawkesEM().score(empty)

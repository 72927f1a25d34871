"""HawkesExpKernel: exact likelihood, gradients, solvers, recovery, observation windows, covariates, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hawkes_reference import naive_terms, random_sequences
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from pathways.data.eventlog import EventLog
from pathways.data.vocabulary import Vocabulary
from pathways.encode.sequences import Sequences
from pathways.errors import PathwaysInputError
from pathways.models.base import NotFittedError, PathwaysEstimator
from pathways.models.hawkes import HawkesExpKernel
from pathways.models.hawkes.design import _Tensors, build_design, least_squares_stats
from pathways.models.hawkes.solvers import _Layout, _Objective
from pathways.synthetic.hawkes import simulate_hawkes

ADJ3 = np.array([[0.3, 0.0, 0.0], [0.4, 0.2, 0.0], [0.0, 0.0, 0.1]])
MU3 = np.array([0.2, 0.1, 0.3])


def _with_params(model: HawkesExpKernel, mu: np.ndarray, adj: np.ndarray, decay: float) -> HawkesExpKernel:
    """Set fitted parameters by hand (to compare computations against references)."""
    d = mu.size
    model.n_codes_, model.codes_, model.vocab_ = d, np.arange(d).astype(str).astype(object), None
    model.baseline_, model.adjacency_ = mu, adj
    model.component_adjacency_, model.decays_, model.decay_ = adj[None], np.array([decay]), decay
    return model


@pytest.fixture(scope="module")
def small_data() -> Sequences:
    return simulate_hawkes(MU3, ADJ3, start=0.0, end=200.0, n_sequences=30, decays=2.0, seed=0)


@pytest.fixture(scope="module")
def fitted(small_data: Sequences) -> HawkesExpKernel:
    return HawkesExpKernel(decay=2.0).fit(small_data)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_likelihood_matches_naive_reference(seed: int) -> None:
    seqs = random_sequences(seed)  # shifted windows, tied times, empty sequences
    gen = np.random.default_rng(seed)
    model = _with_params(HawkesExpKernel(), gen.uniform(0.1, 1, 3), gen.uniform(0, 0.4, (3, 3)), 1.7)
    lam, own, total = naive_terms(seqs, np.tile(model.baseline_, (len(seqs), 1)), model.component_adjacency_,
                                  model.decays_)
    ref = np.log(lam).sum() - total.sum()
    assert abs(model.log_likelihood(seqs) - ref) <= 1e-8 * abs(ref)
    assert model.score(seqs) == pytest.approx(ref / seqs.n_events, rel=1e-8)
    base = np.tile(model.baseline_, (len(seqs), 1))
    np.testing.assert_allclose(model._event_intensities(seqs, base), lam, rtol=1e-10)
    got_own, got_total = model._compensators(seqs, base)
    np.testing.assert_allclose(got_own, own, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_total, total, rtol=1e-10)


def test_design_stores_only_codes_seen_earlier_in_the_sequence() -> None:
    seqs = Sequences(np.array([0.0, 1.0, 1.0, 2.0, 0.5]), np.array([0, 1, 0, 2, 1]), np.array([0, 4, 5]),
                     np.zeros(2), np.array([3.0, 1.0]), 3)
    design = build_design(seqs)
    # event 1 and 2 (tied at t=1) see code 0 only; event 3 sees codes 0 (twice) and 1; sequence 2 sees nothing
    assert sorted(zip(design.row.tolist(), design.col.tolist())) == [(1, 0), (2, 0), (3, 0), (3, 1)]
    assert design.count[(design.row == 3) & (design.col == 0)][0] == 2


@pytest.mark.parametrize("penalty", [None, "l1", "l2", "elasticnet"])
def test_gradient_matches_finite_differences(penalty: str | None) -> None:
    seqs = random_sequences(5, n_seq=5)
    z = np.random.default_rng(0).normal(size=(len(seqs), 2))
    tensors = _Tensors(build_design(seqs), torch.device("cpu"))
    layout = _Layout(3, 1, 2)
    obj = _Objective(tensors, layout, np.array([1.3]), np.array([0.5, 1.0, 2.0]), z, 0.05, penalty, 0.7)
    gen = np.random.default_rng(1)
    theta = np.concatenate([gen.uniform(0.2, 1, 3), gen.uniform(0.05, 0.5, 9), gen.normal(0, 0.3, 6)])
    _, grad = obj.value_and_grad(theta)
    eps = 1e-6
    for j in range(theta.size):
        step = np.zeros_like(theta)
        step[j] = eps
        numeric = (obj.value_and_grad(theta + step)[0] - obj.value_and_grad(theta - step)[0]) / (2 * eps)
        assert grad[j] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_least_squares_statistics_match_numerical_integration() -> None:
    seqs = random_sequences(7, n_seq=3, max_len=12)
    decay, d = 1.5, 3
    tensors = _Tensors(build_design(seqs), torch.device("cpu"))
    q, b = least_squares_stats(tensors, np.array([decay]))
    gen = np.random.default_rng(2)
    mu, adj = gen.uniform(0.1, 1, d), gen.uniform(0, 0.5, (d, d))
    theta = torch.as_tensor(np.column_stack([mu, adj]))
    contrast = ((theta @ q) * theta).sum(1) - 2 * (theta * b).sum(1)
    model = _with_params(HawkesExpKernel(), mu, adj, decay)
    expected = np.zeros(d)
    for p in range(len(seqs)):
        one = seqs[p]
        grid = np.linspace(one.start[0], one.end[0], 40001)
        lam = model.intensity(one, grid)
        expected += np.trapezoid(lam ** 2, grid, axis=0)
        if one.n_events:
            at_events = model._event_intensities(one, np.tile(mu, (1, 1)))
            expected -= 2 * np.bincount(one.marks, weights=at_events, minlength=d)
    np.testing.assert_allclose(contrast.numpy(), expected, rtol=2e-3)


def _edge_truth(d: int, n_edges: int, radius: float, seed: int) -> np.ndarray:
    gen = np.random.default_rng(seed)
    adj = np.zeros((d, d))
    adj.flat[gen.choice(d * d, n_edges, replace=False)] = gen.uniform(0.5, 1.0, n_edges)
    return adj * radius / np.max(np.abs(np.linalg.eigvals(adj)))


@pytest.fixture(scope="module")
def recovery_fits() -> tuple[np.ndarray, list[tuple[int, HawkesExpKernel]]]:
    adj = _edge_truth(10, 20, 0.6, seed=3)
    mu = np.full(10, 0.05)
    fits = []
    for n_seq in (40, 400):  # ~1e4 and ~1e5 events
        seqs = simulate_hawkes(mu, adj, start=0.0, end=200.0, n_sequences=n_seq, decays=1.0, seed=n_seq)
        fits.append((seqs.n_events, HawkesExpKernel(decay=1.0, penalty="l1", C=1e4).fit(seqs)))
    return adj, fits


def test_support_recovered_at_1e5_events(recovery_fits: tuple) -> None:
    adj, fits = recovery_fits
    n_events, model = fits[-1]
    assert n_events > 80_000
    assert model.converged_
    assert roc_auc_score((adj > 0).ravel(), np.abs(model.adjacency_).ravel()) >= 0.99


def test_adjacency_error_falls_with_events(recovery_fits: tuple) -> None:
    adj, fits = recovery_fits
    errors = [np.linalg.norm(m.adjacency_ - adj) / np.linalg.norm(adj) for _, m in fits]
    assert errors[1] < 0.6 * errors[0]
    assert errors[1] < 0.1


def test_l1_gives_exact_zeros_and_nuclear_lowers_rank(small_data: Sequences) -> None:
    plain = HawkesExpKernel(decay=2.0).fit(small_data)
    sparse = HawkesExpKernel(decay=2.0, penalty="l1", C=50).fit(small_data)
    assert (sparse.adjacency_ == 0).sum() > (plain.adjacency_ == 0).sum()
    assert sparse.adjacency_.sum() < plain.adjacency_.sum()
    low = HawkesExpKernel(decay=2.0, penalty="nuclear", C=5).fit(small_data)
    assert np.linalg.norm(low.adjacency_, "nuc") < np.linalg.norm(plain.adjacency_, "nuc")
    assert low.converged_ and np.all(low.adjacency_ >= 0)
    ridge = HawkesExpKernel(decay=2.0, penalty="l2", C=10).fit(small_data)
    assert (ridge.adjacency_ ** 2).sum() < (plain.adjacency_ ** 2).sum()


def test_fit_methods_agree_and_report_convergence(small_data: Sequences, fitted: HawkesExpKernel) -> None:
    ls = HawkesExpKernel(decay=2.0, fit_method="least-squares").fit(small_data)
    assert fitted.converged_ and ls.converged_ and fitted.n_iter_ > 1
    np.testing.assert_allclose(ls.adjacency_, ADJ3, atol=0.08)
    np.testing.assert_allclose(fitted.adjacency_, ADJ3, atol=0.08)
    # the likelihood fit maximises the likelihood: it scores at least as well as least squares, on a true scale
    assert fitted.score(small_data) >= ls.score(small_data)
    objectives = [h["objective"] for h in fitted.history_ if h["stage"] == "em"]
    assert np.all(np.diff(objectives) <= 1e-12)  # EM is monotone


def test_end_times_change_the_fit_as_theory_says() -> None:
    # short bursts inside long windows: truncating each window at its last event overstates the baseline
    mu = np.array([0.05, 0.02])
    adj = np.array([[0.2, 0.0], [0.3, 0.1]])
    seqs = simulate_hawkes(mu, adj, start=0.0, end=100.0, n_sequences=300, decays=1.0, seed=4)
    true_fit = HawkesExpKernel(decay=1.0).fit(seqs)
    cut_end = np.where(seqs.lengths > 0, seqs.times[np.maximum(seqs.offsets[1:] - 1, 0)], seqs.start)
    cut = Sequences(seqs.times, seqs.marks, seqs.offsets, seqs.start, cut_end, 2)
    cut_fit = HawkesExpKernel(decay=1.0).fit(cut)
    assert np.all(cut_fit.baseline_ > true_fit.baseline_)
    assert np.all(np.abs(true_fit.baseline_ - mu) < 0.25 * mu)
    # the compensator of the silent tail enters the likelihood: longer windows, lower likelihood, same events
    assert true_fit.log_likelihood(seqs) < true_fit.log_likelihood(cut)


def test_learn_decay_recovers_the_decay(small_data: Sequences) -> None:
    model = HawkesExpKernel(decay=0.5, learn_decay=True).fit(small_data)
    assert model.decay_ == pytest.approx(2.0, rel=0.2)
    assert model.score(small_data) > HawkesExpKernel(decay=0.5).fit(small_data).score(small_data)
    assert any(h["stage"] == "decay" for h in model.history_)


def test_covariates_modulate_the_baseline() -> None:
    gen = np.random.default_rng(1)
    sex = gen.integers(0, 2, 400).astype(float)
    seqs = simulate_hawkes(np.outer(np.exp(0.7 * sex), MU3), ADJ3, start=0.0, end=100.0, decays=2.0, seed=3)
    model = HawkesExpKernel(decay=2.0, covariates=["sex"]).fit(seqs, covariate_values=sex[:, None])
    effect = model.covariate_coef_[:, 0] / model.covariate_scale_[0]  # per unit of the raw covariate
    np.testing.assert_allclose(effect, 0.7, atol=0.15)
    np.testing.assert_allclose(model.adjacency_, ADJ3, atol=0.08)
    assert model.score(seqs, covariate_values=sex[:, None]) > HawkesExpKernel(decay=2.0).fit(seqs).score(seqs)


def test_covariates_from_eventlog_patients() -> None:
    seqs = simulate_hawkes(MU3, ADJ3, start=0.0, end=300.0, n_sequences=40, decays=2.0, seed=5)
    patients = pd.DataFrame({"patient_id": np.arange(40), "sex": np.where(np.arange(40) % 2, "F", "M"),
                             "birth": -365.25 * np.linspace(20, 80, 40), "start": 0.0, "end": 300.0})
    log = EventLog.from_arrays(seqs.sequence_ids, seqs.times, seqs.marks, Vocabulary(["a", "b", "c"]), patients)
    model = HawkesExpKernel(decay=2.0, covariates=["age", "sex"]).fit(log)
    assert model.covariate_coef_.shape == (3, 2)
    assert list(model.codes_) == ["a", "b", "c"]
    assert np.isfinite(model.score(log))
    with pytest.raises(PathwaysInputError, match="covariates"):
        HawkesExpKernel(covariates=["height"]).fit(log)


def test_tick_format_gives_the_same_fit(small_data: Sequences, fitted: HawkesExpKernel) -> None:
    tick = HawkesExpKernel(decay=2.0).fit(small_data.to_tick(), end_times=small_data.tick_end_times())
    np.testing.assert_allclose(tick.adjacency_, fitted.adjacency_, atol=1e-8)


def test_estimator_face_and_checkpoint_state(small_data: Sequences, fitted: HawkesExpKernel) -> None:
    params = fitted.get_params()
    assert params["decay"] == 2.0 and params["penalty"] is None
    fresh = clone(fitted)
    assert not hasattr(fresh, "adjacency_")
    assert fresh.fit(small_data) is fresh
    restored = PathwaysEstimator.import_state(fitted.export_state())
    assert restored.score(small_data) == pytest.approx(fitted.score(small_data), rel=1e-12)
    np.testing.assert_array_equal(restored.adjacency_, fitted.adjacency_)


def test_bad_input_gets_clear_errors(small_data: Sequences, fitted: HawkesExpKernel) -> None:
    empty = Sequences(np.zeros(0), np.zeros(0, int), np.array([0, 0, 0]), np.zeros(2), np.ones(2), 2)
    with pytest.raises(PathwaysInputError, match="empty"):
        HawkesExpKernel().fit(empty)
    with pytest.raises(PathwaysInputError, match="non-finite"):
        Sequences(np.array([0.0, np.nan]), np.array([0, 1]), np.array([0, 2]), np.zeros(1), np.ones(1), 2)
    with pytest.raises(PathwaysInputError, match="codes"):
        fitted.score(Sequences(np.array([0.5]), np.array([3]), np.array([0, 1]), np.zeros(1), np.ones(1), 4))
    log_a = EventLog.from_arrays([0, 0], [0.0, 1.0], [0, 1], Vocabulary(["x", "y"]))
    log_b = EventLog.from_arrays([0, 0], [0.0, 1.0], [0, 1], Vocabulary(["x", "z"]))
    model = HawkesExpKernel().fit(log_a)
    with pytest.raises(PathwaysInputError, match="unseen at fit time.*'z'"):
        model.score(log_b)
    for kwargs, match in [({"penalty": "lasso"}, "penalty"), ({"decay": -1.0}, "decay"), ({"C": 0}, "C"),
                          ({"fit_method": "em"}, "fit_method"), ({"device": "tpu"}, "device.*'tpu'"),
                          ({"fit_method": "least-squares", "covariates": ["sex"]}, "covariates")]:
        with pytest.raises(PathwaysInputError, match=match):
            HawkesExpKernel(**kwargs).fit(small_data)
    with pytest.raises(PathwaysInputError, match="covariate_values"):
        HawkesExpKernel(covariates=["sex"]).fit(small_data, covariate_values=np.zeros((3, 1)))
    with pytest.raises(NotFittedError):
        HawkesExpKernel().score(small_data)


def _degenerate_sequences() -> Sequences:
    """Valid but awkward data: a code that never occurs, tied events, a one-event and an empty realization."""
    seqs = simulate_hawkes(np.array([0.3, 0.2, 0.0]), np.array([[0.2, 0.0, 0.0], [0.3, 0.1, 0.0], [0.0] * 3]),
                           start=0.0, end=30.0, n_sequences=20, decays=1.0, seed=1)
    last = seqs.offsets[-1]
    times = np.concatenate([seqs.times, [5.0, 5.0, 5.0, 2.0]])  # three ties, then a lone event
    marks = np.concatenate([seqs.marks, [0, 1, 0, 1]]).astype(np.int64)
    offsets = np.concatenate([seqs.offsets, [last + 3, last + 4, last + 4]])
    return Sequences(times, marks, offsets, np.concatenate([seqs.start, [0.0, 0.0, 0.0]]),
                     np.concatenate([seqs.end, [10.0, 3.0, 10.0]]), 3)


@pytest.mark.parametrize("fit_method", ["likelihood", "least-squares"])
@pytest.mark.parametrize("penalty", [None, "l1", "l2", "elasticnet", "nuclear"])
def test_degenerate_valid_data_fits_without_error(penalty: str | None, fit_method: str) -> None:
    # "robust by default": valid data never crashes the solver, and an absent code gets no rate of its own
    data = _degenerate_sequences()
    assert np.bincount(data.marks, minlength=3)[2] == 0 and (data.lengths == 0).any()
    model = HawkesExpKernel(decay=1.0, penalty=penalty, fit_method=fit_method).fit(data)
    assert model.converged_
    assert np.all(np.isfinite(model.adjacency_)) and np.all(model.adjacency_ >= 0)
    assert np.all(model.baseline_ >= 0) and model.baseline_[2] < 1e-8
    # nothing observed excites a code that never occurs (column 2, its own effect, is not identified by the data:
    # the nuclear penalty's singular-value shrinkage may leave small values there)
    assert np.abs(model.adjacency_[2, :2]).max() < 1e-5
    assert model.baseline_[:2].min() > 0.05
    assert np.isfinite(model.score(data))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_matches_cpu(small_data: Sequences, fitted: HawkesExpKernel) -> None:
    gpu = HawkesExpKernel(decay=2.0, device="cuda").fit(small_data)
    np.testing.assert_allclose(gpu.adjacency_, fitted.adjacency_, atol=1e-6)


def test_dense_and_sparse_em_paths_agree(small_data: Sequences, fitted: HawkesExpKernel,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import pathways.models.hawkes.design as design_module

    tensors = _Tensors(build_design(small_data), torch.device("cpu"))
    x, _ = tensors.values(torch.tensor([2.0], dtype=torch.float64))
    assert design_module._DenseBlocks.maybe(tensors, x) is not None  # few codes, long sequences: the dense path
    assert design_module._DenseBlocks.maybe(tensors, x[:10]) is None  # a sparse design stays sparse
    import pathways.models.hawkes.newton as newton_module

    monkeypatch.setattr(newton_module, "ENABLED", False)  # the same EM maps on both paths
    dense = HawkesExpKernel(decay=2.0).fit(small_data)
    monkeypatch.setattr(design_module, "_DENSE_MAX", 0)  # force the entry-wise path
    sparse = HawkesExpKernel(decay=2.0).fit(small_data)
    np.testing.assert_allclose(sparse.adjacency_, dense.adjacency_, rtol=1e-9, atol=1e-12)
    assert sparse.n_iter_ == dense.n_iter_


def test_newton_matches_em_and_converges_further(small_data: Sequences, fitted: HawkesExpKernel,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import pathways.models.hawkes.newton as newton_module

    newton = [h for h in fitted.history_ if h["stage"] == "newton"]
    assert newton and fitted.converged_  # the default on dense blocks: projected Newton
    objective = [h["objective"] for h in newton]
    assert all(b <= a for a, b in zip(objective, objective[1:]))  # monotone
    monkeypatch.setattr(newton_module, "ENABLED", False)
    em = HawkesExpKernel(decay=2.0).fit(small_data)
    em_objective = [h["objective"] for h in em.history_ if h["stage"] == "em"]
    assert objective[-1] <= em_objective[-1] + 1e-12  # at least as converged as SQUAREM EM
    assert len(newton) < len(em_objective)
    np.testing.assert_allclose(fitted.adjacency_, em.adjacency_, atol=1e-4)
    np.testing.assert_allclose(fitted.baseline_, em.baseline_, rtol=1e-4)
    monkeypatch.setattr(newton_module, "ENABLED", True)
    monkeypatch.setattr(newton_module, "MAX_PARAMS", 2)  # too many parameters per code: EM again
    capped = HawkesExpKernel(decay=2.0).fit(small_data)
    assert {h["stage"] for h in capped.history_} >= {"em"} and "newton" not in {h["stage"] for h in capped.history_}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_pair_construction_equals_the_general_one(seed):
    """_dense_pairs (cumulative counts) and _sparse_pairs (binary searches) give identical arrays and order,
    with tied times, several sequences, an empty sequence and codes absent from some sequences."""
    from pathways.encode import Sequences
    from pathways.models.hawkes import design as hx
    from pathways.utils import segment_ids

    gen = np.random.default_rng(seed)
    lengths = np.array([0, 40, 7, 60, 1])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    times = np.concatenate([np.sort(np.round(gen.uniform(0, 10, k), 1)) for k in lengths])  # rounding -> ties
    marks = gen.integers(0, 4, offsets[-1])
    marks[offsets[2]:offsets[3]] = 0  # a sequence with a single code
    seqs = Sequences(times, marks, offsets, np.zeros(5), np.full(5, 10.0), 5)
    n, seq = seqs.n_events, segment_ids(seqs.offsets)
    new = np.ones(n, dtype=bool)
    new[1:] = (seq[1:] != seq[:-1]) | (times[1:] != times[:-1])
    group_first = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    order = np.lexsort((np.arange(n), marks, seq))
    s_seq, s_code = seq[order], marks[order]
    s_new = np.ones(n, dtype=bool)
    s_new[1:] = (s_seq[1:] != s_seq[:-1]) | (s_code[1:] != s_code[:-1])
    stream_start = np.flatnonzero(s_new)
    seq_streams = hx.offsets_from_sorted(s_seq[stream_start], len(seqs))
    reps = np.diff(seq_streams)[seq]
    dense = hx._dense_pairs(seqs, seq, group_first, s_code, stream_start, seq_streams)
    sparse = hx._sparse_pairs(seq, group_first, order, s_code, stream_start, seq_streams, reps, max_pairs=13)
    for a, b in zip(dense, sparse):
        np.testing.assert_array_equal(a, b)
    assert dense[0].size > 0


@pytest.mark.parametrize("decays", [[1.3], [0.4, 2.5]])
def test_direct_dense_blocks_equal_the_blocks_of_the_entries(decays):
    """Blocks built straight from the dense index (a plain fit never makes the N·D entries) equal the blocks
    scattered from the entry values, with tied times, several sequences, an empty one and absent codes."""
    from pathways.encode import Sequences

    gen = np.random.default_rng(3)
    lengths = np.array([0, 40, 7, 60, 1])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    times = np.concatenate([np.sort(np.round(gen.uniform(0, 10, k), 1)) for k in lengths])  # rounding -> ties
    marks = gen.integers(0, 4, offsets[-1])
    marks[offsets[2]:offsets[3]] = 0  # a sequence with a single code
    seqs = Sequences(times, marks, offsets, np.zeros(5), np.full(5, 10.0), 4)
    beta = torch.tensor(decays, dtype=torch.float64)
    direct_t = _Tensors(build_design(seqs), torch.device("cpu"))
    assert direct_t.design.dense is not None and direct_t.design.entries is None
    direct = direct_t.dense_blocks(beta)
    assert direct_t.design.entries is None  # the blocks needed no entries
    entry_t = _Tensors(build_design(seqs), torch.device("cpu"))
    x, _ = entry_t.values(beta)
    scattered = design_module_blocks(entry_t, x)
    for r1, r2 in zip(direct.rows, scattered.rows):
        np.testing.assert_array_equal(r1.numpy(), r2.numpy())
    for b1, b2 in zip(direct.blocks, scattered.blocks):
        np.testing.assert_allclose(b1.numpy(), b2.numpy(), rtol=1e-13, atol=0)
    q1, b1 = least_squares_stats(direct_t, np.array(decays))
    entry_t.design.dense = None  # same design (entries made above), statistics through the entries
    q2, b2 = least_squares_stats(entry_t, np.array(decays))
    np.testing.assert_allclose(q1.numpy(), q2.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b1.numpy(), b2.numpy(), rtol=1e-12)


def design_module_blocks(tensors, x):
    from pathways.models.hawkes.design import _DenseBlocks

    return _DenseBlocks(tensors, x)

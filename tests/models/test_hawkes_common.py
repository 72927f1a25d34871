"""The common face of every Hawkes learner (HawkesBase): score, kernels, intensity, simulation, diagnostics."""
from __future__ import annotations

import numpy as np
import pytest

from pathways.encode.sequences import Sequences
from pathways.errors import PathwaysInputError
from pathways.models.hawkes import HawkesExpKernel, HawkesIntervals, HawkesSumExpKernel
from pathways.synthetic.hawkes import simulate_hawkes

ADJ = np.array([[0.3, 0.0], [0.4, 0.2]])
MU = np.array([0.2, 0.1])


def _learners() -> list:
    learners = [HawkesExpKernel(decay=1.0), HawkesSumExpKernel(decays=[0.5, 2.0])]
    try:
        from pathways.models.hawkes import HawkesEM
    except ImportError:
        return learners
    return learners + [HawkesEM(kernel_support=8.0, n_bins=8)]


@pytest.fixture(scope="module")
def data() -> Sequences:
    return simulate_hawkes(MU, ADJ, start=np.arange(40.0), end=np.arange(40.0) + 300.0, decays=1.0, seed=0)


@pytest.fixture(scope="module", params=_learners(), ids=lambda m: type(m).__name__)
def model(request, data: Sequences):
    return request.param.fit(data)


def test_score_is_the_log_likelihood_per_event(model, data: Sequences) -> None:
    assert model.score(data) == pytest.approx(model.log_likelihood(data) / data.n_events, rel=1e-12)
    assert np.isfinite(model.score(data))
    assert model.codes_.tolist() == ["0", "1"]
    np.testing.assert_allclose(model.adjacency_, ADJ, atol=0.12)


def test_intensity_at_events_matches_the_likelihood_terms(model, data: Sequences) -> None:
    one = data[0]
    base = model._sequence_baselines(one, None)
    at_events = model._event_intensities(one, base)
    grid = model.intensity(one, one.times)  # history strictly before each query time
    np.testing.assert_allclose(grid[np.arange(one.n_events), one.marks], at_events, rtol=1e-9)
    before = model.intensity(one, np.array([one.start[0]]))
    np.testing.assert_allclose(before[0], model.baseline_, rtol=1e-12)


def test_kernels_norms_and_supports(model) -> None:
    norms = model.get_kernel_norms()
    np.testing.assert_allclose(norms, model.adjacency_)
    assert model.get_kernel_supports().shape == (2, 2)
    support = float(np.max(np.where(np.isfinite(model.get_kernel_supports()), model.get_kernel_supports(), 50.0)))
    t = np.linspace(1e-6, support, 20001)
    integral = np.trapezoid(model.get_kernel_values(1, 0, t), t)
    assert integral == pytest.approx(norms[1, 0], rel=0.02, abs=1e-3)
    assert model.get_kernel_values("1", "0", np.array([-1.0, 0.0])).tolist() == [0.0, 0.0]


def test_simulate_is_seeded_and_coded_like_the_fit(model) -> None:
    a, b = model.simulate(200.0, n=5, seed=3), model.simulate(200.0, n=5, seed=3)
    assert len(a) == 5 and a.n_codes == 2
    np.testing.assert_array_equal(a.times, b.times)
    assert np.all((a.times >= 0) & (a.times <= 200.0))


def test_goodness_of_fit_separates_right_and_wrong_models(model, data: Sequences) -> None:
    good = model.goodness_of_fit(data)
    assert list(good.columns) == ["code", "n_events", "ks_statistic", "p_value"]
    assert good["n_events"].sum() == data.n_events
    assert good["p_value"].min() > 1e-3
    poisson = HawkesExpKernel(decay=1.0).fit(data)
    poisson.component_adjacency_ = np.zeros_like(poisson.component_adjacency_)
    poisson.adjacency_ = np.zeros((2, 2))
    poisson.baseline_ = np.bincount(data.marks) / np.sum(data.end - data.start)
    assert poisson.goodness_of_fit(data)["p_value"].max() < 1e-6


@pytest.mark.parametrize("method", ["fisher", "bootstrap"])
def test_confidence_intervals_bracket_estimates_and_truth(model, data: Sequences, method: str) -> None:
    ci = model.confidence_intervals(data, method=method, alpha=0.05, n_boot=8, seed=0)
    assert isinstance(ci, HawkesIntervals) and ci.method == method
    assert ci.adjacency_low.shape == ci.adjacency_high.shape == (2, 2)
    assert np.all(ci.adjacency_low <= ci.adjacency_high) and np.all(ci.baseline_low <= ci.baseline_high)
    if method == "fisher":
        assert np.all(ci.adjacency_low <= model.adjacency_ + 1e-12)
        assert np.all(model.adjacency_ <= ci.adjacency_high + 1e-12)
    frame = ci.to_frame(model.adjacency_)
    assert list(frame.columns[:6]) == ["source", "target", "effect", "ci_low", "ci_high", "method"]
    assert len(frame) == 4


def test_fisher_intervals_cover_the_truth_for_edges(data: Sequences) -> None:
    model = HawkesExpKernel(decay=1.0).fit(data)
    ci = model.confidence_intervals(data, method="fisher", alpha=0.01)
    edges = ADJ > 0
    assert np.all(ci.adjacency_low[edges] <= ADJ[edges]) and np.all(ADJ[edges] <= ci.adjacency_high[edges])


def test_bad_input_for_the_common_face(model, data: Sequences) -> None:
    with pytest.raises(PathwaysInputError, match="one sequence"):
        model.intensity(data[np.arange(2)], np.array([1.0]))
    with pytest.raises(PathwaysInputError, match="alpha"):
        model.confidence_intervals(data, alpha=1.5)
    with pytest.raises(PathwaysInputError, match="method"):
        model.confidence_intervals(data, method="jackknife")
    with pytest.raises(PathwaysInputError, match="at least 2"):
        model.confidence_intervals(data[np.arange(1)], method="bootstrap")
    with pytest.raises(PathwaysInputError, match="end_time"):
        model.simulate(-1.0)
    with pytest.raises(PathwaysInputError, match="unseen"):
        model.get_kernel_values("9", "0", np.ones(2))
    with pytest.raises(PathwaysInputError, match="t: 1 NaN lag"):
        model.get_kernel_values("0", "0", np.array([1.0, np.nan]))
    with pytest.raises(PathwaysInputError, match="data"):
        model.score({"times": [1.0]})


def test_goodness_of_fit_accepts_the_true_model_on_many_short_windows():
    """Chained rescaled windows keep the KS test exact: short windows do not bias it (they did when cut-off gaps
    were dropped)."""
    from pathways.models.hawkes import HawkesExpKernel
    from pathways.synthetic import simulate_hawkes

    mu = np.array([0.3, 0.2])
    adj = np.array([[0.3, 0.1], [0.4, 0.2]])
    seqs = simulate_hawkes(mu, adj, decays=1.0, end=20.0, n_sequences=300, seed=11)
    model = HawkesExpKernel(decay=1.0).fit(seqs)
    model.baseline_, model.adjacency_, model.component_adjacency_ = mu, adj, adj[None]  # the true parameters
    gof = model.goodness_of_fit(seqs)
    assert (gof["p_value"] > 0.01).all(), gof
    model.adjacency_, model.component_adjacency_ = np.zeros((2, 2)), np.zeros((1, 2, 2))  # wrong: no excitation
    assert (model.goodness_of_fit(seqs)["p_value"] < 1e-6).all()


def test_model_protocol_score_samples_log_likelihood_and_factors(model, data: Sequences) -> None:
    from pathways.data.tables import FACTOR_COLUMNS
    from pathways.models.base import NotFittedError

    per_seq = model.score_samples(data)
    assert per_seq.dtype == np.float64 and per_seq.shape == (len(data),)
    # the per-sequence values add up to the total, computed independently from the likelihood terms
    seqs, base = model._prepared(data)
    lam = model._event_intensities(seqs, base)
    _, total = model._compensators(seqs, base)
    ref = np.array([np.log(lam[data.offsets[p]:data.offsets[p + 1]]).sum() - total[p].sum()
                    for p in range(len(data))])
    np.testing.assert_allclose(per_seq, ref, rtol=1e-10)
    assert model.log_likelihood(data) == pytest.approx(per_seq.sum(), rel=1e-12)
    factors = model.to_factors()
    assert list(factors.columns[:len(FACTOR_COLUMNS)]) == list(FACTOR_COLUMNS)
    row = factors[(factors["source"] == "0") & (factors["target"] == "1")]
    assert float(row["effect"].iloc[0]) == pytest.approx(model.adjacency_[1, 0])
    assert factors["lag_days"].isna().all() and factors["ci_low"].isna().all()
    model.check_fitted()
    with pytest.raises(NotFittedError):
        type(model)().check_fitted()
    assert type(model)().fit(data, validation=data[0]).adjacency_.shape == (2, 2)


def test_to_factors_reports_kept_intervals(data: Sequences) -> None:
    fitted = HawkesExpKernel(decay=1.0).fit(data)
    fitted.confidence_intervals_ = fitted.confidence_intervals(data, method="fisher")
    factors = fitted.to_factors(data)
    assert (factors["ci_low"] <= factors["effect"] + 1e-12).all() and (factors["ci_high"] >= factors["effect"]).all()

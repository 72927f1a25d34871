"""excitation_graph / top_drivers: factors-table shape, exact excess events, intervals, lag rows, drivers."""
from __future__ import annotations

import numpy as np
import pytest

from pathways.errors import PathwaysInputError
from pathways.factors import FACTOR_COLUMNS
from pathways.factors.graph import excitation_graph, top_drivers
from pathways.models import HawkesEM, HawkesExpKernel
from pathways.synthetic import simulate_hawkes

# code 0 drives 1 strongly, 0 and 1 drive 2, 2 excites itself a little
TRUE_ADJACENCY = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.2, 0.3, 0.1]])
MU = np.array([0.4, 0.2, 0.2])


@pytest.fixture(scope="module")
def seqs():
    return simulate_hawkes(MU, TRUE_ADJACENCY, end=200.0, n_sequences=60, decays=1.0, seed=0)


@pytest.fixture(scope="module")
def em_model(seqs):
    return HawkesEM(kernel_support=6.0, n_bins=12, max_iter=400, tol=1e-8).fit(seqs)


@pytest.fixture(scope="module")
def em_graph(em_model, seqs):
    return excitation_graph(em_model, data=seqs, alpha=0.01)


def test_table_shape_and_values(em_graph, em_model):
    assert list(em_graph.columns[:7]) == list(FACTOR_COLUMNS)
    assert {"weight", "expected_excess_events", "significant"} <= set(em_graph.columns)
    assert len(em_graph) == 9 and em_graph["lag_days"].isna().all()
    assert (em_graph["method"] == "HawkesEM").all() and (em_graph["ci_method"] == "fisher").all()
    assert np.all(np.diff(em_graph["effect"].to_numpy()) <= 0)
    for row in em_graph.itertuples():
        assert row.effect == em_model.adjacency_[int(row.target), int(row.source)]
    assert em_graph.iloc[0][["source", "target"]].tolist() == ["0", "1"]


def test_intervals_flag_the_true_edges(em_graph):
    truth = TRUE_ADJACENCY[em_graph["target"].astype(int), em_graph["source"].astype(int)]
    strong = truth >= 0.2
    assert em_graph["significant"][strong].all()
    assert ((em_graph["ci_low"] <= truth) & (truth <= em_graph["ci_high"]))[strong].all()
    assert em_graph["significant"].sum() <= strong.sum() + 1


def test_excess_events_are_exact_and_close_the_compensator(em_graph, em_model, seqs):
    # naive: sum over source events of the kernel integrated up to the window end
    sub = seqs[:5]
    graph = excitation_graph(em_model, data=sub, intervals=em_model.confidence_intervals(seqs, method="fisher"))
    edges, kernel = em_model.kernel_edges_, em_model.kernel_
    expect = np.zeros((3, 3))
    for p in range(len(sub)):
        lo, hi = sub.offsets[p], sub.offsets[p + 1]
        for t, j in zip(sub.times[lo:hi], sub.marks[lo:hi]):
            widths = np.clip(sub.end[p] - t - edges[:-1], 0.0, np.diff(edges))
            expect[:, j] += kernel[:, j] @ widths
    got = graph.set_index(["target", "source"])["expected_excess_events"]
    for i in range(3):
        for j in range(3):
            assert got[(str(i), str(j))] == pytest.approx(expect[i, j], rel=1e-10, abs=1e-12)
    # at the likelihood maximum each code's compensator equals its event count: baseline share + sum of weights = 1
    counts = np.bincount(seqs.marks, minlength=3)
    weights = em_graph.pivot(index="target", columns="source", values="weight").to_numpy()
    baseline_share = em_model.baseline_ * np.sum(seqs.end - seqs.start) / counts
    np.testing.assert_allclose(weights.sum(axis=1) + baseline_share, 1.0, atol=1e-4)


def test_without_data_weights_are_stationary_shares(em_model):
    graph = excitation_graph(em_model)
    assert graph["ci_low"].isna().all() and graph["expected_excess_events"].isna().all()
    assert not graph["significant"].any()
    a, mu = em_model.adjacency_, em_model.baseline_
    rates = np.linalg.solve(np.eye(3) - a, mu)
    row = graph[(graph["source"] == "0") & (graph["target"] == "1")].iloc[0]
    assert row["weight"] == pytest.approx(a[1, 0] * rates[0] / rates[1], rel=1e-12)


def test_lag_rows_exact_for_step_kernels_and_integrated_for_exponentials(em_model, seqs):
    graph = excitation_graph(em_model, lag_edges="model", min_effect=0.2, include_self=False)
    whole, lags = graph[graph["lag_days"].isna()], graph[graph["lag_days"].notna()]
    assert len(whole) == 3 and len(lags) == 3 * 12
    widths = np.diff(em_model.kernel_edges_)
    first = lags[(lags["source"] == "0") & (lags["target"] == "1")]
    np.testing.assert_allclose(first["effect"], em_model.kernel_[1, 0] * widths, rtol=1e-10)
    np.testing.assert_allclose(first["lag_days"], em_model.kernel_edges_[:-1] + widths / 2)
    exp_model = HawkesExpKernel(decay=1.0).fit(seqs)
    edges = np.array([0.0, 1.0, 2.0, 5.0])
    rows = excitation_graph(exp_model, lag_edges=edges)
    lag01 = rows[(rows["source"] == "0") & (rows["target"] == "1") & rows["lag_days"].notna()]
    a = exp_model.adjacency_[1, 0]
    np.testing.assert_allclose(lag01["effect"], a * (np.exp(-edges[:-1]) - np.exp(-edges[1:])), rtol=1e-5)


def test_filters(em_model):
    graph = excitation_graph(em_model, min_effect=0.15, include_self=False)
    assert (graph["effect"] > 0.15).all() and (graph["source"] != graph["target"]).all()
    assert set(zip(graph["source"], graph["target"])) == {("0", "1"), ("1", "2"), ("0", "2")}


def test_top_drivers(em_graph):
    drivers = top_drivers(em_graph, "2", k=5)
    assert drivers["source"].tolist()[:2] == ["1", "0"]  # ranked by excess events; self-excitation excluded
    assert "2" not in drivers["source"].tolist()
    assert np.all(np.diff(drivers["expected_excess_events"].to_numpy()) <= 0)
    assert top_drivers(em_graph, 2, k=1)["source"].tolist() == ["1"]
    assert top_drivers(em_graph, "1", significant_only=True)["source"].tolist() == ["0"]


def test_bootstrap_intervals_are_passed_through(em_model, seqs):
    intervals = em_model.confidence_intervals(seqs[:20], method="bootstrap", n_boot=5, seed=1)
    graph = excitation_graph(em_model, intervals=intervals)
    assert (graph["ci_method"] == "bootstrap").all()
    row = graph[(graph["source"] == "0") & (graph["target"] == "1")].iloc[0]
    assert row["ci_low"] == intervals.adjacency_low[1, 0] and row["ci_high"] == intervals.adjacency_high[1, 0]


def test_bad_input(em_graph, em_model, seqs):
    with pytest.raises(PathwaysInputError, match="adjacency_"):
        excitation_graph(HawkesEM())
    with pytest.raises(PathwaysInputError, match="alpha"):
        excitation_graph(em_model, alpha=1.5)
    with pytest.raises(PathwaysInputError, match="lag_edges"):
        excitation_graph(em_model, lag_edges=[0.0, 2.0, 1.0])
    with pytest.raises(PathwaysInputError, match="lag_edges"):
        excitation_graph(HawkesExpKernel(decay=1.0).fit(seqs[:5]), lag_edges="model")
    with pytest.raises(PathwaysInputError, match="target"):
        top_drivers(em_graph, "Z99")
    with pytest.raises(PathwaysInputError, match="k"):
        top_drivers(em_graph, "1", k=0)
    with pytest.raises(PathwaysInputError, match="column"):
        top_drivers(em_graph.drop(columns="expected_excess_events"), "1")

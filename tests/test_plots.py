"""Figures: every plot function takes ax=, and each figure draws what it should (counted on the axes, Agg canvas)."""
from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib", reason="optional matplotlib (pathways[plot]) not installed")

from pathways import plots
from pathways.cartography import figures as cartography_figures
from pathways.errors import PathwaysInputError
from pathways.factors.graph import effect_lags, excitation_graph
from pathways.models.hawkes import HawkesEM, HawkesExpKernel
from pathways.studies import plots as study_plots
from pathways.synthetic import simulate_hawkes

ADJ = np.array([[0.3, 0.0, 0.0], [0.5, 0.2, 0.0], [0.0, 0.4, 0.0]])


@pytest.fixture(scope="module")
def fitted():
    seqs = simulate_hawkes(np.array([0.2, 0.1, 0.1]), ADJ, end=60.0, n_sequences=40, seed=1)
    model = HawkesExpKernel(decay=0.5).fit(seqs)
    return model, seqs, model.confidence_intervals(seqs, method="fisher")


def _axes(n: int = 1):
    fig = plots._figure(4.0 * n, 3.0)
    return fig, [fig.add_subplot(1, n, i + 1) for i in range(n)]


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts] + [t.get_text() for t in ax.get_yticklabels()]


def test_every_plot_function_takes_ax():
    for module in (plots, study_plots, cartography_figures):
        functions = [f for name, f in vars(module).items() if name.startswith("plot_") and callable(f)]
        assert len(functions) >= 4
        for function in functions:
            assert "ax" in inspect.signature(function).parameters, function.__name__


def test_heatmap_and_training_curve_draw_on_the_given_axes():
    fig, (left, right) = _axes(2)
    out = plots.plot_excitation_heatmap(ADJ, ["a", "b", "c"], ax=left)
    assert out is fig and len(left.images) == 1 and len(left.get_xticklabels()) == 3
    plots.plot_training_curve([{"epoch": i, "loss": 1.0 / (i + 1), "lr": 0.1} for i in range(4)], ax=right)
    assert [line.get_label() for line in right.lines] == ["loss"] and len(right.lines[0].get_xdata()) == 4


def test_top_drivers_split_cross_effects_from_renewals():
    factors = pd.DataFrame({"source": ["a", "a", "b", "b"], "target": ["a", "b", "b", "a"],
                            "effect": [0.9, 0.3, 0.8, np.nan], "ci_low": [0.5, 0.1, 0.4, np.nan],
                            "ci_high": [1.2, 0.5, 1.1, np.nan], "lag_95": [6.0, 12.0, 6.0, 6.0],
                            "source_label": ["aspirin", "aspirin", "", ""], "target_label": ["aspirin", "", "", "aspirin"]})
    _fig, (cross, renewals) = _axes(2)
    plots.plot_top_drivers(factors, kind="cross", ax=cross)
    plots.plot_top_drivers(factors, kind="self", ax=renewals)
    assert len(cross.patches) == 1 and len(renewals.patches) == 2  # the NaN (suppressed) edge is left out
    assert "a aspirin → b" in _texts(cross) and "95 % within 12 d" in _texts(cross)
    assert set(_texts(renewals)) >= {"a aspirin", "b"}
    assert "extra target events per source event" in cross.get_xlabel()
    with pytest.raises(PathwaysInputError, match="kind"):
        plots.plot_top_drivers(factors, kind="other")


def test_excitation_graph_draws_the_strongest_cross_effects(fitted):
    model, _, ci = fitted
    graph = excitation_graph(model, intervals=ci)
    _fig, (ax,) = _axes()
    plots.plot_excitation_graph(graph, k=2, labels={"0": "first code"}, ax=ax)
    arrows = [p for p in ax.patches if type(p).__name__ == "FancyArrowPatch"]
    assert len(arrows) == 2
    nodes = sum(len(c.get_offsets()) for c in ax.collections)
    shown = {t.get_text().split("\n")[0] for t in ax.texts if t.get_text() and "ring" not in t.get_text()}
    cross = graph[graph["source"] != graph["target"]].nlargest(2, "effect")
    assert shown == set(cross["source"]) | set(cross["target"]) and nodes == len(shown)
    assert any("first code" in t.get_text() for t in ax.texts) or "0" not in shown
    _empty_fig, (empty,) = _axes()
    plots.plot_excitation_graph(graph[graph["source"] == graph["target"]], ax=empty)
    assert empty.texts[0].get_text() == "no cross-effect to draw"


def test_time_rescaling_qq_curves_and_small_codes_left_out(fitted):
    model, seqs, _ = fitted
    residuals = model.residuals(seqs)
    counts = np.bincount(residuals.marks)
    _fig, (ax,) = _axes()
    plots.plot_time_rescaling_qq(residuals, ["a", "b", "c"], min_count=int(counts.min()) + 1, ax=ax)
    # the diagonal, the pooled curve, and one curve per code with enough events
    assert len(ax.lines) == 2 + int((counts >= counts.min() + 1).sum())
    pooled = ax.lines[1].get_ydata()
    assert len(pooled) == residuals.uniform.size and np.all(np.diff(pooled) >= 0)
    assert f"all events (n={residuals.uniform.size})" in [t.get_text() for t in ax.get_legend().texts]


def test_null_calibration_fits_the_null_on_controls():
    rng = np.random.default_rng(0)
    se = rng.uniform(0.1, 0.4, 30)
    frame = pd.DataFrame({"estimate": np.exp(rng.normal(0.3, 0.1, 30) + rng.normal(0, se)), "se_log": se,
                          "negative_control": [True] * 25 + [False] * 5})
    _fig, (with_null, without) = _axes(2)
    plots.plot_null_calibration(frame, ax=with_null)
    offsets = [len(c.get_offsets()) for c in with_null.collections]
    assert offsets[:2] == [25, 5]
    legend = [t.get_text() for t in with_null.get_legend().texts]
    assert any(t.startswith("calibrated p = 0.05 (null μ=0.3") for t in legend)
    plots.plot_null_calibration(frame.iloc[22:], ax=without)  # 3 controls: too few to fit a null
    assert not any(t.startswith("calibrated") for t in [t.get_text() for t in without.get_legend().texts])
    _fig2, (hr,) = _axes()
    study = pd.DataFrame({"log_hr": np.log(frame["estimate"]), "se_log_hr": se,
                          "negative_control": frame["negative_control"]})
    study_plots.plot_calibration(study, None, ax=hr)
    assert [len(c.get_offsets()) for c in hr.collections][:2] == [25, 5]


def test_intensity_marks_the_events_of_one_sequence(fitted):
    model, seqs, _ = fitted
    _fig, (ax,) = _axes()
    plots.plot_intensity(model, seqs, 3, codes=["1"], ax=ax)
    one = seqs[[3]]
    curve, ticks = ax.lines[0], ax.lines[1]
    assert curve.get_label() == "1" and len(ticks.get_xdata()) == int((one.marks == 1).sum())
    assert ax.get_xlim() == pytest.approx((0.0, float(one.end[0] - one.start[0])))
    # the drawn curve is the model's intensity on the grid
    t = np.asarray(curve.get_xdata()) + float(one.start[0])
    assert np.allclose(curve.get_ydata(), model.intensity(one, t)[:, 1])
    with pytest.raises(PathwaysInputError, match="index"):
        plots.plot_intensity(model, seqs, len(seqs))


def test_kernels_with_their_interval_band(fitted):
    model, _, ci = fitted
    _fig, axes = _axes(2)
    plots.plot_kernels(model, [("0", "1"), ("1", "2")], intervals=ci, ax=axes)
    for ax, (j, i) in zip(axes, [(0, 1), (1, 2)]):
        lags, phi = ax.lines[0].get_xdata(), ax.lines[0].get_ydata()
        assert np.allclose(phi, model.get_kernel_values(i, j, lags))
        band = ax.collections[0].get_paths()[0].vertices[:, 1]
        ratio = ci.adjacency_high[i, j] / model.adjacency_[i, j]
        assert band.max() == pytest.approx(phi.max() * ratio, rel=1e-6)
    with pytest.raises(PathwaysInputError, match="axes"):
        plots.plot_kernels(model, [("0", "1"), ("1", "2")], ax=axes[0])


def test_relative_incidence_and_signals_on_given_axes():
    curves = pd.DataFrame({"exposure": ["d1"] * 2 + ["d2"] * 2, "outcome": "o", "lag_start": [0, 7, 0, 7],
                           "lag_end": [7, 14, 7, 14], "ri": [2.0, 1.2, 1.0, 0.9], "ci_low": [1.5, 0.9, 0.7, 0.6],
                           "ci_high": [2.5, 1.5, 1.3, 1.2]})
    _fig, axes = _axes(2)
    plots.plot_relative_incidence(curves, ax=axes)
    assert [a.get_title() for a in axes] == ["d1 → o", "d2 → o"] and all(len(a.lines) == 4 for a in axes)
    signals = pd.DataFrame({"exposure": ["d1", "d2"], "outcome": ["o", "o"], "method": "SCCS",
                            "estimate": [2.0, 0.9], "exposure_label": ["drug one", ""], "flag": [True, False]})
    _sfig, (ax,) = _axes()
    plots.plot_signals(signals, ax=ax)
    assert "d1 drug one → o (SCCS)" in _texts(ax)


def test_effect_lags_exponential_and_step_kernels(fitted):
    model, seqs, _ = fitted
    lags = effect_lags(model, (0.5, 0.95))
    positive = model.adjacency_ > 0
    assert np.allclose(lags[positive, 0], np.log(2) / 0.5, rtol=5e-3)  # linear inside ~3 % wide lag bins
    assert np.allclose(lags[positive, 1], np.log(20) / 0.5, rtol=5e-3)
    em = HawkesEM(kernel_support=8.0, n_bins=4).fit(seqs)
    step = effect_lags(em, (0.5, 0.95))
    ok = em.adjacency_ > 0
    assert np.all((step[ok] > 0) & (step[ok] <= 8.0)) and np.all(step[ok, 0] <= step[ok, 1])
    # check one against the step kernel itself: the mass up to the median lag is half the effect
    i, j = np.argwhere(ok)[0]
    grid = np.linspace(0, step[i, j, 0], 4001)[1:]
    mass = em.get_kernel_values(i, j, grid).sum() * step[i, j, 0] / 4000
    assert mass == pytest.approx(0.5 * em.adjacency_[i, j], rel=0.02)
    with pytest.raises(PathwaysInputError, match="quantiles"):
        effect_lags(model, (1.5,))


def test_surveillance_timeline_on_given_axes():
    from pathways.signals.surveillance import plot_timeline

    looks = pd.DataFrame({"exposure": "d", "outcome": "o", "date": pd.date_range("2020-03-31", periods=4, freq="QE"),
                          "estimate": [1.2, 1.5, 1.9, 2.1], "llr": [0.1, 0.8, 2.0, 3.5], "llr_threshold": 3.0})
    assert "ax" in inspect.signature(plot_timeline).parameters
    fig, axes = _axes(2)
    assert plot_timeline(looks, "d", "o", ax=axes) is fig
    assert len(axes[0].lines) == 2 and len(axes[1].lines) == 2  # estimate + the no-effect line; LLR + threshold
    assert list(axes[1].lines[0].get_ydata()) == [0.1, 0.8, 2.0, 3.5]
    with pytest.raises(PathwaysInputError, match="not in the surveillance table"):
        plot_timeline(looks, "d", "other")

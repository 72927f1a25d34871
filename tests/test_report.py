"""Reports: small-count suppression, code counts, report folder, figures, sweep result collection."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pathways.encode import Sequences
from pathways.errors import PathwaysInputError
from pathways.models.hawkes import HawkesExpKernel
from pathways.pipelines.report import code_counts, suppress_small_counts, write_report
from pathways.pipelines.sweep import SUMMARY_FILE, collect_results


def _factors() -> pd.DataFrame:
    return pd.DataFrame({"source": ["a", "b", "a", "b"], "target": ["a", "a", "b", "b"], "lag_days": np.nan,
                         "effect": [0.1, 0.5, 0.2, 0.0], "ci_low": [0.0, 0.3, 0.1, 0.0],
                         "ci_high": [0.2, 0.7, 0.3, 0.1], "method": "hawkes",
                         "n_source_events": [50, 4, 50, 4], "n_target_events": [50, 50, 4, 4]})


def test_suppression_blanks_small_counts_and_their_estimates():
    out = suppress_small_counts(_factors(), 10)
    assert out["suppressed"].tolist() == [False, True, True, True]
    assert np.isnan(out.loc[1, "effect"]) and np.isnan(out.loc[1, "n_source_events"])
    assert out.loc[0, "effect"] == 0.1 and out.loc[0, "n_source_events"] == 50
    zeros = suppress_small_counts(pd.DataFrame({"n": [0, 3], "estimate": [1.0, 2.0]}), 5)
    assert zeros["suppressed"].tolist() == [False, True]  # an empty cell discloses nothing
    assert not suppress_small_counts(_factors(), None)["suppressed"].any()
    with pytest.raises(PathwaysInputError, match="min_cell_count"):
        suppress_small_counts(_factors(), 0)


def test_code_counts_from_sequences():
    seqs = Sequences(np.array([1.0, 2.0, 3.0, 1.0]), np.array([0, 0, 1, 1]), np.array([0, 3, 4]),
                     np.zeros(2), np.full(2, 5.0), 2)
    counts = code_counts(seqs, codes=["x", "y"])
    assert counts["n_events"].tolist() == [2, 2] and counts["n_patients"].tolist() == [1, 2]


def test_write_report_files_and_suppressed_heatmap(tmp_path):
    pytest.importorskip("matplotlib", reason="optional matplotlib (pathways[plot]) not installed")

    hawkes = HawkesExpKernel()  # the learned attributes a report reads, set by hand (no fit needed)
    hawkes.adjacency_ = np.array([[0.1, 0.5], [0.2, 0.0]])
    hawkes.codes_ = np.array(["a", "b"], dtype=object)

    history = [{"iteration": i, "objective": 1.0 / (i + 1)} for i in range(5)]
    report = write_report(tmp_path, title="t", model=hawkes, metrics={"ll": -1.0, "n": np.int64(3)},
                          history=history, factors=_factors(), min_cell_count=10, top_k=3)
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"ll": -1.0, "n": 3}
    for key in ("factors", "excitation_heatmap", "top_drivers", "training_curve", "report"):
        assert report.files[key].is_file() and report.files[key].stat().st_size > 0
    text = report.markdown.read_text()
    assert "counts below 10 are hidden" in text and "| a | 0.1 |" in text  # a's renewal; other rows suppressed
    written = pd.read_csv(report.files["factors"])
    assert written["suppressed"].sum() == 3


def test_collect_results_one_row_per_run(tmp_path):
    for i, (model, ll) in enumerate([("hawkes_exp", -5.0), ("thp", -4.5)]):
        run = tmp_path / str(i)
        run.mkdir()
        (run / SUMMARY_FILE).write_text(json.dumps({
            "status": "ok", "overrides": [f"model={model}", f"seed={i}"], "model": model.upper(),
            "checkpoint": f"{run}/model.pt", "metrics": {"test_loglik_per_event": ll}}))
    table = collect_results(tmp_path)
    assert table["model"].tolist() == ["hawkes_exp", "thp"] and table["seed"].tolist() == ["0", "1"]
    assert table["test_loglik_per_event"].tolist() == [-5.0, -4.5]
    assert (tmp_path / "results.csv").is_file() and "| run |" in (tmp_path / "results.md").read_text()

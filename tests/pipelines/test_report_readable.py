"""A report a clinician can read: labelled codes, cross-effects apart from renewals, units, few columns in
report.md with the full table in parquet, and the diagnostic figures."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pathways.encode.sequences import to_sequences
from pathways.models.hawkes import HawkesExpKernel
from pathways.pipelines.report import (
    code_counts,
    hawkes_factors,
    reader_factors,
    write_report,
)
from pathways.pipelines.report_figures import _intensity_sequence
from pathways.synthetic import simulate_cohort
from pathways.synthetic.codes import DIAGNOSES, DRUGS, OUTCOMES


@pytest.fixture(scope="module")
def run():
    log, _ = simulate_cohort(60, seed=0, n_drugs=4, n_diagnoses=3, n_acts=1, n_outcomes=2, n_strong=2, n_weak=1,
                             follow_up_years=(1.0, 2.0))
    seqs = to_sequences(log)
    model = HawkesExpKernel(decay=0.1).fit(seqs)
    counts = code_counts(seqs)
    return model, seqs, counts, hawkes_factors(model, counts, model.confidence_intervals(seqs, method="fisher"))


def test_report_reads_like_a_clinical_summary(run, tmp_path):
    pytest.importorskip("matplotlib", reason="optional matplotlib (pathways[plot]) not installed")
    model, seqs, counts, factors = run
    report = write_report(tmp_path, title="drivers", model=model, factors=factors, counts=counts, data=seqs,
                          top_k=5)
    for key in ("excitation_graph", "excitation_heatmap", "top_drivers", "kernels", "time_rescaling_qq",
                "intensity", "factors_parquet"):
        assert report.files[key].is_file() and report.files[key].stat().st_size > 0, key
    text = report.markdown.read_text()
    english = dict(DRUGS + DIAGNOSES + OUTCOMES)
    full = pd.read_parquet(report.files["factors_parquet"])
    cross = reader_factors(full, "cross", 5)
    top = factors[factors["source"] != factors["target"]].nlargest(1, "effect").iloc[0]
    driver = f"{top['source']} {english.get(top['source'], '')}".strip()
    target = f"{top['target']} {english.get(top['target'], '')}".strip()
    assert cross.iloc[0]["driver"] == driver and cross.iloc[0]["target"] == target
    assert f"| {driver} | {target} | {top['effect']:.4g} |" in text
    assert "## Top 5 cross-effects" in text and "## Self-excitation (renewals)" in text
    assert "expected number of extra target events directly triggered by one source event" in text
    cross_part = text.split("## Top 5 cross-effects")[1].split("## Self-excitation")[0]
    assert "| source |" not in cross_part and "method" not in cross_part  # the reader's columns only
    for row in cross.itertuples():
        assert row.driver.split()[0] != row.target.split()[0]  # renewals are kept apart
    # 95 % of an exponential kernel's effect within ln(20) / decay days
    assert cross["95 % within (days)"].to_numpy() == pytest.approx(np.log(20) / 0.1, rel=5e-3)
    assert len(full) == len(factors) and {"source_label", "target_label", "lag_95", "weight"} <= set(full.columns)
    assert full.loc[full["source"] == top["source"], "source_label"].iloc[0] == english.get(top["source"], "")
    csv = pd.read_csv(report.files["factors"])
    assert list(csv.columns[:7]) == ["source", "target", "lag_days", "effect", "ci_low", "ci_high", "method"]


def test_suppressed_report_shows_a_simulated_patient(run):
    model, seqs, _, _ = run
    residuals = model.residuals(seqs)
    simulated, title = _intensity_sequence(model, seqs, residuals, min_cell_count=10)
    assert "simulated" in title and len(simulated) == 1
    real, title = _intensity_sequence(model, seqs, residuals, min_cell_count=None)
    busy = np.sort(np.asarray(residuals.n_events)[np.asarray(residuals.n_events) >= 3])
    assert "median size" in title and real.n_events == busy[busy.size // 2]


def test_signal_report_labels_and_calibration_figure(tmp_path):
    pytest.importorskip("matplotlib", reason="optional matplotlib (pathways[plot]) not installed")
    rng = np.random.default_rng(0)
    n = 12
    signals = pd.DataFrame({"exposure": ["C03CA01"] * n, "outcome": ["E871"] * n, "method": "SCCS",
                            "estimate": np.exp(rng.normal(0.1, 0.2, n)), "se_log": rng.uniform(0.1, 0.3, n),
                            "ci_low": 0.5, "ci_high": 2.0, "negative_control": [True] * 8 + [False] * 4,
                            "rank": np.arange(1, n + 1), "flag": False, "n_exposed_events": 50,
                            "internal_note": "x"})
    report = write_report(tmp_path, title="signals", signals=signals, top_k=3)
    assert report.files["calibration_figure"].is_file()
    text = report.markdown.read_text()
    assert "| 1 | C03CA01 | furosemide | E871 | hyponatraemia | SCCS |" in text
    assert "internal_note" not in text and "internal_note" in pd.read_csv(report.files["signals"]).columns

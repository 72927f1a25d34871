"""Small-count suppression is irreversible (issue 12, Privacy): a hidden count cannot be recomputed from any other
column of its row, in any output of the detect_signals pipeline (parquet, CSV, report markdown, figures), and every
caller goes through the one home, :mod:`pathways.disclosure`."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

import pathways.pipelines as pipelines
from pathways import disclosure, plots
from pathways.abuse.ranking import suppress_small_counts as abuse_suppress
from pathways.cartography.tables import suppress as cartography_suppress
from pathways.disclosure import TABLES, suppress, unclassified
from pathways.errors import PathwaysInputError
from pathways.pipelines.cli import CONFIG_DIR
from pathways.pipelines.report import write_report
from pathways.signals.table import signal_table

K = 5  # report.min_cell_count of the pipeline run


def _inverted_ic_counts(frame: pd.DataFrame) -> np.ndarray:
    """The attack of the issue: IC = log2((a + 0.5) / (E + 0.5)) gives a back from log2_estimate and expected."""
    return 2 ** frame["log2_estimate"].to_numpy(float) * (frame["expected"].to_numpy(float) + 0.5) - 0.5


@pytest.fixture(scope="module")
def signals_run(tmp_path_factory):
    """detect_signals on a tiny cohort with report.min_cell_count=5; the frames handed to the figures kept."""
    from matplotlib.figure import Figure

    out = tmp_path_factory.mktemp("signals")
    drawn: dict[str, pd.DataFrame] = {}
    saved = plots.plot_volcano, plots.plot_relative_incidence, Figure.savefig
    plots.plot_volcano = lambda frame, path, *a, **k: drawn.setdefault("volcano", frame.copy())
    plots.plot_relative_incidence = lambda frame, path, *a, **k: drawn.setdefault("curves", frame.copy())
    Figure.savefig = lambda self, *a, **k: None  # the figures are built but not rendered: seconds saved
    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("detect_signals", overrides=["data.n_patients=150", "+data.n_drugs=8",
                                                       f"report.min_cell_count={K}"])
        pipelines.detect_signals(cfg, out)
    finally:
        plots.plot_volcano, plots.plot_relative_incidence, Figure.savefig = saved
    return out, drawn


def _check_signal_rows(table: pd.DataFrame) -> None:
    """No count in 1..K-1, and nothing a hidden count could be recomputed from on the suppressed rows."""
    n = pd.to_numeric(table["n_exposed_events"], errors="coerce")
    assert not n.between(1, K - 1).any()
    hidden = table["suppressed"].astype(bool)
    assert hidden.any() and (~hidden).any()  # the tiny run has both kinds of rows
    for col in TABLES["signals"].derived:
        if col in table.columns:
            assert pd.to_numeric(table.loc[hidden, col], errors="coerce").isna().all(), col
    ic = table[(table["method"] == "IC") & hidden]
    assert len(ic) and np.isnan(_inverted_ic_counts(ic)).all()
    for method in ("PRR", "ROR", "SCCS"):
        rows = table[(table["method"] == method) & hidden]
        assert len(rows) and rows["se_log"].isna().all(), method
    assert (table.loc[hidden, "status"] == "suppressed").all()


def test_signals_parquet_is_irreversibly_suppressed(signals_run):
    out, _ = signals_run
    table = pd.read_parquet(out / "signals.parquet")
    _check_signal_rows(table)
    assert unclassified(table, "signals") == []  # every numeric column is a count, derived or declared safe


def test_report_csv_is_irreversibly_suppressed(signals_run):
    out, _ = signals_run
    _check_signal_rows(pd.read_csv(out / "report" / "signals.csv"))


def _markdown_table(path, heading: str) -> pd.DataFrame:
    lines = path.read_text().splitlines()
    start = lines.index(heading) + 2
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return pd.DataFrame(rows, columns=header)


def _check_markdown_rows(table: pd.DataFrame) -> None:
    shown = [c for c in (*TABLES["signals"].derived, "n_exposed_events") if c in table.columns]
    assert {"estimate", "ci_low", "ci_high"} <= set(shown)
    hidden = table[table["suppressed"] == "True"]
    for col in shown:
        assert (hidden[col] == "–").all(), col
    if "n_exposed_events" in table.columns:
        assert not pd.to_numeric(table["n_exposed_events"], errors="coerce").between(1, K - 1).any()


def test_report_markdown_of_the_run_shows_no_hidden_number(signals_run):
    out, _ = signals_run
    _check_markdown_rows(_markdown_table(out / "report" / "report.md", "## Signals"))


def test_report_markdown_blanks_suppressed_signal_rows(tmp_path):
    table = signal_table(_estimates())  # unsuppressed: the report does it
    report = write_report(tmp_path, signals=table, min_cell_count=K, figures=False)
    shown = _markdown_table(report.markdown, "## Signals")
    assert len(shown) == len(table) and (shown["suppressed"] == "True").sum() == 6  # counts 2 and 3, 3 methods
    _check_markdown_rows(shown)


def test_figures_are_drawn_from_the_suppressed_table(signals_run):
    _, drawn = signals_run
    volcano = drawn["volcano"]
    assert volcano["suppressed"].any()
    assert volcano.loc[volcano["suppressed"], ["estimate", "p", "q"]].isna().all().all()


def test_anomalies_and_curves_keep_no_small_count(signals_run):
    out, _ = signals_run
    anomalies = pd.read_parquet(out / "anomalies.parquet")
    assert not anomalies["n_events"].between(1, K - 1).any()
    assert unclassified(anomalies, "anomalies") == []
    curves = out / "relative_incidence_curves.parquet"
    if curves.is_file():
        frame = pd.read_parquet(curves)
        assert not frame["n_outcomes"].between(1, K - 1).any()
        assert frame.loc[frame["suppressed"], ["ri", "ci_low", "ci_high"]].isna().all().all()


# ------------------------------------------------------------------------------------------- the one home, unit
def _estimates() -> pd.DataFrame:
    a = np.array([0, 2, 40, 3])
    expected = np.array([1.0, 0.7, 30.0, 4.2])
    rows = []
    for method in ("PRR", "IC", "SCCS"):
        est = (a + 0.5) / (expected + 0.5)
        rows.append(pd.DataFrame({
            "exposure": [f"d{i}" for i in range(4)], "outcome": "o", "method": method, "estimate": est,
            "ci_low": est / 2, "ci_high": est * 2, "p": np.where(method == "IC", np.nan, 0.01),
            "n_exposed_events": a, "expected": expected,
            "se_log": np.where(method == "IC", np.nan, 1 / np.sqrt(np.maximum(a, 1))),
            "log2_estimate": np.log2(est) if method == "IC" else np.nan}))
    return pd.concat(rows, ignore_index=True)


def test_signal_table_suppress_below_blanks_count_and_derived_columns():
    table = signal_table(_estimates(), suppress_below=10)
    hidden = table["status"] == "suppressed"
    assert sorted(table.loc[hidden, "exposure"].unique()) == ["d1", "d3"]  # counts 2 and 3; 0 and 40 stay
    for col in ("n_exposed_events", "estimate", "log2_estimate", "expected", "se_log", "ci_low", "ci_high", "p"):
        assert table.loc[hidden, col].isna().all(), col
    assert np.isnan(_inverted_ic_counts(table[hidden & (table["method"] == "IC")])).all()
    assert table.loc[table["exposure"] == "d0", "n_exposed_events"].eq(0).all()  # a zero discloses nobody


def test_without_suppression_the_ic_inversion_does_give_the_count_back():
    """The attack is real: on unsuppressed rows it recovers the count exactly (so the test above can fail)."""
    ic = _estimates().query("method == 'IC'")
    assert np.allclose(_inverted_ic_counts(ic), ic["n_exposed_events"].to_numpy(float))


@pytest.mark.parametrize("bad", [0, -1, "abc", 2.5, True])
def test_min_count_must_be_a_positive_integer(bad):
    with pytest.raises(PathwaysInputError, match="min_count"):
        suppress(_estimates(), bad, "signals")


def test_none_hides_nothing_and_unknown_table_is_named():
    out = suppress(_estimates(), None, "signals")
    assert not out["suppressed"].any() and out["n_exposed_events"].tolist() == _estimates()["n_exposed_events"].tolist()
    with pytest.raises(PathwaysInputError, match="no suppression rule named 'signalz'"):
        suppress(_estimates(), 10, "signalz")


def test_undeclared_table_blanks_every_known_derived_column():
    frame = pd.DataFrame({"n_cases": [3, 50], "estimate": [2.0, 1.0], "llr": [1.2, 0.1], "threshold": [2.9, 3.1],
                          "look": [1, 1]})
    out = suppress(frame, 10)
    assert out.loc[0, ["n_cases", "estimate", "llr", "threshold"]].isna().all() and out.loc[0, "look"] == 1
    assert out.loc[1, ["n_cases", "estimate", "llr", "threshold"]].notna().all()


def test_report_factors_blank_effects_of_small_source_counts(tmp_path):
    factors = pd.DataFrame({"source": ["a", "b"], "target": ["c", "c"], "lag_days": [np.nan] * 2,
                            "effect": [0.4, 0.2], "ci_low": [0.1, 0.1], "ci_high": [0.9, 0.3], "method": "hawkes",
                            "n_source_events": [4, 200], "n_target_events": [300, 300]})
    report = write_report(tmp_path, factors=factors, min_cell_count=10, figures=False)
    written = pd.read_csv(report.files["factors"])
    assert written.loc[0, ["effect", "ci_low", "ci_high", "n_source_events"]].isna().all()
    assert written.loc[1, "effect"] == 0.2 and bool(written.loc[0, "suppressed"])


def test_abuse_ranking_uses_the_abuse_rule():
    table = pd.DataFrame({"rank": [1, 2], "entity": ["x", "y"], "score": [9.0, 1.0], "n_flags": [2, 1],
                          "n_events": [3, 400]})
    out = abuse_suppress(table, 10)
    assert np.isnan(out.loc[0, "n_events"]) and out.loc[1, "n_events"] == 400
    assert out["n_flags"].tolist() == [2, 1] and "suppressed" not in out.columns


def test_cartography_rule_lives_in_disclosure():
    t = pd.DataFrame({"year": [2020], "group": ["g"], "population": [50], "prevalent": [3], "incident": [1],
                      "prevalence_rate": [0.06], "total_cost": [90.0], "mean_cost": [30.0]})
    out = cartography_suppress(t, 5)
    assert out.loc[0, ["prevalent", "incident", "prevalence_rate", "mean_cost"]].isna().all()
    assert out.loc[0, "population"] == 50 and bool(out.loc[0, "suppressed"])
    assert "prevalent" in disclosure.TABLES["cartography"].per_count


def test_study_estimates_rule_blanks_hazard_ratios():
    est = pd.DataFrame({"outcome": ["o1", "o2"], "n_target": [400, 400], "n_comparator": [380, 380],
                        "events_target": [3, 60], "events_comparator": [40, 41], "hr": [0.2, 1.4],
                        "ci_low": [0.05, 1.0], "ci_high": [0.7, 2.0], "p": [0.01, 0.05], "se_log_hr": [0.6, 0.2],
                        "status": ["estimated", "estimated"]})
    out = suppress(est, 10, "study_estimates")
    assert out.loc[0, ["events_target", "hr", "ci_low", "ci_high", "p", "se_log_hr"]].isna().all()
    assert out.loc[0, "status"] == "suppressed" and out.loc[1, "hr"] == 1.4

"""The signal-detection pipeline: screen an EventLog for drug-safety signals with ``cfg.signals``.

Writes the signal table (parquet and report), count anomaly scores per patient (and prescriber / pharmacy when the
log carries them), relative-incidence curves of the flagged SCCS pairs and, with matplotlib, a volcano plot.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from pathways.data.eventlog import EventLog
from pathways.errors import PathwaysInputError
from pathways.pipelines.common import (
    RunResult,
    instantiate,
    task_inputs,
    write_csv,
    write_parquet,
    write_summary,
)
from pathways.pipelines.report import suppress_small_counts, write_report
from pathways.signals import count_anomaly_scores
from pathways.signals.detect import StudyDesign, relative_incidence_curves
from pathways.signals.negative_controls import default_negative_controls
from pathways.signals.surveillance import (
    SurveillancePlan,
    alert_history,
    plot_timeline,
    surveil,
)
from pathways.synthetic.cohort import Truth
from pathways.utils import logger


def detect_signals(cfg: DictConfig, output_dir: str | os.PathLike) -> RunResult:
    """Screen the data of ``cfg.data`` for drug-safety signals with ``cfg.signals`` (``pathways.signals.detect``)."""
    out = Path(output_dir)
    node, data, truth = task_inputs(cfg, "signals", "pathways.signals.detect", "drugs and events")
    table = instantiate(node, quote_errors=False, log=data, **_signal_defaults(node, truth))
    if isinstance(table, tuple):
        table = table[0]
    if not isinstance(table, pd.DataFrame):
        raise PathwaysInputError(f"config 'signals': {node.get('_target_')} returned {type(table).__name__}, "
                                 "expected the signal table")
    metrics = {"n_signals": int(len(table)),
               "n_flagged": int(table["flag"].sum()) if "flag" in table.columns else None}
    metrics.update(_signal_truth_metrics(table, truth))
    result = RunResult(output_dir=out, metrics=metrics)
    report_cfg = cfg.get("report") or {}
    min_cell = report_cfg.get("min_cell_count")
    figures = bool(report_cfg.get("figures", True))
    result.report = write_report(out / "report", title=f"{cfg.get('name', 'signals')}: signal table",
                                 metrics=metrics, signals=table, min_cell_count=min_cell,
                                 top_k=int(report_cfg.get("top_k", 20)), figures=figures)
    result.files.update(_write_signal_outputs(out, data, table, node, min_cell, figures))
    if cfg.get("surveillance") is not None:
        result.files.update(run_surveillance(cfg.surveillance, data, node, truth, out, min_cell, figures))
    write_summary(out, result, "ok")
    return result


def _write_signal_outputs(out: Path, log: EventLog, table: pd.DataFrame, node: DictConfig,
                          min_cell_count: int | None, figures: bool) -> dict[str, Path]:
    """signals.parquet, anomalies.parquet, relative-incidence curves of the flagged SCCS pairs, volcano plot."""
    files: dict[str, Path] = {}
    signals = suppress_small_counts(table, min_cell_count)
    signals.attrs = {}  # parquet metadata must stay JSON: the fitted nulls live in the report's metrics
    files["signals_parquet"] = write_parquet(signals, out / "signals.parquet")
    units = ["patient"] + [u for u in ("prescriber", "pharmacy") if u in log.extras]
    anomalies = pd.concat([count_anomaly_scores(log, unit=u) for u in units], ignore_index=True)
    anomalies["unit_index"] = anomalies["unit_index"].astype(str)
    if min_cell_count is not None:  # per-code counts inside the explanation could be small: keep the codes only
        anomalies["top_codes"] = anomalies["top_codes"].str.replace(r" \([^)]*\)", "", regex=True)
    files["anomalies"] = write_parquet(suppress_small_counts(anomalies, min_cell_count), out / "anomalies.parquet")
    flagged = table[(table["method"] == "SCCS") & table["flag"].astype(bool)].sort_values("rank").head(12)
    curves = pd.DataFrame()
    if not flagged.empty:
        curves = relative_incidence_curves(log, list(zip(flagged["exposure"], flagged["outcome"])),
                                           bucket_days=float(node.get("bucket_days", 7.0)),
                                           outcome_mode=str(node.get("outcome_mode", "first")),
                                           exposure_coding=str(node.get("exposure_coding", "exposed")))
        curves = suppress_small_counts(curves, min_cell_count)
        files["ri_curves"] = write_parquet(curves, out / "relative_incidence_curves.parquet")
    if figures:
        files.update(_signal_figures(out / "report" / "figures", signals, curves))
    return files


def _signal_figures(fig_dir: Path, signals: pd.DataFrame, curves: pd.DataFrame) -> dict[str, Path]:
    try:  # matplotlib is optional (pathways[plot])
        import matplotlib  # noqa: F401

        from pathways import plots
    except ImportError:
        logger.info("detect_signals: matplotlib not installed, figures skipped (pip install 'pathways[plot]')")
        return {}
    files = {"volcano": fig_dir / "volcano.png"}
    plots.plot_volcano(signals, files["volcano"])
    if not curves.empty:
        files["ri_curves_figure"] = fig_dir / "relative_incidence.png"
        plots.plot_relative_incidence(curves, files["ri_curves_figure"])
    return files


def _signal_defaults(node: DictConfig, truth: Truth | None) -> dict[str, Any]:
    """Outcomes and negative controls from the synthetic truth when the signals config leaves them unset."""
    if not isinstance(truth, Truth):
        return {}
    extra: dict[str, Any] = {}
    outcomes = list(truth.outcomes or [])
    if node.get("outcomes") is None and outcomes:
        extra["outcomes"] = outcomes
    nulls = list(truth.null_drugs or [])
    if node.get("negative_controls") is None and nulls and outcomes:
        extra["negative_controls"] = [(d, o) for d in nulls for o in outcomes]
    return extra


def _signal_truth_metrics(table: pd.DataFrame, truth: Truth | None) -> dict[str, Any]:
    """When the synthetic truth lists risky drug-event pairs: how many flagged pairs are true."""
    if not isinstance(truth, Truth) or not isinstance(truth.drug_effects, pd.DataFrame) or "flag" not in table:
        return {}
    effects = truth.drug_effects
    true_pairs = set(zip(effects["drug"].astype(str), effects["event"].astype(str)))
    flagged = table[table["flag"].astype(bool)]
    pairs = set(zip(flagged["exposure"].astype(str), flagged["outcome"].astype(str)))
    hits = len(pairs & true_pairs)
    return {"flagged_true_pairs": hits, "flagged_pairs": len(pairs), "true_pairs": len(true_pairs)}


def run_surveillance(node: DictConfig, log: EventLog, signals_node: DictConfig, truth: Truth | None, out: Path,
                     min_cell_count: int | None, figures: bool) -> dict[str, Path]:
    """``cfg.surveillance``: periodic screening (:func:`pathways.signals.surveillance.surveil`); writes
    ``surveillance_looks.parquet``, ``surveillance_alerts.csv`` (small counts suppressed) and one timeline figure
    per alerted pair under ``report/figures/surveillance/``."""
    params = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k != "max_figures"}
    for key in ("risk_window", "control_window"):
        params[key] = tuple(params[key])
    defaults = _signal_defaults(signals_node, truth)
    outcomes = signals_node.get("outcomes") or defaults.get("outcomes")
    if outcomes is None:
        raise PathwaysInputError("surveillance: set signals.outcomes (the outcome codes to monitor)")
    controls = params.pop("negative_controls", None)
    if controls is None:
        controls = defaults.get("negative_controls") or default_negative_controls(
            log.vocab.codes, log.vocab.codes)
    elif isinstance(controls, str):
        controls = default_negative_controls(log.vocab.codes, log.vocab.codes, controls)
    design = StudyDesign(outcomes=list(outcomes), drugs=signals_node.get("drugs"),
                         negative_controls=[tuple(map(str, c)) for c in controls])
    looks = surveil(log, design, SurveillancePlan(**params))
    alerts = alert_history(looks)
    looks.attrs = {}
    files = {"surveillance_looks": write_parquet(suppress_small_counts(looks, min_cell_count),
                                                 out / "surveillance_looks.parquet")}
    files["surveillance_alerts"] = write_csv(suppress_small_counts(alerts, min_cell_count),
                                             out / "report" / "surveillance_alerts.csv")  # atomic, like the others
    if figures and not alerts.empty and min_cell_count is None:  # figures would show per-look counts
        pairs = alerts[["exposure", "outcome"]].drop_duplicates().head(int(node.get("max_figures", 12)))
        for exposure, outcome in pairs.itertuples(index=False):
            path = out / "report" / "figures" / "surveillance" / f"{exposure}_{outcome}.png"
            plot_timeline(looks, exposure, outcome, path)
            files[f"timeline_{exposure}_{outcome}"] = path
    return files

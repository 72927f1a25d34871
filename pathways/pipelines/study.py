"""The cohort-study pipeline (``experiment=cohort_study``): a new-user, active-comparator study from ``cfg.study``.

Writes the estimate table (outcome and negative controls, adjusted, crude and calibrated), the balance table (every
covariate before and after adjustment), the attrition flowchart, Kaplan-Meier curves on a 30-day grid, the
preference-score distribution (binned counts, never per-patient scores) and, with matplotlib, the KM,
preference-score, balance and calibration figures. With ``report.min_cell_count``, every count below it is blanked with the columns it could be
recomputed from (estimates of that row, the curve where few remain at risk, covariate means).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from pathways.errors import PathwaysInputError
from pathways.pipelines.common import (
    RunResult,
    instantiate,
    task_inputs,
    write_csv,
    write_parquet,
    write_summary,
)
from pathways.disclosure import suppress
from pathways.pipelines.report import (
    markdown_table,
    write_report,
)
from pathways.studies import plots
from pathways.studies.study import StudyResult
from pathways.utils import atomic_path, logger


def run_cohort_study(cfg: DictConfig, output_dir: str | os.PathLike) -> RunResult:
    """Run the study of ``cfg.study`` (``pathways.studies.study.cohort_study``) on the data of ``cfg.data``."""
    out = Path(output_dir)
    node, data, _ = task_inputs(cfg, "study", "pathways.studies.study.cohort_study", "drugs and outcomes")
    study = instantiate(node, quote_errors=False, log=data)
    if not isinstance(study, StudyResult):
        raise PathwaysInputError(f"config 'study': {node.get('_target_')} returned {type(study).__name__}, "
                                 "expected a StudyResult")
    report_cfg = cfg.get("report") or {}
    min_cell = report_cfg.get("min_cell_count")
    tables = study_tables(study, min_cell)
    result = RunResult(output_dir=out, metrics=study_metrics(study))
    for name, frame in tables.items():
        result.files[name] = write_parquet(frame, out / f"{name}.parquet")
        write_csv(frame, out / f"{name}.csv")
    result.report = write_report(out / "report", title=f"{cfg.get('name', 'cohort_study')}: cohort study",
                                 metrics=result.metrics, min_cell_count=min_cell,
                                 figures=False, summary={"patients": data.n_patients, "events": data.n_events})
    result.files["study_report"] = _write_markdown(out / "report" / "cohort_study.md", tables, result.metrics)
    if bool(report_cfg.get("figures", True)):
        result.files.update(_figures(out / "report" / "figures", tables, study))
    write_summary(out, result, "ok")
    return result


def study_metrics(study: StudyResult) -> dict[str, float]:
    """Headline numbers: the outcome's HR and interval (calibrated where available) and the diagnostics."""
    main = study.estimates.iloc[0]
    metrics = {"hr": float(main["hr"]), "ci_low": float(main["ci_low"]), "ci_high": float(main["ci_high"]),
               "p": float(main["p"]), "hr_crude": float(main["hr_crude"]), "mdrr": float(main["mdrr"])}
    if "p_calibrated" in study.estimates:
        metrics.update(p_calibrated=float(main["p_calibrated"]), ci_low_calibrated=float(main["ci_low_calibrated"]),
                       ci_high_calibrated=float(main["ci_high_calibrated"]))
    if study.null is not None:
        metrics.update(null_mean=float(study.null.mean), null_sd=float(study.null.sd))
    metrics.update({k: float(v) for k, v in study.diagnostics.items()})
    return metrics


def preference_distribution(propensity: pd.DataFrame, n_bins: int = 20) -> pd.DataFrame:
    """Patients per preference-score bin and arm (the shareable form of the PS distribution)."""
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.searchsorted(edges, propensity["preference"].to_numpy(float), side="right") - 1, 0,
                    n_bins - 1)
    treated = propensity["treated"].to_numpy(bool)
    return pd.DataFrame({"bin_mid": (edges[:-1] + edges[1:]) / 2,
                         "n_target": np.bincount(which[treated], minlength=n_bins),
                         "n_comparator": np.bincount(which[~treated], minlength=n_bins)})


def km_grid(km: pd.DataFrame, step: float = 30.0) -> pd.DataFrame:
    """Kaplan-Meier curves read on a grid of ``step`` days (the published form: survival and numbers at risk).

    Per-event-time rows would disclose single events; on the grid each row holds the curve's value at that time and
    the weighted number still at risk at the first event time on or after it.
    """
    frames = []
    for arm, g in km.groupby("arm", sort=False):
        times = g["time"].to_numpy(float)
        grid = np.arange(0.0, times.max() + step, step)
        last = np.searchsorted(times, grid, side="right") - 1
        nxt = np.minimum(np.searchsorted(times, grid, side="left"), times.size - 1)
        pick = {c: np.where(last >= 0, g[c].to_numpy(float)[np.maximum(last, 0)], 1.0)
                for c in ("survival", "ci_low", "ci_high")}
        frames.append(pd.DataFrame({"arm": arm, "time": grid, "n_at_risk": g["at_risk"].to_numpy(float)[nxt],
                                    **pick}))
    return pd.concat(frames, ignore_index=True)


def _suppress_balance(balance: pd.DataFrame, n_target: int, n_comparator: int, min_cell: int | None) -> pd.DataFrame:
    """Blank covariate means whose implied patient count (mean x arm size) is below ``min_cell``, and the SMDs of
    those rows (an SMD and the other arm's mean give the hidden mean back)."""
    out = balance.copy()
    if min_cell is None:
        return out
    hidden = np.zeros(len(out), dtype=bool)
    for col in [c for c in out.columns if c.startswith("mean_")]:
        n = n_target if "target" in col else n_comparator
        implied = out[col].to_numpy(float) * n
        small = (implied > 0) & (implied < int(min_cell))
        hidden |= small
        out[col] = np.where(small, np.nan, out[col])
    for col in [c for c in out.columns if c.startswith("smd_")]:
        out[col] = np.where(hidden, np.nan, pd.to_numeric(out[col], errors="coerce"))
    return out


def study_tables(study: StudyResult, min_cell: int | None) -> dict[str, pd.DataFrame]:
    """The study's output tables, small counts suppressed."""
    treated = study.propensity["treated"].to_numpy(bool)
    km = km_grid(study.km)
    return {  # the count and derived columns of each table are declared once, in pathways.disclosure.TABLES
        "estimates": suppress(study.estimates, min_cell, "study_estimates"),
        "balance": _suppress_balance(study.balance, int(treated.sum()), int((~treated).sum()), min_cell),
        "flowchart": suppress(study.flowchart, min_cell, "study_flowchart"),
        "kaplan_meier": suppress(km, min_cell, "study_kaplan_meier"),
        "preference_distribution": suppress(preference_distribution(study.propensity), min_cell,
                                            "study_preference"),
    }


def _write_markdown(path: Path, tables: dict[str, pd.DataFrame], metrics: dict[str, float]) -> Path:
    est = tables["estimates"]
    cols = [c for c in ["outcome", "negative_control", "n_target", "n_comparator", "events_target",
                        "events_comparator", "hr", "ci_low", "ci_high", "p", "p_calibrated", "hr_crude", "status"]
            if c in est]
    balance = tables["balance"].reindex(tables["balance"]["smd_before"].abs().sort_values(ascending=False).index)
    lines = ["# Cohort study", "", "## Metrics", "", "```json", json.dumps(metrics, indent=2, default=float), "```",
             "", "## Attrition", "", markdown_table(tables["flowchart"]), "", "## Estimates", "",
             markdown_table(est[cols], max_rows=50), "", "## Balance (20 most imbalanced before)", "",
             markdown_table(balance, max_rows=20)]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


def _figures(fig_dir: Path, tables: dict[str, pd.DataFrame], study: StudyResult) -> dict[str, Path]:
    try:  # matplotlib is optional (pathways[plot])
        import matplotlib  # noqa: F401
    except ImportError:
        logger.info("cohort_study: matplotlib not installed, figures skipped (pip install 'pathways[plot]')")
        return {}
    fig_dir.mkdir(parents=True, exist_ok=True)
    files = {"km_figure": fig_dir / "kaplan_meier.png", "ps_figure": fig_dir / "preference_score.png",
             "balance_figure": fig_dir / "balance.png"}
    plots.plot_kaplan_meier(tables["kaplan_meier"].dropna(subset=["survival"]), files["km_figure"])
    plots.plot_preference(tables["preference_distribution"], files["ps_figure"])
    plots.plot_balance(tables["balance"], files["balance_figure"])  # the suppressed table
    if study.estimates["negative_control"].any():
        files["calibration_figure"] = fig_dir / "calibration.png"
        plots.plot_calibration(tables["estimates"], study.null, files["calibration_figure"])  # suppressed rows out
    return files


__all__ = ["km_grid", "preference_distribution", "run_cohort_study", "study_metrics", "study_tables"]

"""The cartography pipeline: pathology groups, costs and dynamics of the data of ``cfg.data`` with
``cfg.cartography`` (:func:`pathways.cartography.build.build_cartography`).

Writes the aggregate tables as parquet (``cells``, ``groups``, ``coefficients``, ``transitions``, ``survival``,
``factors``; small counts suppressed by ``report.min_cell_count``), a markdown report and, with matplotlib, the
figures: spending by group, trends, the volume / cost-per-patient decomposition and the transition diagram. No
table with one row per patient is written.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from pathways.cartography import figures
from pathways.cartography.build import Cartography
from pathways.cartography.synthetic import CartographyTruth
from pathways.cartography.tables import suppress
from pathways.errors import PathwaysInputError
from pathways.pipelines.common import (
    RunResult,
    instantiate,
    task_inputs,
    write_parquet,
    write_summary,
)
from pathways.pipelines.report import markdown_table
from pathways.utils import logger

TRANSITION_COUNTS = ("n", "n_from")


def run_cartography(cfg: DictConfig, output_dir: str | os.PathLike) -> RunResult:
    """Build the cartography of ``cfg.data`` with ``cfg.cartography`` and write its tables, report and figures."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    node, data, truth = task_inputs(cfg, "cartography", "pathways.cartography.build_cartography",
                                    "events with categories and amounts")
    report_cfg = cfg.get("report") or {}
    min_cell = report_cfg.get("min_cell_count")
    result_obj = instantiate(node, quote_errors=False, log=data, min_cell_count=min_cell)
    if not isinstance(result_obj, Cartography):
        raise PathwaysInputError(f"config 'cartography': {node.get('_target_')} returned "
                                 f"{type(result_obj).__name__}, expected a Cartography")
    metrics = dict(result_obj.metrics)
    metrics.update(_truth_metrics(result_obj, truth))
    result = RunResult(output_dir=out, metrics=metrics)
    for name, table in _published(result_obj, min_cell).items():
        result.files[name] = write_parquet(table, out / f"{name}.parquet")
    result.files["report"] = _write_report(out / "report" / "cartography.md", cfg, result_obj, metrics, min_cell)
    if bool(report_cfg.get("figures", True)):
        result.files.update(_figures(out / "report" / "figures", result_obj))
    write_summary(out, result, "ok")
    return result


def _published(carto: Cartography, min_cell: int | None) -> dict[str, pd.DataFrame]:
    """The tables as published: the transition and survival counts suppressed like the cells."""
    tables = carto.tables()
    trans = tables["transitions"].rename(columns={"n_from": "population", "n": "prevalent"})
    trans = suppress(trans.assign(prevalence_rate=trans["rate"]), min_cell)
    tables["transitions"] = trans.drop(columns=["prevalence_rate"]).rename(
        columns={"population": "n_from", "prevalent": "n"})
    tables["factors"] = tables["factors"][~tables["transitions"].query("year == 'all'")["suppressed"].to_numpy()
                                          ] if min_cell is not None else tables["factors"]
    surv = tables["survival"].rename(columns={"at_risk": "population", "deaths": "prevalent"})
    tables["survival"] = suppress(surv, min_cell).rename(columns={"population": "at_risk", "prevalent": "deaths"})
    return tables


def _truth_metrics(carto: Cartography, truth: Any) -> dict[str, Any]:
    """On the synthetic population: the largest prevalence error (percentage points) and mean-cost error (%)."""
    if not isinstance(truth, CartographyTruth):
        return {}
    groups = carto.groups
    planted = truth.patient_years.groupby("year")[list(truth.costs)].mean()
    worst_prev, worst_cost = 0.0, 0.0
    for g, cost in truth.costs.items():
        rows = groups[groups["group"] == g].set_index("year")
        for year, share in planted[g].items():
            if year in rows.index:
                worst_prev = max(worst_prev, abs(rows.loc[year, "prevalence_rate"] - share) * 100)
                worst_cost = max(worst_cost, abs(rows.loc[year, "mean_cost"] / cost - 1) * 100)
    return {"max_prevalence_error_pp": worst_prev, "max_mean_cost_error_pct": worst_cost}


def _write_report(path: Path, cfg: DictConfig, carto: Cartography, metrics: dict[str, Any],
                  min_cell: int | None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    groups = suppress(carto.groups, None) if min_cell is None else carto.groups
    last = groups[(groups["year"] == groups["year"].max()) & (groups["prevalent"] != 0)]  # NaN = suppressed: kept
    last = last.sort_values("total_cost", ascending=False)
    cols = ["group", "prevalent", "prevalence_rate", "total_cost", "mean_cost", "volume_effect",
            "cost_per_patient_effect"]
    lines = [f"# {cfg.get('name', 'cartography')}: medico-economic cartography", "",
             f"Rule set `{carto.rules.name}` version {carto.rules.version} ({len(carto.rules.groups)} groups); "
             f"small counts suppressed below {min_cell}." if min_cell else
             f"Rule set `{carto.rules.name}` version {carto.rules.version} ({len(carto.rules.groups)} groups).", "",
             "## Metrics", ""] + [f"- {k}: {v}" for k, v in metrics.items()] + [
             "", f"## Groups, {int(last['year'].max()) if len(last) else ''}", "",
             markdown_table(last[cols], max_rows=80), ""]
    path.write_text("\n".join(lines))
    return path


def _figures(fig_dir: Path, carto: Cartography) -> dict[str, Path]:
    try:  # matplotlib is optional (pathways[plot])
        import matplotlib  # noqa: F401
    except ImportError:
        logger.info("cartography: matplotlib not installed, figures skipped (pip install 'pathways[plot]')")
        return {}
    pooled = carto.transitions[carto.transitions["year"] == "all"]
    files = {"spending_figure": fig_dir / "spending.png", "trends_figure": fig_dir / "trends.png",
             "decomposition_figure": fig_dir / "decomposition.png", "transitions_figure": fig_dir / "transitions.png"}
    figures.plot_spending(carto.groups, files["spending_figure"])  # each returns its figure, written to the path
    figures.plot_trends(carto.groups, files["trends_figure"])
    figures.plot_decomposition(carto.groups, files["decomposition_figure"])
    figures.plot_transitions(pooled, files["transitions_figure"])
    return files


__all__ = ["run_cartography"]

"""The abuse pipeline: rank the patients, prescribers and pharmacies of ``cfg.data`` with ``cfg.abuse``
(:func:`pathways.abuse.detect_abuse`).

Writes one ranked table per entity type (``patients``, ``prescribers``, ``pharmacies`` parquet: rank, entity id,
score, flags, behaviours, top reasons, amount at stake, counts below ``report.min_cell_count`` blanked), the
provider communities (those smaller than the threshold left out), a markdown report without identifiers and,
with matplotlib, the score distributions and the timeline of the top-ranked patient. On simulated data
(:func:`pathways.abuse.simulate_abuse`) the metrics hold the AUROC and top-1 % precision of every planted scenario.
Entity ids are the user's pseudonymous identifiers: written to the tables an analyst needs, never logged.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from pathways.abuse import AbuseResult, AbuseTruth, evaluate
from pathways.abuse.entities import DRUG_CLASSES, event_classes
from pathways.data.eventlog import EventLog
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

TABLE_FILES = {"patient": "patients", "prescriber": "prescribers", "pharmacy": "pharmacies"}


def run_abuse(cfg: DictConfig, output_dir: str | os.PathLike) -> RunResult:
    """Detect abuse and fraud in ``cfg.data`` with ``cfg.abuse`` and write the ranked tables, report, figures."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    node, data, truth = task_inputs(cfg, "abuse", "pathways.abuse.detect_abuse",
                                    "provider extras: prescriber, provider, paid")
    report_cfg = cfg.get("report") or {}
    min_cell = int(report_cfg.get("min_cell_count") or 0)
    providers = truth.providers if isinstance(truth, AbuseTruth) else _providers(cfg)
    found = instantiate(node, quote_errors=False, log=data, providers=providers, min_count=min_cell)
    if not isinstance(found, AbuseResult):
        raise PathwaysInputError(f"config 'abuse': {node.get('_target_')} returned {type(found).__name__}, "
                                 "expected an AbuseResult")
    metrics: dict[str, Any] = {f"n_flagged_{TABLE_FILES[k]}": int((t["n_flags"] > 0).sum())
                               for k, t in found.tables.items()}
    if isinstance(truth, AbuseTruth):
        metrics.update(scenario_metrics(found, truth))
    result = RunResult(output_dir=out, metrics=metrics)
    for kind, table in found.tables.items():
        result.files[TABLE_FILES[kind]] = write_parquet(table, out / f"{TABLE_FILES[kind]}.parquet")
    rings = found.communities
    rings = rings[rings["community_size"] >= max(min_cell, 1)] if len(rings) else rings
    result.files["communities"] = write_parquet(rings, out / "communities.parquet")
    result.files["report"] = _write_report(out / "report" / "abuse.md", cfg, found, metrics, min_cell)
    if bool(report_cfg.get("figures", True)):
        result.files.update(_figures(out / "report" / "figures", found, data))
    write_summary(out, result, "ok")
    return result


def scenario_metrics(found: AbuseResult, truth: AbuseTruth, top_share: float = 0.01) -> dict[str, float]:
    """AUROC and top-``top_share`` precision of every planted scenario (each scored as if alone)."""
    metrics = {}
    for scenario, entity in truth.scenario_entity.items():
        others = np.setdiff1d(truth.planted(entity), truth.positives[scenario])
        scores = evaluate(found.tables[entity], truth.positives[scenario], others, top_share)
        metrics[f"{scenario}_auroc"] = scores["auroc"]
        metrics[f"{scenario}_precision_top"] = scores["precision_top"]
    return metrics


def _providers(cfg: DictConfig) -> pd.DataFrame | None:
    """Provider attributes (``provider``, ``specialty``, ``region``) from ``abuse_providers`` (parquet or CSV)."""
    path = cfg.get("abuse_providers")
    if not path:
        return None
    path = Path(str(path))
    if not path.exists():
        raise PathwaysInputError(f"config 'abuse_providers': file not found: {str(path)!r}")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"provider": str})


def _write_report(path: Path, cfg: DictConfig, found: AbuseResult, metrics: dict[str, Any], min_cell: int) -> Path:
    """Markdown report: metrics and the top entities of each type by rank (no identifiers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {cfg.get('name', 'abuse')}: abuse and fraud", "",
             f"Small counts suppressed below {min_cell}." if min_cell else "No small-count suppression.", "",
             "## Metrics", ""] + [f"- {k}: {v}" for k, v in metrics.items()]
    for kind, table in found.tables.items():
        shown = table[["rank", "score", "n_flags", "behaviours", "amount_at_stake"]]
        lines += ["", f"## Top {TABLE_FILES[kind]}", "", markdown_table(shown, max_rows=20)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _figures(fig_dir: Path, found: AbuseResult, log: EventLog) -> dict[str, Path]:
    try:  # matplotlib is optional (pathways[plot]); Figure objects leave the user's pyplot backend alone
        from matplotlib.figure import Figure
    except ImportError:
        logger.info("abuse: matplotlib not installed, figures skipped (pip install 'pathways[plot]')")
        return {}
    fig_dir.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(4 * len(found.tables), 3))
    axes = fig.subplots(1, len(found.tables))
    for ax, (kind, table) in zip(np.atleast_1d(axes), found.tables.items()):
        ax.hist(table["score"], bins=50, log=True)
        ax.set(title=TABLE_FILES[kind], xlabel="score", ylabel="entities")
    fig.tight_layout()
    files = {"score_figure": fig_dir / "scores.png"}
    fig.savefig(files["score_figure"], dpi=100)
    top = found.tables["patient"]
    if len(top) and top["score"].iloc[0] > 0:
        files["timeline_figure"] = _timeline(Figure, log, top["entity"].iloc[0], fig_dir / "top_patient_timeline.png")
    return files


def _timeline(figure: Any, log: EventLog, patient_id: Any, path: Path) -> Path:
    """Watched-class dispensations of one patient: days since the first, one row per class, one colour per
    prescriber (numbered in order of appearance, never by id)."""
    index = int(np.flatnonzero(log.patients["patient_id"].to_numpy() == patient_id)[0])
    rows = slice(log.offsets[index], log.offsets[index + 1])
    klass = event_classes(log)[rows]
    keep = klass >= 0
    time = log.time[rows][keep]
    prescriber = pd.factorize(pd.Series(log.extras["prescriber"][rows][keep], dtype=object))[0]
    fig = figure(figsize=(7, 2.5))
    ax = fig.subplots()
    ax.scatter(time - (time.min() if time.size else 0.0), klass[keep], c=prescriber, cmap="tab10", s=25)
    ax.set(yticks=range(len(DRUG_CLASSES)), yticklabels=list(DRUG_CLASSES), xlabel="days since the first",
           title="top-ranked patient: dispensations (colour = prescriber)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


__all__ = ["run_abuse", "scenario_metrics"]

"""Collect the results of a Hydra sweep into one table at the sweep root.

Every run of ``scripts/train.py`` writes ``summary.json`` in its run directory (overrides, model class, metrics,
checkpoint path). After a multirun, :class:`CollectResults` (registered in ``configs/hydra/default.yaml``) gathers
them into ``results.csv`` and ``results.md`` (one row per run) at the sweep root; :func:`collect_results` does the
same on demand for any folder. A job that fails gets a ``summary.json`` too (``status: failed`` and an ``error``
column: the error type and, for pathways' own errors, their message, which never quotes identifiers; other
exceptions' messages may quote input data and are withheld), so every job of a sweep has its row.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from pathways.errors import PathwaysInputError
from pathways.utils import atomic_path, logger

SUMMARY_FILE = "summary.json"


def collect_results(sweep_dir: str | os.PathLike, filename: str = "results") -> pd.DataFrame:
    """Gather every ``summary.json`` under ``sweep_dir`` into a table and write ``<filename>.csv`` / ``.md`` there.

    Columns: ``run`` (sub-folder), ``overrides`` (the command-line overrides of that run, space-separated), one
    column per override key, ``model``, ``status``, ``checkpoint`` and one column per metric. Rows are sorted by run.

    Returns
    -------
    The collected table (empty when no run wrote a summary).
    """
    root = Path(sweep_dir)
    rows = [_row(root, p) for p in sorted(root.rglob(SUMMARY_FILE))]
    table = pd.DataFrame(rows)
    if table.empty:
        logger.warning("collect_results: no %s under %s", SUMMARY_FILE, root)
        return table
    table = table.sort_values("run", key=lambda s: s.map(_natural_key)).reset_index(drop=True)
    with atomic_path(root / f"{filename}.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(root / f"{filename}.md") as tmp:
        tmp.write_text(_markdown(table) + "\n")
    return table


def _row(root: Path, path: Path) -> dict[str, Any]:
    summary = json.loads(path.read_text())
    row: dict[str, Any] = {"run": str(path.parent.relative_to(root)) or "."}
    overrides = [str(o) for o in summary.get("overrides", [])]
    row["overrides"] = " ".join(overrides)
    for item in overrides:
        key, _, value = item.partition("=")
        row[key.lstrip("+~")] = value
    row["model_class"] = summary.get("model")
    row["status"] = summary.get("status")
    row["error"] = summary.get("error")
    row["checkpoint"] = summary.get("checkpoint")
    for key, value in (summary.get("metrics") or {}).items():
        if isinstance(value, (int, float, str, bool)) or value is None:
            row[key] = value
    return row


def error_summary(exc: BaseException, limit: int = 300) -> str:
    """One line naming a job's failure for the results table, without identifiers.

    pathways' own errors (:class:`~pathways.errors.PathwaysInputError` and its subclasses) name columns, rows and
    counts, never values of identifier columns, and are kept; any other exception (DuckDB, pandas, ...) may quote a
    raw input line, so only its type is given.

    Examples
    --------
    >>> error_summary(PathwaysInputError("column 'code': 3 of 10 rows empty"))
    "PathwaysInputError: column 'code': 3 of 10 rows empty"
    >>> error_summary(ValueError("Original Line: 1234567890123,..."))
    'ValueError (message withheld: it may quote input data; see the job log)'
    """
    if isinstance(exc, PathwaysInputError):
        text = " ".join(str(exc).split())
        text = text if len(text) <= limit else text[: limit - 3] + "..."
        return f"{type(exc).__name__}: {text}"
    return f"{type(exc).__name__} (message withheld: it may quote input data; see the job log)"


def write_failure(output_dir: str | os.PathLike, overrides: list[str], exc: BaseException) -> Path:
    """``summary.json`` of a failed job (status ``failed`` and :func:`error_summary`), unless the job wrote one."""
    path = Path(output_dir) / SUMMARY_FILE
    summary = {"status": "failed", "error": error_summary(exc), "overrides": [str(o) for o in overrides],
               "metrics": {}, "model": None, "checkpoint": None, "exported": None}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return path


def _natural_key(run: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in Path(run).parts)


def _markdown(table: pd.DataFrame) -> str:
    """Markdown table without the optional ``tabulate`` dependency."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None or (isinstance(v, float) and v != v) else str(v)

    cols = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for rec in table.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v) for v in rec) + " |")
    return "\n".join(lines)


class CollectResults(Callback):
    """Hydra callback: a failed job gets its ``summary.json`` (:func:`write_failure`); in a multirun, rewrite the
    collected results table at the sweep root after every job (so an interrupted sweep keeps the rows of its
    finished and failed runs) and once more at the end."""

    def __init__(self, filename: str = "results") -> None:
        self.filename = filename

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        if job_return is not None and job_return.status == JobStatus.FAILED:
            failure = job_return._return_value  # the exception (reading .return_value would raise it)
            write_failure(str(config.hydra.runtime.output_dir), list(config.hydra.overrides.task), failure)
        if config.hydra.mode == RunMode.MULTIRUN:
            collect_results(Path(str(config.hydra.sweep.dir)), self.filename)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        table = collect_results(sweep_dir, self.filename)
        if not table.empty:
            print(f"[pathways] sweep results ({len(table)} runs): {sweep_dir / (self.filename + '.md')}")

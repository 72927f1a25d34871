"""Run reports: factors table, metrics, figures and a short markdown summary, with small-count suppression.

:func:`write_report` writes into one folder::

    report.md        summary: data counts, model, metrics, top drivers / signals, links to the files below
    metrics.json     the run's metrics
    factors.csv      factors table (source, target, lag_days, effect, ci_low, ci_high, method, n_* counts)
    signals.csv      signal table (drug-safety runs)
    code_counts.csv  events per code in the training data
    figures/         excitation_heatmap.png, top_drivers.png, training_curve.png, signals.png

With ``min_cell_count=k`` every count below k (and above 0) is replaced by NaN in every table, and every column
from which such a count could be recomputed (estimates, intervals, standard errors, expected counts, p-values) is
blanked on those rows (``suppressed`` column = True; hidden cells in the heatmap), as publication rules for claims
data (e.g. SNDS: no cell under 10 patients or events) require: the rules live in :mod:`pathways.disclosure`.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from pathways.checkpoint import to_jsonable
from pathways.disclosure import count_columns, suppress, suppress_small_counts  # noqa: F401 (re-exported)
from pathways.errors import PathwaysInputError
from pathways.factors.graph import excitation_graph
from pathways.models.hawkes.base import HawkesBase
from pathways.utils import atomic_path, logger

FACTOR_COLUMNS = ["source", "target", "lag_days", "effect", "ci_low", "ci_high", "method"]


@dataclass
class Report:
    """Paths written by :func:`write_report` (``files`` maps a short name to its path)."""

    directory: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def markdown(self) -> Path:
        return self.files["report"]


# --------------------------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------------------------
def code_counts(data: Any, codes: Sequence[str] | None = None) -> pd.DataFrame:
    """Events and patients per code in ``data`` (Sequences or EventLog): columns code, n_events, n_patients."""
    marks = getattr(data, "marks", None)
    if marks is None:
        marks = getattr(data, "code", None)
    if marks is None:
        raise PathwaysInputError(f"argument 'data': {type(data).__name__} has neither 'marks' nor 'code'")
    marks = np.asarray(marks, dtype=np.int64)
    n_codes = int(getattr(data, "n_codes", 0) or (marks.max() + 1 if marks.size else 0))
    if codes is None:
        vocab = getattr(data, "vocab", None)
        codes = list(vocab.codes) if vocab is not None else [str(i) for i in range(n_codes)]
    offsets = getattr(data, "offsets", None)
    n_events = np.bincount(marks, minlength=n_codes)
    if offsets is not None:
        seq = np.repeat(np.arange(len(offsets) - 1), np.diff(np.asarray(offsets)))
        # distinct (patient, code) pairs, counted per code
        pairs = np.unique(seq.astype(np.int64) * n_codes + marks)
        n_patients = np.bincount(pairs % n_codes, minlength=n_codes)
    else:
        n_patients = np.full(n_codes, np.nan)
    return pd.DataFrame({"code": [str(c) for c in codes][:n_codes], "n_events": n_events[:n_codes],
                         "n_patients": n_patients[:n_codes]})


def hawkes_factors(model: Any, counts: pd.DataFrame | None = None, intervals: Any = None) -> pd.DataFrame:
    """Factors table of a fitted Hawkes model for reports: :func:`pathways.factors.excitation_graph`, one row per
    (source, target) in target-major order (the layout the excitation heatmap reshapes), with event counts.

    Intervals come from ``intervals`` (a ``HawkesIntervals``), else from ``model.confidence_intervals_`` when the
    model kept them (else NaN). ``counts`` (from :func:`code_counts`) fills ``n_source_events`` and
    ``n_target_events``, the basis of small-count suppression.
    """
    ci = intervals if intervals is not None else getattr(model, "confidence_intervals_", None)
    frame = excitation_graph(model, intervals=ci)
    position = {code: i for i, code in enumerate(np.asarray(model.codes_, dtype=object).astype(str))}
    key = frame["target"].astype(str).map(position) * len(position) + frame["source"].astype(str).map(position)
    frame = frame.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)
    if counts is not None:
        n = counts.set_index("code")["n_events"]
        frame["n_source_events"] = frame["source"].astype(str).map(n).to_numpy()
        frame["n_target_events"] = frame["target"].astype(str).map(n).to_numpy()
    return frame


def _jsonable_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return to_jsonable(dict(metrics))


def markdown_table(frame: pd.DataFrame, max_rows: int = 20) -> str:
    if frame is None or frame.empty:
        return "_(empty)_"
    shown = frame.head(max_rows)

    def fmt(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return "–" if not np.isfinite(v) else f"{v:.4g}"
        return str(v)

    cols = [str(c) for c in shown.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    if len(frame) > max_rows:
        lines.append(f"\n_{len(frame) - max_rows} more rows in the CSV file._")
    return "\n".join(lines)


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


# --------------------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------------------
def write_report(out_dir: str | os.PathLike, *, title: str = "pathways run", model: Any = None,
                 metrics: Mapping[str, Any] | None = None, history: Sequence[Mapping[str, Any]] | None = None,
                 factors: pd.DataFrame | None = None, signals: pd.DataFrame | None = None,
                 counts: pd.DataFrame | None = None, summary: Mapping[str, Any] | None = None,
                 min_cell_count: int | None = None, top_k: int = 20, figures: bool = True) -> Report:
    """Write the report folder of a run (see the module docstring for its content).

    Parameters
    ----------
    out_dir : folder to write (created).
    title : heading of report.md.
    model : the fitted estimator (its class name is reported; Hawkes models give the heatmap).
    metrics : metric name -> value.
    history : per-epoch / per-iteration dicts (training curve).
    factors, signals : factors table / signal table.
    counts : events per code (:func:`code_counts`).
    summary : extra key -> value lines (data source, sizes, paths).
    min_cell_count : suppress counts below it (None: off).
    top_k : rows shown in the markdown tables and the top-drivers figure.
    figures : draw figures (needs matplotlib; skipped with a log line when it is absent).

    Returns
    -------
    :class:`Report` with the written paths.
    """
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    report = Report(directory)
    metrics = _jsonable_metrics(metrics or {})
    with atomic_path(directory / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    report.files["metrics"] = directory / "metrics.json"

    if counts is not None:
        counts = suppress(counts, min_cell_count, "code_counts")
        report.files["code_counts"] = _write_csv(counts, directory / "code_counts.csv")
    if factors is not None:
        factors = suppress(factors, min_cell_count, "factors")
        report.files["factors"] = _write_csv(factors, directory / "factors.csv")
    if signals is not None:
        signals = suppress(signals, min_cell_count, "signals")
        report.files["signals"] = _write_csv(signals, directory / "signals.csv")
    if figures:
        report.files.update(_figures(directory / "figures", model, history, factors, signals, top_k))
    lines = _markdown(title, model, metrics, factors, signals, counts, summary, min_cell_count, top_k, report)
    with atomic_path(directory / "report.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    report.files["report"] = directory / "report.md"
    return report


def _figures(fig_dir: Path, model: Any, history: Sequence[Mapping[str, Any]] | None,
             factors: pd.DataFrame | None, signals: pd.DataFrame | None, top_k: int) -> dict[str, Path]:
    try:
        import matplotlib  # noqa: F401

        from pathways import plots
    except ImportError:
        logger.info("report: matplotlib not installed, figures skipped (pip install 'pathways[plot]')")
        return {}
    out: dict[str, Path] = {}
    if factors is not None and not factors.empty and isinstance(model, HawkesBase):
        codes = [str(c) for c in model.codes_]
        d = len(codes)
        if len(factors) == d * d and "source" in factors.columns:
            adj = factors["effect"].to_numpy(float).reshape(d, d)
            mask = ~np.isfinite(adj)
            plots.plot_excitation_heatmap(np.nan_to_num(adj), codes, fig_dir / "excitation_heatmap.png", mask=mask)
            out["excitation_heatmap"] = fig_dir / "excitation_heatmap.png"
    if factors is not None and not factors.empty:
        plots.plot_top_drivers(factors, fig_dir / "top_drivers.png", k=top_k)
        out["top_drivers"] = fig_dir / "top_drivers.png"
    if history:
        plots.plot_training_curve(list(history), fig_dir / "training_curve.png")
        out["training_curve"] = fig_dir / "training_curve.png"
    if signals is not None and not signals.empty:
        plots.plot_signals(signals, fig_dir / "signals.png", k=top_k)
        out["signals_figure"] = fig_dir / "signals.png"
    return out


def _markdown(title: str, model: Any, metrics: dict[str, Any], factors: pd.DataFrame | None,
              signals: pd.DataFrame | None, counts: pd.DataFrame | None, summary: Mapping[str, Any] | None,
              min_cell_count: int | None, top_k: int, report: Report) -> list[str]:
    lines = [f"# {title}", ""]
    if model is not None:
        lines.append(f"- model: `{type(model).__module__}.{type(model).__name__}`")
    for key, value in (summary or {}).items():
        lines.append(f"- {key}: {value}")
    if min_cell_count is not None:
        lines.append(f"- small-count suppression: counts below {int(min_cell_count)} are hidden")
    lines += ["", "## Metrics", "", markdown_table(pd.DataFrame(
        {"metric": list(metrics), "value": [metrics[k] for k in metrics]}), max_rows=100)]
    if factors is not None:
        top = factors.dropna(subset=["effect"]).nlargest(top_k, "effect")
        lines += ["", f"## Top {min(top_k, len(top))} drivers", "", markdown_table(top, top_k)]
    if signals is not None:
        shown = signals.sort_values("rank") if "rank" in signals.columns else signals
        lines += ["", "## Signals", "", markdown_table(shown, top_k)]
    if counts is not None:
        lines += ["", "## Events per code (training data)", "",
                  markdown_table(counts.sort_values("n_events", ascending=False, na_position="last"), top_k)]
    files = {k: v for k, v in report.files.items()}
    if files:
        lines += ["", "## Files", ""]
        lines += [f"- {k}: [{p.relative_to(report.directory)}]({p.relative_to(report.directory)})"
                  for k, p in files.items()]
    return lines

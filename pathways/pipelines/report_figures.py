"""Figures of a run report (:func:`pathways.pipelines.report.write_report`), drawn when matplotlib is installed.

Factors of a Hawkes model give the excitation heatmap and network, and the top-drivers figure with cross-effects
and self-excitation (renewals) in separate panels. With the training data the report adds the model diagnostics:
kernel curves of the strongest cross-effects with their intervals, the time-rescaling QQ plot, and one sequence's
intensity over its history — a sequence *simulated from the fitted model* when small counts are suppressed, since
a real patient's dated events are individual-level data that a publishable report must not show.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pathways.errors import PathwaysInputError
from pathways.models.hawkes.base import HawkesBase
from pathways.utils import logger

# codes drawn in the QQ plot must have at least this many events (and at least min_cell_count)
_QQ_MIN_EVENTS = 5


def report_figures(fig_dir: Path, model: Any, history: Sequence[Mapping[str, Any]] | None,
                   factors: pd.DataFrame | None, signals: pd.DataFrame | None, top_k: int, *,
                   data: Any = None, labels: dict[str, str] | None = None,
                   min_cell_count: int | None = None) -> dict[str, Path]:
    """Draw every figure the inputs allow into ``fig_dir``; returns short name -> path."""
    try:
        import matplotlib  # noqa: F401

        from pathways import plots
    except ImportError:
        logger.info("report: matplotlib not installed, figures skipped (pip install 'pathways[plot]')")
        return {}
    out: dict[str, Path] = {}
    hawkes = isinstance(model, HawkesBase)
    if factors is not None and not factors.empty:
        whole = factors[factors["lag_days"].isna()] if "lag_days" in factors.columns else factors
        if hawkes:
            out.update(_excitation(plots, fig_dir, model, whole, labels))
        out["top_drivers"] = _top_drivers(plots, fig_dir / "top_drivers.png", whole, top_k)
    if history:
        plots.plot_training_curve(list(history), fig_dir / "training_curve.png")
        out["training_curve"] = fig_dir / "training_curve.png"
    if signals is not None and not signals.empty:
        plots.plot_signals(signals, fig_dir / "signals.png", k=top_k)
        out["signals_figure"] = fig_dir / "signals.png"
        calibration = _signal_calibration(plots, fig_dir / "calibration.png", signals)
        if calibration is not None:
            out["calibration_figure"] = calibration
    if hawkes and data is not None:
        out.update(_diagnostics(plots, fig_dir, model, data, factors, labels, min_cell_count))
    return out


def _excitation(plots: Any, fig_dir: Path, model: Any, whole: pd.DataFrame,
                labels: dict[str, str] | None) -> dict[str, Path]:
    out: dict[str, Path] = {}
    codes = [str(c) for c in model.codes_]
    d = len(codes)
    position = {c: i for i, c in enumerate(codes)}
    src, tgt = whole["source"].astype(str).map(position), whole["target"].astype(str).map(position)
    if len(whole) == d * d and src.notna().all() and tgt.notna().all():
        adj = np.full((d, d), np.nan)
        adj[tgt.to_numpy(int), src.to_numpy(int)] = whole["effect"].to_numpy(float)
        plots.plot_excitation_heatmap(np.nan_to_num(adj), codes, fig_dir / "excitation_heatmap.png",
                                      mask=~np.isfinite(adj))
        out["excitation_heatmap"] = fig_dir / "excitation_heatmap.png"
    plots.plot_excitation_graph(whole, fig_dir / "excitation_graph.png", labels=labels)
    out["excitation_graph"] = fig_dir / "excitation_graph.png"
    return out


def _top_drivers(plots: Any, path: Path, whole: pd.DataFrame, top_k: int) -> Path:
    """Cross-effects (left, what drives *other* events) and self-excitation (right, renewals) side by side."""
    same = whole["source"].astype(str) == whole["target"].astype(str)
    n_cross = int(min(top_k, whole[~same]["effect"].notna().sum()))
    n_self = int(min(top_k, whole[same]["effect"].notna().sum()))
    fig = plots._figure(14.0, 1.2 + 0.3 * max(n_cross, n_self, 1))
    left, right = fig.subplots(1, 2, width_ratios=[3, 2])
    plots.plot_top_drivers(whole, k=top_k, kind="cross", ax=left)
    plots.plot_top_drivers(whole, k=top_k, kind="self", ax=right)
    plots._save(fig, path)
    return path


def _signal_calibration(plots: Any, path: Path, signals: pd.DataFrame) -> Path | None:
    """One calibration panel per method with at least 5 negative controls that have a standard error."""
    if not {"negative_control", "se_log", "method", "estimate"} <= set(signals.columns):
        return None
    usable = signals["negative_control"].fillna(False).astype(bool) & signals["se_log"].notna() & (
        pd.to_numeric(signals["estimate"], errors="coerce") > 0)
    methods = [m for m, n in usable.groupby(signals["method"]).sum().items() if n >= 5]
    if not methods:
        return None
    fig, axes = plots._panels(None, len(methods), 5.5, 4.2)
    for ax, method in zip(axes, methods):
        part = signals[signals["method"] == method]
        plots.plot_null_calibration(part, title=f"Negative-control calibration: {method}", ax=ax)
    plots._save(fig, path)
    return path


def _diagnostics(plots: Any, fig_dir: Path, model: Any, data: Any, factors: pd.DataFrame | None,
                 labels: dict[str, str] | None, min_cell_count: int | None) -> dict[str, Path]:
    out: dict[str, Path] = {}
    codes = [str(c) for c in model.codes_]
    if factors is not None and not factors.empty:
        cross = factors[(factors["source"].astype(str) != factors["target"].astype(str))
                        & factors["effect"].notna()]
        if "lag_days" in cross.columns:
            cross = cross[cross["lag_days"].isna()]
        pairs = list(zip(cross.nlargest(6, "effect")["source"].astype(str),
                         cross.nlargest(6, "effect")["target"].astype(str)))
        if pairs:
            plots.plot_kernels(model, pairs, fig_dir / "kernels.png", intervals=factors, labels=labels)
            out["kernels"] = fig_dir / "kernels.png"
    try:
        residuals = model.residuals(data)
    except PathwaysInputError as exc:  # a diagnostic must not fail the run (e.g. data coded unlike the model)
        logger.info("report: no time-rescaling residuals for %s: %s", type(model).__name__, exc)
        return out
    plots.plot_time_rescaling_qq(residuals, codes, fig_dir / "time_rescaling_qq.png",
                                 min_count=max(_QQ_MIN_EVENTS, int(min_cell_count or 0)))
    out["time_rescaling_qq"] = fig_dir / "time_rescaling_qq.png"
    sequence, title = _intensity_sequence(model, data, residuals, min_cell_count)
    if sequence is not None:
        plots.plot_intensity(model, sequence, 0, fig_dir / "intensity.png", labels=labels, title=title)
        out["intensity"] = fig_dir / "intensity.png"
    return out


def _intensity_sequence(model: Any, data: Any, residuals: Any, min_cell_count: int | None) -> tuple[Any, str]:
    """A real training sequence of median size (no suppression) or one simulated from the model (suppression on)."""
    lengths = np.asarray(residuals.n_events)
    if not hasattr(data, "start") or lengths.size == 0:
        return None, ""
    window = float(np.median(np.asarray(data.end, float) - np.asarray(data.start, float)))
    if min_cell_count is not None:
        simulated = model.simulate(window, n=1, seed=0)
        return simulated, f"Intensity of a patient simulated from the fitted model ({simulated.n_events} events)"
    busy = np.flatnonzero(lengths >= 3)
    pool = busy if busy.size else np.arange(lengths.size)
    index = int(pool[np.argsort(lengths[pool], kind="stable")[pool.size // 2]])
    return data[[index]], f"Intensity over one training sequence of median size ({int(lengths[index])} events)"

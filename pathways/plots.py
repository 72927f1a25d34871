"""Figures for reports: excitation heatmap, top drivers, training curve, signal forest plot.

matplotlib is an optional dependency (``pathways[plot]``) imported lazily inside each function. Figures are built
with the object-oriented API on an Agg canvas (no pyplot, no global backend switch), so they work on headless
machines and never open windows. Each function returns the :class:`matplotlib.figure.Figure` and, when ``path`` is
given, also writes it atomically (format from the suffix: .png, .pdf, .svg).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from pathways.errors import PathwaysInputError
from pathways.utils import atomic_path


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("pathways.plots needs matplotlib: pip install 'pathways[plot]'") from exc
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike | None, dpi: int = 120) -> None:
    if path is None:
        return
    target = Path(path)
    with atomic_path(target, suffix=target.suffix) as tmp:
        fig.savefig(tmp, dpi=dpi, format=target.suffix.lstrip(".") or "png")


def plot_excitation_heatmap(adjacency: np.ndarray, codes: Sequence[str], path: str | os.PathLike | None = None,
                            *, mask: np.ndarray | None = None, title: str = "Excitation (adjacency)") -> Any:
    """Heatmap of ``adjacency[i, j]`` = effect of code j (column, source) on code i (row, target).

    Parameters
    ----------
    adjacency : (D, D) non-negative effects.
    codes : D code labels, in index order.
    path : optional output file.
    mask : (D, D) boolean; True cells are hidden (e.g. suppressed small counts) and drawn hatched.
    """
    adj = np.asarray(adjacency, dtype=np.float64)
    d = len(codes)
    if adj.shape != (d, d):
        raise PathwaysInputError(f"argument 'adjacency': shape {adj.shape} does not match {d} codes")
    shown = np.ma.masked_array(adj, mask=mask if mask is not None else np.zeros_like(adj, dtype=bool))
    size = min(3.0 + 0.35 * d, 16.0)
    fig = _figure(size + 1.2, size)
    ax = fig.add_subplot()
    ax.set_facecolor("0.85")  # masked cells show as grey
    im = ax.imshow(shown, cmap="viridis", vmin=0.0, vmax=max(float(np.nanmax(adj)) if adj.size else 1.0, 1e-12))
    ax.set_xticks(range(d), labels=[str(c) for c in codes], rotation=90, fontsize=7)
    ax.set_yticks(range(d), labels=[str(c) for c in codes], fontsize=7)
    ax.set_xlabel("source code (j)")
    ax.set_ylabel("target code (i)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8, label="expected triggered events")
    _save(fig, path)
    return fig


def plot_top_drivers(factors: pd.DataFrame, path: str | os.PathLike | None = None, *, k: int = 20,
                     title: str = "Top drivers") -> Any:
    """Horizontal bars of the ``k`` largest effects of a factors table, with their intervals when present.

    Rows with a NaN effect (suppressed or not estimable) are left out.
    """
    for col in ("source", "target", "effect"):
        if col not in factors.columns:
            raise PathwaysInputError(f"argument 'factors': missing column '{col}' (columns: {list(factors.columns)})")
    top = factors.dropna(subset=["effect"]).nlargest(int(k), "effect").iloc[::-1]
    fig = _figure(7.0, 1.0 + 0.3 * max(len(top), 1))
    ax = fig.add_subplot()
    labels = top["source"].astype(str) + " → " + top["target"].astype(str)
    y = np.arange(len(top))
    ax.barh(y, top["effect"].to_numpy(float), color="tab:blue", alpha=0.8)
    if {"ci_low", "ci_high"} <= set(top.columns):
        lo = top["ci_low"].to_numpy(float)
        hi = top["ci_high"].to_numpy(float)
        ok = np.isfinite(lo) & np.isfinite(hi)
        eff = top["effect"].to_numpy(float)
        ax.errorbar(eff[ok], y[ok], xerr=np.vstack([eff[ok] - lo[ok], hi[ok] - eff[ok]]).clip(min=0),
                    fmt="none", ecolor="black", capsize=2, lw=1)
    ax.set_yticks(y, labels=labels, fontsize=8)
    ax.set_xlabel("effect")
    ax.set_title(title if len(top) else f"{title} (none)")
    _save(fig, path)
    return fig


_CURVE_HINTS = ("loss", "objective", "loglik", "log_lik", "likelihood", "nll", "score")


def plot_training_curve(history: Sequence[dict] | pd.DataFrame, path: str | os.PathLike | None = None,
                        *, title: str = "Training curve") -> Any:
    """Plot per-epoch (or per-iteration) losses / objectives of a training history.

    ``history`` is a list of dicts or a DataFrame; the x axis is ``epoch`` or ``iteration`` when present (else the
    row number) and every numeric column whose name mentions loss, objective or likelihood is drawn (all numeric
    columns when none does).
    """
    frame = pd.DataFrame(list(history)) if not isinstance(history, pd.DataFrame) else history
    fig = _figure(6.0, 3.8)
    ax = fig.add_subplot()
    if frame.empty:
        ax.set_title(f"{title} (no history)")
        _save(fig, path)
        return fig
    xcol = next((c for c in ("epoch", "iteration", "iter", "step") if c in frame.columns), None)
    x = frame[xcol].to_numpy(float) if xcol else np.arange(len(frame), dtype=float)
    numeric = [c for c in frame.columns if c != xcol and pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    ycols = [c for c in numeric if any(h in str(c).lower() for h in _CURVE_HINTS)] or numeric
    for col in ycols:
        ax.plot(x, frame[col].to_numpy(float), marker="o", ms=3, label=str(col))
    ax.set_xlabel(xcol or "step")
    ax.set_title(title)
    if ycols:
        ax.legend(fontsize=8)
    _save(fig, path)
    return fig


def plot_signals(signals: pd.DataFrame, path: str | os.PathLike | None = None, *, k: int = 30,
                 title: str = "Signals (estimate and interval)") -> Any:
    """Forest plot of the ``k`` best-ranked rows of a signal table (log scale; flagged rows in red)."""
    for col in ("exposure", "outcome", "method", "estimate"):
        if col not in signals.columns:
            raise PathwaysInputError(f"argument 'signals': missing column '{col}'")
    order = signals.sort_values("rank") if "rank" in signals.columns else signals
    top = order.dropna(subset=["estimate"]).head(int(k)).iloc[::-1]
    fig = _figure(7.0, 1.0 + 0.28 * max(len(top), 1))
    ax = fig.add_subplot()
    y = np.arange(len(top))
    est = top["estimate"].to_numpy(float)
    flag = top["flag"].to_numpy(bool) if "flag" in top.columns else np.zeros(len(top), bool)
    if {"ci_low", "ci_high"} <= set(top.columns):
        lo, hi = top["ci_low"].to_numpy(float), top["ci_high"].to_numpy(float)
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.hlines(y[ok], lo[ok], hi[ok], color="0.4", lw=1)
    ax.scatter(est, y, c=np.where(flag, "tab:red", "tab:blue"), zorder=3, s=16)
    positive = est[np.isfinite(est) & (est > 0)]
    if positive.size and np.all(est[np.isfinite(est)] > 0):
        ax.set_xscale("log")
        ax.axvline(1.0, color="0.5", ls="--", lw=1)
    labels = top["exposure"].astype(str) + " → " + top["outcome"].astype(str) + " (" + top["method"].astype(str) + ")"
    ax.set_yticks(y, labels=labels, fontsize=7)
    ax.set_title(title)
    _save(fig, path)
    return fig


def plot_volcano(signals: pd.DataFrame, path: str | os.PathLike | None = None, *,
                 title: str = "Signals: estimate vs q-value") -> Any:
    """Volcano plot of a signal table: log2 estimate against -log10 q (calibrated q when present), per method."""
    for col in ("method", "estimate", "q"):
        if col not in signals.columns:
            raise PathwaysInputError(f"argument 'signals': missing column '{col}'")
    fig = _figure(6.5, 4.5)
    ax = fig.add_subplot()
    q_col = "q_calibrated" if "q_calibrated" in signals.columns and signals["q_calibrated"].notna().any() else "q"
    for method, part in signals.groupby("method", sort=True):
        q = part[q_col].fillna(part["q"]).to_numpy(float)
        est = part["estimate"].to_numpy(float)
        ok = np.isfinite(q) & np.isfinite(est) & (est > 0)
        if not ok.any():
            continue  # Bayesian methods have no q-value
        flag = part["flag"].to_numpy(bool)[ok] if "flag" in part.columns else np.zeros(int(ok.sum()), bool)
        y = -np.log10(np.clip(q[ok], 1e-300, 1.0))
        ax.scatter(np.log2(est[ok]), y, s=np.where(flag, 30, 12), label=str(method), alpha=0.8)
    ax.axhline(-np.log10(0.05), color="0.5", ls="--", lw=1)
    ax.axvline(0.0, color="0.5", ls=":", lw=1)
    ax.set_xlabel("log2 estimate (ratio scale)")
    ax.set_ylabel(f"-log10 {q_col}")
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)
    return fig


def plot_relative_incidence(curves: pd.DataFrame, path: str | os.PathLike | None = None, *, max_panels: int = 12,
                            title: str = "Relative incidence after exposure") -> Any:
    """Step curves of relative incidence by lag with their intervals, one panel per (exposure, outcome)."""
    need = ("exposure", "outcome", "lag_start", "lag_end", "ri", "ci_low", "ci_high")
    missing = [c for c in need if c not in curves.columns]
    if missing:
        raise PathwaysInputError(f"argument 'curves': missing column(s) {missing}")
    pairs = list(curves.groupby(["exposure", "outcome"], sort=True))[: int(max_panels)]
    n = max(len(pairs), 1)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig = _figure(4.0 * cols, 3.0 * rows)
    for i, ((exposure, outcome), part) in enumerate(pairs):
        ax = fig.add_subplot(rows, cols, i + 1)
        part = part.sort_values("lag_start")
        x = np.concatenate([part["lag_start"].to_numpy(float), part["lag_end"].to_numpy(float)[-1:]])
        for col, style in (("ri", "-"), ("ci_low", ":"), ("ci_high", ":")):
            y = part[col].to_numpy(float)
            ax.step(x, np.concatenate([y, y[-1:]]), where="post", ls=style, color="tab:blue")
        ax.axhline(1.0, color="0.5", ls="--", lw=1)
        ax.set_title(f"{exposure} → {outcome}", fontsize=9)
        ax.set_xlabel("days after dispensation", fontsize=8)
        ax.set_ylabel("relative incidence", fontsize=8)
    fig.suptitle(title)
    _save(fig, path)
    return fig

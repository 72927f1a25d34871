"""Figures of run reports: excitation heatmap, top drivers, training curve, signal forest and volcano plots,
relative-incidence curves.

Each function draws on the caller's matplotlib axes (``ax=``) or on a new Agg figure, returns the figure and, when
``path`` is given, also writes it atomically (format from the suffix: .png, .pdf, .svg).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pathways.errors import PathwaysInputError
from pathways.plots.base import _axes, _need, _panels, _save

#: effect unit written on axes and in reports
EFFECT_UNIT = "expected extra target events per source event"


def code_text(frame: pd.DataFrame, col: str, width: int = 34) -> pd.Series:
    """``"<code> <label>"`` of column ``col``, from the readable ``<col>_label`` column when the table has one
    (labels cut to ``width`` characters)."""
    text = frame[col].astype(str)
    if f"{col}_label" in frame.columns:
        lab = frame[f"{col}_label"].fillna("").astype(str)
        lab = lab.where(lab.str.len() <= width, lab.str.slice(0, width - 1).str.rstrip() + "…")
        text = text.where(lab == "", text + " " + lab)
    return text


def _pair_labels(frame: pd.DataFrame, left: str, right: str, width: int = 34) -> pd.Series:
    """``"<left> → <right>"`` with readable labels when the table has them."""
    return code_text(frame, left, width) + " → " + code_text(frame, right, width)


def plot_excitation_heatmap(adjacency: np.ndarray, codes: Sequence[str], path: str | os.PathLike | None = None,
                            *, mask: np.ndarray | None = None, title: str = "Excitation (adjacency)",
                            ax: Any = None) -> Any:
    """Heatmap of ``adjacency[i, j]`` = effect of code j (column, source) on code i (row, target).

    Parameters
    ----------
    adjacency : (D, D) non-negative effects.
    codes : D code labels, in index order.
    path : optional output file.
    mask : (D, D) boolean; True cells are hidden (e.g. suppressed small counts) and drawn grey.
    ax : draw on these matplotlib axes (default: a new figure).
    """
    adj = np.asarray(adjacency, dtype=np.float64)
    d = len(codes)
    if adj.shape != (d, d):
        raise PathwaysInputError(f"argument 'adjacency': shape {adj.shape} does not match {d} codes")
    shown = np.ma.masked_array(adj, mask=mask if mask is not None else np.zeros_like(adj, dtype=bool))
    size = min(3.0 + 0.35 * d, 16.0)
    fig, ax = _axes(ax, size + 1.2, size)
    ax.set_facecolor("0.85")  # masked cells show as grey
    im = ax.imshow(shown, cmap="viridis", vmin=0.0, vmax=max(float(np.nanmax(adj)) if adj.size else 1.0, 1e-12))
    ax.set_xticks(range(d), labels=[str(c) for c in codes], rotation=90, fontsize=7)
    ax.set_yticks(range(d), labels=[str(c) for c in codes], fontsize=7)
    ax.set_xlabel("source code (j)")
    ax.set_ylabel("target code (i)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8, label="extra target events per source event")
    _save(fig, path)
    return fig


def plot_top_drivers(factors: pd.DataFrame, path: str | os.PathLike | None = None, *, k: int = 20,
                     kind: str = "all", title: str | None = None, ax: Any = None) -> Any:
    """Horizontal bars of the ``k`` largest effects of a factors table, with their intervals when present.

    ``kind="cross"`` keeps what drives *other* codes (source != target), ``"self"`` the self-excitation
    (renewals), ``"all"`` both. Rows with a NaN effect (suppressed or not estimable) are left out. Readable
    ``source_label`` / ``target_label`` columns are shown when present; a ``lag_95`` column (lag by which 95 % of
    the effect has happened) is written at the end of each bar.
    """
    _need(factors, "factors", ("source", "target", "effect"))
    if kind not in ("all", "cross", "self"):
        raise PathwaysInputError(f"argument 'kind': expected 'all', 'cross' or 'self', got {kind!r}")
    rows = factors.dropna(subset=["effect"])
    if kind != "all":
        same = rows["source"].astype(str) == rows["target"].astype(str)
        rows = rows[same if kind == "self" else ~same]
    top = rows.nlargest(int(k), "effect").iloc[::-1]
    title = title or {"all": "Top drivers", "cross": "Top cross-effects (drivers of other events)",
                      "self": "Self-excitation (renewals)"}[kind]
    fig, ax = _axes(ax, 8.0, 1.0 + 0.3 * max(len(top), 1))
    labels = code_text(top, "source") if kind == "self" else _pair_labels(top, "source", "target")
    y = np.arange(len(top))
    eff = top["effect"].to_numpy(float)
    ax.barh(y, eff, color="tab:blue" if kind != "self" else "tab:grey", alpha=0.8)
    if {"ci_low", "ci_high"} <= set(top.columns):
        lo = top["ci_low"].to_numpy(float)
        hi = top["ci_high"].to_numpy(float)
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar(eff[ok], y[ok], xerr=np.vstack([eff[ok] - lo[ok], hi[ok] - eff[ok]]).clip(min=0),
                    fmt="none", ecolor="black", capsize=2, lw=1)
    if "lag_95" in top.columns:  # written right of the bar and its interval
        right = np.fmax(eff, top["ci_high"].to_numpy(float)) if "ci_high" in top.columns else eff
        for yi, x, lag in zip(y, right, top["lag_95"].to_numpy(float)):
            if np.isfinite(lag):
                ax.annotate(f"95 % within {lag:.3g} d", (x, yi), xytext=(4, -3), textcoords="offset points",
                            fontsize=6, color="0.3")
    ax.set_yticks(y, labels=labels, fontsize=7)
    ax.set_xlabel(EFFECT_UNIT, fontsize=8)
    ax.margins(x=0.25)
    ax.set_title(title if len(top) else f"{title} (none)", fontsize=10)
    _save(fig, path)
    return fig


_CURVE_HINTS = ("loss", "objective", "loglik", "log_lik", "likelihood", "nll", "score")


def plot_training_curve(history: Sequence[dict] | pd.DataFrame, path: str | os.PathLike | None = None,
                        *, title: str = "Training curve", ax: Any = None) -> Any:
    """Plot per-epoch (or per-iteration) losses / objectives of a training history.

    ``history`` is a list of dicts or a DataFrame; the x axis is ``epoch`` or ``iteration`` when present (else the
    row number) and every numeric column whose name mentions loss, objective or likelihood is drawn (all numeric
    columns when none does). ``ax``: draw on these matplotlib axes (default: a new figure).
    """
    frame = pd.DataFrame(list(history)) if not isinstance(history, pd.DataFrame) else history
    fig, ax = _axes(ax, 6.0, 3.8)
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
                 title: str = "Signals (estimate and interval)", ax: Any = None) -> Any:
    """Forest plot of the ``k`` best-ranked rows of a signal table (log scale; flagged rows in red).

    Readable ``exposure_label`` / ``outcome_label`` columns are shown when present.
    """
    _need(signals, "signals", ("exposure", "outcome", "method", "estimate"))
    order = signals.sort_values("rank") if "rank" in signals.columns else signals
    top = order.dropna(subset=["estimate"]).head(int(k)).iloc[::-1]
    fig, ax = _axes(ax, 8.0, 1.0 + 0.28 * max(len(top), 1))
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
    labels = _pair_labels(top, "exposure", "outcome", 26) + " (" + top["method"].astype(str) + ")"
    ax.set_yticks(y, labels=labels, fontsize=7)
    ax.set_title(title)
    _save(fig, path)
    return fig


def plot_volcano(signals: pd.DataFrame, path: str | os.PathLike | None = None, *,
                 title: str = "Signals: estimate vs q-value", ax: Any = None) -> Any:
    """Volcano plot of a signal table: log2 estimate against -log10 q (calibrated q when present), per method."""
    _need(signals, "signals", ("method", "estimate", "q"))
    fig, ax = _axes(ax, 6.5, 4.5)
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
                            title: str = "Relative incidence after exposure", ax: Any = None) -> Any:
    """Step curves of relative incidence by lag with their intervals, one panel per (exposure, outcome).

    ``ax``: one matplotlib Axes per panel (a sequence, or a single Axes for one pair); default: a new figure.
    """
    _need(curves, "curves", ("exposure", "outcome", "lag_start", "lag_end", "ri", "ci_low", "ci_high"))
    pairs = list(curves.groupby(["exposure", "outcome"], sort=True))[: int(max_panels)]
    fig, axes = _panels(ax, len(pairs), 4.0, 3.0)
    for panel, ((exposure, outcome), part) in zip(axes, pairs):
        part = part.sort_values("lag_start")
        x = np.concatenate([part["lag_start"].to_numpy(float), part["lag_end"].to_numpy(float)[-1:]])
        for col, style in (("ri", "-"), ("ci_low", ":"), ("ci_high", ":")):
            y = part[col].to_numpy(float)
            panel.step(x, np.concatenate([y, y[-1:]]), where="post", ls=style, color="tab:blue")
        panel.axhline(1.0, color="0.5", ls="--", lw=1)
        panel.set_title(f"{exposure} → {outcome}", fontsize=9)
        panel.set_xlabel("days after dispensation", fontsize=8)
        panel.set_ylabel("relative incidence", fontsize=8)
    if ax is None:
        fig.suptitle(title)
    _save(fig, path)
    return fig

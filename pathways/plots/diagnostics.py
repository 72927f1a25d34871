"""Model diagnostics: time-rescaling QQ plot, negative-control calibration plot, a patient's intensity over their
history, and kernel curves with intervals.

The Hawkes-specific figures take a fitted model (anything on :class:`~pathways.models.hawkes.HawkesBase`) and use
only its public methods (``residuals``, ``intensity``, ``kernel_values``, ``adjacency_``, ``codes_``).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pathways.errors import PathwaysInputError
from pathways.plots.base import _axes, _need, _panels, _save
from pathways.signals.calibration import fit_null

# Kolmogorov-Smirnov 95 % critical value of sqrt(n) * D for large n: the QQ band
_KS_95 = 1.358


def plot_time_rescaling_qq(residuals: Any, codes: Sequence[str] | None = None, path: str | os.PathLike | None = None,
                           *, max_codes: int = 6, min_count: int = 5,
                           title: str = "Time-rescaling QQ plot (goodness of fit)",
                           ax: Any = None) -> Any:
    """QQ plot of time-rescaled event times against Uniform(0, 1), pooled and for the most frequent codes.

    Under a well-specified point-process model the rescaled times ``Λ_c(t_k) / Λ_c(end)`` are Uniform(0, 1)
    (time-rescaling theorem); points outside the dashed 95 % Kolmogorov-Smirnov band show lack of fit.

    Parameters
    ----------
    residuals : a model's :meth:`residuals(data) <pathways.models.hawkes.HawkesBase.residuals>` (``uniform``
        and ``marks``), or a plain array of rescaled times (one pooled curve).
    codes : code names by mark index (legend).
    max_codes : curves drawn for the most frequent codes besides the pooled one.
    min_count : a code gets its own curve (and its count in the legend) only with at least this many events; set
        it to the report's ``min_cell_count`` so no small count is shown.
    ax : draw on these matplotlib axes (default: a new figure).
    """
    uniform = np.asarray(getattr(residuals, "uniform", residuals), dtype=np.float64).ravel()
    marks = getattr(residuals, "marks", None)
    if uniform.size == 0:
        raise PathwaysInputError("argument 'residuals': no event to rescale")
    fig, ax = _axes(ax, 5.5, 5.0)
    n = uniform.size
    curves: list[tuple[str, np.ndarray]] = [(f"all events (n={n})", uniform)]
    if marks is not None and max_codes > 0:
        marks = np.asarray(marks, dtype=np.int64)
        counts = np.bincount(marks)
        for m in np.argsort(-counts, kind="stable")[: int(max_codes)]:
            if counts[m] >= max(int(min_count), 1):
                name = str(codes[m]) if codes is not None else str(m)
                curves.append((f"{name} (n={counts[m]})", uniform[marks == m]))
    grid = np.linspace(0.0, 1.0, 101)
    band = _KS_95 / np.sqrt(n)
    ax.fill_between(grid, np.clip(grid - band, 0, 1), np.clip(grid + band, 0, 1), color="0.85",
                    label="95 % KS band (all events)")
    ax.plot([0, 1], [0, 1], color="0.3", lw=0.8, ls="--")
    for i, (name, values) in enumerate(curves):
        v = np.sort(values)
        expected = (np.arange(1, v.size + 1) - 0.5) / v.size
        ax.plot(expected, v, lw=2.0 if i == 0 else 1.0, color="black" if i == 0 else None, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("Uniform(0, 1) quantile")
    ax.set_ylabel("rescaled event time quantile")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    _save(fig, path)
    return fig


def plot_null_calibration(estimates: pd.DataFrame, path: str | os.PathLike | None = None, *, null: Any = None,
                          estimate: str = "estimate", se: str = "se_log", control: str = "negative_control",
                          log_scale: bool = False, title: str = "Negative-control calibration",
                          ax: Any = None) -> Any:
    """Estimates against their standard errors, with the systematic-error null fitted on negative controls.

    Negative controls (grey) should scatter around no effect; the dotted lines bound uncalibrated p = 0.05, the
    blue lines calibrated p = 0.05 under the fitted null ``N(μ, σ² + se²)`` (Schuemie et al. 2014). Points
    outside the blue funnel stay significant after calibration.

    Parameters
    ----------
    estimates : one row per estimate; ``estimate`` on the ratio scale (or already a log with ``log_scale=True``),
        ``se`` the standard error of the log estimate, ``control`` boolean.
    null : a fitted :class:`~pathways.signals.SystematicErrorNull` (mean, sd); default: fitted here on the
        controls (needs at least 5 with a standard error), or none drawn when there are too few.
    ax : draw on these matplotlib axes (default: a new figure).
    """
    _need(estimates, "estimates", (estimate, se, control))
    value = pd.to_numeric(estimates[estimate], errors="coerce").to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_est = value if log_scale else np.log(value)
    err = pd.to_numeric(estimates[se], errors="coerce").to_numpy(float)
    ok = np.isfinite(log_est) & np.isfinite(err) & (err > 0)
    is_control = estimates[control].fillna(False).astype(bool).to_numpy()
    if null is None and int((ok & is_control).sum()) >= 5:
        null = fit_null(log_est[ok & is_control], err[ok & is_control])
    fig, ax = _axes(ax, 6.0, 4.5)
    ax.scatter(log_est[ok & is_control], err[ok & is_control], s=14, color="grey", label="negative controls")
    ax.scatter(log_est[ok & ~is_control], err[ok & ~is_control], s=22, marker="D", color="#d62728",
               label="estimates")
    top = float(err[ok].max()) * 1.15 if ok.any() else 1.0
    grid = np.linspace(1e-3, top, 100)
    z = stats.norm.ppf(0.975)
    ax.plot(z * grid, grid, color="black", lw=0.8, ls=":", label="uncalibrated p = 0.05")
    ax.plot(-z * grid, grid, color="black", lw=0.8, ls=":")
    if null is not None:
        width = z * np.sqrt(null.sd**2 + grid**2)
        ax.plot(null.mean + width, grid, color="#1f77b4", lw=1.2,
                label=f"calibrated p = 0.05 (null μ={null.mean:.2f}, σ={null.sd:.2f})")
        ax.plot(null.mean - width, grid, color="#1f77b4", lw=1.2)
    ax.axvline(0.0, color="0.6", lw=0.6)
    ax.set_ylim(top, 0.0)  # small standard errors (precise estimates) at the top, as in funnel plots
    ax.set_xlabel("log estimate (0 = no effect)")
    ax.set_ylabel("standard error of the log estimate")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)  # below: never on a point
    _save(fig, path)
    return fig


def plot_intensity(model: Any, sequences: Any, index: int = 0, path: str | os.PathLike | None = None, *,
                   codes: Sequence[str] | None = None, max_codes: int = 4, n_points: int = 600,
                   labels: dict[str, str] | None = None, title: str | None = None, ax: Any = None) -> Any:
    """One sequence's conditional intensities over its window, with its events marked.

    Parameters
    ----------
    model : fitted Hawkes model.
    sequences : :class:`~pathways.encode.Sequences` coded like the model; ``index`` picks the sequence (a
        position, never a patient identifier).
    codes : codes whose intensity is drawn (default: the ``max_codes`` most frequent codes of the sequence).
    n_points : evaluation grid (plus a point just before and at each event, so the jumps show).
    labels : code -> readable label (legend).
    ax : draw on these matplotlib axes (default: a new figure).
    """
    if not 0 <= int(index) < len(sequences):
        raise PathwaysInputError(f"argument 'index': {index} outside 0..{len(sequences) - 1}")
    one = sequences[[int(index)]]
    start, end = float(np.asarray(one.start)[0]), float(np.asarray(one.end)[0])
    times, marks = np.asarray(one.times, float), np.asarray(one.marks, np.int64)
    names = [str(c) for c in model.codes_]
    if codes is None:
        counts = np.bincount(marks, minlength=len(names))
        chosen = [int(m) for m in np.argsort(-counts, kind="stable")[: int(max_codes)] if counts[m] > 0]
    else:
        missing = [c for c in codes if str(c) not in names]
        if missing:
            raise PathwaysInputError(f"argument 'codes': {len(missing)} code(s) not in the model, e.g. {missing[0]!r}")
        chosen = [names.index(str(c)) for c in codes]
    eps = (end - start) * 1e-6
    grid = np.unique(np.concatenate([np.linspace(start, end, int(n_points)), times, np.clip(times - eps, start, end)]))
    lam = model.intensity(one, grid)
    fig, ax = _axes(ax, 8.0, 3.8)
    colours = [f"C{i}" for i in range(10)]
    for i, m in enumerate(chosen):
        ax.plot(grid - start, lam[:, m], lw=1.2, color=colours[i % 10], label=_name(names[m], labels, 30))
        hit = times[marks == m] - start
        ax.plot(hit, np.zeros(hit.size), "|", ms=12, mew=1.5, color=colours[i % 10])
    other = ~np.isin(marks, chosen)
    if other.any():
        ax.plot(times[other] - start, np.zeros(int(other.sum())), "|", ms=8, color="0.6", label="other events")
    ax.set_xlim(0.0, end - start)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("time since the start of follow-up (model unit: days for EventLogs built from dates)")
    ax.set_ylabel("intensity (events per time unit)")
    ax.set_title(title or f"Intensity over sequence {int(index)} ({times.size} events)", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    _save(fig, path)
    return fig


def plot_kernels(model: Any, pairs: Sequence[tuple[str, str]], path: str | os.PathLike | None = None, *,
                 intervals: Any = None, horizon: float | None = None, n_points: int = 300,
                 labels: dict[str, str] | None = None, ax: Any = None) -> Any:
    """Kernel curves φ_target,source(lag) of chosen (source, target) pairs, one panel each, with intervals.

    The band is the interval of the pair's effect (kernel norm, from ``intervals`` — a
    :class:`~pathways.models.hawkes.HawkesIntervals`, or a factors table with ``source``, ``target``,
    ``ci_low``, ``ci_high`` — else ``model.confidence_intervals_``) applied to the fitted kernel shape:
    ``φ · [low, high] / effect``. It is the uncertainty of the amount of excitation, the shape being held at its
    estimate.

    Parameters
    ----------
    pairs : (source code, target code) pairs.
    horizon : largest lag drawn (default: the finite kernel support, else 5 / the kernel's e-folding rate as
        read from its values).
    ax : one Axes per pair (a sequence, or a single Axes for one pair); default: a new figure.
    """
    names = [str(c) for c in model.codes_]
    index = {c: i for i, c in enumerate(names)}
    bad = [p for p in pairs if str(p[0]) not in index or str(p[1]) not in index]
    if bad or not pairs:
        raise PathwaysInputError(f"argument 'pairs': {len(bad)} pair(s) with codes not in the model"
                                 if bad else "argument 'pairs': empty")
    ci = intervals if intervals is not None else getattr(model, "confidence_intervals_", None)
    bounds, level = _effect_bounds(ci, names)
    supports = np.asarray(model.get_kernel_supports(), dtype=float)
    fig, axes = _panels(ax, len(pairs), 4.0, 3.0)
    adjacency = np.asarray(model.adjacency_, dtype=float)
    for panel, (s, t) in zip(axes, pairs):
        j, i = index[str(s)], index[str(t)]
        h = horizon or (supports[i, j] if np.isfinite(supports[i, j]) else _horizon(model, i, j))
        lags = np.linspace(0.0, float(h), int(n_points) + 1)[1:]
        phi = model.kernel_values(lags, np.full(lags.size, j, dtype=np.int64))[:, i]
        panel.plot(lags, phi, color="tab:blue", lw=1.5, label="kernel")
        effect = adjacency[i, j]
        if bounds is not None and effect > 0:
            lo, hi = float(bounds[0][i, j]), float(bounds[1][i, j])
            if np.isfinite(lo) and np.isfinite(hi):
                panel.fill_between(lags, phi * max(lo, 0.0) / effect, phi * hi / effect, color="tab:blue",
                                   alpha=0.2, label=f"{level} interval of the effect")
        panel.set_title(f"{_name(s, labels)} → {_name(t, labels)}\neffect {effect:.3g} extra events per source event",
                     fontsize=8)
        panel.set_xlabel("lag (model time unit)", fontsize=8)
        panel.set_ylabel("excitation rate", fontsize=8)
        panel.set_ylim(bottom=0.0)
        panel.legend(fontsize=6)
    _save(fig, path)
    return fig


def _effect_bounds(ci: Any, names: list[str]) -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
    """((D, D) low, (D, D) high) effect bounds [target, source] from HawkesIntervals or a factors table."""
    if ci is None:
        return None, ""
    if isinstance(ci, pd.DataFrame):
        _need(ci, "intervals", ("source", "target", "ci_low", "ci_high"))
        rows = ci[ci["lag_days"].isna()] if "lag_days" in ci.columns else ci
        index = {c: k for k, c in enumerate(names)}
        src, tgt = rows["source"].astype(str).map(index), rows["target"].astype(str).map(index)
        ok = (src.notna() & tgt.notna()).to_numpy()
        low, high = np.full((len(names),) * 2, np.nan), np.full((len(names),) * 2, np.nan)
        t, s = tgt[ok].to_numpy(int), src[ok].to_numpy(int)
        low[t, s] = pd.to_numeric(rows["ci_low"], errors="coerce").to_numpy(float)[ok]
        high[t, s] = pd.to_numeric(rows["ci_high"], errors="coerce").to_numpy(float)[ok]
        return (low, high), "confidence"
    return (np.asarray(ci.adjacency_low), np.asarray(ci.adjacency_high)), f"{round(100 * (1 - ci.alpha))} %"


def _name(code: Any, labels: dict[str, str] | None, width: int = 24) -> str:
    """``"<code> <label>"`` with the label cut to ``width`` characters (ellipsis)."""
    label = (labels or {}).get(str(code), "")
    if len(label) > width:
        label = label[: width - 1].rstrip() + "…"
    return f"{code} {label}" if label else str(code)


def _horizon(model: Any, i: int, j: int) -> float:
    """Lag by which 99 % of an infinite-support kernel's mass has passed (doubling search on the tail)."""
    effect = float(np.asarray(model.adjacency_)[i, j])
    h = 1.0
    for _ in range(40):
        lags = np.linspace(0.0, h, 2001)[1:]
        mass = float(np.sum(model.kernel_values(lags, np.full(lags.size, j, dtype=np.int64))[:, i]) * h / 2000)
        if effect <= 0 or mass >= 0.99 * effect:
            return h
        h *= 2.0
    return h

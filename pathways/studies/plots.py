"""Figures of a cohort study: Kaplan-Meier curves, preference-score distribution, balance and calibration plots.

matplotlib is optional (``pathways[plot]``): the figure helpers of :mod:`pathways.plots` import it lazily, build
figures on an Agg canvas and write them atomically. Each function accepts ``ax=`` (draw on the caller's axes) and
returns the figure.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from pathways.plots import _axes, _save, plot_null_calibration

ARM_COLOURS = {"target": "#1f77b4", "comparator": "#d62728"}


def plot_kaplan_meier(km: pd.DataFrame, path: str | os.PathLike | None = None, *, ax: Any = None) -> Any:
    """Step curves (with intervals) of the ``kaplan_meier`` table of each arm (column ``arm``)."""
    fig, ax = _axes(ax, 6.0, 4.0)
    for arm, g in km.groupby("arm", sort=False):
        t = np.r_[0.0, g["time"].to_numpy(float)]
        ax.step(t, np.r_[1.0, g["survival"].to_numpy(float)], where="post", label=str(arm),
                color=ARM_COLOURS.get(str(arm)))
        ax.fill_between(t, np.r_[1.0, g["ci_low"].to_numpy(float)], np.r_[1.0, g["ci_high"].to_numpy(float)],
                        step="post", alpha=0.2, color=ARM_COLOURS.get(str(arm)))
    ax.set_xlabel("days at risk")
    ax.set_ylabel("event-free probability")
    ax.legend()
    _save(fig, path)
    return fig


def plot_preference(distribution: pd.DataFrame, path: str | os.PathLike | None = None, *, ax: Any = None) -> Any:
    """Preference-score distribution per arm from binned counts (columns bin_mid, n_target, n_comparator)."""
    fig, ax = _axes(ax, 6.0, 4.0)
    width = float(np.diff(distribution["bin_mid"]).min()) if len(distribution) > 1 else 0.05
    for arm, col in (("target", "n_target"), ("comparator", "n_comparator")):
        counts = distribution[col].to_numpy(float)
        density = counts / max(np.nansum(counts), 1.0) / width
        ax.bar(distribution["bin_mid"], density, width=width, alpha=0.5, label=arm, color=ARM_COLOURS[arm])
    ax.axvspan(0.3, 0.7, color="grey", alpha=0.1, label="equipoise")
    ax.set_xlabel("preference score")
    ax.set_ylabel("density")
    ax.legend()
    _save(fig, path)
    return fig


def plot_balance(balance: pd.DataFrame, path: str | os.PathLike | None = None, *, ax: Any = None) -> Any:
    """|SMD| after adjustment against |SMD| before, one point per covariate, with the 0.1 threshold."""
    fig, ax = _axes(ax, 5.0, 5.0)
    before, after = balance["smd_before"].abs(), balance["smd_after"].abs()
    ax.scatter(before, after, s=6, alpha=0.5)
    top = float(max(before.max(), after.max(), 0.15))
    ax.plot([0, top], [0, top], color="grey", lw=0.8)
    ax.axhline(0.1, color="#d62728", lw=0.8, ls="--")
    ax.set_xlabel("|SMD| before")
    ax.set_ylabel("|SMD| after")
    _save(fig, path)
    return fig


def plot_calibration(estimates: pd.DataFrame, null: Any, path: str | os.PathLike | None = None, *,
                     ax: Any = None) -> Any:
    """Negative-control estimates (log HR vs standard error) with the fitted null's 5 % rejection boundary
    (:func:`pathways.plots.plot_null_calibration` on the ``log_hr``, ``se_log_hr`` and ``negative_control``
    columns)."""
    return plot_null_calibration(estimates, path, null=null, estimate="log_hr", se="se_log_hr", log_scale=True,
                                 title="Negative-control calibration (hazard ratios)", ax=ax)


__all__ = ["plot_balance", "plot_calibration", "plot_kaplan_meier", "plot_preference"]

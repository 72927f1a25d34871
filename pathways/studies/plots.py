"""Figures of a cohort study: Kaplan-Meier curves, preference-score distribution, balance and calibration plots.

matplotlib is optional (``pathways[plot]``): the figure helpers of :mod:`pathways.plots` import it lazily, build
figures on an Agg canvas and write them atomically. Each function returns the figure.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pathways.plots import _figure, _save

ARM_COLOURS = {"target": "#1f77b4", "comparator": "#d62728"}


def plot_kaplan_meier(km: pd.DataFrame, path: str | os.PathLike | None = None) -> Any:
    """Step curves (with intervals) of the ``kaplan_meier`` table of each arm (column ``arm``)."""
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
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


def plot_preference(distribution: pd.DataFrame, path: str | os.PathLike | None = None) -> Any:
    """Preference-score distribution per arm from binned counts (columns bin_mid, n_target, n_comparator)."""
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
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


def plot_balance(balance: pd.DataFrame, path: str | os.PathLike | None = None) -> Any:
    """|SMD| after adjustment against |SMD| before, one point per covariate, with the 0.1 threshold."""
    fig = _figure(5.0, 5.0)
    ax = fig.add_subplot()
    before, after = balance["smd_before"].abs(), balance["smd_after"].abs()
    ax.scatter(before, after, s=6, alpha=0.5)
    top = float(max(before.max(), after.max(), 0.15))
    ax.plot([0, top], [0, top], color="grey", lw=0.8)
    ax.axhline(0.1, color="#d62728", lw=0.8, ls="--")
    ax.set_xlabel("|SMD| before")
    ax.set_ylabel("|SMD| after")
    _save(fig, path)
    return fig


def plot_calibration(estimates: pd.DataFrame, null: Any, path: str | os.PathLike | None = None) -> Any:
    """Negative-control estimates (log HR vs standard error) with the fitted null's 5 % rejection boundary."""
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    ok = estimates["se_log_hr"].notna()
    controls = estimates[ok & estimates["negative_control"].astype(bool)]
    others = estimates[ok & ~estimates["negative_control"].astype(bool)]
    ax.scatter(controls["log_hr"], controls["se_log_hr"], s=14, label="negative controls", color="grey")
    ax.scatter(others["log_hr"], others["se_log_hr"], s=30, marker="D", label="outcome", color="#d62728")
    se = np.linspace(1e-3, float(estimates.loc[ok, "se_log_hr"].max()) * 1.2, 100)
    z = stats.norm.ppf(0.975)
    ax.plot(z * se, se, color="black", lw=0.8, ls=":", label="uncalibrated p = 0.05")
    ax.plot(-z * se, se, color="black", lw=0.8, ls=":")
    if null is not None:
        width = z * np.sqrt(null.sd**2 + se**2)
        ax.plot(null.mean + width, se, color="#1f77b4", lw=1.0, label="calibrated p = 0.05")
        ax.plot(null.mean - width, se, color="#1f77b4", lw=1.0)
    ax.invert_yaxis()
    ax.set_xlabel("log hazard ratio")
    ax.set_ylabel("standard error")
    ax.legend(fontsize=8)
    _save(fig, path)
    return fig


__all__ = ["plot_balance", "plot_calibration", "plot_kaplan_meier", "plot_preference"]

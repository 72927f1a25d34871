"""Figures of the cartography (matplotlib, imported lazily: ``pip install 'pathways[plot]'``): spending by group,
prevalence and cost trends, the volume / cost-per-patient decomposition, and the transition diagram.

Like every figure of :mod:`pathways.plots`, each function draws on the caller's axes (``ax=``) or on a new Agg
figure (no pyplot, no global backend switch), writes it atomically when ``path`` is given, and returns the figure.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pathways.cartography.costs import UNATTRIBUTED
from pathways.cartography.tables import TOTAL
from pathways.plots import _axes, _panels, _save


def _groups_only(table: pd.DataFrame) -> pd.DataFrame:
    return table[~table["group"].isin([TOTAL])]


def plot_spending(table: pd.DataFrame, path: str | Path | None = None, year: int | None = None, *,
                  ax: Any = None) -> Any:
    """Horizontal bars of the allocated spending by group in ``year`` (default: the last), largest first."""
    frame = _groups_only(table)
    year = int(frame["year"].max()) if year is None else int(year)
    spend = frame[frame["year"] == year].groupby("group")["total_cost"].sum().sort_values()
    spend = spend[spend != 0]  # groups nobody holds
    fig, ax = _axes(ax, 7, max(3, 0.25 * len(spend)))
    ax.barh(spend.index.astype(str), spend.to_numpy() / 1e6)
    ax.set_xlabel(f"allocated spending {year} (million euros)")
    _save(fig, path, dpi=110)
    return fig


def plot_trends(table: pd.DataFrame, path: str | Path | None = None, top: int = 8, *, ax: Any = None) -> Any:
    """Prevalent patients and allocated spending per year of the ``top`` costliest groups.

    ``ax``: two Axes (patients, spending); default: a new figure.
    """
    frame = _groups_only(table)
    frame = frame[frame["group"] != UNATTRIBUTED]
    per = frame.groupby(["year", "group"])[["prevalent", "total_cost"]].sum().reset_index()
    top_groups = per.groupby("group")["total_cost"].sum().nlargest(top).index
    fig, axes = _panels(ax, 2, 5.5, 4)
    for g in top_groups:
        rows = per[per["group"] == g]
        axes[0].plot(rows["year"], rows["prevalent"], marker="o", label=str(g))
        axes[1].plot(rows["year"], rows["total_cost"] / 1e6, marker="o", label=str(g))
    from matplotlib.ticker import MaxNLocator

    for panel in axes:  # whole years on the axis, never 2020.2
        panel.xaxis.set_major_locator(MaxNLocator(integer=True))
        panel.set_xlabel("year")
    axes[0].set_ylabel("prevalent patients")
    axes[1].set_ylabel("allocated spending (million euros)")
    axes[1].legend(fontsize=7, loc="best")
    _save(fig, path, dpi=110)
    return fig


def plot_decomposition(table: pd.DataFrame, path: str | Path | None = None, year: int | None = None, *,
                       ax: Any = None) -> Any:
    """Stacked bars of the year-on-year change of spending by group: volume and cost-per-patient effects."""
    frame = _groups_only(table).dropna(subset=["volume_effect"])
    if frame.empty:
        fig, ax = _axes(ax, 6, 3)
        ax.text(0.5, 0.5, "one year only: no change to decompose", ha="center")
        _save(fig, path, dpi=110)
        return fig
    year = int(frame["year"].max()) if year is None else int(year)
    per = frame[frame["year"] == year].groupby("group")[["volume_effect", "cost_per_patient_effect"]].sum()
    per = per.loc[per.abs().sum(axis=1).sort_values().index]
    per = per[per.abs().sum(axis=1) > 0]  # groups nobody held either year
    fig, ax = _axes(ax, 7, max(3, 0.25 * len(per)))
    y = np.arange(len(per))
    ax.barh(y, per["volume_effect"] / 1e3, label="volume (patients)")
    ax.barh(y, per["cost_per_patient_effect"] / 1e3, left=np.where(
        np.sign(per["volume_effect"]) == np.sign(per["cost_per_patient_effect"]), per["volume_effect"] / 1e3, 0),
        label="cost per patient")
    ax.set_yticks(y, per.index.astype(str))
    ax.set_xlabel(f"change of spending {year - 1} -> {year} (thousand euros)")
    ax.legend()
    _save(fig, path, dpi=110)
    return fig


def plot_transitions(trans: pd.DataFrame, path: str | Path | None = None, *, ax: Any = None) -> Any:
    """Transition diagram as a matrix: rate from each state (rows) to each state one year later (columns)."""
    matrix = trans.pivot_table(index="from_state", columns="to_state", values="rate", aggfunc="sum").fillna(0.0)
    states = list(dict.fromkeys([*matrix.index, *matrix.columns]))  # square: a state on both axes
    matrix = matrix.reindex(index=[s for s in states if s in matrix.index], columns=states, fill_value=0.0)
    fig, ax = _axes(ax, 0.35 * matrix.shape[1] + 3, 0.3 * matrix.shape[0] + 2)
    im = ax.imshow(matrix.to_numpy(), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(matrix.shape[1]), matrix.columns.astype(str), rotation=90, fontsize=7)
    ax.set_yticks(range(matrix.shape[0]), matrix.index.astype(str), fontsize=7)
    ax.set_xlabel("state the next year")
    ax.set_ylabel("state")
    fig.colorbar(im, ax=ax, label="transition rate")
    _save(fig, path, dpi=110)
    return fig


__all__ = ["plot_decomposition", "plot_spending", "plot_transitions", "plot_trends"]

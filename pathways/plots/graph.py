"""Network picture of an excitation graph: codes on a circle, arrows for the strongest cross-effects, self-excitation
as the node's ring."""
from __future__ import annotations

import os
import textwrap
from typing import Any

import numpy as np
import pandas as pd

from pathways.errors import PathwaysInputError
from pathways.plots.base import _axes, _need, _save


def _layout(codes: list[str], categories: dict[str, str]) -> dict[str, tuple[float, float]]:
    """Codes on a unit circle, grouped by category (then code) so related codes sit together."""
    order = sorted(codes, key=lambda c: (categories.get(c, ""), c))
    angle = np.pi / 2 - 2 * np.pi * np.arange(len(order)) / max(len(order), 1)
    return {c: (float(np.cos(a)), float(np.sin(a))) for c, a in zip(order, angle)}


def plot_excitation_graph(factors: pd.DataFrame, path: str | os.PathLike | None = None, *, k: int = 25,
                          labels: dict[str, str] | None = None, categories: dict[str, str] | None = None,
                          title: str = "Excitation graph (strongest cross-effects)", ax: Any = None) -> Any:
    """Draw the ``k`` strongest cross-effects (source -> target) of a factors table as a directed network.

    Arrow width and colour follow the effect (expected extra target events per source event); a node's ring
    width follows its self-excitation (renewals), which is kept off the arrows so it does not hide the
    cross-effects. Only codes touched by a drawn arrow are shown. Bidirectional pairs curve apart.

    Parameters
    ----------
    factors : table with ``source``, ``target``, ``effect`` (whole-kernel rows: ``lag_days`` NaN when present).
    k : arrows drawn (largest effects first); rows with NaN effect (suppressed) are left out.
    labels : code -> short readable label written under the code.
    categories : code -> category, grouping the codes around the circle.
    ax : draw on these matplotlib axes (default: a new figure).
    """
    _need(factors, "factors", ("source", "target", "effect"))
    if int(k) < 1:
        raise PathwaysInputError(f"argument 'k': must be >= 1, got {k!r}")
    rows = factors if "lag_days" not in factors.columns else factors[factors["lag_days"].isna()]
    rows = rows.dropna(subset=["effect"])
    src, tgt = rows["source"].astype(str), rows["target"].astype(str)
    self_effect = dict(zip(src[src == tgt], rows.loc[src == tgt, "effect"].astype(float)))
    cross = rows[src != tgt]
    cross = cross[cross["effect"] > 0].nlargest(int(k), "effect")
    fig, ax = _axes(ax, 7.5, 7.5)
    ax.set_axis_off()
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=10)
    if cross.empty:
        ax.text(0.5, 0.5, "no cross-effect to draw", ha="center", va="center", transform=ax.transAxes)
        _save(fig, path)
        return fig
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.patches import FancyArrowPatch

    edges = list(zip(cross["source"].astype(str), cross["target"].astype(str), cross["effect"].astype(float)))
    codes = sorted({c for s, t, _ in edges for c in (s, t)})
    pos = _layout(codes, categories or {})
    top = max(e for _, _, e in edges)
    # the colour scale starts below 0 so the weakest arrows stay readable (light green, not pale yellow)
    norm, cmap = Normalize(-0.3 * top, top), colormaps["viridis_r"]
    pairs = {(s, t) for s, t, _ in edges}
    for s, t, e in sorted(edges, key=lambda x: x[2]):  # strongest drawn last, on top
        bend = 0.25 if (t, s) in pairs else 0.08
        ax.add_patch(FancyArrowPatch(pos[s], pos[t], arrowstyle="-|>", mutation_scale=12,
                                     connectionstyle=f"arc3,rad={bend}", lw=0.6 + 3.4 * e / top,
                                     color=cmap(norm(e)), alpha=0.85, shrinkA=11, shrinkB=11, zorder=2))
    self_top = max([v for v in self_effect.values() if np.isfinite(v)] + [1e-12])
    for c in codes:
        ring = self_effect.get(c, 0.0)
        ring = 0.0 if not np.isfinite(ring) else ring
        ax.scatter(*pos[c], s=260, color="white", edgecolors="tab:red", linewidths=0.5 + 4.0 * ring / self_top,
                   zorder=3)
        x, y = pos[c]
        text = c if not labels or not labels.get(c) else f"{c}\n{_short(labels[c])}"
        ax.annotate(text, (x, y), xytext=(x * 1.2, y * 1.2), ha="center", va="center", fontsize=7, zorder=4)
    ax.set_xlim(-1.45, 1.45)
    ax.set_ylim(-1.45, 1.45)
    sm = _scalar_mappable(norm, cmap)
    bar = fig.colorbar(sm, ax=ax, shrink=0.6, label="extra target events per source event")
    bar.ax.set_ylim(0.0, top)
    ax.text(0.0, -0.02, "red ring width: self-excitation (renewals)", transform=ax.transAxes, fontsize=7,
            color="tab:red")
    _save(fig, path)
    return fig


def _short(label: str, width: int = 20) -> str:
    """A label on at most two lines of ``width`` characters, cut at a word with an ellipsis when longer."""
    lines = textwrap.wrap(label, width)
    return "\n".join(lines[:2]) + ("…" if len(lines) > 2 else "")


def _scalar_mappable(norm: Any, cmap: Any) -> Any:
    from matplotlib.cm import ScalarMappable

    sm = ScalarMappable(norm=norm, cmap=cmap)
    sm.set_array([])
    return sm

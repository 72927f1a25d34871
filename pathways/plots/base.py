"""Canvas helpers shared by every figure: an Agg figure (no pyplot, no global backend), the ``ax=`` convention and
atomic saving."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pathways.errors import PathwaysInputError
from pathways.utils import atomic_path


def _figure(width: float, height: float) -> Any:
    """A new constrained-layout figure on its own Agg canvas."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("pathways.plots needs matplotlib: pip install 'pathways[plot]'") from exc
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _axes(ax: Any, width: float, height: float) -> tuple[Any, Any]:
    """(figure, axes): the caller's ``ax`` and its figure, or a new figure of the given size with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = _figure(width, height)
    return fig, fig.add_subplot()


def _panels(ax: Any, n: int, width: float, height: float, max_cols: int = 3) -> tuple[Any, list[Any]]:
    """(figure, n axes) for small multiples: the caller's axes (one Axes, or a sequence of at least ``n``) or a grid."""
    if ax is not None:
        axes = [ax] if not isinstance(ax, (list, tuple)) and not hasattr(ax, "ravel") else list(
            ax.ravel() if hasattr(ax, "ravel") else ax)
        if len(axes) < n:
            raise PathwaysInputError(f"argument 'ax': {n} panels to draw but {len(axes)} axes given")
        return axes[0].figure, axes[:n]
    n = max(n, 1)
    cols = min(n, max_cols)
    rows = -(-n // cols)
    fig = _figure(width * cols, height * rows)
    return fig, [fig.add_subplot(rows, cols, i + 1) for i in range(n)]


def _save(fig: Any, path: str | os.PathLike | None, dpi: int = 120) -> None:
    """Write ``fig`` atomically when ``path`` is given (format from the suffix: .png, .pdf, .svg)."""
    if path is None:
        return
    target = Path(path)
    with atomic_path(target, suffix=target.suffix) as tmp:
        fig.savefig(tmp, dpi=dpi, format=target.suffix.lstrip(".") or "png")


def _need(frame: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PathwaysInputError(f"argument '{name}': missing column(s) {missing} (columns: {list(frame.columns)})")

"""Figures for reports: excitation heatmap and network, top drivers, training curve, signal forest and volcano plots,
relative-incidence curves, time-rescaling QQ plot, negative-control calibration, a patient's intensity, kernels.

matplotlib is an optional dependency (``pathways[plot]``) imported lazily inside each function. Figures are built
with the object-oriented API on an Agg canvas (no pyplot, no global backend switch), so they work on headless
machines and never open windows. Every function accepts ``ax=`` (draw on the caller's axes, e.g. a panel of a
larger figure) and returns the :class:`matplotlib.figure.Figure`; when ``path`` is given it also writes the figure
atomically (format from the suffix: .png, .pdf, .svg).
"""
from pathways.plots.base import _axes, _figure, _panels, _save
from pathways.plots.diagnostics import (
    plot_intensity,
    plot_kernels,
    plot_null_calibration,
    plot_time_rescaling_qq,
)
from pathways.plots.figures import (
    EFFECT_UNIT,
    code_text,
    plot_excitation_heatmap,
    plot_relative_incidence,
    plot_signals,
    plot_top_drivers,
    plot_training_curve,
    plot_volcano,
)
from pathways.plots.graph import plot_excitation_graph

__all__ = [
    "EFFECT_UNIT",
    "_axes",
    "_figure",
    "_panels",
    "_save",
    "code_text",
    "plot_excitation_graph",
    "plot_excitation_heatmap",
    "plot_intensity",
    "plot_kernels",
    "plot_null_calibration",
    "plot_relative_incidence",
    "plot_signals",
    "plot_time_rescaling_qq",
    "plot_top_drivers",
    "plot_training_curve",
    "plot_volcano",
]

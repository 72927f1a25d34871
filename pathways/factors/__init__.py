"""Factors that drive care trajectories: one table shape for every explaining model.

``excitation_graph``/``top_drivers`` (Hawkes) and the attribution functions (recurrent models) are imported lazily:
they depend on the models, which ``import pathways.factors`` alone should not load.
"""
from __future__ import annotations

import importlib
from typing import Any

from pathways.data.tables import FACTOR_COLUMNS, factors_frame, validate_factors

_LAZY = {
    "excitation_graph": "pathways.factors.graph",
    "top_drivers": "pathways.factors.graph",
    "attribution_factors": "pathways.factors.attribution",
    "retain_attributions": "pathways.factors.attribution",
    "integrated_gradients": "pathways.factors.attribution",
    "permutation_importance": "pathways.factors.attribution",
}

__all__ = ["FACTOR_COLUMNS", "factors_frame", "validate_factors", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pathways.factors' has no attribute {name!r}")

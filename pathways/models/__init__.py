"""Models: Hawkes processes, neural temporal point processes, recurrent outcome models, self-controlled case series.

Submodules are imported lazily so that ``import pathways.models`` stays cheap and a model family under construction
never breaks the others.
"""
from __future__ import annotations

import importlib
from typing import Any

from pathways.models.base import NotFittedError, PathwaysEstimator, as_sequences

_LAZY = {
    "HawkesExpKernel": "pathways.models.hawkes",
    "HawkesSumExpKernel": "pathways.models.hawkes",
    "HawkesEM": "pathways.models.hawkes",
    "RMTPP": "pathways.models.tpp",
    "NeuralHawkes": "pathways.models.tpp",
    "TransformerHawkes": "pathways.models.tpp",
    "LogNormMix": "pathways.models.tpp",
    "SelfAttentiveHawkes": "pathways.models.tpp",
    "GRUOutcome": "pathways.models.recurrent",
    "RETAIN": "pathways.models.recurrent",
    "CountsLogisticBaseline": "pathways.models.recurrent",
    "SCCS": "pathways.models.sccs",
    "ConvSCCS": "pathways.models.sccs",
    "ConvSCCSCV": "pathways.models.sccs",
}

__all__ = ["NotFittedError", "PathwaysEstimator", "as_sequences", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pathways.models' has no attribute {name!r}")

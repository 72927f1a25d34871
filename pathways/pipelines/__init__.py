"""Pipelines: the Hydra task functions ``train``, ``evaluate``, ``predict``, ``simulate`` and ``detect_signals``.

Each takes ``(cfg, output_dir)`` and returns a ``RunResult``. They are resolved on first access (``__getattr__``):
``import pathways.pipelines`` stays light, the model families load when a pipeline is first used.
"""
from __future__ import annotations

import importlib
from typing import Any

# pipeline name -> module that defines it
_PIPELINES = {
    "train": "pathways.training.run",
    "evaluate": "pathways.training.run",
    "predict": "pathways.training.run",
    "simulate": "pathways.training.run",
    "detect_signals": "pathways.training.run",
    "RunResult": "pathways.training.run",
}

__all__ = sorted(_PIPELINES)


def __getattr__(name: str) -> Any:
    if name not in _PIPELINES:
        raise AttributeError(f"module 'pathways.pipelines' has no attribute '{name}'")
    return getattr(importlib.import_module(_PIPELINES[name]), name)

"""Pipelines: the Hydra task functions ``train``, ``evaluate``, ``predict``, ``simulate`` and ``detect_signals``.

Each takes ``(cfg, output_dir)`` and returns a :class:`~pathways.pipelines.common.RunResult`. Importing this package
loads the model families (``import pathways`` alone does not).

Modules: ``common`` (run result, data loading, split, encoding, summary), ``train``, ``infer`` (evaluate + predict),
``simulate``, ``signals`` (detect_signals), ``report``; ``schema``, ``sweep`` and ``cli`` drive them from Hydra.
The functions are imported here eagerly: the submodules ``train``, ``simulate`` share their names, and the function
must be what ``pathways.pipelines.train`` refers to once both are loaded.
"""
from __future__ import annotations

from pathways.pipelines.common import RunResult
from pathways.pipelines.infer import evaluate, predict
from pathways.pipelines.signals import detect_signals
from pathways.pipelines.simulate import simulate
from pathways.pipelines.train import train

__all__ = ["RunResult", "detect_signals", "evaluate", "predict", "simulate", "train"]

"""Training engine: the mini-batch :class:`Trainer`, devices, loggers, config validation and run pipelines.

``pathways.training.run`` (train / evaluate / predict / simulate / detect-signals from a Hydra config) is imported
on demand: it pulls in every model family.
"""
from __future__ import annotations

from pathways.training.trainer import Trainer, TrainingDivergedError

__all__ = ["Trainer", "TrainingDivergedError"]

"""Training engine: the mini-batch :class:`Trainer`, its resumable state and its metric loggers."""
from __future__ import annotations

from pathways.training.trainer import Trainer, TrainingDivergedError

__all__ = ["Trainer", "TrainingDivergedError"]

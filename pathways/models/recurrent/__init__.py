"""Recurrent outcome models over binned histories: GRU/LSTM, RETAIN and a counts logistic-regression baseline.

They predict binary or multi-label outcomes within a horizon after an index date from binned histories
(:class:`pathways.encode.OutcomeData`, built from an EventLog by :func:`pathways.encode.outcome_dataset`).
Attributions: :mod:`pathways.factors.attribution`.
"""
from pathways.models.recurrent.data import DenseBatcher
from pathways.models.recurrent.gru import GRUOutcome
from pathways.models.recurrent.logistic import CountsLogisticBaseline
from pathways.models.recurrent.retain import RETAIN

__all__ = ["CountsLogisticBaseline", "DenseBatcher", "GRUOutcome", "RETAIN"]

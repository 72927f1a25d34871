"""Recurrent outcome models over binned histories: GRU/LSTM, RETAIN and a counts logistic-regression baseline.

They predict binary or multi-label outcomes within a horizon after an index date from
:func:`pathways.encode.sparse.to_sparse_series` histories; :func:`outcome_dataset` builds ``(X, y)`` from an EventLog.
Attributions: :mod:`pathways.factors.attribution`.
"""
from pathways.models.recurrent.data import DenseBatcher, OutcomeData, as_outcome_data
from pathways.models.recurrent.dataset import outcome_dataset
from pathways.models.recurrent.gru import GRUOutcome
from pathways.models.recurrent.logistic import CountsLogisticBaseline
from pathways.models.recurrent.retain import RETAIN

__all__ = [
    "CountsLogisticBaseline",
    "DenseBatcher",
    "GRUOutcome",
    "OutcomeData",
    "RETAIN",
    "as_outcome_data",
    "outcome_dataset",
]

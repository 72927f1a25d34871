"""Neural temporal point processes: RMTPP, NeuralHawkes (continuous-time LSTM), TransformerHawkes, LogNormMix,
SelfAttentiveHawkes (SAHP)."""
from pathways.models.tpp.base import NextEventPrediction, TPPBase
from pathways.models.tpp.lognormmix import LogNormMix
from pathways.models.tpp.nhp import NeuralHawkes
from pathways.models.tpp.rmtpp import RMTPP
from pathways.models.tpp.sahp import SelfAttentiveHawkes
from pathways.models.tpp.thp import TransformerHawkes

__all__ = ["TPPBase", "NextEventPrediction", "RMTPP", "NeuralHawkes", "TransformerHawkes", "LogNormMix",
           "SelfAttentiveHawkes"]

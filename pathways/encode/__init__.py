"""Encoders from an EventLog to the shapes models eat."""
from pathways.encode.sequences import PaddedBatch, Sequences, to_sequences

__all__ = ["PaddedBatch", "Sequences", "to_sequences"]

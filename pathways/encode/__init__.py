"""Encoders from an EventLog to the shapes models eat."""
from pathways.encode.sequences import PaddedBatch, Sequences, to_sequences
from pathways.encode.sparse import SparseSeries, to_sparse_series
from pathways.encode.split import split_patients

__all__ = ["PaddedBatch", "Sequences", "to_sequences", "SparseSeries", "to_sparse_series", "split_patients"]

"""Encoders from an EventLog to the shapes models eat."""
from pathways.encode.encoders import (Encoder, OutcomeEncoder, SCCSEncoder, SequenceEncoder, encoder_from_state,
                                      most_frequent_diagnosis)
from pathways.encode.outcomes import OutcomeData, as_outcome_data, outcome_dataset
from pathways.encode.sequences import PaddedBatch, Sequences, to_sequences
from pathways.encode.sparse import SparseSeries, to_sparse_series
from pathways.encode.split import split_patients

__all__ = ["Encoder", "OutcomeData", "OutcomeEncoder", "PaddedBatch", "SCCSEncoder", "SequenceEncoder", "Sequences",
           "SparseSeries", "as_outcome_data", "encoder_from_state", "most_frequent_diagnosis", "outcome_dataset",
           "split_patients", "to_sequences", "to_sparse_series"]

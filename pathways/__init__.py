"""pathways: machine learning on patient care pathways.

Claims/EHR events -> EventLog -> encoders -> point-process and recurrent models -> factors and weak signals.
"""
from pathways.data import EventLog, Vocabulary
from pathways.encode import Sequences, to_sequences
from pathways.errors import PathwaysDataWarning, PathwaysInputError

__version__ = "0.1.0"

__all__ = ["EventLog", "Vocabulary", "Sequences", "to_sequences", "PathwaysInputError", "PathwaysDataWarning",
           "__version__"]

"""pathways: machine learning on patient care pathways.

Claims/EHR events -> EventLog -> encoders -> point-process and recurrent models -> factors and weak signals.
"""
from pathways.data import EventLog, Vocabulary
from pathways.encode import Sequences, to_sequences
from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.version import __version__



def load(path: str, device: str = "cpu") -> object:
    """Load a checkpoint written by pathways and return the ready model (no pickled code is executed).

    See :func:`pathways.checkpoint.load`; imported lazily so that ``import pathways`` stays light.
    """
    from pathways.checkpoint import load as _load

    return _load(path, device=device)


__all__ = ["EventLog", "Vocabulary", "Sequences", "to_sequences", "PathwaysInputError", "PathwaysDataWarning",
           "load", "__version__"]

"""Event data: the EventLog, its Vocabulary and code hierarchies."""
from pathways.data.eventlog import EventLog
from pathways.data.vocabulary import Vocabulary

__all__ = ["EventLog", "Vocabulary"]

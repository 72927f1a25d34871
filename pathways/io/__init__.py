"""Readers of real-world claims and EHR sources (OMOP CDM, SNDS) into EventLogs.

duckdb is an optional dependency (``pip install 'pathways[omop]'``); it is imported only when a reader runs.
"""
from pathways.io.meds import read_meds, write_meds
from pathways.io.omop import read_omop
from pathways.io.snds import read_snds
from pathways.io.report import ReadReport

__all__ = ["read_meds", "read_omop", "read_snds", "write_meds", "ReadReport"]

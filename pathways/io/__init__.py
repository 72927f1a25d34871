"""Readers of real-world claims and EHR sources (OMOP CDM, SNDS) into EventLogs, and MEDS datasets both ways.

Peer formats live in their own modules: :mod:`pathways.io.easytpp`, :mod:`pathways.io.scalpel`,
:mod:`pathways.io.ohdsi` (see ``docs/interop.md``).

duckdb is an optional dependency (``pip install 'pathways[omop]'``); it is imported only when a reader runs.
"""
from pathways.io.meds import read_meds, write_meds
from pathways.io.omop import read_omop
from pathways.io.snds import read_snds, write_snds_dataset
from pathways.io.report import ReadReport

__all__ = ["read_meds", "read_omop", "read_snds", "write_meds", "write_snds_dataset", "ReadReport"]

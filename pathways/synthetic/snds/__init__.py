"""Synthetic raw SNDS tables (DCIR, PMSI MCO, referentials, causes of death) with planted truth, at any scale."""
from pathways.synthetic.snds.load import read_synthetic_snds
from pathways.synthetic.snds.truth import SndsTruth
from pathways.synthetic.snds.writer import chunk_seed, write_snds

__all__ = ["SndsTruth", "chunk_seed", "read_synthetic_snds", "write_snds"]

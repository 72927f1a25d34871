"""Fixtures of the format tests (MEDS, peer formats): the simulator's cohort and the shared SNDS sample."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from pathways.data import EventLog
from pathways.errors import PathwaysDataWarning
from pathways.io import read_snds
from pathways.synthetic import simulate_cohort

SNDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "snds"


@pytest.fixture(scope="module")
def cohort() -> EventLog:
    return simulate_cohort(120, seed=5)[0]


@pytest.fixture(scope="module")
def snds_log() -> EventLog:
    if not SNDS.is_dir():
        pytest.skip(f"shared SNDS sample not found at {SNDS} (../shared is beside the project checkout only)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PathwaysDataWarning)
        return read_snds(SNDS, events_before_birth="keep")  # the sample's random births follow events

"""Shared fixtures. Tests generate their own data; ../shared/ is optional material read-only."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The product-side ../shared folder; tests needing it skip with a reason when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"../shared not found at {SHARED}: shared SNDS material is only beside the project checkout")
    return SHARED

"""Training state that makes a resumed run equal to an uninterrupted one: RNG states and the trainer checkpoint.

The trainer checkpoint (``trainer_state.pt``) is written atomically after every completed epoch and holds only
tensors and plain containers, so it is read back with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pathways.checkpoint import CheckpointError
from pathways.utils import atomic_path

STATE_FILE = "trainer_state.pt"


def capture_rng() -> dict[str, Any]:
    """Snapshot of the random generators a training loop touches (torch CPU and CUDA, Python, numpy legacy).

    Dropout and other in-graph randomness draw from torch's global generator; the others are captured so that
    user code relying on them also resumes identically.
    """
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": _py_state_to_plain(random.getstate()),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Restore a snapshot taken by :func:`capture_rng`."""
    torch.set_rng_state(state["torch"].cpu())
    random.setstate(_plain_to_py_state(state["python"]))
    npst = state["numpy"]
    np.random.set_state(("MT19937", npst["key"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"],
                         npst["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _py_state_to_plain(st: tuple) -> dict[str, Any]:
    version, internal, gauss = st
    return {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def _plain_to_py_state(d: dict[str, Any]) -> tuple:
    return (d["version"], tuple(int(x) for x in d["internal"].tolist()), d["gauss"])


def save_state(directory: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Atomically write the trainer state to ``<directory>/trainer_state.pt``."""
    path = Path(directory) / STATE_FILE
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_state(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """Read ``<directory>/trainer_state.pt`` (None when absent); corrupt files raise :class:`CheckpointError`."""
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"trainer state '{path}' was refused by the safe loader: {str(exc)[:200]}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(
            f"trainer state '{path}' is truncated or corrupt ({type(exc).__name__}); delete it to start afresh"
        ) from None

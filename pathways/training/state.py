"""Training state that makes a resumed run equal to an uninterrupted one: RNG states and the trainer checkpoint.

The trainer checkpoint (``trainer_state.pt``) is written atomically after every completed epoch and holds only
tensors and plain containers, so it is read back with ``torch.load(weights_only=True)``.

Next to it, ``run_identity.json`` records what the run was started with: the resolved config and a fingerprint of
each data split. A resume compares them with the new run's (:func:`check_resume`) and refuses any difference,
saying what differs (``data.n_patients: 200 -> 300``): continuing with other data would move patients between the
splits and contaminate the test metrics.
"""
from __future__ import annotations

import json
import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from pathways.checkpoint import CheckpointError, data_fingerprint, to_jsonable
from pathways.errors import PathwaysInputError
from pathways.utils import atomic_path

STATE_FILE = "trainer_state.pt"
IDENTITY_FILE = "run_identity.json"
#: the identity a neural estimator records itself (its parameters and data), so that library use of
#: ``Trainer(resume=True)`` is checked too
MODEL_IDENTITY_FILE = "model_identity.json"
#: config keys (and sections) a resumed run may change: where outputs go and how progress is shown, not what is
#: computed
RESUME_FREE_KEYS = ("hydra", "paths", "report", "checkpoint", "logger", "name", "optimized_metric",
                    "trainer.resume", "trainer.progress", "trainer.device")


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


def run_identity(config: Mapping[str, Any], parts: Sequence[Any]) -> dict[str, Any]:
    """What a run is started with: its resolved config (plain containers) and one fingerprint per data split.

    Parameters
    ----------
    config : the resolved run config.
    parts : the data splits (train, validation, test; None for an empty split), fingerprinted with
        :func:`pathways.checkpoint.data_fingerprint` (digests only: no identifier is stored).
    """
    return {"config": to_jsonable(dict(config)),
            "data": [None if p is None else data_fingerprint(p) for p in parts]}


def identity_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two :func:`run_identity` records (config keys first, then data).

    Examples
    --------
    >>> a = {"config": {"seed": 0, "data": {"n_patients": 200}}, "data": ["f1", None, None]}
    >>> b = {"config": {"seed": 1, "data": {"n_patients": 300}}, "data": ["f2", None, None]}
    >>> identity_differences(a, b)
    ['data.n_patients: 200 -> 300', 'seed: 0 -> 1', 'data split train: other events (fingerprint f1 -> f2)']
    """
    old, new = _flatten(saved.get("config") or {}), _flatten(current.get("config") or {})
    lines = [f"{key}: {_short(old.get(key, '<absent>'))} -> {_short(new.get(key, '<absent>'))}"
             for key in sorted(set(old) | set(new))
             if not _free(key) and old.get(key, _MISSING) != new.get(key, _MISSING)]
    names = ("train", "validation", "test")
    for i, (a, b) in enumerate(zip(saved.get("data") or [], current.get("data") or [])):
        if a != b:
            lines.append(f"data split {names[i] if i < 3 else i}: other events (fingerprint {str(a)[:12]} -> "
                         f"{str(b)[:12]})")
    return lines


def check_resume(directory: str | os.PathLike, identity: Mapping[str, Any], resume: bool,
                 filename: str = IDENTITY_FILE) -> None:
    """Refuse to resume a run whose config or data differ; record the identity of a run that starts.

    With ``resume`` and a ``trainer_state.pt`` in ``directory``, the stored ``filename`` (``run_identity.json``
    for pipeline runs, ``model_identity.json`` for an estimator's own record) must match ``identity`` (else
    :class:`~pathways.errors.PathwaysInputError` listing every difference); otherwise the identity is (re)written
    before the first epoch is saved.
    """
    path = Path(directory) / filename
    if resume and (Path(directory) / STATE_FILE).is_file():
        if not path.is_file():
            raise PathwaysInputError(
                f"resume: {directory} holds a trainer state but no {filename}, so its config and data cannot be "
                "compared with this run's; start a new run directory or set trainer.resume=false")
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise PathwaysInputError(f"resume: {path} is unreadable ({type(exc).__name__}); start a new run "
                                     "directory or set trainer.resume=false") from None
        diff = identity_differences(saved, identity)
        if diff:
            raise PathwaysInputError(
                f"resume refused: the run in {directory} was started with another config or data "
                f"({len(diff)} difference(s)): " + "; ".join(diff[:20])
                + ". Resume with the same settings, or start a new run directory (or trainer.resume=false)")
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_jsonable(dict(identity)), indent=1, sort_keys=True) + "\n")


_MISSING = object()


def _free(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in RESUME_FREE_KEYS)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) and value != "<absent>" else str(value)
    return text if len(text) <= 80 else text[:77] + "..."

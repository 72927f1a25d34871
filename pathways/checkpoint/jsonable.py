"""Plain-JSON conversion of header values and the data fingerprint stored in checkpoints and run states."""
from __future__ import annotations

import hashlib
import os
from typing import Any, Mapping

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from pathways.errors import PathwaysInputError


# --------------------------------------------------------------------------------------------------------------
# JSON helpers
# --------------------------------------------------------------------------------------------------------------
def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths, tuples and OmegaConf nodes into plain JSON-able Python objects.

    Arrays become (nested) lists; objects JSON cannot express become their ``repr`` so that a header never fails
    to serialise because of an exotic parameter value.
    """
    if isinstance(obj, (DictConfig, ListConfig)):
        return to_jsonable(OmegaConf.to_container(obj, resolve=True))
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        # JSON has no NaN/Inf: keep them as strings that float() reads back
        return value if np.isfinite(value) else repr(value)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, torch.Tensor):
        return to_jsonable(obj.detach().cpu().numpy())
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return repr(obj)


# --------------------------------------------------------------------------------------------------------------
# Data fingerprint
# --------------------------------------------------------------------------------------------------------------
_FINGERPRINT_FIELDS = ("patient", "time", "code", "end", "value", "times", "marks", "offsets", "start", "matrix")


def data_fingerprint(data: Any) -> str:
    """Return a sha256 hex digest identifying a training data set (EventLog, Sequences, SparseSeries, arrays).

    The digest covers the numeric columns that define the data (patients, times, codes / marks, offsets, windows)
    and the vocabulary's code strings, so that two runs on the same data share a fingerprint and any change to an
    event changes it. Patient identifiers are never hashed in clear into the header: only the digest is stored.
    """
    h = hashlib.sha256()
    h.update(type(data).__name__.encode())
    arrays = _fingerprint_arrays(data)
    if not arrays:
        raise PathwaysInputError(
            f"data_fingerprint: argument 'data' of type {type(data).__name__} has no array fields "
            f"(expected one of {', '.join(_FINGERPRINT_FIELDS)})"
        )
    for name, arr in arrays:
        h.update(name.encode())
        h.update(str(arr.dtype).encode() + str(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    vocab = getattr(data, "vocab", None)
    if vocab is not None and hasattr(vocab, "codes"):
        h.update("\x1f".join(map(str, vocab.codes)).encode())
    return h.hexdigest()


def _fingerprint_arrays(data: Any) -> list[tuple[str, np.ndarray]]:
    """Collect the (name, array) pairs that identify ``data``."""
    if isinstance(data, (tuple, list)):
        out: list[tuple[str, np.ndarray]] = []
        for i, part in enumerate(data):
            out += [(f"{i}.{n}", a) for n, a in _fingerprint_arrays(part)]
        return out
    if isinstance(data, (np.ndarray, torch.Tensor)):
        return [("array", np.asarray(data.cpu() if isinstance(data, torch.Tensor) else data))]
    out = _named_arrays(data, _FINGERPRINT_FIELDS)
    if not out and hasattr(data, "__dict__"):  # other encoded forms (e.g. SCCS data): every numeric array field
        out = _named_arrays(data, sorted(vars(data)))
    return out


def _named_arrays(data: Any, names: Any) -> list[tuple[str, np.ndarray]]:
    out: list[tuple[str, np.ndarray]] = []
    for name in names:
        value = getattr(data, name, None)
        if value is None:
            continue
        if hasattr(value, "tocsr"):  # scipy sparse: hash its CSR parts
            csr = value.tocsr()
            out += [(f"{name}.data", csr.data), (f"{name}.indices", csr.indices), (f"{name}.indptr", csr.indptr)]
        elif isinstance(value, np.ndarray) and value.dtype != object:
            out.append((name, value))
    return out

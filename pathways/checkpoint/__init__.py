"""Self-describing model checkpoints, saved atomically and loaded without executing pickled code.

A checkpoint is one ``.pt`` file written with :func:`torch.save` whose payload holds only plain containers, strings
and tensors, so that :func:`torch.load` can read it with ``weights_only=True`` (PyTorch's restricted unpickler, which
refuses any global other than tensors and builtin containers: a crafted file cannot run code on loading).

Layout of the payload::

    {"format": "pathways.checkpoint",
     "format_version": 1,
     "header": "<JSON text>",          # see below
     "arrays": {name: torch.Tensor},   # learned arrays + module state_dict ("module_.<key>")
     "digest": "<sha256 hex>"}         # over header text and every array's bytes

The JSON header holds ``pathways_version``, ``torch_version``, ``created`` (UTC ISO time), ``class`` (import path of
the estimator), ``params`` (``get_params(deep=False)``), ``meta`` (JSON-able learned attributes, among them the
vocabulary), ``config`` (the resolved Hydra config of the run, or ``null``), ``metrics``, ``data_fingerprint`` (sha256
of the training data arrays) and ``extra`` (free JSON, e.g. the run directory).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import json
import os
import pickle
import zipfile
from importlib.metadata import PackageNotFoundError, version
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from pathways.device import resolve_device
from pathways.errors import PathwaysInputError
from pathways.utils import atomic_path, logger
from pathways.version import __version__

FORMAT = "pathways.checkpoint"
FORMAT_VERSION = 1
_SUPPORTED_VERSIONS = (1,)


class CheckpointError(PathwaysInputError):
    """A checkpoint file that cannot be used: missing, truncated, corrupt, foreign or from an incompatible version."""


def _pathways_version() -> str:
    try:
        return version("pathways")
    except PackageNotFoundError:  # not installed (source checkout): fall back to the package attribute
        return __version__


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


# --------------------------------------------------------------------------------------------------------------
# Save
# --------------------------------------------------------------------------------------------------------------
def _digest(header_text: str, arrays: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256(header_text.encode())
    for name in sorted(arrays):
        t = arrays[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        # view as bytes: works for every dtype, bfloat16 included (numpy has no bfloat16)
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save(
    estimator: Any,
    path: str | os.PathLike,
    *,
    config: Any = None,
    metrics: Mapping[str, Any] | None = None,
    data: Any = None,
    fingerprint: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a fitted estimator and its context to one self-describing checkpoint file, atomically.

    Parameters
    ----------
    estimator : a fitted :class:`pathways.models.base.PathwaysEstimator` (anything with ``export_state()``).
    path : target file (``.pt``); parent folders are created.
    config : the resolved run config (``DictConfig`` or mapping) to store, or None.
    metrics : final metrics of the run (JSON-able values).
    data : training data, fingerprinted with :func:`data_fingerprint` when ``fingerprint`` is not given.
    fingerprint : precomputed data fingerprint.
    extra : free JSON-able information (run directory, seed, ...).

    Returns
    -------
    Path of the written checkpoint.
    """
    if not hasattr(estimator, "export_state"):
        raise PathwaysInputError(
            f"save: argument 'estimator' of type {type(estimator).__name__} has no export_state(); "
            "expected a fitted pathways estimator"
        )
    state = estimator.export_state()
    arrays = {str(k): _as_tensor(k, v) for k, v in dict(state.get("arrays", {})).items()}
    if fingerprint is None and data is not None:
        fingerprint = data_fingerprint(data)
    header = {
        "pathways_version": _pathways_version(),
        "torch_version": torch.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "class": state["class"],
        "params": to_jsonable(state.get("params", {})),
        "meta": to_jsonable(state.get("meta", {})),
        "config": to_jsonable(config) if config is not None else None,
        "metrics": to_jsonable(dict(metrics or {})),
        "data_fingerprint": fingerprint,
        "extra": to_jsonable(dict(extra or {})),
    }
    header_text = json.dumps(header, sort_keys=True, allow_nan=False)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "header": header_text,
        "arrays": arrays,
        "digest": _digest(header_text, arrays),
    }
    target = Path(path)
    with atomic_path(target) as tmp:
        torch.save(payload, tmp)
    logger.info("checkpoint written: %s (%d arrays)", target, len(arrays))
    return target


def _as_tensor(name: Any, value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().contiguous()
    arr = np.asarray(value)
    if arr.dtype == object:
        raise PathwaysInputError(
            f"save: exported array '{name}' has dtype object; store strings in 'meta' (JSON), not in 'arrays'"
        )
    return torch.from_numpy(np.ascontiguousarray(arr))


# --------------------------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """The content of a checkpoint file: JSON header fields and tensors (on the requested device)."""

    path: Path
    header: dict[str, Any]
    arrays: dict[str, torch.Tensor] = field(repr=False)

    @property
    def class_path(self) -> str:
        return str(self.header["class"])

    @property
    def config(self) -> dict[str, Any] | None:
        return self.header.get("config")

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.header.get("metrics") or {})

    @property
    def data_fingerprint(self) -> str | None:
        return self.header.get("data_fingerprint")

    def state(self) -> dict[str, Any]:
        """The estimator state in the form ``PathwaysEstimator.import_state`` expects."""
        return {
            "class": self.header["class"],
            "params": self.header.get("params", {}),
            "meta": self.header.get("meta", {}),
            "arrays": self.arrays,
        }


def read(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read and verify a checkpoint file without building the estimator.

    Raises
    ------
    FileNotFoundError : when ``path`` does not exist.
    CheckpointError : truncated or corrupt file, a file that is not a pathways checkpoint, a file whose unpickling
        would need arbitrary code (refused), a digest mismatch or an unsupported format version.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint: no file at '{p}'")
    size = p.stat().st_size
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"checkpoint '{p}' ({size} bytes) was refused by the safe loader (weights_only=True): it holds objects "
            f"other than tensors and plain containers, so it is not a pathways checkpoint and may have been crafted "
            f"to run code; nothing from it was executed. Loader said: {str(exc).splitlines()[0][:300]}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"checkpoint '{p}' ({size} bytes) is truncated or corrupt and cannot be read: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        ) from None
    return _verify(p, payload)


def _verify(p: Path, payload: Any) -> Checkpoint:
    """Check format marker, version and digest of a loaded payload."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint '{p}' is not a pathways checkpoint (missing format marker '{FORMAT}'); "
            f"found {type(payload).__name__}"
        )
    version = payload.get("format_version")
    if version not in _SUPPORTED_VERSIONS:
        raise CheckpointError(
            f"checkpoint '{p}' has format_version {version!r}; this pathways ({_pathways_version()}) reads "
            f"versions {list(_SUPPORTED_VERSIONS)}. Re-train, or load it with the pathways version that wrote it."
        )
    header_text = payload.get("header")
    arrays = payload.get("arrays")
    if not isinstance(header_text, str) or not isinstance(arrays, dict):
        raise CheckpointError(f"checkpoint '{p}' is corrupt: header or arrays missing")
    if _digest(header_text, arrays) != payload.get("digest"):
        raise CheckpointError(
            f"checkpoint '{p}' is corrupt: content digest does not match (the file was modified after writing)"
        )
    header = json.loads(header_text)
    written = str(header.get("pathways_version", "?"))
    if written.split(".")[:1] != _pathways_version().split(".")[:1]:
        logger.warning("checkpoint %s was written by pathways %s, running %s", p, written, _pathways_version())
    return Checkpoint(path=p, header=header, arrays=arrays)


def import_class(class_path: str) -> type:
    """Import ``package.module.Class`` of a stored estimator: the one allow-list of restorable classes.

    Only classes inside the pathways package that implement the checkpoint protocol (``import_state``) are allowed;
    checkpoints never unpickle code.
    """
    if not class_path.startswith("pathways."):
        raise CheckpointError(
            f"checkpoint class '{class_path}' is outside the pathways package; refusing to import it"
        )
    module_name, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise CheckpointError(
            f"checkpoint class '{class_path}' is not available in this pathways ({_pathways_version()}): {exc}"
        ) from None
    if not isinstance(cls, type) or not callable(getattr(cls, "import_state", None)):
        raise CheckpointError(f"checkpoint class '{class_path}' is not a pathways estimator")
    return cls


def load(path: str | os.PathLike, device: str | torch.device | None = "cpu") -> Any:
    """Load a checkpoint and return the fitted estimator, ready for inference on ``device``.

    Parameters
    ----------
    path : checkpoint file written by :func:`save` (or by ``scripts/train.py``).
    device : "cpu", "cuda", "cuda:1", "auto" (CUDA when present) or None (cpu).

    Returns
    -------
    The fitted estimator. The checkpoint's header (config, metrics, fingerprint) is attached as
    ``estimator.checkpoint_`` (a dict).

    Examples
    --------
    >>> model = load("checkpoints/care_pathway_drivers.pt")          # doctest: +SKIP
    >>> model.adjacency_.shape                                         # doctest: +SKIP
    (12, 12)
    """
    dev = resolve_device(device or "cpu")
    ckpt = read(path, map_location=dev)
    cls = import_class(ckpt.class_path)
    try:
        est = cls.import_state(ckpt.state())
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint '{ckpt.path}' ({ckpt.class_path}, written by pathways "
            f"{ckpt.header.get('pathways_version')}) is incompatible with this pathways ({_pathways_version()}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    _move_to(est, dev)
    est.checkpoint_ = {k: v for k, v in ckpt.header.items() if k not in ("params", "meta")}
    return est


def _move_to(est: Any, device: torch.device) -> None:
    """Put a neural estimator's module on ``device`` and record the device in its params when it has one."""
    module = getattr(est, "module_", None)
    if isinstance(module, torch.nn.Module):
        module.to(device)
    if "device" in getattr(est, "get_params", lambda deep=False: {})(deep=False):
        est.set_params(device=str(device))

"""Self-describing model checkpoints, saved atomically and loaded without unpickling anything.

A checkpoint is one `safetensors <https://github.com/huggingface/safetensors>`_ file: the tensors are raw bytes at
offsets given by a JSON table, and the file's string metadata holds the pathways header, so that reading it runs no
unpickling at all (a crafted file cannot run code) and the tensors can be memory-mapped (``read(..., mmap=True)``).

Metadata of the safetensors file::

    {"format": "pathways.checkpoint",
     "format_version": "2",
     "header": "<JSON text>",          # see below
     "digest": "<sha256 hex>"}         # over header text and every array's name, dtype, shape and bytes

and its tensors are the learned arrays plus the module's ``state_dict`` (``"module_.<key>"``).

The JSON header holds ``pathways_version``, ``torch_version``, ``created`` (UTC ISO time), ``class`` (import path of
the estimator), ``params`` (``get_params(deep=False)``), ``meta`` (JSON-able learned attributes, among them the
vocabulary), ``config`` (the resolved Hydra config of the run, or ``null``), ``metrics``, ``data_fingerprint`` (sha256
of the training data arrays) and ``extra`` (free JSON, e.g. the run directory).

Checkpoints of format version 1 (a :func:`torch.save` zip of the same header, arrays and digest) still load, through
PyTorch's restricted unpickler (``weights_only=True``), which refuses any global other than tensors and containers.

At load, the header is checked before the estimator is built (the vocabulary against ``n_codes_`` and against the
code axes of the learned arrays, learned decays positive) and the parameters after (``validate_params``): a file
edited with a recomputed digest is refused, naming what is wrong, rather than giving silently wrong predictions.
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
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from pathways.checkpoint.checks import CODE_AXES, POSITIVE, CheckpointError, check_params, check_state
from pathways.checkpoint.jsonable import data_fingerprint, to_jsonable
from pathways.device import resolve_device
from pathways.errors import PathwaysInputError
from pathways.utils import atomic_path, logger
from pathways.version import __version__

FORMAT = "pathways.checkpoint"
FORMAT_VERSION = 2
_SUPPORTED_VERSIONS = (1, 2)

__all__ = ["FORMAT", "FORMAT_VERSION", "CODE_AXES", "POSITIVE", "Checkpoint", "CheckpointError", "check_params",
           "check_state", "data_fingerprint", "import_class", "load", "read", "save", "to_jsonable"]


def _pathways_version() -> str:
    try:
        return version("pathways")
    except PackageNotFoundError:  # not installed (source checkout): fall back to the package attribute
        return __version__


# --------------------------------------------------------------------------------------------------------------
# Save
# --------------------------------------------------------------------------------------------------------------
def _digest(header_text: str, arrays: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256(header_text.encode())
    for name in sorted(arrays):
        t = arrays[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        # view as bytes: works for every dtype, bfloat16 included (numpy has no bfloat16); hashed in place (no copy)
        h.update(t.reshape(-1).view(torch.uint8).numpy() if t.numel() else b"")
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
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "header": header_text,
                "digest": _digest(header_text, arrays)}
    target = Path(path)
    with atomic_path(target) as tmp:
        save_file(_unshared(arrays), str(tmp), metadata=metadata)
    logger.info("checkpoint written: %s (%d arrays)", target, len(arrays))
    return target


def _unshared(arrays: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The arrays with each one owning its storage: safetensors refuses tensors that share memory (tied weights,
    views of a larger buffer), so those are copied; the others are written as they are."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, t in arrays.items():
        storage = t.untyped_storage()
        shared = storage.data_ptr() in seen or storage.nbytes() != t.numel() * t.element_size()
        if t.numel():
            seen.add(storage.data_ptr())
        out[name] = t.clone() if shared and t.numel() else t
    return out


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


def read(path: str | os.PathLike, *, map_location: str | torch.device = "cpu", mmap: bool = False) -> Checkpoint:
    """Read and verify a checkpoint file without building the estimator.

    Parameters
    ----------
    path : checkpoint file.
    map_location : device of the returned tensors.
    mmap : keep CPU tensors mapped on the file (pages are read when used; nothing is copied into the process's
        memory) instead of private copies. Only for files in the current format; the digest check still reads
        every byte once.

    Raises
    ------
    FileNotFoundError : when ``path`` does not exist.
    CheckpointError : truncated or corrupt file, a file that is not a pathways checkpoint, a former-format file whose
        unpickling would need arbitrary code (refused), a digest mismatch or an unsupported format version.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint: no file at '{p}'")
    with open(p, "rb") as fh:
        head = fh.read(9)
    # safetensors opens with its JSON table's length (8 bytes, little-endian) then the table's "{"; the former
    # format is a torch.save zip ("PK") or pickle ("\x80"): tested in this order (a table length may end in 0x80)
    if head[8:] == b"{":
        return _verify(p, _read_safetensors(p, map_location, mmap))
    if head.startswith((b"PK\x03\x04", b"\x80")):
        return _verify(p, _read_legacy(p, map_location))
    raise CheckpointError(f"checkpoint '{p}' is not a pathways checkpoint: neither a safetensors file nor a "
                          "torch.save file of the former format")


def _read_safetensors(p: Path, map_location: str | torch.device, mmap: bool) -> dict[str, Any]:
    """The payload of a safetensors checkpoint: its metadata plus ``arrays`` (no code runs while reading)."""
    device = str(resolve_device(map_location)) if map_location is not None else "cpu"
    try:
        with safe_open(str(p), framework="pt", device=device) as fh:
            payload: dict[str, Any] = dict(fh.metadata() or {})
            arrays = {name: fh.get_tensor(name) for name in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"checkpoint '{p}' ({p.stat().st_size} bytes) is truncated or corrupt and cannot be read: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        ) from None
    if not mmap:  # private copies: the file can then be replaced or deleted while the model lives
        arrays = {name: t.clone() if t.device.type == "cpu" else t for name, t in arrays.items()}
    try:
        payload["format_version"] = int(payload.get("format_version", ""))
    except ValueError:
        pass  # reported by _verify with the value found
    payload["arrays"] = arrays
    return payload


def _read_legacy(p: Path, map_location: str | torch.device) -> Any:
    """The payload of a format-1 checkpoint (torch.save zip), through PyTorch's restricted unpickler."""
    size = p.stat().st_size
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
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
    try:
        header = json.loads(header_text)
    except ValueError:
        header = None
    if not isinstance(header, dict) or not isinstance(header.get("class"), str):
        raise CheckpointError(f"checkpoint '{p}' is corrupt: its header is not a JSON object naming a class")
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


def load(path: str | os.PathLike, device: str | torch.device | None = "cpu", *, mmap: bool = False) -> Any:
    """Load a checkpoint and return the fitted estimator, ready for inference on ``device``.

    Parameters
    ----------
    path : checkpoint file written by :func:`save` (or by ``scripts/train.py``).
    device : "cpu", "cuda", "cuda:1", "auto" (CUDA when present) or None (cpu).
    mmap : keep the arrays mapped on the file instead of copying them (see :func:`read`).

    Returns
    -------
    The fitted estimator. The checkpoint's header (config, metrics, fingerprint) is attached as
    ``estimator.checkpoint_`` (a dict).

    Raises
    ------
    CheckpointError : besides the cases of :func:`read`, a stored state that is not valid: a parameter out of its
        range (named), a vocabulary whose size differs from the model's code count or from its weights' shapes,
        a learned decay that is not positive.

    Examples
    --------
    >>> model = load("checkpoints/care_pathway_drivers.pt")          # doctest: +SKIP
    >>> model.adjacency_.shape                                         # doctest: +SKIP
    (12, 12)
    """
    dev = resolve_device(device or "cpu")
    ckpt = read(path, map_location=dev, mmap=mmap)
    cls = import_class(ckpt.class_path)
    check_state(ckpt.path, ckpt.header, ckpt.arrays)
    check_params(ckpt.path, cls, ckpt.header.get("params") or {}, str(dev))
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

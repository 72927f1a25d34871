"""Validation of a stored estimator state at load: a checkpoint edited with a recomputed digest passes the digest
check, so the parts of the state are checked against each other (codes, shapes, decays) and the parameters against
the estimator's own rules."""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from pathways.checkpoint.jsonable import to_jsonable
from pathways.errors import PathwaysInputError


class CheckpointError(PathwaysInputError):
    """A checkpoint file that cannot be used: missing, truncated, corrupt, foreign or from an incompatible version."""


#: learned arrays of the estimator protocol indexed by code, and which of their axes run over the vocabulary
CODE_AXES: dict[str, tuple[int, ...]] = {
    "baseline_": (-1,), "adjacency_": (0, 1), "kernel_": (0, 1), "component_adjacency_": (1, 2),
}
#: learned scalars or arrays that must be finite and > 0 (exponential decays)
POSITIVE: tuple[str, ...] = ("decay_", "decays_")


def check_state(path: Path, header: Mapping[str, Any], arrays: Mapping[str, torch.Tensor]) -> None:
    """Refuse a stored state whose parts disagree, before the estimator is built.

    The vocabulary (``vocab_``), the code order (``codes_``) and ``n_codes_`` must give one number of codes K, every
    learned array of :data:`CODE_AXES` must have K entries along its code axes (and be finite), and the learned
    decays of :data:`POSITIVE` must be finite and positive.

    Raises
    ------
    CheckpointError : naming the attribute, the shape found and the number of codes expected.
    """
    meta = header.get("meta") or {}
    sizes = {name: n for name, n in ((k, _n_codes(meta.get(k))) for k in ("n_codes_", "vocab_", "codes_"))
             if n is not None}
    if len(set(sizes.values())) > 1:
        found = ", ".join(f"{k} {v}" for k, v in sizes.items())
        raise CheckpointError(f"checkpoint '{path}' is inconsistent: its numbers of codes differ ({found}); "
                              "the vocabulary does not match the model")
    n_codes = next(iter(sizes.values()), None)
    for name, axes in CODE_AXES.items():
        tensor = arrays.get(name)
        if tensor is None:
            continue
        if n_codes is not None and (tensor.dim() < len(axes) or any(tensor.shape[a] != n_codes for a in axes)):
            raise CheckpointError(
                f"checkpoint '{path}': learned array '{name}' has shape {tuple(tensor.shape)} but the "
                f"vocabulary has {n_codes} codes (expected {n_codes} along axes {list(axes)}); the vocabulary and "
                "the weights do not match"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"checkpoint '{path}': learned array '{name}' holds NaN or infinite values")
    for name in POSITIVE:
        value = arrays.get(name, meta.get(name))
        if value is None:
            continue
        values = np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value, dtype=object)
        try:
            ok = values.size > 0 and bool(np.all(np.isfinite(values.astype(np.float64)) & (values > 0)))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise CheckpointError(f"checkpoint '{path}': learned '{name}' must be finite and > 0, "
                                  f"got {to_jsonable(values)!r}")


def _n_codes(value: Any) -> int | None:
    """Number of codes described by a stored ``n_codes_`` (int), ``vocab_`` or ``codes_`` (encoded meta)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "__vocabulary__" and isinstance(inner, dict) and isinstance(inner.get("codes"), list):
            return len(inner["codes"])
        if key == "__object_array__" and isinstance(inner, list):
            return len(inner)
    return None


def check_params(path: Path, cls: type, params: Mapping[str, Any], device: str = "cpu") -> None:
    """The estimator's own parameter checks (types and ranges, naming the parameter), as ``fit`` would run them,
    on an unfitted instance built from the stored parameters: nothing (no network) is built from invalid ones.

    ``device`` replaces a stored device (the one the model will run on). Parameters the class no longer takes are
    left to ``import_state`` (which drops retired ones and reports the others).
    """
    known = set(inspect.signature(cls).parameters)
    kwargs = {k: v for k, v in params.items() if k in known}
    if "device" in kwargs:
        kwargs["device"] = device
    try:
        probe = cls(**kwargs)
    except PathwaysInputError as exc:
        raise CheckpointError(f"checkpoint '{path}' ({cls.__name__}) holds an invalid parameter: {exc}") from None
    validate = getattr(probe, "validate_params", None)
    if not callable(validate):
        return
    try:
        validate()
    except PathwaysInputError as exc:
        raise CheckpointError(f"checkpoint '{path}' ({cls.__module__}.{cls.__qualname__}) holds an invalid "
                              f"parameter: {exc}") from None

"""Device selection: CUDA when present, else CPU; an explicit GPU request fails clearly without one."""
from __future__ import annotations

import torch

from pathways.errors import PathwaysInputError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn a device request into a :class:`torch.device`.

    Parameters
    ----------
    device : "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:N", "gpu" (alias of "cuda"),
        "mps", a ``torch.device`` or None (same as "auto").

    Raises
    ------
    PathwaysInputError : a CUDA/MPS device is requested but not available, or the name is unknown.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        name = str(device)
    else:
        name = "auto" if device is None else str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "gpu":
        name = "cuda"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise PathwaysInputError(
            f"argument 'device': unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise PathwaysInputError(
                f"argument 'device': {device!r} requested but CUDA is not available on this machine "
                f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); use trainer=cpu or device=auto"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise PathwaysInputError(
                f"argument 'device': {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise PathwaysInputError(f"argument 'device': {device!r} requested but MPS is not available")
    return dev

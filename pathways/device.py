"""Device selection (CUDA when present, else CPU; an explicit GPU request fails clearly without one) and moving
scipy sparse matrices to torch."""
from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
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


def torch_csr(matrix: sp.spmatrix, device: torch.device | str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A scipy sparse matrix as a torch sparse CSR tensor on ``device`` (``dtype`` defaults to the matrix's).

    Examples
    --------
    >>> m = torch_csr(sp.csr_matrix(np.array([[0.0, 2.0], [1.0, 0.0]])), "cpu")
    >>> m.to_dense().tolist()
    [[0.0, 2.0], [1.0, 0.0]]
    """
    m = sp.csr_matrix(matrix)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta" is noise here
        return torch.sparse_csr_tensor(torch.from_numpy(m.indptr.astype(np.int64)),
                                       torch.from_numpy(m.indices.astype(np.int64)),
                                       torch.from_numpy(m.data), size=m.shape, dtype=dtype,
                                       device=torch.device(device), check_invariants=False)

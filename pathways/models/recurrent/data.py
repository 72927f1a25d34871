"""Dense torch batches of binned histories (:class:`pathways.encode.OutcomeData`) for the recurrent outcome models."""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp
import torch

from pathways.encode.outcomes import OutcomeData
from pathways.errors import PathwaysInputError
from pathways.utils import ragged_arange, rng as make_rng

__all__ = ["DenseBatcher"]


class DenseBatcher:
    """Cut :class:`OutcomeData` into dense, right-padded torch batches.

    Each batch densifies only its own CSR rows, so memory stays ``batch_size x max_len x n_codes``. Histories longer
    than ``max_bins`` keep their most recent bins. Batches are dicts with ``x`` (B, L, C) float32, ``lengths`` (B,)
    int64 (on CPU, as ``pack_padded_sequence`` wants), ``index`` (B,) sample positions, and, when present, ``static``
    (B, S) and ``y`` (B, K).

    Parameters
    ----------
    data : OutcomeData
    transform : {"log1p", "none", "indicator"}
        Applied to the bin values once, before batching.
    max_bins : int, optional
        Keep at most this many recent bins per sample.
    static_mean, static_scale : ndarray, optional
        Standardisation of static covariates (learned at fit time).
    device : torch.device
    """

    def __init__(
        self,
        data: OutcomeData,
        *,
        transform: str = "log1p",
        max_bins: int | None = None,
        static_mean: np.ndarray | None = None,
        static_scale: np.ndarray | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.data = data
        self.device = torch.device(device)
        self.matrix = _transform(data.matrix, transform).astype(np.float32)
        lengths = data.lengths
        # zero-bin histories get one empty bin so every recurrent pass has a first step
        self.lengths = np.maximum(lengths if max_bins is None else np.minimum(lengths, int(max_bins)), 1)
        self.ends = data.offsets[1:]
        self.real = np.minimum(self.lengths, lengths)
        static = data.static
        if static is not None and static_mean is not None:
            static = (static - static_mean) / static_scale
        self.static = None if static is None else static.astype(np.float32)
        self.y = None if data.y is None else data.y.astype(np.float32)

    def __len__(self) -> int:
        return len(self.data)

    def order(self, batch_size: int, *, shuffle: bool, seed: Any = None, bucket: bool = True) -> list[np.ndarray]:
        """Sample positions of each batch; with ``bucket``, similar lengths share a batch to limit padding."""
        n = len(self)
        g = make_rng(seed)
        idx = g.permutation(n) if shuffle else np.arange(n)
        if bucket and np.unique(self.lengths).size > 1:
            # sort by length inside windows of 50 batches: little padding, still random across windows
            window = 50 * batch_size
            keys = np.arange(n) // window * (self.lengths.max() + 1) + self.lengths[idx]
            idx = idx[np.argsort(keys, kind="stable")]
        batches = [idx[i:i + batch_size] for i in range(0, n, batch_size)]
        if shuffle:
            batches = [batches[i] for i in g.permutation(len(batches))]
        return batches

    def batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        """Dense batch of samples ``idx`` (right-padded along time, chronological)."""
        idx = np.asarray(idx, dtype=np.int64)
        lengths = self.lengths[idx]
        real = self.real[idx]
        b, t_max = idx.size, int(lengths.max())
        rows = ragged_arange(real, self.ends[idx] - real)
        sub = self.matrix[rows]
        nnz_row = np.repeat(np.arange(rows.size), np.diff(sub.indptr))
        # sample b's real rows sit at time positions 0..real-1 (an empty pseudo-bin keeps length 1 when real = 0)
        pos_b = np.repeat(np.arange(b), real)[nnz_row]
        pos_t = (np.arange(rows.size) - np.repeat(np.cumsum(real) - real, real))[nnz_row]
        x = torch.zeros((b, t_max, self.matrix.shape[1]), dtype=torch.float32)
        x[torch.from_numpy(pos_b), torch.from_numpy(pos_t), torch.from_numpy(sub.indices.astype(np.int64))] = (
            torch.from_numpy(sub.data)
        )
        out = {"x": x.to(self.device), "lengths": torch.from_numpy(lengths), "index": torch.from_numpy(idx)}
        if self.static is not None:
            out["static"] = torch.from_numpy(self.static[idx]).to(self.device)
        if self.y is not None:
            out["y"] = torch.from_numpy(self.y[idx]).to(self.device)
        return out

    def iterate(
        self, batch_size: int, *, shuffle: bool = False, seed: Any = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Yield dense batches covering every sample once."""
        for idx in self.order(batch_size, shuffle=shuffle, seed=seed):
            yield self.batch(idx)


def _transform(matrix: sp.csr_matrix, transform: str) -> sp.csr_matrix:
    out = matrix.copy().astype(np.float64)
    if transform == "log1p":
        out.data = np.log1p(out.data)
    elif transform == "indicator":
        out.data = (out.data > 0).astype(np.float64)
    elif transform != "none":
        raise PathwaysInputError(f"transform: expected 'log1p', 'indicator' or 'none', got {transform!r}")
    out.eliminate_zeros()
    return out

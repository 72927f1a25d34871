"""Inputs of the recurrent outcome models: binned histories, labels, static covariates, and dense batches.

The layout is the one of :func:`pathways.encode.to_sparse_series`: one CSR matrix whose rows are time bins and
whose columns are codes, with ``offsets`` (P + 1) giving the rows of each patient in chronological order. With
``align="index"`` the last row of a patient is the bin that ends at its index date, so row ``offsets[p+1] - 1 - j``
is the bin ``j`` bins before the prediction (its *lag position*).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from pathways.errors import PathwaysInputError
from pathways.utils import ragged_arange, rng as make_rng

__all__ = ["OutcomeData", "as_outcome_data", "DenseBatcher"]


@dataclass
class OutcomeData:
    """Binned histories with their outcome labels: what the recurrent outcome models fit on.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix, shape (sum of bins, n_codes)
        Counts (or indicators) per bin and code, rows of one patient consecutive and chronological.
    offsets : ndarray of int64, shape (n + 1,)
        Rows of sample ``i`` are ``offsets[i]:offsets[i+1]``; the last one is the bin just before the index date.
    y : ndarray of float64, shape (n, K)
        Outcome indicators (one column per outcome label); may be None for prediction-only data.
    labels : tuple of str
        Outcome names, one per column of ``y`` (default ``("outcome",)`` or ``outcome_<k>``).
    bin_width : float
        Bin width in the log's time unit (days for datetime logs); converts lag positions to ``lag_days``.
    vocab : Vocabulary or None
        Code vocabulary (column names of ``matrix``).
    static : ndarray of float64, shape (n, S), optional
        Static covariates (age, sex, ...), already numeric.
    static_names : tuple of str
        Names of the static columns.
    patient_index : ndarray of int64, shape (n,), optional
        Row of each sample in ``log.patients`` (positions, never identifiers).
    index_time : ndarray of float64, shape (n,), optional
        Index time of each sample, in the log's time unit.
    """

    matrix: sp.csr_matrix
    offsets: np.ndarray
    y: np.ndarray | None = None
    labels: tuple[str, ...] = ()
    bin_width: float = 1.0
    vocab: Any = None
    static: np.ndarray | None = None
    static_names: tuple[str, ...] = ()
    patient_index: np.ndarray | None = None
    index_time: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.matrix = sp.csr_matrix(self.matrix)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        _check_layout(self.matrix, self.offsets)
        n = self.offsets.size - 1
        if self.y is not None:
            self.y = _labels_matrix(self.y, n)
            k = self.y.shape[1]
            if not self.labels:  # default names
                self.labels = ("outcome",) if k == 1 else tuple(f"outcome_{j}" for j in range(k))
            if len(self.labels) != k:
                raise PathwaysInputError(
                    f"labels: {len(self.labels)} name(s) for {k} outcome column(s) of y, e.g. {self.labels[0]!r}"
                )
            self.labels = tuple(str(v) for v in self.labels)
        if self.static is not None:
            self.static = _static_matrix(self.static, n)
            if not self.static_names:
                self.static_names = tuple(f"static_{k}" for k in range(self.static.shape[1]))
            if len(self.static_names) != self.static.shape[1]:
                raise PathwaysInputError(
                    f"static_names: {len(self.static_names)} name(s) for {self.static.shape[1]} static column(s)"
                )
            self.static_names = tuple(str(v) for v in self.static_names)
        bw = np.unique(np.atleast_1d(np.asarray(self.bin_width, dtype=np.float64)))
        if bw.size != 1 or not np.isfinite(bw[0]) or bw[0] <= 0:
            raise PathwaysInputError(f"bin_width: expected one positive width, got {self.bin_width!r}")
        self.bin_width = float(bw[0])

    def __len__(self) -> int:
        return self.offsets.size - 1

    @property
    def n_codes(self) -> int:
        """Number of code columns."""
        return int(self.matrix.shape[1])

    @property
    def lengths(self) -> np.ndarray:
        """Number of bins of each sample."""
        return np.diff(self.offsets)

    @property
    def code_names(self) -> np.ndarray:
        """Code string per column (``code_<j>`` without a vocabulary)."""
        if self.vocab is not None:
            return np.asarray(self.vocab.codes, dtype=object)
        return np.array([f"code_{j}" for j in range(self.n_codes)], dtype=object)

    def subset(self, index: np.ndarray | Sequence[int]) -> "OutcomeData":
        """Samples ``index`` (positions or boolean mask), in that order."""
        idx = np.arange(len(self))[np.asarray(index)]
        lengths = self.lengths[idx]
        rows = ragged_arange(lengths, self.offsets[idx])
        offsets = np.zeros(idx.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else np.asarray(a)[idx]

        return OutcomeData(
            matrix=self.matrix[rows], offsets=offsets, y=pick(self.y), labels=self.labels,
            bin_width=self.bin_width, vocab=self.vocab, static=pick(self.static), static_names=self.static_names,
            patient_index=pick(self.patient_index), index_time=pick(self.index_time),
        )

    def counts(self, last_bins: int | None = None) -> sp.csr_matrix:
        """Per-sample code totals ``(n, n_codes)`` over all bins, or over the ``last_bins`` most recent ones."""
        lengths = self.lengths
        keep = lengths if last_bins is None else np.minimum(lengths, int(last_bins))
        rows = ragged_arange(keep, self.offsets[1:] - keep)
        owner = np.repeat(np.arange(len(self)), keep)
        agg = sp.csr_matrix((np.ones(rows.size), (owner, np.arange(rows.size))), shape=(len(self), rows.size))
        return (agg @ self.matrix[rows]).tocsr()


def _check_layout(matrix: sp.csr_matrix, offsets: np.ndarray) -> None:
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0:
        raise PathwaysInputError(f"offsets: expected a 1-D array starting at 0, got shape {offsets.shape}")
    steps = np.diff(offsets)
    if (steps < 0).any():
        bad = int(np.flatnonzero(steps < 0)[0])
        raise PathwaysInputError(f"offsets: {int((steps < 0).sum())} decreasing step(s); first at sample {bad}")
    if offsets[-1] != matrix.shape[0]:
        raise PathwaysInputError(f"offsets end at {offsets[-1]} but the matrix has {matrix.shape[0]} rows")
    data = matrix.data
    bad = ~np.isfinite(data) | (data < 0)
    if bad.any():
        raise PathwaysInputError(
            f"matrix: {int(bad.sum())} negative or non-finite value(s); example {data[bad][0]!r}"
        )


def _labels_matrix(y: Any, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != n:
        raise PathwaysInputError(f"y: expected {n} rows (one per sample) and 1 or 2 dimensions, got shape {y.shape}")
    bad = ~((y == 0) | (y == 1))
    if bad.any():
        pos = int(np.flatnonzero(bad.any(axis=1))[0])
        raise PathwaysInputError(
            f"y: {int(bad.sum())} value(s) outside {{0, 1}}; first at sample {pos} (value {y[bad][0]!r})"
        )
    return y


def _static_matrix(static: Any, n: int) -> np.ndarray:
    s = np.asarray(static, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2 or s.shape[0] != n:
        raise PathwaysInputError(f"static: expected {n} rows (one per sample), got shape {s.shape}")
    bad = ~np.isfinite(s)
    if bad.any():
        pos = int(np.flatnonzero(bad.any(axis=1))[0])
        col = int(np.flatnonzero(bad[pos])[0])
        raise PathwaysInputError(
            f"static: {int(bad.sum())} non-finite value(s); first at sample {pos}, column {col}"
        )
    return s


def as_outcome_data(X: Any, y: Any = None, static: Any = None, *, require_y: bool = False) -> OutcomeData:
    """Coerce model input to :class:`OutcomeData`.

    Parameters
    ----------
    X : OutcomeData or SparseSeries
        Either a ready :class:`OutcomeData` (its ``y``/``static`` are used unless given here) or any object with the
        :class:`pathways.encode.SparseSeries` attributes ``matrix``, ``offsets``, ``bin_width`` and ``vocab``.
    y : array-like, shape (n,) or (n, K), optional
        Outcome indicators.
    static : array-like, shape (n, S), optional
        Static covariates.
    require_y : bool
        Raise when no labels are available (fitting, scoring).
    """
    if isinstance(X, OutcomeData):
        data = X
        if y is not None or static is not None:
            data = OutcomeData(
                matrix=X.matrix, offsets=X.offsets, y=X.y if y is None else y,
                labels=X.labels if y is None else (), bin_width=X.bin_width, vocab=X.vocab,
                static=X.static if static is None else static, static_names=X.static_names if static is None else (),
                patient_index=X.patient_index, index_time=X.index_time,
            )
    elif hasattr(X, "matrix") and hasattr(X, "offsets"):
        data = OutcomeData(
            matrix=X.matrix, offsets=X.offsets, y=y, labels=(), bin_width=getattr(X, "bin_width", 1.0),
            vocab=getattr(X, "vocab", None), static=static,
        )
    else:
        raise PathwaysInputError(
            f"X: expected OutcomeData or a SparseSeries (pathways.encode.to_sparse_series), got {type(X).__name__}; "
            "build one with pathways.models.recurrent.outcome_dataset(log, ...)"
        )
    if require_y and data.y is None:
        raise PathwaysInputError("y: outcome labels are required (pass y=... or an OutcomeData with y)")
    return data


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

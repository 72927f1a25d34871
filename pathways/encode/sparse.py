"""Sparse binned time series: patients x time bins x codes as one scipy CSR matrix.

Row ``offsets[p] + k`` of the matrix holds the code counts (or indicators) of patient ``p`` in its ``k``-th bin,
``[bin_start[p] + k * bin_width, bin_start[p] + (k + 1) * bin_width)``. Patients may have different numbers of
bins (ragged, like their follow-up) or all the same (``n_bins``), which batches without padding.

The encoder is one vectorised pass: bin number of every event, a gather of per-patient row offsets, and scipy's
O(nnz) COO -> CSR conversion (which also sums repeated (row, code) pairs).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Literal, Sequence

import numpy as np
import scipy.sparse as sp

from pathways.data.anchors import index_times
from pathways.data.validate import check_choice
from pathways.data.vocabulary import Vocabulary
from pathways.errors import PathwaysDataWarning, PathwaysInputError, describe_bad_rows
from pathways.utils import SeedLike, ragged_arange, rng, segment_ids

if TYPE_CHECKING:
    import torch

    from pathways.data.eventlog import EventLog


@dataclass
class SparseSeries:
    """Binned code counts of many patients, stacked as the rows of one CSR matrix.

    Attributes
    ----------
    matrix : scipy CSR, shape (total bins, n_codes), float32 counts or 0/1 indicators.
    offsets : (P + 1,) int64; the bins of patient p are rows ``offsets[p]:offsets[p + 1]``.
    bin_start : (P,) float64, left edge of each patient's first bin (log time).
    bin_width : bin width in the log's time unit.
    vocab : vocabulary of the columns.
    value : ``"count"`` or ``"indicator"``.
    window : (P, 2) float64 observation window [start, end] of each patient (to tell observed bins from padding).

    Examples
    --------
    >>> m = sp.csr_matrix(np.array([[1, 0], [0, 2], [1, 1]], dtype=np.float32))
    >>> s = SparseSeries(m, np.array([0, 2, 3]), np.array([0.0, 10.0]), 5.0, None)
    >>> s.lengths.tolist(), s.totals().toarray().tolist()
    ([2, 1], [[1.0, 2.0], [1.0, 1.0]])
    >>> x, lengths = s.to_torch([0, 1])
    >>> tuple(x.shape), lengths.tolist()
    ((2, 2, 2), [2, 1])
    """

    matrix: sp.csr_matrix
    offsets: np.ndarray
    bin_start: np.ndarray
    bin_width: float
    vocab: Vocabulary | None
    value: str = "count"
    window: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        self.bin_start = np.asarray(self.bin_start, dtype=np.float64)
        n = self.offsets.size - 1
        if n < 0 or self.offsets[0] != 0 or self.offsets[-1] != self.matrix.shape[0] or np.any(np.diff(self.offsets) < 0):
            raise PathwaysInputError("offsets: must start at 0, be non-decreasing and end at the number of rows")
        if self.bin_start.shape != (n,):
            raise PathwaysInputError(f"bin_start: expected {n} values, got {self.bin_start.shape}")
        if self.window is None:
            self.window = np.column_stack([self.bin_start, self.bin_start + self.lengths * float(self.bin_width)])

    # -- sizes ----------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.offsets.size - 1

    @property
    def n_patients(self) -> int:
        """Number of patients (row blocks)."""
        return len(self)

    @property
    def n_codes(self) -> int:
        """Number of code columns."""
        return int(self.matrix.shape[1])

    @property
    def n_rows(self) -> int:
        """Number of patient-bins (rows of ``matrix``)."""
        return int(self.matrix.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        """Number of bins of each patient."""
        return np.diff(self.offsets)

    def __repr__(self) -> str:
        return (f"SparseSeries({len(self)} patients, {self.n_rows} bins of {self.bin_width:g}, {self.n_codes} codes, "
                f"{self.matrix.nnz} non-zeros, value={self.value!r})")

    # -- row bookkeeping ------------------------------------------------------------------------------------------
    def row_patient(self) -> np.ndarray:
        """Patient index of every row."""
        return segment_ids(self.offsets)

    def row_bin(self) -> np.ndarray:
        """Position of every row within its patient's bins (0 = first bin)."""
        return np.arange(self.n_rows, dtype=np.int64) - np.repeat(self.offsets[:-1], self.lengths)

    def row_time(self) -> np.ndarray:
        """Left edge of every row's bin (log time)."""
        return np.repeat(self.bin_start, self.lengths) + self.row_bin() * float(self.bin_width)

    def row_observed(self) -> np.ndarray:
        """True for bins that overlap the patient's observation window (False for padding after death, ...)."""
        left = self.row_time()
        pat = self.row_patient()
        return (left + float(self.bin_width) > self.window[pat, 0]) & (left <= self.window[pat, 1])

    def totals(self) -> sp.csr_matrix:
        """(P, n_codes) CSR: each patient's values summed over its bins."""
        gather = sp.csr_matrix(
            (np.ones(self.n_rows, dtype=self.matrix.dtype), (self.row_patient(), np.arange(self.n_rows))),
            shape=(len(self), self.n_rows),
        )
        return (gather @ self.matrix).tocsr()

    # -- subsets and tensors --------------------------------------------------------------------------------------
    def _select(self, idx: int | slice | Sequence[int] | np.ndarray) -> np.ndarray:
        if isinstance(idx, (int, np.integer)):
            idx = [int(idx)]
        sel = np.arange(len(self))[idx] if isinstance(idx, slice) else np.asarray(idx)
        if sel.dtype == bool:
            if sel.shape != (len(self),):
                raise PathwaysInputError(f"idx: boolean mask must have {len(self)} values, got {sel.shape}")
            sel = np.flatnonzero(sel)
        sel = sel.astype(np.int64)
        if sel.size and (sel.min() < -len(self) or sel.max() >= len(self)):
            raise PathwaysInputError(f"idx: patient indices must lie in [0, {len(self)}), got {sel.min()}..{sel.max()}")
        return np.where(sel < 0, sel + len(self), sel)

    def __getitem__(self, idx: int | slice | Sequence[int] | np.ndarray) -> "SparseSeries":
        """Subset of patients (rows gathered in one scipy fancy-index call)."""
        sel = self._select(idx)
        lengths = self.lengths[sel]
        rows = ragged_arange(lengths, self.offsets[sel])
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return SparseSeries(self.matrix[rows], offsets, self.bin_start[sel], self.bin_width, self.vocab,
                            self.value, self.window[sel])

    def to_torch(
        self,
        idx: int | slice | Sequence[int] | np.ndarray | None = None,
        dense: bool = True,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch of patients as a (B, T, n_codes) tensor padded with zeros after each patient's last bin.

        Parameters
        ----------
        idx : patients to take (default all).
        dense : dense tensor, or a torch sparse COO tensor of the same shape.
        device, dtype : of the values tensor (default float32).

        Returns
        -------
        (values, lengths): values (B, T, n_codes) with T = the longest selected patient; lengths (B,) long =
        bins per patient (rows at positions >= length are padding).
        """
        import torch  # imported on first use: reading and encoding data never needs it

        dtype = torch.float32 if dtype is None else dtype
        sel = np.arange(len(self)) if idx is None else self._select(idx)
        lengths = self.lengths[sel]
        width = int(lengths.max()) if lengths.size else 0
        rows = ragged_arange(lengths, self.offsets[sel])
        sub = self.matrix[rows].tocoo()
        row_batch = np.repeat(np.arange(sel.size, dtype=np.int64), lengths)
        row_pos = np.arange(rows.size, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        b, t = row_batch[sub.row], row_pos[sub.row]
        shape = (sel.size, width, self.n_codes)
        values = torch.as_tensor(sub.data, dtype=dtype)
        lengths_t = torch.as_tensor(lengths, dtype=torch.long, device=device)
        if not dense:
            index = torch.as_tensor(np.vstack([b, t, sub.col.astype(np.int64)]))
            sparse = torch.sparse_coo_tensor(index, values, shape, device=device, check_invariants=False)
            return sparse.coalesce(), lengths_t
        out = torch.zeros(shape, dtype=dtype)
        out[torch.as_tensor(b), torch.as_tensor(t), torch.as_tensor(sub.col.astype(np.int64))] = values
        return out.to(device), lengths_t

    def batches(
        self,
        batch_size: int = 64,
        *,
        shuffle: bool = False,
        seed: SeedLike = None,
        dense: bool = True,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
        """Yield ``(values, lengths, patient_indices)`` batches covering every patient once."""
        if batch_size < 1:
            raise PathwaysInputError(f"batch_size: must be >= 1, got {batch_size}")
        order = rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        for i in range(0, order.size, batch_size):
            chunk = order[i:i + batch_size]
            values, lengths = self.to_torch(chunk, dense, device=device, dtype=dtype)
            yield values, lengths, chunk


# ----------------------------------------------------------------------------------------------------------------
# encoder
# ----------------------------------------------------------------------------------------------------------------
def _index_times(log: "EventLog", align: str, index_time: str | Sequence[float] | np.ndarray | None) -> np.ndarray:
    """Anchor of every patient's bin grid: 0 (calendar) or the per-patient index time."""
    if align == "calendar":
        if index_time is not None:
            raise PathwaysInputError("index_time: only used with align='index'")
        return np.zeros(log.n_patients)
    if index_time is None:
        index_time = "start"
    anchor = index_times(log, index_time)
    name = f"patients.{index_time}" if isinstance(index_time, str) else "index_time"
    bad = ~np.isfinite(anchor)
    if bad.any():
        raise PathwaysInputError(describe_bad_rows(name, bad, anchor, "have no finite index time") +
                                 " (select those patients out first)")
    return anchor


def _code_map(log: "EventLog", vocab: Vocabulary | None, unknown: str) -> tuple[np.ndarray, Vocabulary]:
    """Column of every code of ``log.vocab`` in the output vocabulary (-1 = dropped)."""
    if vocab is None or vocab == log.vocab:
        return np.arange(log.n_codes, dtype=np.int64), log.vocab
    known = np.asarray([c in vocab for c in log.vocab.codes], dtype=bool)
    col = np.full(log.n_codes, -1, dtype=np.int64)
    col[known] = vocab.encode(log.vocab.codes[known])
    used = np.bincount(log.code, minlength=log.n_codes) > 0
    missing = used & ~known
    if missing.any():
        n_rows = int(np.isin(log.code, np.flatnonzero(missing)).sum())
        message = (f"column 'code': {n_rows} events carry {int(missing.sum())} codes unknown to the vocabulary, "
                   f"e.g. {log.vocab.codes[missing][0]!r}")
        if unknown == "error":
            raise PathwaysInputError(message + " (pass unknown='oov' or 'drop')")
        if unknown == "oov":
            if vocab.oov_index is None:
                raise PathwaysInputError(message + "; the vocabulary has no OOV bucket (pass unknown='drop')")
            col[missing] = vocab.oov_index
        else:
            warnings.warn("dropped: " + message, PathwaysDataWarning, stacklevel=3)
    return col, vocab


def _check_args(bin_days: float, align: str, value: str, spans: str, unknown: str, n_bins: int | None) -> float:
    width = float(bin_days) if isinstance(bin_days, (int, float, np.number)) else float("nan")
    if not np.isfinite(width) or width <= 0:
        raise PathwaysInputError(f"bin_days: expected a positive finite number, got {bin_days!r}")
    for name, got, allowed in (("align", align, ("calendar", "index")), ("value", value, ("count", "indicator")),
                               ("spans", spans, ("fill", "start")), ("unknown", unknown, ("error", "oov", "drop"))):
        check_choice(name, got, allowed)
    if n_bins is not None and (isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1):
        raise PathwaysInputError(f"n_bins: expected a positive integer or None, got {n_bins!r}")
    return width


def _bin_of(t: np.ndarray, anchor: np.ndarray | float, width: float) -> np.ndarray:
    """Bin number ``floor((t - anchor) / width)`` (divide then floor: 4x faster than ``np.floor_divide``, and exact
    on bin edges since ``k * width / width == k`` in floating point)."""
    q = np.subtract(t, anchor) / width if np.ndim(anchor) or anchor != 0 else t / width
    return np.floor(q, out=q).astype(np.int64)


def _patient_bins(log: "EventLog", anchor: np.ndarray, width: float, n_bins: int | None,
                  first_bin: int | None, align: str) -> tuple[np.ndarray, np.ndarray]:
    """First and last bin number (inclusive, relative to each anchor) of every patient's rows."""
    start = log.patients["start"].to_numpy(dtype=np.float64)
    stop = log.patients["end"].to_numpy(dtype=np.float64)
    lo = _bin_of(start, anchor, width)
    # The last bin is closed on the right: a window ending exactly on a bin edge does not open an extra bin.
    hi = np.maximum(np.ceil((stop - anchor) / width).astype(np.int64) - 1, lo)
    if first_bin is not None:
        lo = np.full(log.n_patients, int(first_bin), dtype=np.int64)
    elif n_bins is not None:
        lo = np.full(log.n_patients, 0 if align == "index" else int(lo.min()), dtype=np.int64)
    if n_bins is not None:
        hi = lo + int(n_bins) - 1
    return lo, np.maximum(hi, lo)


def to_sparse_series(
    log: "EventLog",
    bin_days: float = 30.0,
    *,
    align: Literal["calendar", "index"] = "calendar",
    index_time: str | Sequence[float] | np.ndarray | None = None,
    n_bins: int | None = None,
    first_bin: int | None = None,
    value: Literal["count", "indicator"] = "count",
    spans: Literal["fill", "start"] = "fill",
    vocab: Vocabulary | None = None,
    unknown: Literal["error", "oov", "drop"] = "error",
) -> SparseSeries:
    """Encode an EventLog as patients x time bins x codes in one CSR matrix.

    Parameters
    ----------
    log : the event log.
    bin_days : bin width, in the log's time unit (days for logs built from datetimes).
    align : ``"calendar"``: one grid ``k * bin_days`` (from the log's origin) shared by all patients, so bin edges
        are the same calendar dates for everybody; ``"index"``: each patient's grid starts at its own index time.
    index_time : with ``align="index"``: a column of ``log.patients`` (default ``"start"``) or one time per patient.
    n_bins : give every patient exactly this many half-open bins (events outside them are left out), starting at
        bin ``first_bin``; default: each patient gets the bins covering its observation window [start, end], the
        last one closed on the right so that an event at exactly ``end`` is kept.
    first_bin : bin number (relative to the grid origin / index time, may be negative for history before the index
        date) of every patient's first row. Default: 0 with ``align="index"`` and ``n_bins``, the earliest
        patient's first bin with ``align="calendar"`` and ``n_bins``, else each patient's own window start.
    value : ``"count"`` (events per bin) or ``"indicator"`` (1 if any).
    spans : events with an ``end`` (stays, exposures): ``"fill"`` counts them once in every bin they overlap
        (end inclusive), ``"start"`` only in the bin where they start.
    vocab : encode columns with this vocabulary (e.g. a fitted model's) instead of the log's.
    unknown : codes of the log missing from ``vocab``: ``"error"``, ``"oov"`` (OOV bucket) or ``"drop"`` (warned).

    Returns
    -------
    SparseSeries

    Examples
    --------
    >>> import pandas as pd
    >>> from pathways.data import EventLog
    >>> events = pd.DataFrame({"patient_id": [1, 1, 1, 2], "time": [0.0, 3.0, 12.0, 5.0],
    ...                        "code": ["A", "A", "B", "B"]})
    >>> s = to_sparse_series(EventLog.from_pandas(events), bin_days=10.0)
    >>> s.offsets.tolist(), s.matrix.toarray().tolist()
    ([0, 2, 3], [[2.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    """
    width = _check_args(bin_days, align, value, spans, unknown, n_bins)
    if log.n_patients == 0:
        raise PathwaysInputError("log: no patients to encode")
    anchor = _index_times(log, align, index_time)
    col_of_code, out_vocab = _code_map(log, vocab, unknown)
    lo, hi = _patient_bins(log, anchor, width, n_bins, first_bin, align)
    lengths = hi - lo + 1
    offsets = np.zeros(log.n_patients + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    row, col = _event_cells(log, anchor, width, lo, hi, offsets, col_of_code, spans,
                            closed_end=n_bins is None, all_inside=n_bins is None and first_bin is None)
    data = np.ones(row.size, dtype=np.float32)
    # COO -> CSR is a counting sort by row in C++ and sums duplicate (row, code) cells: the counts.
    matrix = sp.coo_matrix((data, (row, col)), shape=(int(offsets[-1]), len(out_vocab))).tocsr()
    matrix.sum_duplicates()
    if value == "indicator":
        matrix.data[:] = 1.0
    window = log.patients[["start", "end"]].to_numpy(dtype=np.float64)
    return SparseSeries(matrix, offsets, anchor + lo * width, width, out_vocab, value, window)


def _event_cells(log: "EventLog", anchor: np.ndarray, width: float, lo: np.ndarray, hi: np.ndarray,
                 offsets: np.ndarray, col_of_code: np.ndarray, spans: str, *, closed_end: bool,
                 all_inside: bool) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every event cell; spans expanded over the bins they cover; out-of-rows cells dropped.

    Per-patient quantities are spread over events with ``np.repeat`` (events are grouped by patient), which is
    cheaper than gathers. With ``closed_end`` (the last row ends with the observation window) an event at exactly
    the window end on a bin edge is folded into the last, right-closed, row by a clamp; with ``all_inside`` (rows
    = the whole window) every event then lies in its rows by the EventLog invariant and no mask is needed.
    """
    counts = np.diff(log.offsets)
    k = _bin_of(log.time, np.repeat(anchor, counts) if anchor.any() else 0.0, width)
    col = log.code if np.array_equal(col_of_code, np.arange(col_of_code.size)) else col_of_code[log.code]
    first_row, last_row = offsets[:-1] - lo, offsets[1:] - 1
    is_span = ~np.isnan(log.end) & (log.end > log.time) if spans == "fill" else None
    if is_span is not None and is_span.any():
        return _cells_with_spans(log, anchor, width, k, col, is_span, lo, hi, first_row, closed_end)
    row = k
    row += np.repeat(first_row, counts)
    if closed_end:
        np.minimum(row, np.repeat(last_row, counts), out=row)
    if not all_inside:  # fixed rows (n_bins / first_bin): events outside the rows are left out
        inside = (row >= np.repeat(offsets[:-1], counts)) & (row <= np.repeat(last_row, counts))
        row, col = row[inside], col[inside]
    keep = col >= 0
    return (row, col) if keep.all() else (row[keep], col[keep])


def _cells_with_spans(log: "EventLog", anchor: np.ndarray, width: float, k: np.ndarray, col: np.ndarray,
                      is_span: np.ndarray, lo: np.ndarray, hi: np.ndarray, first_row: np.ndarray,
                      closed_end: bool) -> tuple[np.ndarray, np.ndarray]:
    """General path: point events keep their bin, spans are expanded over every bin they overlap (end inclusive)."""
    patient = log.patient
    if closed_end:  # the last row is right-closed: fold events at exactly the window end into it
        np.minimum(k, hi[patient], out=k)
    k_end = np.minimum(_bin_of(log.end[is_span], anchor[patient[is_span]], width), hi[patient[is_span]])
    k_start = np.maximum(k[is_span], lo[patient[is_span]])
    n_cover = np.maximum(k_end - k_start + 1, 0)
    keep = ~is_span
    k = np.concatenate([k[keep], ragged_arange(n_cover, k_start)])
    col = np.concatenate([col[keep], np.repeat(col[is_span], n_cover)])
    patient = np.concatenate([patient[keep], np.repeat(patient[is_span], n_cover)])
    inside = (k >= lo[patient]) & (k <= hi[patient]) & (col >= 0)
    return first_row[patient[inside]] + k[inside], col[inside]

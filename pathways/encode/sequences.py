"""Ragged continuous-time marked sequences: the input of point-process models."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from pathways.data.vocabulary import Vocabulary
from pathways.errors import PathwaysInputError
from pathways.utils import SeedLike, rng, segment_ids

if TYPE_CHECKING:
    import torch

    from pathways.data.eventlog import EventLog


@dataclass
class PaddedBatch:
    """A batch of sequences padded to a common length.

    Attributes
    ----------
    times : (B, L) float, event times relative to each sequence's observation start (0 where padded).
    marks : (B, L) long, code indices (0 where padded; use ``mask``).
    mask : (B, L) bool, True on real events.
    lengths : (B,) long, number of events per sequence.
    start : (B,) float, observation start (absolute, for reference).
    end : (B,) float, observation window length ``end - start`` (the likelihood integrates up to it).
    index : (B,) long, positions of the sequences in the parent :class:`Sequences`.
    """

    times: torch.Tensor
    marks: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    start: torch.Tensor
    end: torch.Tensor
    index: torch.Tensor

    def to(self, device: str | torch.device) -> "PaddedBatch":
        """Move every tensor to ``device``."""
        return PaddedBatch(**{k: v.to(device, non_blocking=True) for k, v in self.__dict__.items()})

    @property
    def n_events(self) -> int:
        return int(self.lengths.sum())


class Sequences:
    """Marked sequences stored flat: ``times``/``marks`` of all sequences back to back, split by ``offsets``.

    Each sequence has an observation window ``[start, end]`` that contains all its times; the likelihood of a
    point process integrates its intensity over that window, so an empty sequence still carries information.

    Examples
    --------
    >>> seq = Sequences(np.array([0.5, 2.0, 1.0]), np.array([0, 1, 1]), np.array([0, 2, 3]),
    ...                 start=np.zeros(2), end=np.array([3.0, 2.0]), n_codes=2)
    >>> len(seq), seq.n_events, seq.lengths.tolist()
    (2, 3, [2, 1])
    >>> [[a.tolist() for a in r] for r in seq.to_tick()]
    [[[0.5], [2.0]], [[], [1.0]]]
    """

    def __init__(
        self,
        times: np.ndarray,
        marks: np.ndarray,
        offsets: np.ndarray,
        start: np.ndarray,
        end: np.ndarray,
        n_codes: int,
        vocab: Vocabulary | None = None,
        patient_index: np.ndarray | None = None,
        validate: bool = True,
    ):
        self.times = np.asarray(times, dtype=np.float64)
        self.marks = np.asarray(marks, dtype=np.int64)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.start = np.asarray(start, dtype=np.float64)
        self.end = np.asarray(end, dtype=np.float64)
        self.n_codes = int(n_codes)
        self.vocab = vocab
        n_seq = self.offsets.size - 1
        self.patient_index = np.arange(n_seq) if patient_index is None else np.asarray(patient_index, np.int64)
        if validate:
            self._validate()

    def _validate(self) -> None:
        n_seq = self.offsets.size - 1
        if n_seq < 0 or self.offsets[0] != 0 or self.offsets[-1] != self.times.size or np.any(np.diff(self.offsets) < 0):
            raise PathwaysInputError("offsets: must start at 0, be non-decreasing and end at the number of events")
        if self.marks.shape != self.times.shape:
            raise PathwaysInputError(f"marks: expected {self.times.size} values, got {self.marks.size}")
        if self.start.shape != (n_seq,) or self.end.shape != (n_seq,):
            raise PathwaysInputError(f"start/end: expected {n_seq} values each, got {self.start.size}, {self.end.size}")
        if not np.all(np.isfinite(self.times)):
            bad = ~np.isfinite(self.times)
            raise PathwaysInputError(f"times: {int(bad.sum())} non-finite event times, first at event {int(np.argmax(bad))}")
        if not (np.all(np.isfinite(self.start)) and np.all(np.isfinite(self.end))):
            raise PathwaysInputError("start/end: observation windows must be finite")
        if np.any(self.end < self.start):
            raise PathwaysInputError(f"end: {int((self.end < self.start).sum())} sequences end before they start")
        if self.marks.size and (self.marks.min() < 0 or self.marks.max() >= self.n_codes):
            raise PathwaysInputError(f"marks: values outside [0, {self.n_codes}) (codes unseen by this model?)")
        seg = segment_ids(self.offsets)
        if self.times.size:
            outside = (self.times < self.start[seg]) | (self.times > self.end[seg])
            if outside.any():
                raise PathwaysInputError(f"times: {int(outside.sum())} events outside their observation window, "
                                         f"first at event {int(np.argmax(outside))}")
            unsorted = (np.diff(self.times) < 0) & (seg[1:] == seg[:-1])
            if unsorted.any():
                raise PathwaysInputError(f"times: {int(unsorted.sum())} events out of time order within their "
                                         f"sequence, first after event {int(np.argmax(unsorted))}")

    # -- sizes ----------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.offsets.size - 1

    @property
    def lengths(self) -> np.ndarray:
        """Number of events per sequence."""
        return np.diff(self.offsets)

    @property
    def n_events(self) -> int:
        return int(self.times.size)

    @property
    def sequence_ids(self) -> np.ndarray:
        """Sequence index of every event."""
        return segment_ids(self.offsets)

    def relative_times(self) -> np.ndarray:
        """Event times minus their sequence's observation start."""
        return self.times - self.start[self.sequence_ids]

    def __repr__(self) -> str:
        return f"Sequences({len(self)} sequences, {self.n_events} events, {self.n_codes} codes)"

    # -- subsets --------------------------------------------------------------------------------------------------
    def __getitem__(self, idx: int | slice | np.ndarray | Sequence[int]) -> "Sequences":
        """Subset of sequences (vectorised gather)."""
        if isinstance(idx, (int, np.integer)):
            idx = np.array([idx])
        sel = np.arange(len(self))[idx] if isinstance(idx, slice) else np.asarray(idx)
        if sel.dtype == bool:
            sel = np.flatnonzero(sel)
        lengths = self.lengths[sel]
        new_offsets = np.zeros(sel.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=new_offsets[1:])
        # positions of every selected event in the flat arrays
        pos = np.repeat(self.offsets[sel] - new_offsets[:-1], lengths) + np.arange(new_offsets[-1])
        return Sequences(self.times[pos], self.marks[pos], new_offsets, self.start[sel], self.end[sel],
                         self.n_codes, self.vocab, self.patient_index[sel], validate=False)

    # -- tick interoperability ------------------------------------------------------------------------------------
    def to_tick(self) -> list[list[np.ndarray]]:
        """tick's format: per sequence, a list of per-code sorted float arrays (times relative to start)."""
        rel = self.relative_times()
        order = np.lexsort((rel, self.marks, self.sequence_ids))  # group by (sequence, code), times sorted
        counts = np.zeros((len(self), self.n_codes), dtype=np.int64)
        np.add.at(counts, (self.sequence_ids, self.marks), 1)
        pieces = np.split(rel[order], np.cumsum(counts.ravel())[:-1])
        return [pieces[i * self.n_codes:(i + 1) * self.n_codes] for i in range(len(self))]

    def tick_end_times(self) -> np.ndarray:
        """Observation window lengths, as tick's ``end_times``."""
        return self.end - self.start

    @classmethod
    def from_tick(cls, realizations: Sequence[Sequence[np.ndarray]], end_times: Sequence[float] | float | None = None,
                  start_times: Sequence[float] | None = None, vocab: Vocabulary | None = None) -> "Sequences":
        """Build from tick's format; ``end_times`` default to each realization's last event time."""
        if len(realizations) == 0:
            raise PathwaysInputError("realizations: empty list")
        n_codes = len(realizations[0])
        if any(len(r) != n_codes for r in realizations):
            raise PathwaysInputError("realizations: every realization must have the same number of codes")
        flat_t = [np.asarray(a, dtype=np.float64).ravel() for r in realizations for a in r]
        sizes = np.array([a.size for a in flat_t], dtype=np.int64).reshape(len(realizations), n_codes)
        rel = np.concatenate(flat_t)
        marks = np.repeat(np.tile(np.arange(n_codes), len(realizations)), sizes.ravel())
        seq = np.repeat(np.arange(len(realizations)), sizes.sum(axis=1))
        order = np.lexsort((marks, rel, seq))
        offsets = np.zeros(len(realizations) + 1, dtype=np.int64)
        np.cumsum(sizes.sum(axis=1), out=offsets[1:])
        start = np.zeros(len(realizations)) if start_times is None else np.asarray(start_times, np.float64)
        if end_times is None:
            window = np.zeros(len(realizations))
            np.maximum.at(window, seq, rel)
        else:
            window = np.broadcast_to(np.asarray(end_times, np.float64), (len(realizations),)).copy()
        times = rel[order] + start[seq[order]]
        return cls(times, marks[order], offsets, start, start + window, n_codes, vocab)

    # -- batching -------------------------------------------------------------------------------------------------
    def batches(self, batch_size: int = 64, *, shuffle: bool = False, seed: SeedLike = None, bucket: bool = True,
                device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> Iterator[PaddedBatch]:
        """Yield padded batches; with ``bucket`` sequences of similar length share a batch (little padding).

        Bucketing sorts by length, cuts batches, then shuffles the batch order (when ``shuffle``), so every epoch
        sees every sequence once.
        """
        if batch_size < 1:
            raise PathwaysInputError(f"batch_size: must be >= 1, got {batch_size}")
        gen = rng(seed)
        order = np.arange(len(self))
        if shuffle:
            order = gen.permutation(order)
        if bucket:
            order = order[np.argsort(self.lengths[order], kind="stable")]
        chunks = [order[i:i + batch_size] for i in range(0, order.size, batch_size)]
        if shuffle:
            chunks = [chunks[i] for i in gen.permutation(len(chunks))]
        for chunk in chunks:
            yield self.pad(chunk, device=device, dtype=dtype)

    def pad(self, idx: np.ndarray, device: str | torch.device = "cpu",
            dtype: torch.dtype | None = None) -> PaddedBatch:
        """Padded tensors for the sequences ``idx`` (vectorised scatter into a (B, L) grid)."""
        idx = np.asarray(idx, dtype=np.int64)
        lengths = self.lengths[idx]
        width = max(int(lengths.max()) if lengths.size else 0, 1)
        total = int(lengths.sum())
        row = np.repeat(np.arange(idx.size), lengths)
        col = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        src = np.repeat(self.offsets[idx], lengths) + col
        times = np.zeros((idx.size, width))
        marks = np.zeros((idx.size, width), dtype=np.int64)
        mask = np.zeros((idx.size, width), dtype=bool)
        times[row, col] = self.times[src] - self.start[idx][row]
        marks[row, col] = self.marks[src]
        mask[row, col] = True
        import torch  # imported on first use: reading and encoding data never needs it

        dtype = torch.float32 if dtype is None else dtype
        as_t = lambda a, dt=None: torch.as_tensor(a, dtype=dt, device=device)  # noqa: E731
        return PaddedBatch(
            times=as_t(times, dtype), marks=as_t(marks), mask=as_t(mask), lengths=as_t(lengths),
            start=as_t(self.start[idx], dtype), end=as_t(self.end[idx] - self.start[idx], dtype), index=as_t(idx),
        )


def to_sequences(log: "EventLog", codes: Sequence[str] | None = None) -> Sequences:
    """Encode an EventLog as marked sequences, one per patient, with the patients' observation windows.

    Parameters
    ----------
    log : the event log (already sorted by patient, time, code).
    codes : keep only these codes (the vocabulary, hence the mark indices, is unchanged).

    Examples
    --------
    >>> from pathways.synthetic import simulate_cohort
    >>> log, truth = simulate_cohort(100, seed=0)
    >>> seq = to_sequences(log)
    >>> len(seq) == log.n_patients and seq.n_events == log.n_events
    True
    """
    if log.n_patients == 0:
        raise PathwaysInputError("log: no patients to encode")
    if codes is not None:
        log = log.select_codes(codes)
    start = log.patients["start"].to_numpy(dtype=np.float64)
    end = log.patients["end"].to_numpy(dtype=np.float64)
    return Sequences(log.time, log.code, log.offsets, start, end, log.n_codes, log.vocab,
                     np.arange(log.n_patients), validate=False)

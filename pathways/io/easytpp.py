"""EasyTPP's dataset format, both directions, for :class:`~pathways.encode.Sequences`.

EasyTPP reads two shapes of the same content:

* the pickle of its ``TPPDataLoader``: ``{"dim_process": K, "train": [[{"time_since_start", "time_since_last_event",
  "type_event"}, ...], ...], "dev": ..., "test": ...}``, one list of event dicts per sequence;
* the Hugging Face JSON records: one dict per sequence with ``dim_process``, ``seq_len``, ``seq_idx`` and the lists
  ``time_since_start``, ``time_since_last_event``, ``type_event``.

``time_since_start`` is the event time minus the sequence's window start (pathways' ``relative_times``), the first
event's ``time_since_last_event`` is 0 (EasyTPP's convention) and ``type_event`` is the mark index. EasyTPP has no
observation window: :func:`from_easytpp` takes the windows back (``start``, ``end``) or ends each window at its last
event. Event times t >= start >= 0 with t <= 2 start (days since 1970 over less than 50 years, or start 0) round-trip
exactly: t - start is then exact in floating point.
"""
from __future__ import annotations

import pickle
from os import PathLike
from typing import Any, Mapping, Sequence

import numpy as np

from pathways.data import Vocabulary
from pathways.encode.sequences import Sequences
from pathways.errors import PathwaysInputError
from pathways.utils import atomic_path

EVENT_KEYS = ("time_since_start", "time_since_last_event", "type_event")


def _columns(seqs: Sequences) -> tuple[np.ndarray, np.ndarray]:
    rel = seqs.relative_times()
    gap = np.diff(rel, prepend=0.0)
    gap[seqs.offsets[:-1][seqs.lengths > 0]] = 0.0  # EasyTPP convention: the first event has gap 0
    return rel, gap


def to_easytpp(seqs: Sequences) -> list[list[dict[str, float | int]]]:
    """The sequences as EasyTPP's pickle rows: per sequence, a list of event dicts.

    Examples
    --------
    >>> seqs = Sequences(np.array([0.5, 2.0, 1.0]), np.array([0, 1, 1]), np.array([0, 2, 3]),
    ...                  start=np.zeros(2), end=np.array([3.0, 2.0]), n_codes=2)
    >>> to_easytpp(seqs)[0][1]
    {'time_since_start': 2.0, 'time_since_last_event': 1.5, 'type_event': 1}
    """
    rel, gap = _columns(seqs)
    marks = seqs.marks.tolist()
    rel_list, gap_list = rel.tolist(), gap.tolist()
    return [[{"time_since_start": rel_list[i], "time_since_last_event": gap_list[i], "type_event": marks[i]}
             for i in range(lo, hi)] for lo, hi in zip(seqs.offsets[:-1].tolist(), seqs.offsets[1:].tolist())]


def to_easytpp_records(seqs: Sequences) -> list[dict[str, Any]]:
    """The sequences as EasyTPP's Hugging Face JSON records (one dict of lists per sequence)."""
    rel, gap = _columns(seqs)
    return [{"dim_process": seqs.n_codes, "seq_len": int(hi - lo), "seq_idx": i,
             "time_since_start": rel[lo:hi].tolist(), "time_since_last_event": gap[lo:hi].tolist(),
             "type_event": seqs.marks[lo:hi].tolist()}
            for i, (lo, hi) in enumerate(zip(seqs.offsets[:-1], seqs.offsets[1:]))]


def easytpp_dataset(splits: Mapping[str, Sequences]) -> dict[str, Any]:
    """``{"dim_process": K, split: rows}`` for splits such as ``train`` / ``dev`` / ``test`` (one K for all)."""
    sizes = {s.n_codes for s in splits.values()}
    if len(sizes) != 1:
        raise PathwaysInputError(f"splits: every split needs the same number of codes, got {sorted(sizes)}")
    return {"dim_process": sizes.pop(), **{name: to_easytpp(seqs) for name, seqs in splits.items()}}


def write_easytpp(splits: Mapping[str, Sequences], path: str | PathLike) -> None:
    """Write EasyTPP's pickle (read by its ``TPPDataLoader``), atomically."""
    payload = easytpp_dataset(splits)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        pickle.dump(payload, fh)


def _flat(rows: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time_since_start, type_event, lengths) of either EasyTPP shape."""
    if all(isinstance(r, Mapping) for r in rows):  # JSON records: one dict of lists per sequence
        times = [np.asarray(r["time_since_start"], np.float64) for r in rows]
        marks = [np.asarray(r["type_event"], np.int64) for r in rows]
    else:
        try:
            times = [np.array([e["time_since_start"] for e in r], np.float64) for r in rows]
            marks = [np.array([e["type_event"] for e in r], np.int64) for r in rows]
        except (KeyError, TypeError) as exc:
            raise PathwaysInputError(f"EasyTPP rows: each event needs {EVENT_KEYS[0]!r} and {EVENT_KEYS[2]!r}") from exc
    lengths = np.array([t.size for t in times], dtype=np.int64)
    if any(t.size != m.size for t, m in zip(times, marks)):
        raise PathwaysInputError("EasyTPP rows: time_since_start and type_event differ in length")
    empty = np.zeros(0)
    return (np.concatenate(times) if times else empty, np.concatenate(marks).astype(np.int64) if marks else
            empty.astype(np.int64), lengths)


def from_easytpp(rows: Sequence[Any], dim_process: int | None = None, *, start: Sequence[float] | None = None,
                 end: Sequence[float] | None = None, vocab: Vocabulary | None = None) -> Sequences:
    """Sequences from EasyTPP rows (pickle rows or JSON records).

    Parameters
    ----------
    dim_process : number of event types (read from JSON records when absent; else 1 + the largest type).
    start, end : observation windows; default 0 and the last event time of each sequence.
    """
    if len(rows) == 0:
        raise PathwaysInputError("EasyTPP rows: empty list")
    rel, marks, lengths = _flat(rows)
    if dim_process is None:
        first = rows[0]
        dim_process = int(first["dim_process"]) if isinstance(first, Mapping) and "dim_process" in first else (
            int(marks.max()) + 1 if marks.size else 1)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    n = lengths.size
    start_arr = np.zeros(n) if start is None else np.asarray(start, np.float64)
    seq = np.repeat(np.arange(n), lengths)
    times = rel + start_arr[seq]
    if end is None:
        end_arr = start_arr.copy()
        np.maximum.at(end_arr, seq, times)
    else:
        end_arr = np.asarray(end, np.float64)
    return Sequences(times, marks, offsets, start_arr, end_arr, dim_process, vocab)


def read_easytpp(path: str | PathLike) -> dict[str, Sequences]:
    """Read EasyTPP's pickle: one :class:`Sequences` per split (windows end at each sequence's last event)."""
    with open(path, "rb") as fh:
        payload = pickle.load(fh)
    if not isinstance(payload, Mapping) or "dim_process" not in payload:
        raise PathwaysInputError(f"{str(path)!r}: not an EasyTPP pickle (no 'dim_process')")
    k = int(payload["dim_process"])
    return {name: from_easytpp(rows, k) for name, rows in payload.items() if name != "dim_process" and rows}


__all__ = ["easytpp_dataset", "from_easytpp", "read_easytpp", "to_easytpp", "to_easytpp_records", "write_easytpp"]

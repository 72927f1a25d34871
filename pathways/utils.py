"""Small shared utilities: random generators, atomic writes, logging."""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

logger = logging.getLogger("pathways")

SeedLike = int | np.random.Generator | None


def rng(seed: SeedLike = None) -> np.random.Generator:
    """Return a numpy Generator from an int seed, an existing Generator or None (fresh entropy).

    Examples
    --------
    >>> bool(rng(0).integers(10) == rng(0).integers(10))
    True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; move it over ``path`` only if the block succeeds.

    An exception inside the block removes the temporary file and leaves any existing ``path`` untouched, so a
    failed write never leaves a half-written file behind.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
        raise


def segment_ids(offsets: np.ndarray) -> np.ndarray:
    """Map flat positions to their segment index, given segment offsets of length n_segments + 1.

    Examples
    --------
    >>> segment_ids(np.array([0, 2, 2, 5])).tolist()
    [0, 0, 2, 2, 2]
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    return np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)


def ragged_arange(lengths: np.ndarray, starts: np.ndarray | None = None) -> np.ndarray:
    """Concatenation of ``arange(starts[i], starts[i] + lengths[i])`` for all i (starts default to 0), no loop.

    Examples
    --------
    >>> ragged_arange(np.array([2, 0, 3])).tolist()
    [0, 1, 0, 1, 2]
    >>> ragged_arange(np.array([2, 1]), np.array([10, 5])).tolist()
    [10, 11, 5]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = np.cumsum(lengths) - lengths
    if starts is not None:
        shift = shift - np.asarray(starts, dtype=np.int64)
    return np.arange(total, dtype=np.int64) - np.repeat(shift, lengths)


def offsets_from_sorted(segment: np.ndarray, n_segments: int) -> np.ndarray:
    """Offsets (n_segments + 1) of a non-decreasing array of segment indices."""
    counts = np.bincount(np.asarray(segment, dtype=np.int64), minlength=n_segments)
    out = np.zeros(n_segments + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def compact(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``values[keep]`` written over the front of ``values``, returned as a view (no second full-size array).

    ``values`` is overwritten: use it only on arrays the caller owns. At 10 M events this keeps one 80 MB
    temporary alive at a time instead of a second copy of every column.

    Examples
    --------
    >>> a = np.array([1., 2., 3., 4.])
    >>> compact(a, np.array([True, False, True, False])).tolist()
    [1.0, 3.0]
    """
    keep = np.asarray(keep, dtype=bool)
    if keep.all():
        return values
    m = int(np.count_nonzero(keep))
    values[:m] = values[keep]
    return values[:m]

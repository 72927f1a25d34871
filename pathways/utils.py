"""Small shared utilities: random generators, atomic writes, logging."""
from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from pathways.errors import PathwaysInputError

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
    failed write never leaves a half-written file behind. The temporary file is flushed to disk (fsync) before the
    rename and the folder after it, so a power cut leaves the old or the new file, never an empty one. Its name
    carries the writer's process id (``.<name>.<pid>.<random><suffix>.tmp``): temporary files of the same target
    left by a process that no longer runs (killed with SIGKILL mid-write) are removed by the next write.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "table.csv"
    >>> (target.parent / ".table.csv.999999999.x.tmp").write_text("left by a killed writer")
    23
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("a,b")
    >>> sorted(p.name for p in target.parent.iterdir())
    ['table.csv']
    """
    target = Path(path)
    if target.is_dir():  # checked before any work: os.replace would fail only after the whole write
        raise PathwaysInputError(f"cannot write {target.name!r}: a directory of that name exists in "
                                 f"{str(target.parent)!r}; give the path of a file")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=suffix + ".tmp",
                                    dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, target)
        _fsync(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
        raise


def _fsync(path: Path) -> None:
    """Flush a file (or a folder entry) to disk; best effort where the platform cannot (folders on Windows)."""
    if path.is_dir() and os.name == "nt":
        return
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def _remove_stale_temporaries(target: Path) -> None:
    """Delete ``.<name>.<pid>.*.tmp`` siblings of ``target`` whose writer process is gone."""
    prefix = f".{target.name}."
    for candidate in target.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid_text = candidate.name[len(prefix):].split(".", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            if candidate.is_dir():
                shutil.rmtree(candidate)
            else:
                candidate.unlink()


def _alive(pid: int) -> bool:
    """Whether a process with this id runs (ours or another user's); a dead or impossible id is not alive."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except PermissionError:  # it exists, owned by another user
        return True
    except (OSError, OverflowError):  # no such process, or an id no process can have
        return False
    return True


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

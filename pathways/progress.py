"""One progress bar for every loop that can last more than a few seconds, and one switch for all of them.

A long loop (rows read, chunks encoded, solver iterations, bootstrap replicates, cross-validation grid points, pairs
screened, patients scored) wraps its iterable, or its manual updates, in :func:`progress_bar`: a tqdm bar on stderr
with a count, a rate and an ETA. Whether bars show is decided by one setting:

- ``progress=True`` / ``False`` (a function's parameter, ``trainer.progress`` in a run) forces bars on or off;
- ``"auto"`` (the default) shows them only to a person: stderr is a terminal (or the code runs in a notebook
  kernel) and the environment variable ``CI`` is not true, so CI logs and redirected output stay clean;
- ``progress=None`` (the default of every instrumented loop) follows the setting of the enclosing
  :func:`use_progress` block, "auto" outside any block; the training pipeline and the full-batch learners under a
  run's Trainer open that block with ``trainer.progress``.

A disabled bar is tqdm's pass-through (no output; a few attribute checks per update), and loops update once per
chunk, iteration or replicate, never once per event.

Examples
--------
>>> import io
>>> stream = io.StringIO()
>>> total = sum(x for x in progress_bar(range(4), desc="demo", progress=True, file=stream))
>>> "4/4" in stream.getvalue()
True
>>> progress_enabled("auto", file=io.StringIO())  # not a terminal: silent
False
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from typing import Any, Iterable, Iterator, TextIO

from tqdm.auto import tqdm

from pathways.errors import PathwaysInputError

__all__ = ["progress_bar", "progress_enabled", "use_progress", "ProgressSetting"]

ProgressSetting = bool | str | None

_SETTING: contextvars.ContextVar[ProgressSetting] = contextvars.ContextVar("pathways_progress", default="auto")
_ON = ("true", "on", "yes", "1")
_OFF = ("false", "off", "no", "0", "none")


def _in_notebook() -> bool:
    """Running inside a Jupyter/IPython kernel (whose stderr is no terminal but shows tqdm's widgets)."""
    return "ipykernel" in sys.modules


def progress_enabled(progress: ProgressSetting = None, file: TextIO | None = None) -> bool:
    """Whether a bar shows for the setting ``progress`` (None: the enclosing :func:`use_progress` setting).

    Parameters
    ----------
    progress : True / False (forced), "auto" (a person watches: ``file`` is a terminal or a notebook runs the code,
        and ``CI`` is not true), None (the current :func:`use_progress` setting, "auto" by default). The strings
        "true"/"false"/"on"/"off" (a Hydra override) are read as booleans.
    file : the stream the bar would write to (stderr by default).
    """
    setting = _SETTING.get() if progress is None else progress
    if isinstance(setting, str):
        key = setting.strip().lower()
        if key in _ON:
            return True
        if key in _OFF:
            return False
        if key != "auto":
            raise PathwaysInputError(f"progress: expected true, false or 'auto', got {setting!r}")
        if os.environ.get("CI", "").strip().lower() in _ON:
            return False
        stream = sys.stderr if file is None else file
        isatty = getattr(stream, "isatty", None)
        return bool(callable(isatty) and isatty()) or _in_notebook()
    if setting is None:
        return False
    return bool(setting)


@contextlib.contextmanager
def use_progress(progress: ProgressSetting) -> Iterator[None]:
    """Within the block, loops called with ``progress=None`` follow ``progress`` (None keeps the current setting).

    >>> with use_progress(False):
    ...     progress_enabled()
    False
    """
    if progress is None:
        yield
        return
    progress_enabled(progress, file=sys.stderr)  # a bad value fails here, naming the parameter
    token = _SETTING.set(progress)
    try:
        yield
    finally:
        _SETTING.reset(token)


def progress_bar(iterable: Iterable[Any] | None = None, *, total: float | None = None, desc: str | None = None,
                 unit: str = "it", progress: ProgressSetting = None, file: TextIO | None = None,
                 **kwargs: Any) -> Any:
    """A tqdm bar (count, rate, ETA) over ``iterable``, or for manual ``update(n)`` calls, shown per ``progress``.

    Parameters
    ----------
    iterable : what the loop runs over; None for a bar updated by hand (``with progress_bar(total=n) as bar``).
    total : number of steps (rows, iterations, pairs, ...); taken from ``len(iterable)`` when it has one.
    desc, unit : the bar's label and the name of a step ("rows", "iter", "pairs").
    progress : see :func:`progress_enabled`.
    file : the stream (stderr by default).
    kwargs : other tqdm options (``unit_scale=True`` for row counts, ``initial=...``).

    Returns
    -------
    The tqdm object (iterate over it, or call ``update``/``set_postfix``; ``close`` when not used as a context).
    """
    stream = sys.stderr if file is None else file
    # leave=None: a finished top-level bar stays (count, time, rate); a nested one (a fit inside a bootstrap) goes
    options = {"leave": None, "mininterval": 0.5, "dynamic_ncols": True, **kwargs}
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream,
                disable=not progress_enabled(progress, stream), **options)

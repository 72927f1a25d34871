"""Errors and warnings raised by pathways.

Every message names the offending argument or column, how many rows are affected and one example, so that a user
can fix the input without a debugger. Patient identifiers never appear in messages: examples show row positions.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class PathwaysInputError(ValueError):
    """Input data or arguments that pathways cannot use as given."""


class PathwaysDataWarning(UserWarning):
    """A documented, counted decision about the data (rows dropped, values clipped, ...)."""


def describe_bad_rows(name: str, bad: np.ndarray, values: Any | None = None, what: str = "invalid") -> str:
    """Build a message naming the column, the count of offending rows and the first one.

    Parameters
    ----------
    name : column or argument name.
    bad : boolean mask of offending rows.
    values : the column values, to show the first offending value (never use it for identifiers).
    what : short description of the problem.
    """
    bad = np.asarray(bad, dtype=bool)
    n_bad = int(bad.sum())
    first = int(np.flatnonzero(bad)[0]) if n_bad else -1
    example = ""
    if n_bad and values is not None:
        example = f"; first at row {first}: {np.asarray(values)[first]!r}"
    elif n_bad:
        example = f"; first at row {first}"
    return f"column '{name}': {n_bad} of {bad.size} rows {what}{example}"

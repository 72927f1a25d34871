"""Hyper-parameter checks shared by the torch models (neural TPPs, recurrent outcome models).

Estimators store their parameters untouched in ``__init__`` (scikit-learn convention) and check them at ``fit``,
before any work: torch's own errors (``input_size must be greater than zero``) or a NaN loss would not name the
parameter the user has to change.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from pathways.errors import PathwaysInputError

__all__ = ["check_counts", "check_real", "check_fraction"]


def check_counts(model: Any, names: Iterable[str]) -> None:
    """Raise a :class:`PathwaysInputError` unless every attribute ``names`` of ``model`` is an integer >= 1.

    Parameters
    ----------
    model : the estimator whose parameters are checked.
    names : the parameter names (e.g. ``("hidden_size", "n_layers")``).
    """
    for name in names:
        value = getattr(model, name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise PathwaysInputError(f"{name}: expected an integer >= 1, got {value!r}")


def check_real(name: str, value: Any, ok: Callable[[float], bool], expected: str) -> None:
    """Raise a :class:`PathwaysInputError` naming ``name`` unless ``value`` is a finite real number accepted by ``ok``.

    Parameters
    ----------
    name : the parameter, as the user spelled it.
    value : its value.
    ok : predicate on the value as a float.
    expected : what a valid value is, for the message (e.g. "a number > 0").

    Examples
    --------
    >>> check_real("lr", 0.01, lambda v: v > 0, "a number > 0")
    >>> check_real("lr", -1.0, lambda v: v > 0, "a number > 0")
    Traceback (most recent call last):
    ...
    pathways.errors.PathwaysInputError: lr: expected a number > 0, got -1.0
    """
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not real or not np.isfinite(value) or not ok(float(value)):
        raise PathwaysInputError(f"{name}: expected {expected}, got {value!r}")


def check_fraction(name: str, value: Any) -> None:
    """A dropout-like probability: a number in ``[0, 1)``."""
    check_real(name, value, lambda v: 0 <= v < 1, "a number in [0, 1)")


def check_attention_heads(hidden_size: int, n_heads: int) -> None:
    """Multi-head attention splits ``hidden_size`` into ``n_heads`` equal shares."""
    if hidden_size % n_heads:
        raise PathwaysInputError(f"hidden_size: {hidden_size} is not a multiple of n_heads={n_heads} "
                                 "(each attention head takes an equal share)")

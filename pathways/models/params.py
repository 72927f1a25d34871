"""Hyper-parameter checks shared by the torch models (neural TPPs, recurrent outcome models).

Estimators store their parameters untouched in ``__init__`` (scikit-learn convention) and check them at ``fit``,
before any work: torch's own errors (``input_size must be greater than zero``) or a NaN loss would not name the
parameter the user has to change.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable

import numpy as np

from pathways.errors import PathwaysInputError

__all__ = ["check_counts", "check_real", "check_fraction", "check_param_types"]


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


_CONTAINER_HINTS = ("Sequence", "list", "tuple", "Mapping", "dict", "ndarray", "Iterable")


def check_param_types(model: Any) -> None:
    """Type-check every constructor parameter of an estimator against the kind of its default, naming it.

    A parameter whose default is a bool must be a bool, an int default needs an integer (``2.5`` is refused), a
    float default a finite real number, a str default a string. ``None`` is accepted where the default is None or
    the annotation allows it; a list/tuple/array is left to the model's own checks where the annotation allows a
    container (``n_lags: int | Sequence[int]``). Ranges are the model's own business (``_check_params``).

    Examples
    --------
    >>> from pathways.models.hawkes import HawkesExpKernel
    >>> check_param_types(HawkesExpKernel(decay=2))
    >>> check_param_types(HawkesExpKernel(decay="abc"))
    Traceback (most recent call last):
    ...
    pathways.errors.PathwaysInputError: HawkesExpKernel parameter 'decay': expected a finite number, got 'abc'
    """
    try:
        signature = inspect.signature(type(model).__init__)
    except (TypeError, ValueError):  # no readable signature: nothing to check against
        return
    for name, param in signature.parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or not hasattr(model, name):
            continue
        problem = _type_problem(getattr(model, name), param.default, str(param.annotation))
        if problem is not None:
            raise PathwaysInputError(f"{type(model).__name__} parameter '{name}': expected {problem}, "
                                     f"got {getattr(model, name)!r}")


def _type_problem(value: Any, default: Any, annotation: str) -> str | None:
    """What ``value`` should be, judged from the parameter's default and annotation; None when it fits."""
    if default is inspect.Parameter.empty or default is None:
        return None
    if value is None:
        return None if ("None" in annotation or "Optional" in annotation) else f"a value like {default!r}, not None"
    if isinstance(value, (list, tuple, np.ndarray)) and any(h in annotation for h in _CONTAINER_HINTS):
        return None
    if isinstance(default, (bool, np.bool_)):
        return None if isinstance(value, (bool, np.bool_)) else "true or false"
    if isinstance(default, (int, np.integer)):
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
        if not ok and "float" in annotation:  # int default of a float parameter (``C: float = 1``)
            return _real_problem(value)
        return None if ok else "an integer"
    if isinstance(default, (float, np.floating)):
        return _real_problem(value)
    if isinstance(default, str):
        return None if isinstance(value, str) or annotation.count("|") or "Union" in annotation else "a string"
    return None


def _real_problem(value: Any) -> str | None:
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    return None if real and np.isfinite(value) else "a finite number"

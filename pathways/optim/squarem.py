"""SQUAREM acceleration of a monotone fixed-point map (Varadhan & Roland 2008, scheme S3).

One cycle takes two maps ``x1 = F(x0)``, ``x2 = F(x1)``, extrapolates
``x' = x0 - 2α r + α² v`` (``r = x1 - x0``, ``v = x2 - 2 x1 + x0``, ``α = min(-|r| / |v|, -1)``) and stabilises it
with one more map. The one safeguard is monotonicity: when the objective at the extrapolated point is not at most
the objective at ``x0`` (or is nan), the cycle keeps the plain double step ``x2``, so the objective never
increases along the iterates of an EM (or MM) map.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)


@dataclass
class SquaremStep(Generic[Array]):
    """Outcome of one cycle: the next iterate, the objective at the cycle's start and how many maps it took."""

    x: Array
    value: float
    accepted: bool
    n_maps: int


def _norm(x: np.ndarray | torch.Tensor) -> float:
    if isinstance(x, torch.Tensor):
        return float(torch.linalg.vector_norm(x))
    return float(np.linalg.norm(x))


def squarem_step(fmap: Callable[[Array], tuple[Array, float]], x0: Array, *,
                 first: tuple[Array, float] | None = None,
                 feasible: Callable[[Array], bool] | None = None,
                 project: Callable[[Array, Array], Array] | None = None) -> SquaremStep[Array]:
    """One SQUAREM cycle on a fixed-point map whose iterates decrease ``objective``.

    Parameters
    ----------
    fmap : ``x -> (F(x), objective(x))``: the EM/MM map and the objective (to minimise; pass the negative
        log-likelihood) at its input.
    x0 : flat parameter vector (numpy array or torch tensor).
    first : ``fmap(x0)`` when the caller already computed it (e.g. to test convergence before extrapolating).
    feasible : when given, the step length is pulled back toward the plain double step (α = -1, halving the
        distance) until the extrapolated point is feasible.
    project : when given, ``project(x', x0)`` maps the extrapolated point back into the domain.

    Returns
    -------
    SquaremStep : ``x`` the next iterate, ``value`` the objective at ``x0``, ``accepted`` whether the
    extrapolation was kept, ``n_maps`` the evaluations of ``fmap`` in this cycle (2 or 3).

    Examples
    --------
    >>> step = squarem_step(lambda x: (0.5 * x + 1.0, float((x - 2.0) @ (x - 2.0))), np.zeros(2))
    >>> np.allclose(step.x, 2.0), step.value
    (True, 8.0)
    """
    x1, f0 = fmap(x0) if first is None else first
    x2, _ = fmap(x1)
    n_maps = 2 if first is None else 1
    r = x1 - x0
    v = x2 - x1 - r
    norm_v = _norm(v)
    if norm_v == 0.0:
        return SquaremStep(x2, f0, False, n_maps)
    alpha = min(-_norm(r) / norm_v, -1.0)
    proposal = x0 - 2 * alpha * r + alpha ** 2 * v
    if feasible is not None:
        while not feasible(proposal) and alpha < -1.0:
            alpha = (alpha - 1.0) / 2 if alpha < -1.0 - 1e-6 else -1.0  # halve the distance to the EM step
            proposal = x0 - 2 * alpha * r + alpha ** 2 * v
        if alpha == -1.0:
            proposal = x2
    if project is not None:
        proposal = project(proposal, x0)
    x_new, f_proposal = fmap(proposal)
    if not f_proposal <= f0:  # monotone safeguard; also catches nan
        return SquaremStep(x2, f0, False, n_maps + 1)
    return SquaremStep(x_new, f0, True, n_maps + 1)

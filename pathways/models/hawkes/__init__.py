"""Hawkes process learners: exponential / sum-exponential kernels (parametric) and nonparametric EM."""
from __future__ import annotations

from pathways.models.hawkes.base import HawkesBase, HawkesIntervals
from pathways.models.hawkes.exp import HawkesExpKernel, HawkesSumExpKernel

__all__ = ["HawkesBase", "HawkesIntervals", "HawkesExpKernel", "HawkesSumExpKernel"]

try:  # the EM learner lives in its own module, written separately; the parametric learners never depend on it
    from pathways.models.hawkes.em import HawkesEM
except ImportError:  # pragma: no cover - only while em.py is absent
    pass
else:
    __all__.append("HawkesEM")

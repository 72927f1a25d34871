"""Hawkes process learners: exponential / sum-exponential kernels (parametric) and nonparametric EM."""
from __future__ import annotations

from pathways.models.hawkes.base import HawkesBase, HawkesIntervals
from pathways.models.hawkes.em import HawkesEM
from pathways.models.hawkes.exp import HawkesExpKernel, HawkesSumExpKernel

__all__ = ["HawkesBase", "HawkesEM", "HawkesExpKernel", "HawkesIntervals", "HawkesSumExpKernel"]

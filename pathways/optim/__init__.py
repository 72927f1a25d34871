"""Shared optimisation routines of the model solvers: proximal operators, FISTA and SQUAREM (torch tensors)."""
from __future__ import annotations

from pathways.optim.fista import FistaResult, fista
from pathways.optim.prox import (
                                 prox_elastic_net,
                                 prox_group_l1,
                                 prox_l1,
                                 prox_l2,
                                 prox_nuclear_positive,
                                 prox_positive,
                                 prox_tv1d,
)
from pathways.optim.squarem import SquaremStep, squarem_step

__all__ = ["FistaResult", "SquaremStep", "fista", "prox_elastic_net", "prox_group_l1", "prox_l1", "prox_l2",
           "prox_nuclear_positive", "prox_positive", "prox_tv1d", "squarem_step"]

"""Self-controlled case series: ConvSCCS (lagged curves, penalised), ConvSCCSCV (penalties by CV), classic SCCS.

``design`` builds the case data and the lagged design, ``solver`` the batched FISTA of ConvSCCS, ``base`` the model
face both estimators share (scores per case and per case-outcome), ``convsccs`` and ``classic`` the estimators.
ConvSCCS follows Morel, Bacry, Gaïffas, Guilloux, Leroy (Biostatistics 2020) and tick's ``tick.survival.ConvSCCS``;
see ``docs/sccs.md`` for the differences.
"""
from pathways.models.sccs.base import SCCSEstimator
from pathways.models.sccs.classic import EXPOSURE_CODINGS, SCCS, sccs_estimand
from pathways.models.sccs.convsccs import ConvSCCS, ConvSCCSCV
from pathways.models.sccs.design import LagDesign, as_sccs_data, lag_design

__all__ = ["ConvSCCS", "ConvSCCSCV", "EXPOSURE_CODINGS", "LagDesign", "SCCS", "SCCSEstimator", "as_sccs_data",
           "lag_design", "sccs_estimand"]

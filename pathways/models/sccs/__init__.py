"""Self-controlled case series: ConvSCCS (lagged curves, penalised), ConvSCCSCV (penalties by CV), classic SCCS.

``design`` builds the case data and the lagged design, ``solver`` the batched FISTA of ConvSCCS, ``base`` the model
face both estimators share (scores per case and per case-outcome), ``terms`` the adjustment and diagnostic terms
(pre-exposure window, end-of-observation probe, season, observation from the first exposure), ``likelihood`` and
``profile`` the classic SCCS fit and its profile-likelihood intervals, ``convsccs`` and ``classic`` the estimators.
ConvSCCS follows Morel, Bacry, Gaïffas, Guilloux, Leroy (Biostatistics 2020) and tick's ``tick.survival.ConvSCCS``;
see ``docs/sccs.md`` for the differences.
"""
from pathways.models.sccs.base import SCCSEstimator
from pathways.models.sccs.classic import EXPOSURE_CODINGS, SCCS, sccs_estimand
from pathways.models.sccs.convsccs import ConvSCCS, ConvSCCSCV
from pathways.models.sccs.design import LagDesign, as_sccs_data, lag_design
from pathways.models.sccs.terms import add_end_of_observation, add_pre_exposure, add_season, from_first_exposure

__all__ = ["EXPOSURE_CODINGS", "SCCS", "ConvSCCS", "ConvSCCSCV", "LagDesign", "SCCSEstimator", "add_end_of_observation",
           "add_pre_exposure", "add_season", "as_sccs_data", "from_first_exposure", "lag_design", "sccs_estimand"]

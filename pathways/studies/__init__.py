"""Comparative cohort studies: new-user active-comparator design, sparse baseline covariates, propensity scores
(L1 logistic regression, matching, strata, weights), balance diagnostics, Cox / Poisson / Kaplan-Meier outcome
models, power, and empirical calibration with negative-control outcomes (OHDSI CohortMethod's design)."""
from pathways.studies.balance import (balance_table, effective_sample_size, equipoise, preference_score,
                                      standardized_differences)
from pathways.studies.calibration import calibrate_estimates
from pathways.studies.covariates import Covariates, baseline_covariates, charlson_index, code_features
from pathways.studies.design import CohortDesign, StudyPopulation, build_study_population, flowchart_by_arm
from pathways.studies.outcome_models import CoxFit, cox_fit, kaplan_meier, poisson_rate_ratio
from pathways.studies.power import minimum_detectable_rr, power_at
from pathways.studies.propensity import (Matching, PropensityModel, fit_propensity, match, ps_weights, stratify,
                                         stratum_weights)
from pathways.studies.study import AnalysisSettings, StudyResult, adjust, estimate_effect, run_study

__all__ = [
    "CohortDesign", "StudyPopulation", "build_study_population", "flowchart_by_arm", "Covariates",
    "baseline_covariates", "code_features", "charlson_index", "PropensityModel", "fit_propensity", "Matching",
    "match", "stratify", "stratum_weights", "ps_weights", "standardized_differences", "balance_table",
    "preference_score", "equipoise", "effective_sample_size", "CoxFit", "cox_fit", "kaplan_meier",
    "poisson_rate_ratio", "minimum_detectable_rr", "power_at", "calibrate_estimates", "AnalysisSettings",
    "StudyResult", "adjust", "estimate_effect", "run_study",
]

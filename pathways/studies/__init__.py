"""Comparative cohort studies: new-user active-comparator design, sparse baseline covariates, propensity scores
(L1 logistic regression, matching, strata, weights), balance diagnostics, Cox / Poisson / Kaplan-Meier outcome
models, power, and empirical calibration with negative-control outcomes (OHDSI CohortMethod's design)."""
from pathways.studies.balance import (
                                      balance_table,
                                      effective_sample_size,
                                      equipoise,
                                      preference_score,
                                      standardized_differences,
)
from pathways.studies.calibration import calibrate_estimates
from pathways.studies.covariates import (
                                      Covariates,
                                      baseline_covariates,
                                      charlson_index,
                                      code_features,
)
from pathways.studies.design import (
                                      CohortDesign,
                                      StudyPopulation,
                                      build_study_population,
                                      flowchart_by_arm,
)
from pathways.studies.outcome_models import (
                                      CoxFit,
                                      cox_fit,
                                      kaplan_meier,
                                      poisson_rate_ratio,
)
from pathways.studies.power import minimum_detectable_rr, power_at
from pathways.studies.propensity import (
                                      Matching,
                                      PropensityModel,
                                      fit_propensity,
                                      match,
                                      ps_weights,
                                      stratify,
                                      stratum_weights,
)
from pathways.studies.study import (
                                      AnalysisSettings,
                                      StudyResult,
                                      adjust,
                                      estimate_effect,
                                      run_study,
)

__all__ = [
                                      "AnalysisSettings",
                                      "CohortDesign",
                                      "Covariates",
                                      "CoxFit",
                                      "Matching",
                                      "PropensityModel",
                                      "StudyPopulation",
                                      "StudyResult",
                                      "adjust",
                                      "balance_table",
                                      "baseline_covariates",
                                      "build_study_population",
                                      "calibrate_estimates",
                                      "charlson_index",
                                      "code_features",
                                      "cox_fit",
                                      "effective_sample_size",
                                      "equipoise",
                                      "estimate_effect",
                                      "fit_propensity",
                                      "flowchart_by_arm",
                                      "kaplan_meier",
                                      "match",
                                      "minimum_detectable_rr",
                                      "poisson_rate_ratio",
                                      "power_at",
                                      "preference_score",
                                      "ps_weights",
                                      "run_study",
                                      "standardized_differences",
                                      "stratify",
                                      "stratum_weights",
]

"""End to end: a simulated confounded study is adjusted, estimated and calibrated; power formulas."""
import numpy as np
import pytest

from pathways.errors import PathwaysInputError
from pathways.studies import (
    AnalysisSettings,
    CohortDesign,
    minimum_detectable_rr,
    power_at,
    run_study,
)
from pathways.studies.simulate import simulate_study


@pytest.fixture(scope="module")
def study():
    return simulate_study(3000, hr=2.0, seed=5, n_noise_codes=20, n_negative_controls=6)


@pytest.mark.parametrize("method", ["match", "overlap"])
def test_run_study_removes_confounding(study, method):
    design = CohortDesign([study.target], [study.comparator], [study.outcome], time_at_risk="itt")
    result = run_study(study.log, design, AnalysisSettings(method=method, Cs=4),
                       negative_controls={c: [c] for c in study.negative_controls})
    main = result.estimates.iloc[0]
    assert main["ci_low"] <= 2.0 <= main["ci_high"]
    assert main["hr_crude"] > main["hr"] and main["ci_low_crude"] > 2.0  # confounding by indication
    assert result.diagnostics["max_abs_smd_before"] > 0.5
    assert result.diagnostics["max_abs_smd_after"] < 0.15
    assert {"p_calibrated", "ci_low_calibrated"} <= set(result.estimates.columns) and result.null is not None
    assert len(result.estimates) == 1 + len(study.negative_controls)
    assert set(result.km["arm"]) == {"target", "comparator"}
    assert result.flowchart["n_subjects"].iloc[-1] == len(result.propensity)


def test_run_study_checks(study):
    with pytest.raises(PathwaysInputError, match="method"):
        run_study(study.log, CohortDesign([study.target], [study.comparator], [study.outcome]),
                  AnalysisSettings(method="weighting"))
    with pytest.raises(PathwaysInputError, match="both"):
        run_study(study.log, CohortDesign([study.target], ["Q99"], [study.outcome]))


def test_power_and_mdrr_agree():
    mdrr = minimum_detectable_rr(500, 1500, 80)
    assert power_at(mdrr, 500, 1500, 80) == pytest.approx(0.8, abs=1e-3)
    assert minimum_detectable_rr(10, 10, 0) == np.inf and power_at(2.0, 10, 0, 5) == 0.0

"""experiment=cohort_study: the cohort-study pipeline writes its tables, report and figures, small counts blanked."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from pathways.errors import PathwaysInputError
from pathways.pipelines.study import run_cohort_study
from pathways.pipelines.train import train

CONFIG_DIR = Path(__file__).resolve().parents[2] / "pathways" / "configs"
SMALL = ["experiment=cohort_study", "data.n_patients=1500", "data.n_negative_controls=6",
         "study.negative_controls=[L20,L21,L22,L23,L24,L25]", "study.Cs=3", "study.windows=[365]"]


def _compose(overrides: list[str]):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=overrides)


def test_cohort_study_experiment_writes_outputs(tmp_path):
    pytest.importorskip("matplotlib")
    result = train(_compose(SMALL), tmp_path)
    for name in ("estimates", "balance", "flowchart", "kaplan_meier", "preference_distribution"):
        assert (tmp_path / f"{name}.parquet").exists() and (tmp_path / f"{name}.csv").exists()
    for name in ("kaplan_meier", "preference_score", "balance", "calibration"):
        assert (tmp_path / "report" / "figures" / f"{name}.png").exists()
    assert (tmp_path / "report" / "cohort_study.md").exists()
    assert np.isfinite(result.metrics["hr"]) and "p_calibrated" in result.metrics
    estimates = pd.read_parquet(tmp_path / "estimates.parquet")
    counts = estimates[["n_target", "n_comparator", "events_target", "events_comparator"]].to_numpy(float)
    assert not ((counts > 0) & (counts < 10)).any()  # min_cell_count 10 from the experiment
    assert estimates.loc[estimates["suppressed"], "hr"].isna().all()
    km = pd.read_parquet(tmp_path / "kaplan_meier.parquet")
    assert km.loc[km["suppressed"], "survival"].isna().all() and km["survival"].notna().any()
    assert set(np.diff(km.loc[km["arm"] == "target", "time"])) == {30.0}  # the 30-day grid, not event times
    assert "ps" not in pd.read_parquet(tmp_path / "preference_distribution.parquet")  # binned counts only


def test_cohort_study_needs_a_study_target(tmp_path):
    cfg = _compose(SMALL)
    with open_dict(cfg):
        del cfg.study["_target_"]
    with pytest.raises(PathwaysInputError, match="study"):
        run_cohort_study(cfg, tmp_path)

"""The synthetic cartography population (identification recovers its planted states) and the pipeline
``experiment=cartography`` end to end on it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pathways.cartography import identify
from pathways.cartography.build import build_cartography
from pathways.cartography.synthetic import simulate_cartography


def test_planted_states_are_identified_exactly():
    log, truth = simulate_cartography(600, years=(2020, 2021, 2022), seed=3)
    py = identify(log)
    frame = py.frame()
    planted = truth.patient_years
    np.testing.assert_array_equal(frame[["patient", "year"]].to_numpy(), planted[["patient", "year"]].to_numpy())
    for group in truth.costs:
        np.testing.assert_array_equal(frame[group].to_numpy(), planted[group].to_numpy(), err_msg=group)
    others = [g for g in py.groups if g not in truth.costs]
    assert not frame[others].to_numpy().any()
    np.testing.assert_array_equal(frame["died"].to_numpy(), planted["died"].to_numpy())


def test_build_cartography_adds_up():
    log, _ = simulate_cartography(400, years=(2020, 2021), seed=4)
    carto = build_cartography(log, min_cell_count=5)
    assert carto.metrics["total_spending"] == carto.metrics["allocated_spending"]
    groups = carto.groups
    for year in (2020, 2021):
        t = groups[groups["year"] == year]
        assert t.loc[t["group"] != "total", "total_cost"].sum() == pytest.approx(
            t.loc[t["group"] == "total", "total_cost"].iloc[0], abs=0.005)
    assert set(carto.transitions["year"]) == {"all", "2020"}
    assert carto.factors["method"].eq("cartography_transition").all()


def test_pipeline_writes_tables_and_figures(tmp_path):
    pytest.importorskip("matplotlib")
    from hydra import compose, initialize_config_dir

    from pathways.pipelines.cli import CONFIG_DIR
    from pathways.pipelines.train import train
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=cartography", "data.n_patients=300",
                                           "data.years=[2020,2021]"])
    result = train(cfg, tmp_path)
    for name in ("cells", "groups", "transitions", "survival", "factors", "coefficients"):
        table = pd.read_parquet(result.files[name])
        assert len(table) > 0, name
    cells = pd.read_parquet(result.files["cells"])
    small = cells["prevalent"].between(1, 9)
    assert not small.any() and cells["suppressed"].any()  # min_cell_count: 10 in the experiment
    assert "patient" not in cells.columns
    assert result.metrics["max_prevalence_error_pp"] == 0.0
    for key in ("spending_figure", "trends_figure", "decomposition_figure", "transitions_figure"):
        assert result.files[key].stat().st_size > 0
    assert "Groups, 2021" in result.files["report"].read_text()


def test_chunks_of_patients_give_the_same_tables():
    log, _ = simulate_cartography(900, years=(2020, 2021, 2022), seed=5)
    whole = build_cartography(log, by=("age_band", "sex"))
    chunks = [log.select_patients(np.arange(lo, min(lo + 300, 900))) for lo in range(0, 900, 300)]
    parts = build_cartography(chunks, years=[2020, 2021, 2022], by=("age_band", "sex"))
    assert parts.patient_years is None and whole.patient_years is not None
    assert parts.metrics == whole.metrics
    for name in ("cells", "groups", "transitions", "survival"):
        a, b = whole.tables()[name], parts.tables()[name]
        assert a.shape == b.shape, name
        for col in a.columns:
            if pd.api.types.is_numeric_dtype(a[col]):
                np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=1e-9, atol=1e-6,
                                           err_msg=f"{name}.{col}")
            else:
                assert a[col].tolist() == b[col].tolist(), f"{name}.{col}"
    with pytest.raises(Exception, match="chunks of patients need years"):
        build_cartography(chunks)

"""``experiment=abuse`` end to end on the planted scenarios: ranked tables, communities, report, figures, metrics."""
from __future__ import annotations

import pandas as pd
import pytest


def test_pipeline_writes_ranked_tables_report_and_figures(tmp_path):
    pytest.importorskip("matplotlib")
    from hydra import compose, initialize_config_dir

    from pathways.pipelines.cli import CONFIG_DIR
    from pathways.pipelines.train import train
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=abuse", "data.n_patients=1200", "abuse.fit_patients=400"])
    result = train(cfg, tmp_path)
    for name in ("patients", "prescribers", "pharmacies"):
        table = pd.read_parquet(result.files[name])
        assert {"rank", "entity", "score", "behaviours", "top_reasons", "amount_at_stake"} <= set(table.columns)
        count = "n_events" if name == "patients" else "n_patients"
        assert not table[count].between(1, 9).any()  # min_cell_count: 10 in the experiment
    assert result.metrics["shopping_opioids_auroc"] >= 0.95
    assert result.metrics["n_flagged_patients"] > 0
    report = result.files["report"].read_text()
    assert "## Top prescribers" in report and "P000" not in report  # no patient id in the report
    for key in ("score_figure", "timeline_figure"):
        assert result.files[key].stat().st_size > 0

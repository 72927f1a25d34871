"""The scripts as users run them: main job, predict on its output, a sweep with its results table, simulate, signals.

Each test is one subprocess on tiny data (``data.n_patients`` small, debug trainer); the full main job with no
arguments is the slow test at the end (also timed by benchmarks/main_job.py).
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TINY = ["data.n_patients=60", "+data.n_drugs=6", "+data.n_diagnoses=3", "+data.n_acts=1", "+data.n_outcomes=2",
        "+data.n_strong=1", "+data.n_weak=1", "+data.follow_up_years=[1.0,2.0]", "trainer=debug"]


def _run(script: str, *args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / f"{script}.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_main_job_then_predict_on_its_checkpoint(tmp_path):
    proc = _run("train", *TINY, f"hydra.run.dir={tmp_path}/run", f"paths.checkpoint_dir={tmp_path}/ckpt",
                cwd=tmp_path)
    exported = tmp_path / "ckpt" / "care_pathway_drivers.pt"
    assert exported.is_file() and (tmp_path / "run" / "model.pt").is_file()
    report = tmp_path / "run" / "report"
    for name in ("report.md", "factors.csv", "metrics.json", "figures/excitation_heatmap.png",
                 "figures/top_drivers.png", "figures/training_curve.png"):
        assert (report / name).is_file(), name
    assert str(exported) in proc.stdout and "report" in proc.stdout  # it says where everything is
    factors = pd.read_csv(report / "factors.csv")
    assert list(factors.columns[:7]) == ["source", "target", "lag_days", "effect", "ci_low", "ci_high", "method"]

    _run("predict", f"checkpoint={exported}", *TINY[:-1], f"hydra.run.dir={tmp_path}/pred", cwd=tmp_path)
    pred = pd.read_parquet(tmp_path / "pred" / "predictions.parquet")
    assert {"patient_index", "patient_id", "loglik", "loglik_per_event"} <= set(pred.columns)
    assert len(pred) == 60
    assert (tmp_path / "pred" / "factors.csv").is_file()

    _run("evaluate", f"checkpoint={exported}", *TINY[:-1], f"hydra.run.dir={tmp_path}/eval", cwd=tmp_path)
    assert (tmp_path / "eval" / "report" / "metrics.json").is_file()


def test_sweep_writes_results_table_at_sweep_root(tmp_path):
    sweep = tmp_path / "sweep"
    _run("train", "-m", "model=hawkes_exp,hawkes_em", "seed=0,1", *TINY, f"hydra.sweep.dir={sweep}",
         f"paths.checkpoint_dir={tmp_path}/ckpt", cwd=tmp_path, timeout=600)
    table = pd.read_csv(sweep / "results.csv")
    assert len(table) == 4 and (table["status"] == "ok").all()
    assert set(table["model"]) == {"hawkes_exp", "hawkes_em"} and set(table["seed"]) == {0, 1}
    assert "test_loglik_per_event" in table.columns and (sweep / "results.md").is_file()
    assert len(list((tmp_path / "ckpt").glob("care_pathway_drivers-*.pt"))) == 4  # one export per job


def test_optuna_sweep_returns_the_optimized_metric(tmp_path):
    """hparams_search=hawkes_optuna: 3 trials in debug mode; the best value Optuna records is a float."""
    sweep = tmp_path / "sweep"
    _run("train", "hparams_search=hawkes_optuna", "hydra.sweeper.n_trials=3", *TINY, f"hydra.sweep.dir={sweep}",
         f"paths.checkpoint_dir={tmp_path}/ckpt", cwd=tmp_path, timeout=600)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert isinstance(best["best_value"], float) and math.isfinite(best["best_value"])
    assert set(best["best_params"]) == {"model.decay", "model.C"}
    table = pd.read_csv(sweep / "results.csv")  # every trial also lands in the results table
    assert len(table) == 3 and best["best_value"] == pytest.approx(table["val_loglik_per_event"].max())


def test_optimized_metric_missing_names_the_key_and_the_metrics(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *TINY, "optimized_metric=val_auroc",
                           "checkpoint.export=false", f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "optimized_metric 'val_auroc' is not a metric of this run" in proc.stderr
    assert "val_loglik_per_event" in proc.stderr  # the available metrics are listed


def test_simulate_then_train_on_the_parquet(tmp_path):
    _run("simulate", *TINY[:-1], f"output={tmp_path}/events.parquet", f"hydra.run.dir={tmp_path}/sim", cwd=tmp_path)
    assert (tmp_path / "sim" / "truth_adjacency.csv").is_file()
    _run("train", "data=parquet", f"data.path={tmp_path}/events.parquet", "trainer=debug", "checkpoint.export=false",
         f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert (tmp_path / "run" / "model.pt").is_file()


def test_detect_signals_script(tmp_path):
    _run("detect_signals", "data.n_patients=150", f"hydra.run.dir={tmp_path}/sig", cwd=tmp_path)
    table = pd.read_csv(tmp_path / "sig" / "report" / "signals.csv")
    assert {"exposure", "outcome", "method", "estimate", "flag"} <= set(table.columns)
    signals = pd.read_parquet(tmp_path / "sig" / "signals.parquet")
    assert len(signals) == len(table)
    anomalies = pd.read_parquet(tmp_path / "sig" / "anomalies.parquet")
    assert {"unit", "unit_index", "score", "top_codes"} <= set(anomalies.columns)
    assert set(anomalies["unit"]) == {"patient", "prescriber"}  # the simulator's dispensations carry prescribers
    assert (tmp_path / "sig" / "report" / "figures" / "volcano.png").is_file()


def test_detect_signals_suppresses_small_counts_and_draws_curves(tmp_path):
    _run("detect_signals", "data.n_patients=1500", "report.min_cell_count=100", f"hydra.run.dir={tmp_path}/sig",
         cwd=tmp_path)
    signals = pd.read_parquet(tmp_path / "sig" / "signals.parquet")
    small = signals["n_exposed_events"].between(1, 99)
    assert not small.any() and signals["suppressed"].any()
    assert signals.loc[signals["suppressed"], "estimate"].isna().all()
    anomalies = pd.read_parquet(tmp_path / "sig" / "anomalies.parquet")
    assert not anomalies["top_codes"].str.contains(r"\(").any()  # per-code counts removed from explanations
    curves = pd.read_parquet(tmp_path / "sig" / "relative_incidence_curves.parquet")
    assert {"exposure", "outcome", "lag_start", "lag_end", "ri", "ci_low", "ci_high"} <= set(curves.columns)
    assert (curves["lag_end"] > curves["lag_start"]).all()
    assert (tmp_path / "sig" / "report" / "figures" / "relative_incidence.png").is_file()


def test_config_typo_fails_with_the_key_name(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "+trainer.max_epohcs=3",
                           f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert "trainer.max_epohcs" in proc.stderr and "did you mean 'trainer.max_epochs'" in proc.stderr


@pytest.mark.slow
def test_main_job_with_no_arguments(tmp_path):
    """`python scripts/train.py` as in the README (run from a copy of the repo root so outputs land in tmp)."""
    proc = _run("train", f"hydra.run.dir={tmp_path}/run", f"paths.checkpoint_dir={tmp_path}/ckpt", cwd=tmp_path,
                timeout=600)
    assert (tmp_path / "ckpt" / "care_pathway_drivers.pt").is_file()
    assert "edge_auroc_vs_truth" in (tmp_path / "run" / "report" / "metrics.json").read_text()
    assert "report" in proc.stdout

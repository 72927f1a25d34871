"""Family dispatch of the pipelines: one model of each family through train -> predict, and the protocol faces."""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from pathways import pipelines
from pathways.errors import PathwaysInputError
from pathways.models.tpp import LogNormMix, RMTPP
from pathways.pipelines.train import fit_model, model_factors
from pathways.synthetic import simulate_cohort
from pathways.training import Trainer

CONFIG_DIR = Path(__file__).resolve().parents[2] / "pathways" / "configs"
TINY = ["trainer=debug", "data.n_patients=80", "+data.n_drugs=6", "+data.n_diagnoses=3", "+data.n_acts=1",
        "+data.n_outcomes=2", "+data.n_strong=1", "+data.n_weak=1", "+data.follow_up_years=[1.0,2.0]",
        "checkpoint.export=false", "report.figures=false"]


def _compose(name: str, overrides: list[str]):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=overrides)


def _train_then_predict(tmp_path: Path, experiment: str, model: str, *extra: str) -> tuple[object, pd.DataFrame]:
    trained = pipelines.train(_compose("config", [f"experiment={experiment}", f"model={model}", *extra, *TINY]),
                              tmp_path / "train")
    cfg = _compose("predict", [f"checkpoint={trained.checkpoint}", "data.n_patients=20", "+data.n_drugs=6",
                               "+data.n_diagnoses=3", "+data.n_acts=1", "+data.n_outcomes=2", "+data.n_strong=1",
                               "+data.n_weak=1", "+data.follow_up_years=[1.0,2.0]"])
    result = pipelines.predict(cfg, tmp_path / "predict")
    return result, pd.read_parquet(result.files["predictions"])


def test_hawkes_predicts_one_loglik_per_patient(tmp_path):
    result, frame = _train_then_predict(tmp_path, "care_pathway_drivers", "hawkes_exp")
    assert {"patient_index", "patient_id", "n_events", "loglik", "loglik_per_event"} <= set(frame.columns)
    assert frame["patient_index"].is_unique and np.isfinite(frame["loglik"]).all()
    assert result.files["factors"].is_file()


def test_tpp_predicts_every_event(tmp_path):
    result, frame = _train_then_predict(tmp_path, "next_event", "rmtpp")
    assert {"time", "code", "predicted_dt", "predicted_code", "predicted_proba"} <= set(frame.columns)
    assert (frame["predicted_dt"] >= 0).all()
    assert result.metrics["n_rows"] == len(frame)


def test_outcome_model_predicts_one_risk_per_patient(tmp_path):
    _, frame = _train_then_predict(tmp_path, "outcome_risk", "logistic")
    assert frame["risk"].between(0, 1).all() and frame["patient_index"].is_unique


def test_convsccs_trains_and_says_it_has_no_prediction_face(tmp_path):
    with pytest.raises(PathwaysInputError, match="ConvSCCS has no prediction face"):
        _train_then_predict(tmp_path, "care_pathway_drivers", "convsccs", "encode=sccs")


def test_encoder_and_model_kinds_must_match(tmp_path):
    with pytest.raises(PathwaysInputError, match=r"SequenceEncoder produces 'sequences'.*expects 'sccs'.*encode=sccs"):
        pipelines.train(_compose("config", ["experiment=care_pathway_drivers", "model=convsccs", *TINY]), tmp_path)


def test_full_batch_learners_take_device_and_iteration_cap_from_the_trainer():
    from pathways.models import HawkesExpKernel

    log, _ = simulate_cohort(n_patients=40, seed=1)
    model = fit_model(HawkesExpKernel(max_iter=500, device="auto"), log, None, Trainer(device="cpu", iter_cap=3))
    assert model.n_iter_ <= 3 and model.get_params()["max_iter"] == 500 and model.device == "auto"


def test_dispatch_is_by_family_type():
    log, _ = simulate_cohort(n_patients=40, seed=1)
    model = fit_model(RMTPP(max_epochs=5, hidden_size=4, batch_size=16), log, log, Trainer(progress=False, epoch_cap=1))
    assert len(model.history_) == 1 and model.max_epochs == 5  # the run's cap; the parameter is untouched
    factors = model_factors(model, log, None)
    assert factors is None  # next-event reports show metrics, not factors


def test_tpp_protocol_faces():
    log, _ = simulate_cohort(n_patients=40, seed=2)
    model = RMTPP(max_epochs=1, hidden_size=4, batch_size=16).fit(log)
    per_sequence = model.score_samples(log)
    assert per_sequence.dtype == np.float64 and per_sequence.shape == (log.n_patients,)
    assert model.log_likelihood(log) == pytest.approx(per_sequence.sum())
    assert model.score(log) == pytest.approx(per_sequence.sum() / log.n_events)
    factors = model.to_factors(log)
    assert (factors["method"] == "tpp_intensity_jump").all()
    assert len(factors) == model.n_codes_ ** 2 and (factors["effect"].dropna() > 0).all()
    with pytest.raises(PathwaysInputError, match="no factors view"):
        LogNormMix(max_epochs=1, batch_size=16).fit(log).to_factors(log)


def test_only_rank_zero_writes_the_run_files(tmp_path, monkeypatch):
    """Under torchrun every rank runs the pipeline; ranks > 0 return the fitted model and write no file."""
    train_module = importlib.import_module("pathways.pipelines.train")  # pipelines.train is the task function
    monkeypatch.setattr(train_module, "is_main_process", lambda: False)
    cfg = _compose("config", ["experiment=outcome_risk", "model=logistic", *TINY])
    result = pipelines.train(cfg, tmp_path / "rank1")
    result.model.check_fitted()  # every rank fits and evaluates
    assert np.isfinite(result.metrics["fit_seconds"])
    assert result.checkpoint is None
    assert not (tmp_path / "rank1" / "model.pt").exists()
    assert not (tmp_path / "rank1" / "report").exists()

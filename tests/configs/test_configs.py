"""Every experiment and every model config composes with Hydra and runs end to end in debug mode on tiny data.

Model configs are written by each model's engineer; a missing one fails here on purpose (not skipped), naming the
file that should exist.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from pathways.checkpoint import load
from pathways import pipelines
from pathways.pipelines.common import encoder_of, load_data
from pathways.pipelines.schema import ConfigKeyError, validate_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "pathways" / "configs"
# model config -> the experiment it is exercised in (every model named in the issue, plus any other file present)
MODEL_EXPERIMENT = {
    "hawkes_exp": "care_pathway_drivers", "hawkes_sumexp": "care_pathway_drivers", "hawkes_em": "care_pathway_drivers",
    "rmtpp": "next_event", "nhp": "next_event", "thp": "next_event", "lognormmix": "next_event", "sahp": "next_event",
    "gru": "outcome_risk", "retain": "outcome_risk", "logistic": "outcome_risk", "convsccs": "care_pathway_drivers",
}
# models whose experiment encodes for another input kind: the encoder selected with them
MODEL_ENCODE = {"convsccs": "sccs"}
MODELS = sorted(set(MODEL_EXPERIMENT) | {p.stem for p in (CONFIG_DIR / "model").glob("*.yaml")})
EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
# a small cohort (12 codes, 80 patients) and the debug trainer: each run takes seconds
TINY = ["trainer=debug", "data.n_patients=80", "+data.n_drugs=6", "+data.n_diagnoses=3", "+data.n_acts=1",
        "+data.n_outcomes=2", "+data.n_strong=1", "+data.n_weak=1", "+data.follow_up_years=[1.0,2.0]",
        "checkpoint.export=false", "report.figures=false"]
# experiments on their own simulators (abuse, cartography, cohort study) take only their population size
OWN_DATA = {"abuse": 2000, "cartography": 300, "cohort_study": 1500}
# tasks that write tables and a report but fit no checkpointed model
NO_CHECKPOINT = {"signals", "abuse", "cartography", "cohort_study"}


def _tiny(experiment: str) -> list[str]:
    if experiment in OWN_DATA:
        return ["trainer=debug", f"data.n_patients={OWN_DATA[experiment]}", "checkpoint.export=false",
                "report.figures=false"]
    return TINY


def _compose(name: str = "config", overrides: list[str] | None = None):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=overrides or [])


def test_expected_experiments_exist():
    assert {"care_pathway_drivers", "next_event", "outcome_risk", "drug_safety"} <= set(EXPERIMENTS)


def test_default_config_is_the_main_job():
    cfg = _compose()
    validate_config(cfg)
    assert cfg.name == "care_pathway_drivers" and cfg.task == "drivers"
    assert cfg.data._target_ == "pathways.synthetic.simulate_cohort"
    assert cfg.model._target_.endswith("HawkesExpKernel")


@pytest.mark.parametrize("name", ["predict", "evaluate", "simulate", "detect_signals"])
def test_other_entry_point_configs_compose_and_validate(name):
    cfg = _compose(name, ["checkpoint=x.pt"] if name in ("predict", "evaluate") else [])
    validate_config(cfg, name)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_end_to_end(experiment, tmp_path):
    cfg = _compose(overrides=[f"experiment={experiment}", *_tiny(experiment)])
    result = pipelines.train(cfg, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "ok" and result.metrics
    report = result.report.markdown if result.report is not None else result.files["report"]
    assert report.is_file()
    if cfg.task not in NO_CHECKPOINT:
        assert result.checkpoint.is_file()
        assert load(result.checkpoint).checkpoint_["config"]["name"] == experiment


@pytest.mark.parametrize("model", MODELS)
def test_model_config_runs_end_to_end(model, tmp_path):
    path = CONFIG_DIR / "model" / f"{model}.yaml"
    assert path.is_file(), f"configs/model/{model}.yaml is missing (written by the model's engineer)"
    assert "_target_" in OmegaConf.load(path), f"configs/model/{model}.yaml has no _target_"
    experiment = MODEL_EXPERIMENT.get(model, "care_pathway_drivers")
    encode = [f"encode={MODEL_ENCODE[model]}"] if model in MODEL_ENCODE else []
    cfg = _compose(overrides=[f"experiment={experiment}", f"model={model}", *encode, *TINY])
    result = pipelines.train(cfg, tmp_path)
    assert result.checkpoint.is_file() and result.metrics
    # the checkpoint written by the pipeline predicts exactly like the in-memory model
    loaded = load(result.checkpoint)
    data, truth = load_data(cfg.data)
    encoded = encoder_of(loaded).transform(data)
    for face in ("predict_proba", "score"):
        if hasattr(result.model, face):
            expected, got = getattr(result.model, face)(encoded), getattr(loaded, face)(encoded)
            np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
            break


# ---------------------------------------------------------------------------------------------------------------
# typos fail with a message naming the key
# ---------------------------------------------------------------------------------------------------------------
def test_typo_in_override_of_existing_section_is_refused_by_hydra():
    with pytest.raises(ConfigCompositionException, match="max_epohcs"):
        _compose(overrides=["trainer.max_epohcs=3"])


def test_added_typo_key_names_key_and_suggestion():
    cfg = _compose(overrides=["+trainer.max_epohcs=3"])
    with pytest.raises(ConfigKeyError, match=r"'trainer.max_epohcs'.*did you mean 'trainer.max_epochs'"):
        validate_config(cfg)


def test_typo_in_model_parameter_names_the_estimator():
    cfg = _compose(overrides=["+model.decya=0.5"])
    with pytest.raises(ConfigKeyError, match=r"'model.decya'.*HawkesExpKernel.*did you mean 'model.decay'"):
        validate_config(cfg)


def test_typo_in_a_user_yaml_file_fails(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text("# @package _global_\ntrainr:\n  max_epochs: 3\n")
    cfg = _compose(overrides=["experiment=mine", f"hydra.searchpath=[file://{tmp_path}]"])
    with pytest.raises(ConfigKeyError, match=r"'trainr'.*did you mean 'trainer'"):
        pipelines.train(cfg, tmp_path / "out")


def test_unknown_target_fails_clearly():
    cfg = _compose(overrides=["data._target_=pathways.synthetic.no_such_function"])
    with pytest.raises(ConfigKeyError, match="cannot import 'pathways.synthetic.no_such_function'"):
        validate_config(cfg)


def test_gpu_trainer_without_cuda_fails_before_work(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present: the error path needs a machine without GPU")
    from pathways.errors import PathwaysInputError

    cfg = _compose(overrides=["trainer=gpu"])
    with pytest.raises(PathwaysInputError, match="CUDA is not available"):
        pipelines.train(cfg, tmp_path)
    assert not (tmp_path / "model.pt").exists()


SNDS = Path(__file__).resolve().parents[3] / "shared" / "data" / "snds"


@pytest.mark.skipif(not SNDS.is_dir(), reason="../shared/data/snds (synthetic SNDS tables) is absent")
def test_snds_data_config_reads_the_shared_tables():
    pytest.importorskip("duckdb", reason="read_snds needs the optional duckdb package (pathways[omop])")
    cfg = _compose(overrides=["data=snds", f"data.folder={SNDS}"])
    validate_config(cfg)
    with pytest.warns(Warning):  # the faker's random values trigger documented, counted drops
        log, truth = load_data(cfg.data)
    assert log.n_patients > 0 and truth is None


def test_omop_and_parquet_configs_validate():
    for overrides in (["data=omop", "data.source=/data/cdm"], ["data=parquet", "data.path=/data/events.parquet"]):
        validate_config(_compose(overrides=overrides))


def test_predict_reindexes_new_patients_onto_the_model_vocabulary(tmp_path):
    from pathways.errors import PathwaysInputError

    trained = pipelines.train(_compose(overrides=["experiment=care_pathway_drivers", *TINY]), tmp_path / "train")
    data_overrides = [o for o in TINY if o.startswith(("data.", "+data."))]
    # 5 new patients use only part of the codes: their own vocabulary differs, the model's is applied
    cfg = _compose("predict", [f"checkpoint={trained.checkpoint}", *data_overrides, "data.n_patients=5"])
    result = pipelines.predict(cfg, tmp_path / "predict")
    frame = pd.read_parquet(result.files["predictions"])
    assert len(frame) == 5 and np.isfinite(frame["loglik"]).all()
    # the default cohort has codes this model never saw: the error names one
    with pytest.raises(PathwaysInputError, match="unknown to the vocabulary"):
        pipelines.predict(_compose("predict", [f"checkpoint={trained.checkpoint}"]), tmp_path / "predict2")

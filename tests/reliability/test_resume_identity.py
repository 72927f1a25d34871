"""Resume refuses another config or other data, saying what differs (issue 12, silent corruption).

Before: a resumed run silently continued with a changed ``data.n_patients``, ``seed`` or ``lr``, moving patients
between the splits and contaminating the test metrics.
"""
from __future__ import annotations

import copy
import json
import sys

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pathways.errors import PathwaysInputError
from pathways.pipelines import train
from pathways.pipelines.cli import CONFIG_DIR
from pathways.training.state import IDENTITY_FILE, STATE_FILE, check_resume, identity_differences, run_identity

train_module = sys.modules["pathways.pipelines.train"]

TINY = ["experiment=next_event", "model=rmtpp", "model.hidden_size=4", "data.n_patients=40", "+data.n_drugs=4",
        "+data.n_diagnoses=2", "+data.n_acts=1", "+data.n_outcomes=2", "+data.n_strong=1", "+data.n_weak=1",
        "+data.follow_up_years=[1.0,2.0]", "trainer=debug", "report.enabled=false", "checkpoint.export=false"]


def _with(cfg, *overrides: str):
    out = copy.deepcopy(cfg)
    for override in overrides:
        key, _, text = override.partition("=")
        OmegaConf.update(out, key, yaml.safe_load(text), merge=False)
    return out


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """A finished tiny RMTPP run (2 debug epochs) with its trainer state and identity in <run>/trainer."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=TINY)
    run = tmp_path_factory.mktemp("run")
    train(cfg, run)
    return cfg, run


@pytest.mark.parametrize("overrides, expected", [
    (["data.n_patients=50"], ["data.n_patients: 40 -> 50", "data split train: other events"]),
    (["seed=1"], ["seed: 0 -> 1", "model.seed: 0 -> 1"]),
    (["model.lr=0.5"], ["model.lr: 0.003 -> 0.5"]),
    (["split.fractions=[0.6,0.2,0.2]"], ["split.fractions: [0.7, 0.15, 0.15] -> [0.6, 0.2, 0.2]"]),
    (["model.hidden_size=8", "trainer.grad_clip=null"], ["model.hidden_size: 4 -> 8", "trainer.grad_clip: 1.0 -> None"]),
])
def test_resume_with_other_config_or_data_is_refused_saying_what_differs(first_run, overrides, expected,
                                                                         monkeypatch):
    cfg, run = first_run
    state = (run / "trainer" / STATE_FILE).read_bytes()
    monkeypatch.setattr(train_module, "fit_model", lambda *a: pytest.fail("training started despite a mismatch"))
    with pytest.raises(PathwaysInputError, match="resume refused") as caught:
        train(_with(cfg, "trainer.resume=true", *overrides), run)
    for words in expected:
        assert words in str(caught.value)
    assert (run / "trainer" / STATE_FILE).read_bytes() == state  # nothing of the stopped run was touched


def test_resume_with_the_same_settings_continues(first_run, monkeypatch):
    cfg, run = first_run
    fitted = []
    monkeypatch.setattr(train_module, "fit_model", lambda *a: fitted.append(a) or a[0].fit(a[1], validation=a[2],
                                                                                             trainer=a[3]))
    # where the outputs go and how progress shows may change on resume
    result = train(_with(cfg, "trainer.resume=true", "trainer.progress=false", "report.top_k=3"), run)
    assert fitted and len(result.history) == 2  # the two epochs of the first run, restored from its state
    assert result.history == json.loads(json.dumps(result.history))  # plain records


def test_unit_identity_differences_lists_every_change():
    a = run_identity({"seed": 0, "model": {"lr": 0.01}, "paths": {"root": "a"}}, [None])
    b = run_identity({"seed": 0, "model": {"lr": 0.02, "new": 1}, "paths": {"root": "b"}}, [None])
    assert identity_differences(a, b) == ["model.lr: 0.01 -> 0.02", "model.new: <absent> -> 1"]  # paths are free


def test_state_without_identity_is_refused(tmp_path):
    (tmp_path / STATE_FILE).write_bytes(b"x")
    with pytest.raises(PathwaysInputError, match="no run_identity.json"):
        check_resume(tmp_path, run_identity({"seed": 0}, [None]), resume=True)


def test_unreadable_identity_is_refused(tmp_path):
    (tmp_path / STATE_FILE).write_bytes(b"x")
    (tmp_path / IDENTITY_FILE).write_text("{truncated")
    with pytest.raises(PathwaysInputError, match="run_identity.json is unreadable"):
        check_resume(tmp_path, run_identity({"seed": 0}, [None]), resume=True)


def test_a_fresh_run_records_its_identity_and_replaces_an_old_one(tmp_path):
    check_resume(tmp_path, run_identity({"seed": 0}, [None]), resume=False)
    check_resume(tmp_path, run_identity({"seed": 5}, [None]), resume=False)  # resume=False: starts afresh
    assert json.loads((tmp_path / IDENTITY_FILE).read_text())["config"] == {"seed": 5}
    check_resume(tmp_path, run_identity({"seed": 9}, [None]), resume=True)  # no state yet: nothing to compare


def test_library_resume_with_other_parameters_or_data_is_refused(tmp_path):
    """Trainer(resume=True) used directly (no pipeline): the estimator records and compares its own identity."""
    import numpy as np

    from pathways.models.tpp import RMTPP
    from pathways.synthetic import simulate_hawkes
    from pathways.training import Trainer

    def data(seed):
        return simulate_hawkes(np.full(2, 0.5), np.full((2, 2), 0.2), end=10.0, n_sequences=6, seed=seed)

    def fit(resume, train, lr=0.01):
        model = RMTPP(hidden_size=4, max_epochs=1, batch_size=8, lr=lr, device="cpu")
        return model.fit(train, trainer=Trainer(checkpoint_dir=str(tmp_path), resume=resume, progress=False,
                                                loggers=()))

    fit(False, data(0))
    with pytest.raises(PathwaysInputError, match=r"resume refused: .*lr: 0.01 -> 0.02"):
        fit(True, data(0), lr=0.02)
    with pytest.raises(PathwaysInputError, match=r"data split train: other events"):
        fit(True, data(1))
    assert len(fit(True, data(0)).history_) == 1  # same parameters and data: resumes

"""The whole config is checked before any work; a failed run keeps the last good exported checkpoint (issue 12)."""
from __future__ import annotations

import copy
import sys

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pathways.errors import PathwaysInputError
from pathways.pipelines import train
from pathways.pipelines.cli import CONFIG_DIR
from pathways.pipelines.schema import ConfigValueError, validate_config

train_module = sys.modules["pathways.pipelines.train"]  # the package re-exports the function under that name

TINY = ["data.n_patients=40", "+data.n_drugs=4", "+data.n_diagnoses=2", "+data.n_acts=1", "+data.n_outcomes=2",
        "+data.n_strong=1", "+data.n_weak=1", "+data.follow_up_years=[1.0,2.0]", "trainer=debug",
        "report.figures=false"]


def _cfg(*overrides: str, name: str = "config"):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides))


@pytest.fixture(scope="module")
def tiny():
    return _cfg(*TINY)


def _with(cfg, override: str):
    """``cfg`` with one command-line style override applied (values parsed as Hydra does: YAML)."""
    key, _, text = override.partition("=")
    out = copy.deepcopy(cfg)
    OmegaConf.update(out, key, yaml.safe_load(text), merge=False)
    return out


BAD_VALUES = [
    ("report.top_k=-1", "report.top_k': expected an integer >= 1, got -1"),
    ("report.top_k=abc", "report.top_k': expected an integer >= 1, got 'abc'"),
    ("report.min_cell_count=0", "report.min_cell_count': expected null or an integer >= 1, got 0"),
    ("report.min_cell_count=abc", "report.min_cell_count': expected null or an integer >= 1, got 'abc'"),
    ("report.min_cell_count=2.5", "report.min_cell_count': expected null or an integer >= 1, got 2.5"),
    ("report.intervals=wald", "report.intervals': expected null, 'fisher' or 'bootstrap', got 'wald'"),
    ("report.figures=maybe", "report.figures': expected a bool value, got 'maybe'"),
    ("report.enabled=2", "report.enabled': expected a bool value, got 2"),
    ("report.max_interval_params=-5", "report.max_interval_params': expected an integer >= 0, got -5"),
    ("split.fractions=[0.5,0.5]", "split.fractions': expected three shares in [0, 1] summing to 1"),
    ("split.fractions=[0.8,0.3,-0.1]", "split.fractions': expected three shares in [0, 1] summing to 1"),
    ("split.fractions=[a,b,c]", "split.fractions': expected three shares"),
    ("seed=-1", "'seed': expected an integer >= 0, got -1"),
    ("seed=abc", "'seed': expected an integer >= 0, got 'abc'"),
    ("checkpoint.export=sometimes", "checkpoint.export': expected a bool value, got 'sometimes'"),
    ("name=null", "'name': expected a str value, got None"),
]


@pytest.mark.parametrize("override, words", BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_bad_value_fails_before_any_work(override, words, tiny, tmp_path):
    with pytest.raises(ConfigValueError) as caught:
        train(_with(tiny, override), tmp_path / "run")
    assert str(caught.value).startswith("config key '") and words in str(caught.value)
    assert not (tmp_path / "run" / "model.pt").exists() and not (tmp_path / "run" / "trainer").exists()


@pytest.mark.parametrize("name, override", [("detect_signals", "report.top_k=0"),
                                            ("predict", "n_samples=0"),
                                            ("evaluate", "report.min_cell_count=-3")])
def test_other_entry_points_check_values(name, override):
    cfg = _cfg(override, "checkpoint=x.pt", name=name) if name != "detect_signals" else _cfg(override, name=name)
    with pytest.raises(ConfigValueError, match=override.split("=")[0]):
        validate_config(cfg, name)


def test_bad_model_parameter_fails_before_the_data_is_read(tiny, tmp_path, monkeypatch):
    def no_data(node):
        raise AssertionError("the data was read before the model parameters were checked")

    monkeypatch.setattr(train_module, "load_data", no_data)
    with pytest.raises(PathwaysInputError, match="HawkesExpKernel parameter 'decay'"):
        train(_with(tiny, "model.decay=abc"), tmp_path / "run")


def test_failed_run_keeps_the_last_good_exported_checkpoint(tiny, tmp_path, monkeypatch):
    ckpt = tmp_path / "ckpt"
    cfg = _with(tiny, f"paths.checkpoint_dir={ckpt}")
    train(cfg, tmp_path / "good")
    exported = ckpt / "care_pathway_drivers.pt"
    good = exported.read_bytes()

    def broken_report(*args, **kwargs):
        raise OSError("disk full while writing the report")

    monkeypatch.setattr(train_module, "write_report", broken_report)
    with pytest.raises(OSError, match="disk full"):
        train(_with(cfg, "seed=1"), tmp_path / "failed")
    assert exported.read_bytes() == good  # not replaced by the failed run's model
    assert (tmp_path / "failed" / "model.pt").is_file()  # the failed run's own checkpoint stays in its folder
    assert sorted(p.name for p in ckpt.iterdir()) == ["care_pathway_drivers.pt"]  # no temporary left

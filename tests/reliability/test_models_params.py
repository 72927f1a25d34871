"""Bad model parameters fail before any work, with the parameter's name (issue 12, "Smaller").

The generic check (``pathways.models.params.check_param_types``) covers every estimator: each numeric, boolean or
string parameter is set to a value of the wrong kind and must be refused with a message naming it.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

import pathways.pipelines  # noqa: F401  (loads every model family)
from pathways.errors import PathwaysInputError
from pathways.models.base import PathwaysEstimator
from pathways.models.hawkes import HawkesEM, HawkesExpKernel, HawkesSumExpKernel
from pathways.models.params import check_param_types
from pathways.models.sccs import ConvSCCS
from pathways.models.sccs.design import resolve_lags
from pathways.pipelines.cli import CONFIG_DIR
from pathways.pipelines.train import build_model
from pathways.synthetic import simulate_hawkes


def _estimators() -> list[type]:
    found, todo = [], [PathwaysEstimator]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if not inspect.isabstract(sub) and sub.__module__.startswith("pathways.models"):
                found.append(sub)
    return sorted(set(found), key=lambda c: c.__name__)


def _typed_params() -> list[tuple[type, str, object, str]]:
    """(estimator, parameter, wrong value, word of the message) for every typed parameter of every estimator."""
    cases = []
    for klass in _estimators():
        for name, p in inspect.signature(klass.__init__).parameters.items():
            d = p.default
            if isinstance(d, bool):
                cases.append((klass, name, "yes", "true or false"))
            elif isinstance(d, int):
                cases.append((klass, name, 2.5 if "float" not in str(p.annotation) else "abc",
                              "an integer" if "float" not in str(p.annotation) else "a finite number"))
            elif isinstance(d, float):
                cases.append((klass, name, "abc", "a finite number"))
                cases.append((klass, name, float("nan"), "a finite number"))
    return cases


CASES = _typed_params()


def test_every_estimator_accepts_its_defaults():
    classes = _estimators()
    assert len(classes) >= 12  # hawkes x3, tpp x5, recurrent x3, sccs x3
    for klass in classes:
        check_param_types(klass())


@pytest.mark.parametrize("klass, name, value, words", CASES,
                         ids=[f"{c.__name__}.{n}={v!r}" for c, n, v, _ in CASES])
def test_wrong_kind_of_parameter_names_it(klass, name, value, words):
    model = klass().set_params(**{name: value})
    with pytest.raises(PathwaysInputError, match=rf"{klass.__name__} parameter '{name}': expected {words}"):
        model.validate_params()


def test_hawkes_decay_abc_names_decay_at_fit():
    seqs = simulate_hawkes(np.full(2, 0.3), np.full((2, 2), 0.1), end=50.0, n_sequences=3, seed=0)
    with pytest.raises(PathwaysInputError, match=r"parameter 'decay': expected a finite number, got 'abc'"):
        HawkesExpKernel(decay="abc").fit(seqs)


@pytest.mark.parametrize("decay, words", [(-1.0, "decay: expected one positive finite number"),
                                          ([1.0, 2.0], "'decay': expected a finite number")])
def test_hawkes_decay_out_of_range_is_refused_before_fitting(decay, words):
    with pytest.raises(PathwaysInputError, match=words):
        HawkesExpKernel(decay=decay).validate_params()


@pytest.mark.parametrize("decays", [("a", 1.0), (1.0, -2.0), (1.0, 1.0)])
def test_hawkes_sum_exp_decays_name_the_parameter(decays):
    with pytest.raises(PathwaysInputError, match="decays: expected"):
        HawkesSumExpKernel(decays=decays).validate_params()


def test_model_decay_abc_from_the_command_line_names_model_decay():
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["model.decay=abc"])
    with pytest.raises(PathwaysInputError, match=r"HawkesExpKernel parameter 'decay': expected a finite number"):
        build_model(cfg).validate_params()


@pytest.mark.parametrize("n_lags", [2.5, [1, 2.5], "3", True, []])
def test_convsccs_non_integer_lags_are_rejected(n_lags):
    """Scalars fail the parameter check; sequences fail the lag check before the design touches the data."""
    with pytest.raises(PathwaysInputError, match="n_lags"):
        ConvSCCS(n_lags=n_lags).validate_params()
        resolve_lags(n_lags, None)


def test_convsccs_integer_lags_pass_the_type_check():
    ConvSCCS(n_lags=3).validate_params()
    ConvSCCS(n_lags=[3, 0]).validate_params()


def test_hawkes_em_max_iter_float_is_refused():
    with pytest.raises(PathwaysInputError, match="'max_iter': expected an integer, got 2.5"):
        HawkesEM(max_iter=2.5).validate_params()

"""configs/signals/default.yaml: every key is a StudyDesign field at its signature default; the config composes and
runs, the SCCS diagnostics, adjustments and the event-dependent observation option reached through it."""
import dataclasses
import warnings
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from pathways.pipelines.common import instantiate
from pathways.signals.detect import StudyDesign
from pathways.synthetic.signal_shapes import simulate_signal_shape

CONFIG_DIR = Path(__file__).resolve().parents[2] / "pathways" / "configs"
NEW_FIELDS = {"pre_exposure_days", "end_of_observation_days", "season", "age_edges_years", "observe_from_exposure",
              "prior_sd", "event_dependent_observation"}


def _signals_node(overrides=()):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("detect_signals", overrides=list(overrides)).signals


def test_default_yaml_holds_the_signature_defaults():
    node = _signals_node()
    fields = {f.name: f for f in dataclasses.fields(StudyDesign)}
    keys = set(node) - {"_target_"}
    assert node["_target_"] == "pathways.signals.detect"
    assert NEW_FIELDS <= keys <= set(fields)
    for key in keys:
        f = fields[key]
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        value = node[key]
        assert (list(value) if hasattr(value, "__len__") and not isinstance(value, str) else value) == (
            list(default) if isinstance(default, tuple) else default), key


def test_config_composes_and_runs_with_the_new_options():
    log, _ = simulate_signal_shape("outcome ends observation", seed=1, n_patients=1500)
    node = _signals_node(["signals.pre_exposure_days=14", "signals.end_of_observation_days=28", "signals.season=4",
                          "signals.event_dependent_observation=exponential-weibull", "signals.prior_sd=2.0",
                          "+signals.outcomes=[AE]", "+signals.methods=[SCCS]", "+signals.bucket_days=7.0"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = instantiate(node, quote_errors=False, log=log)
    assert set(table["exposure"]) == {"RISK", "NULL1", "NULL2", "NULL3"} and table["status"].notna().all()
    terms = {t["feature"] for t in table.attrs["sccs_terms"]}
    assert {"RISK [pre-exposure]", "end of observation", "season 2"} <= terms
    (law,) = table.attrs["sccs_observation_models"]
    assert law["family"] == "exponential-weibull" and law["deaths"] > 0 and 0 < law["share"] < 1
    with pytest.raises(Exception, match="event_dependent_observation"):
        instantiate(_signals_node(["signals.event_dependent_observation=lognormal", "+signals.outcomes=[AE]",
                                   "+signals.methods=[SCCS]"]), quote_errors=False, log=log)

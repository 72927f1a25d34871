"""Validation of composed run configs: a misspelt key fails with a message naming it (and the closest known key).

Hydra already refuses command-line overrides of keys that do not exist (struct mode). This module covers what
Hydra cannot see: keys written in YAML files (an experiment, a user's own model file) that no code reads.

Each default lives once, in a signature: every node with a ``_target_`` (data, model, encode, trainer, signals,
logger, and any nested one) is checked against the signature of the callable it names (unless that callable takes
``**kwargs``); a ``trainer`` group written without ``_target_`` is checked against the signature of the callable
that receives its keys (:data:`SECTION_TARGETS`); each named node of the ``logger`` group (``logger.csv``,
``logger.mlflow``) against its own target (:data:`NAMED_NODE_GROUPS`). Only the plain sections (split, report, checkpoint,
paths and the top-level keys) are described by the dataclasses below.
"""
from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, Optional

from omegaconf import DictConfig, OmegaConf

from pathways.errors import PathwaysInputError


class ConfigKeyError(PathwaysInputError):
    """A config key that no part of pathways reads (usually a typo)."""


class ConfigValueError(PathwaysInputError):
    """A config value of the wrong type or out of range (checked before any work)."""


@dataclass(frozen=True)
class SectionKeys:
    """The known keys of a group written without ``_target_``: the parameters of ``target`` (all of them, or those
    in ``only``) plus ``extra``."""

    target: str
    only: Optional[tuple] = None
    extra: tuple = ()


SECTION_TARGETS: dict[str, SectionKeys] = {
    # trainer settings are Trainer arguments; max_iter is the iteration budget handed to full-batch learners
    "trainer": SectionKeys("pathways.training.Trainer", extra=("max_iter",)),
}
#: groups made of named ``_target_`` nodes (``logger.csv``, ``logger.mlflow``): each node is checked on its own
NAMED_NODE_GROUPS = ("logger",)


@dataclass
class PathsConfig:
    """``paths`` group."""

    root: str = "."
    checkpoint_dir: str = "checkpoints"
    output_root: str = "outputs"
    sweep_root: str = "multirun"
    data_dir: str = "data"


@dataclass
class SplitConfig:
    fractions: list = field(default_factory=lambda: [0.7, 0.15, 0.15])


@dataclass
class ReportConfig:
    enabled: bool = True
    min_cell_count: Optional[int] = None
    top_k: int = 20
    figures: bool = True
    intervals: Optional[str] = "fisher"
    max_interval_params: int = 12000


@dataclass
class CheckpointConfig:
    export: bool = True


@dataclass
class TrainConfig:
    """Top level of ``configs/config.yaml``. ``data``, ``model``, ``encode``, ``trainer``, ``signals`` and ``logger``
    are checked against signatures (see :data:`SECTION_TARGETS`); the other sections against the dataclasses here."""

    task: str = "drivers"
    name: str = "run"
    seed: int = 0
    optimized_metric: Optional[str] = None
    data: Any = None
    model: Any = None
    signals: Any = None
    cartography: Any = None
    abuse: Any = None
    study: Any = None
    encode: Any = None
    trainer: Any = None
    logger: Any = None
    paths: PathsConfig = field(default_factory=PathsConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)


@dataclass
class PredictConfig:
    """Top level of ``configs/predict.yaml`` and ``configs/evaluate.yaml``."""

    checkpoint: Any = None
    data: Any = None
    output: Optional[str] = None
    device: str = "cpu"
    seed: int = 0
    name: str = "predict"
    horizon: Optional[float] = None
    n_samples: int = 1
    encode: dict = field(default_factory=dict)
    paths: PathsConfig = field(default_factory=PathsConfig)
    report: ReportConfig = field(default_factory=ReportConfig)


@dataclass
class SimulateConfig:
    """Top level of ``configs/simulate.yaml``."""

    data: Any = None
    output: Optional[str] = None
    seed: int = 0
    name: str = "simulate"
    paths: PathsConfig = field(default_factory=PathsConfig)


@dataclass
class SignalsConfig:
    """Top level of ``configs/detect_signals.yaml``."""

    data: Any = None
    signals: Any = None
    surveillance: Any = None  # optional group configs/surveillance: SurveillancePlan fields
    output: Optional[str] = None
    seed: int = 0
    name: str = "detect_signals"
    paths: PathsConfig = field(default_factory=PathsConfig)
    report: ReportConfig = field(default_factory=ReportConfig)


SCHEMAS: dict[str, type] = {
    "train": TrainConfig,
    "evaluate": PredictConfig,
    "predict": PredictConfig,
    "simulate": SimulateConfig,
    "detect_signals": SignalsConfig,
}


def validate_config(cfg: DictConfig, schema: type | str = "train") -> None:
    """Check every key of a composed config against ``schema`` and the signatures of its ``_target_`` nodes.

    Parameters
    ----------
    cfg : the composed config (the ``hydra`` node, when present, is ignored).
    schema : a dataclass or a name in :data:`SCHEMAS` ("train", "predict", "evaluate", "simulate", "detect_signals").

    Raises
    ------
    ConfigKeyError : naming the full dotted key, the closest known key and the known keys of that section.
    """
    if isinstance(schema, str):
        schema = SCHEMAS[schema]
    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("hydra", None)
    _check_node(container, schema, "")
    _check_values(cfg, schema, "")


#: value rules of the plain sections beyond their type: dotted key -> (predicate, what a valid value is)
VALUE_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "report.min_cell_count": (lambda v: v is None or v >= 1, "null or an integer >= 1"),
    "report.top_k": (lambda v: v >= 1, "an integer >= 1"),
    "report.intervals": (lambda v: v in (None, "fisher", "bootstrap"), "null, 'fisher' or 'bootstrap'"),
    "report.max_interval_params": (lambda v: v >= 0, "an integer >= 0"),
    "split.fractions": (lambda v: len(v) == 3 and all(isinstance(f, (int, float)) and not isinstance(f, bool)
                                                     and 0 <= f <= 1 for f in v) and abs(sum(v) - 1) < 1e-6,
                        "three shares in [0, 1] summing to 1 (train, val, test)"),
    "seed": (lambda v: v >= 0, "an integer >= 0"),
    "n_samples": (lambda v: v >= 1, "an integer >= 1"),
}

_TYPES: dict[str, tuple[type, ...]] = {"bool": (bool,), "int": (int,), "str": (str,), "list": (list, tuple),
                                       "dict": (dict,)}


def _check_values(cfg: Any, schema: Any, prefix: str) -> None:
    """Type (and :data:`VALUE_RULES`) check of every value of the plain, dataclass-described sections, so that a bad
    ``report.top_k`` fails before any data is read or model trained, not after the training."""
    for f in fields(schema):
        if f.name not in cfg:
            continue
        key = f"{prefix}{f.name}"
        try:
            value = cfg[f.name]
        except Exception:  # an interpolation only Hydra's runtime resolves (paths): nothing to check here
            continue
        sub = _field_type(f)
        if sub is not None and hasattr(sub, "__dataclass_fields__"):
            if isinstance(value, DictConfig):
                _check_values(value, sub, key + ".")
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        _check_value(key, value, str(f.type))


def _check_value(key: str, value: Any, annotation: str) -> None:
    optional = annotation.startswith("Optional[")
    base = annotation[len("Optional["):-1] if optional else annotation
    kinds = _TYPES.get(base)
    if value is None:
        ok = optional or kinds is None
    elif kinds is None:
        ok = True
    else:
        ok = isinstance(value, kinds) and not (base == "int" and isinstance(value, bool))
    rule = VALUE_RULES.get(key)
    if ok and rule is not None:
        try:
            ok = bool(rule[0](value))
        except TypeError:
            ok = False
    if not ok:
        expected = rule[1] if rule is not None else ("null or " if optional else "") + f"a {base} value"
        raise ConfigValueError(f"config key '{key}': expected {expected}, got {value!r}")


def _check_node(node: Any, schema: Any, prefix: str) -> None:
    if not isinstance(node, dict):
        return
    if "_target_" in node:
        _check_target(node, prefix)
        return
    if prefix[:-1] in SECTION_TARGETS:
        _check_section(node, SECTION_TARGETS[prefix[:-1]], prefix)
        return
    if prefix[:-1] in NAMED_NODE_GROUPS:
        for key, value in node.items():
            _check_node(value, None, f"{prefix}{key}.")
        return
    if not (isinstance(schema, type) and hasattr(schema, "__dataclass_fields__")):
        return  # free-form section (dict / Any): nothing to check
    known = {f.name: f for f in fields(schema)}
    for key, value in node.items():
        if key not in known:
            _fail(prefix, key, list(known), f"section '{prefix[:-1] or '<root>'}'")
        _check_node(value, _field_type(known[key]), f"{prefix}{key}.")


def _field_type(f: Any) -> Any:
    # nested sections are dataclass-typed fields built with default_factory
    if f.default_factory is not MISSING:
        return type(f.default_factory())
    return None


def _check_section(node: dict, keys: SectionKeys, prefix: str) -> None:
    allowed = _parameters(keys.target, prefix)
    if allowed is None:
        return
    allowed = [n for n in allowed if keys.only is None or n in keys.only] + list(keys.extra)
    for key in node:
        if key not in allowed:
            _fail(prefix, key, allowed, f"section '{prefix[:-1]}' (arguments of '{keys.target}')")


def _parameters(target: str, prefix: str) -> list[str] | None:
    """Keyword names accepted by ``target``; None when it takes ``**kwargs`` or has no readable signature."""
    fn = _locate(target, prefix)  # outside the try: ConfigKeyError is a ValueError
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL and n != "self"]


def _check_target(node: dict, prefix: str) -> None:
    target = node["_target_"]
    allowed = _parameters(str(target), prefix)
    if allowed is None:
        return
    for key in node:
        if key.startswith("_") and key.endswith("_"):
            continue  # Hydra's own keys: _target_, _partial_, _convert_, _recursive_, _args_
        if key not in allowed:
            _fail(prefix, key, allowed, f"'{target}'")


def _locate(target: str, prefix: str) -> Callable[..., Any]:
    """Import a dotted path (module attribute or class attribute such as ``EventLog.read_parquet``)."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        return obj
    raise ConfigKeyError(
        f"config key '{prefix}_target_': cannot import '{target}' (is the module installed and the name spelt right?)"
    )


def _fail(prefix: str, key: str, known: list[str], where: str) -> None:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
    raise ConfigKeyError(
        f"config key '{prefix}{key}' is not a known key of {where}{hint} Known keys: {', '.join(sorted(known))}"
    )

"""Pathology rule sets as data: YAML files of groups, each identified by ALD periods, hospital diagnoses, tracer
drugs and acts, with exclusions and priorities; loading and validation with clear errors.

A rule set (``pathways/cartography/rules/<name>.yaml``, or any file of the user's) reads::

    name: cartography
    version: "2024.1"
    groups:
      - id: diabetes
        label: Diabetes
        ald: {codes: [E10, E11, E12, E13, E14]}          # ALD periods (ICD-10) overlapping the year
        hospital: {codes: [E10, E11], roles: [main, linked], lookback_years: 2}
        drugs: {codes: [A10], min_dispensations: 3}        # >= 3 net dispensations in the year
        acts: {codes: [...], min_count: 1}
        excluded_by: [other_group]                          # priority: other_group wins in the same year

Every criterion accepts ``exclude: [prefixes]`` (codes matched by ``codes`` but not counted). A group holds in a
year when any of its criteria holds, unless a group listed in ``excluded_by`` holds (after its own exclusions).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pathways.errors import PathwaysInputError

RULES_DIR = Path(__file__).resolve().parent / "rules"

#: criterion kind -> (code system, format of a code prefix in that system)
CODE_FORMATS: dict[str, tuple[str, re.Pattern[str]]] = {
    "ald": ("ICD-10", re.compile(r"^[A-Z]([0-9]{1,2}([0-9A-Z]{1,2})?)?$")),
    "hospital": ("ICD-10", re.compile(r"^[A-Z]([0-9]{1,2}([0-9A-Z]{1,2})?)?$")),
    "drugs": ("ATC", re.compile(r"^[A-Z]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?$")),
    "acts": ("CCAM", re.compile(r"^[A-Z]{1,4}([0-9]{1,3})?$")),
}
#: PMSI diagnosis roles -> EventLog categories (as :func:`pathways.io.read_snds` emits them)
ROLES = {"main": ("main_diagnosis", "diagnosis"), "linked": ("linked_diagnosis",),
         "associated": ("associated_diagnosis",)}
_CRITERION_KEYS = {
    "ald": {"codes", "exclude"},
    "hospital": {"codes", "exclude", "roles", "lookback_years"},
    "drugs": {"codes", "exclude", "min_dispensations"},
    "acts": {"codes", "exclude", "min_count", "lookback_years"},
}
_GROUP_KEYS = {"id", "label", "family", "excluded_by", *_CRITERION_KEYS}


@dataclass(frozen=True)
class Criterion:
    """One way of identifying a group: a kind (ald, hospital, drugs, acts), code prefixes, and its thresholds.

    ``min_count``: events needed in the window (net of regularisation rows for drugs); ``lookback_years``: the
    window is the year and the ``lookback_years - 1`` years before it; ``categories``: EventLog categories read.
    """

    kind: str
    codes: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    min_count: int = 1
    lookback_years: int = 1
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    """A pathology group: id, label, family, its criteria (any of them), and the groups that take priority."""

    id: str
    label: str
    criteria: tuple[Criterion, ...]
    excluded_by: tuple[str, ...] = ()
    family: str = ""


@dataclass(frozen=True)
class RuleSet:
    """A validated, versioned rule set; ``order`` lists the groups so that each comes after those excluding it."""

    name: str
    version: str
    groups: tuple[Group, ...]
    order: tuple[int, ...] = field(default=())

    @property
    def ids(self) -> list[str]:
        return [g.id for g in self.groups]

    @property
    def criteria(self) -> list[tuple[int, Criterion]]:
        """(group index, criterion) for every criterion of every group."""
        return [(i, c) for i, g in enumerate(self.groups) for c in g.criteria]


def load_rules(source: str | Path | Mapping[str, Any] | RuleSet = "cartography") -> RuleSet:
    """Load and validate a rule set: a packaged name (``"cartography"``), a YAML path, or a mapping.

    Raises
    ------
    PathwaysInputError : unknown file, or any problem :func:`validate_rules` finds.

    Examples
    --------
    >>> rules = load_rules("cartography")
    >>> rules.name, len(rules.groups) >= 20
    ('cartography', True)
    """
    if isinstance(source, RuleSet):
        return source
    if isinstance(source, Mapping):
        return validate_rules(source)
    path = Path(source)
    if not path.suffix and not path.exists():
        path = RULES_DIR / f"{source}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in RULES_DIR.glob("*.yaml"))
        raise PathwaysInputError(f"rules: no rule set {str(source)!r} (packaged rule sets: {', '.join(known)})")
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    if not isinstance(raw, Mapping):
        raise PathwaysInputError(f"rules: {path.name} must hold a mapping with 'name', 'version' and 'groups'")
    return validate_rules(raw)


def validate_rules(raw: Mapping[str, Any]) -> RuleSet:
    """Check a rule-set mapping and build the :class:`RuleSet`.

    Errors name the group and the field: unknown keys, unknown code prefixes (not a prefix of an ICD-10, ATC or
    CCAM code), a hospital criterion without ``lookback_years``, thresholds below 1, duplicate ids, ``excluded_by``
    naming an unknown group, and circular priorities.

    Examples
    --------
    >>> validate_rules({"name": "x", "version": "1", "groups": [
    ...     {"id": "a", "hospital": {"codes": ["I21"], "roles": ["main"]}}]})
    Traceback (most recent call last):
    ...
    pathways.errors.PathwaysInputError: rules: group 'a', hospital: missing lookback_years (years of PMSI history read, 1 = the year itself)
    """
    for key in ("name", "version", "groups"):
        if key not in raw:
            raise PathwaysInputError(f"rules: missing top-level key {key!r}")
    if not isinstance(raw["groups"], list) or not raw["groups"]:
        raise PathwaysInputError("rules: 'groups' must be a non-empty list")
    groups = tuple(_group(g, i) for i, g in enumerate(raw["groups"]))
    ids = [g.id for g in groups]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise PathwaysInputError(f"rules: duplicate group id(s) {dupes}")
    for g in groups:
        unknown = [x for x in g.excluded_by if x not in ids]
        if unknown:
            raise PathwaysInputError(f"rules: group {g.id!r}, excluded_by: unknown group(s) {unknown}")
    return RuleSet(str(raw["name"]), str(raw["version"]), groups, _priority_order(groups))


def _group(raw: Any, position: int) -> Group:
    if not isinstance(raw, Mapping) or "id" not in raw:
        raise PathwaysInputError(f"rules: group #{position} must be a mapping with an 'id'")
    gid = str(raw["id"])
    unknown = sorted(set(raw) - _GROUP_KEYS)
    if unknown:
        raise PathwaysInputError(f"rules: group {gid!r}: unknown key(s) {unknown}; known: {sorted(_GROUP_KEYS)}")
    criteria = tuple(_criterion(gid, kind, raw[kind]) for kind in _CRITERION_KEYS if kind in raw)
    if not criteria:
        raise PathwaysInputError(f"rules: group {gid!r} has no criterion (one of {sorted(_CRITERION_KEYS)})")
    excluded_by = raw.get("excluded_by") or []
    if isinstance(excluded_by, str):
        excluded_by = [excluded_by]
    if gid in excluded_by:
        raise PathwaysInputError(f"rules: circular priority: group {gid!r} excludes itself")
    return Group(gid, str(raw.get("label", gid)), criteria, tuple(str(x) for x in excluded_by),
                 str(raw.get("family", "")))


def _criterion(gid: str, kind: str, raw: Any) -> Criterion:
    where = f"rules: group {gid!r}, {kind}"
    if isinstance(raw, list):
        raw = {"codes": raw}
    if not isinstance(raw, Mapping):
        raise PathwaysInputError(f"{where}: must be a mapping with 'codes' (or a list of codes)")
    unknown = sorted(set(raw) - _CRITERION_KEYS[kind])
    if unknown:
        raise PathwaysInputError(f"{where}: unknown key(s) {unknown}; known: {sorted(_CRITERION_KEYS[kind])}")
    codes, exclude = _codes(where, kind, raw.get("codes")), _codes(where, kind, raw.get("exclude") or [], True)
    if kind == "hospital" and "lookback_years" not in raw:
        raise PathwaysInputError(f"{where}: missing lookback_years (years of PMSI history read, 1 = the year itself)")
    lookback = _positive(where, "lookback_years", raw.get("lookback_years", 1))
    threshold_key = {"drugs": "min_dispensations", "acts": "min_count"}.get(kind)
    min_count = _positive(where, threshold_key, raw.get(threshold_key, 1)) if threshold_key else 1
    if kind == "hospital":
        roles = raw.get("roles") or ["main", "linked"]
        bad = [r for r in roles if r not in ROLES]
        if bad:
            raise PathwaysInputError(f"{where}: unknown role(s) {bad}; known: {sorted(ROLES)}")
        categories = tuple(c for r in roles for c in ROLES[r])
    else:
        categories = {"ald": ("ald",), "drugs": ("drug",), "acts": ("act", "hospital_act")}[kind]
    return Criterion(kind, codes, exclude, min_count, lookback, categories)


def _codes(where: str, kind: str, raw: Any, allow_empty: bool = False) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or (not raw and not allow_empty):
        raise PathwaysInputError(f"{where}: 'codes' must be a non-empty list of code prefixes")
    system, pattern = CODE_FORMATS[kind]
    out = []
    for code in raw:
        text = str(code).strip().upper().replace(".", "")
        if not pattern.match(text):
            raise PathwaysInputError(f"{where}: unknown code prefix {str(code)!r} (not a prefix of an {system} code)")
        out.append(text)
    return tuple(out)


def _positive(where: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PathwaysInputError(f"{where}: {key} must be an integer >= 1, got {value!r}")
    return int(value)


def _priority_order(groups: tuple[Group, ...]) -> tuple[int, ...]:
    """Group indices so that every group comes after the groups in its ``excluded_by`` (Kahn's algorithm)."""
    index = {g.id: i for i, g in enumerate(groups)}
    pending = {i: {index[x] for x in g.excluded_by} for i, g in enumerate(groups)}
    order: list[int] = []
    while pending:
        ready = sorted(i for i, deps in pending.items() if not deps - set(order))
        if not ready:
            cycle = sorted(groups[i].id for i in pending)
            raise PathwaysInputError(f"rules: circular priority among groups {cycle} (excluded_by forms a cycle)")
        order.extend(ready)
        for i in ready:
            del pending[i]
    return tuple(order)


__all__ = ["CODE_FORMATS", "ROLES", "RULES_DIR", "Criterion", "Group", "RuleSet", "load_rules", "validate_rules"]

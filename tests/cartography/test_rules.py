"""Rule sets: the packaged one loads; validation errors name the group and the problem."""
from __future__ import annotations

import copy

import pytest

from pathways.cartography import load_rules, validate_rules
from pathways.errors import PathwaysInputError
from tests.cartography.cartography_fixtures import RULES


def _with(**group_changes):
    raw = copy.deepcopy(RULES)
    for gid, change in group_changes.items():
        group = next(g for g in raw["groups"] if g["id"] == gid)
        group.update(change)
    return raw


def test_packaged_rule_set_is_valid():
    rules = load_rules("cartography")
    assert rules.version and 20 <= len(rules.groups) <= 60
    kinds = {c.kind for _, c in rules.criteria}
    assert kinds == {"ald", "hospital", "drugs", "acts"}
    position = {gid: k for k, gid in enumerate(rules.ids[i] for i in rules.order)}
    for g in rules.groups:  # priority order: the excluding groups come first
        assert all(position[x] < position[g.id] for x in g.excluded_by)


def test_rules_from_a_file(tmp_path):
    import yaml
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(RULES))
    assert load_rules(path).ids == ["acute_mi", "chronic_cad", "diabetes", "dialysis"]
    with pytest.raises(PathwaysInputError, match="no rule set 'nope'"):
        load_rules("nope")


@pytest.mark.parametrize("change, message", [
    ({"diabetes": {"drugs": {"codes": ["A1O"], "min_dispensations": 3}}},
     r"group 'diabetes', drugs: unknown code prefix 'A1O' \(not a prefix of an ATC code\)"),
    ({"acute_mi": {"hospital": {"codes": ["121"], "lookback_years": 1}}},
     r"group 'acute_mi', hospital: unknown code prefix '121' \(not a prefix of an ICD-10 code\)"),
    ({"dialysis": {"acts": {"codes": ["JV1F"]}}}, r"unknown code prefix 'JV1F' \(not a prefix of an CCAM code\)"),
    ({"acute_mi": {"hospital": {"codes": ["I21"], "roles": ["main"]}}}, r"group 'acute_mi', hospital: missing lookback_years"),
    ({"acute_mi": {"excluded_by": ["chronic_cad"]}}, r"circular priority among groups \['acute_mi', 'chronic_cad'\]"),
    ({"diabetes": {"excluded_by": ["diabetes"]}}, r"circular priority: group 'diabetes' excludes itself"),
    ({"diabetes": {"excluded_by": ["cancer"]}}, r"group 'diabetes', excluded_by: unknown group\(s\) \['cancer'\]"),
    ({"diabetes": {"drugs": {"codes": ["A10"], "min_dispensations": 0}}}, r"min_dispensations must be an integer >= 1"),
    ({"diabetes": {"drug": {"codes": ["A10"]}}}, r"group 'diabetes': unknown key\(s\) \['drug'\]"),
    ({"acute_mi": {"hospital": {"codes": ["I21"], "roles": ["primary"], "lookback_years": 1}}},
     r"unknown role\(s\) \['primary'\]"),
])
def test_validation_errors(change, message):
    with pytest.raises(PathwaysInputError, match=message):
        validate_rules(_with(**change))


def test_longer_cycle_and_duplicates():
    raw = _with(acute_mi={"excluded_by": ["dialysis"]}, dialysis={"excluded_by": ["diabetes"]},
                diabetes={"excluded_by": ["chronic_cad"]})
    with pytest.raises(PathwaysInputError, match="circular priority"):
        validate_rules(raw)
    raw = copy.deepcopy(RULES)
    raw["groups"].append(copy.deepcopy(raw["groups"][0]))
    with pytest.raises(PathwaysInputError, match=r"duplicate group id\(s\) \['acute_mi'\]"):
        validate_rules(raw)
    with pytest.raises(PathwaysInputError, match="missing top-level key 'version'"):
        validate_rules({"name": "x", "groups": []})

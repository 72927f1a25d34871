import numpy as np
import pandas as pd
import pytest

from pathways.data import EventLog, Vocabulary
from pathways.data.hierarchy import (
    ICD10_CHAPTERS,
    atc_level,
    atc_rollup,
    icd10_category,
    icd10_chapter,
    icd10_rollup,
    is_atc,
    is_ccam,
    is_icd10,
    rollup_codes,
    rollup_log,
)
from pathways.errors import PathwaysDataWarning, PathwaysInputError


# ---------------------------------------------------------------------------------------------------------------
# hand cases
# ---------------------------------------------------------------------------------------------------------------
def test_atc_levels_are_prefixes_1_3_4_5_7():
    assert [atc_level("N02BE01", k) for k in range(1, 6)] == ["N", "N02", "N02B", "N02BE", "N02BE01"]
    assert atc_level("N02", 4) == "N02"  # already coarser: unchanged
    assert atc_level("DEQP003", 1) == "DEQP003"  # CCAM act: not ATC
    assert atc_level("I214", 1) == "I214"  # ICD-10 sub-category: not ATC


@pytest.mark.parametrize("code,chapter", [
    ("A047", "I"), ("B99", "I"), ("C509", "II"), ("D48", "II"), ("D62", "III"), ("E119", "IV"), ("F329", "V"),
    ("G309", "VI"), ("H251", "VII"), ("H60", "VIII"), ("I214", "IX"), ("I99", "IX"), ("J449", "X"), ("K922", "XI"),
    ("L270", "XII"), ("M6282", "XIII"), ("N179", "XIV"), ("O80", "XV"), ("P07", "XVI"), ("Q21", "XVII"),
    ("R55", "XVIII"), ("S720", "XIX"), ("T783", "XIX"), ("V01", "XX"), ("Y98", "XX"), ("Z00", "XXI"),
    ("U071", "XXII"), ("I21.4", "IX"),
])
def test_icd10_chapters_follow_who_ranges(code, chapter):
    assert icd10_chapter(code) == chapter


def test_icd10_category_and_non_icd_codes():
    assert icd10_category("E11.9") == "E11"
    assert icd10_category("K93820") == "K93"
    assert icd10_category("A10BA02") == "A10BA02"
    assert icd10_chapter("A10B") == "A10B"  # ATC level 3 has a letter in 4th position: not ICD-10
    assert icd10_chapter("MCO_STAY") == "MCO_STAY"


def test_shape_masks_separate_systems():
    codes = ["A10BA02", "A10B", "E119", "E11", "C09", "K07A", "DEQP003", "MCO_STAY"]
    assert is_atc(codes).tolist() == [True, True, False, False, True, False, False, False]
    assert is_icd10(codes).tolist() == [False, False, True, True, True, True, False, False]
    assert is_ccam(codes).tolist() == [False, False, False, False, False, False, True, False]


def test_vocabulary_rollup_with_factories_sums_counts():
    vocab = Vocabulary(["A10BA02", "A10BB12", "C09AA05", "E119", "E785"], counts=[5, 3, 2, 7, 1])
    new, old_to_new = vocab.rollup(atc_rollup(3))
    assert new.codes.tolist() == ["A10B", "C09A", "E119", "E785"]
    assert new.counts.tolist() == [8, 2, 7, 1]
    assert new.codes[old_to_new].tolist() == ["A10B", "A10B", "C09A", "E119", "E785"]
    chapters, _ = vocab.rollup(icd10_rollup("chapter"))
    assert chapters.codes.tolist() == ["A10BA02", "A10BB12", "C09AA05", "IV"]


def test_vectorised_rollup_matches_scalar_functions():
    codes = np.array(["A10BA02", "E119", "DEQP003", "I214", "N02", "K93820", "S720"], dtype=object)
    assert rollup_codes(codes, "atc", 2).tolist() == [atc_level(c, 2) for c in codes]
    assert rollup_codes(codes, "icd10", "chapter").tolist() == [icd10_chapter(c) for c in codes]
    assert rollup_codes(codes, "icd10", "category").tolist() == [icd10_category(c) for c in codes]


@pytest.mark.parametrize("call", [
    lambda: atc_level("A10BA02", 6),
    lambda: atc_rollup(0),
    lambda: icd10_rollup("block"),
    lambda: rollup_codes(["A10"], "ccam", 1),
    lambda: rollup_codes(["E119"], "icd10", 3),
])
def test_bad_levels_raise(call):
    with pytest.raises(PathwaysInputError, match="level|system"):
        call()


# ---------------------------------------------------------------------------------------------------------------
# roll-up of an event log with mixed systems
# ---------------------------------------------------------------------------------------------------------------
def _mixed_log(with_category: bool = True) -> EventLog:
    events = pd.DataFrame({
        "patient_id": [1, 1, 1, 1, 2, 2, 2, 2],
        "time": [0.0, 1.0, 2.0, 3.0, 0.0, 4.0, 5.0, 6.0],
        "code": ["A10BA02", "A10BB12", "E119", "DEQP003", "C09AA05", "C09", "I214", "MCO_STAY"],
        "category": ["drug", "drug", "diagnosis", "act", "drug", "diagnosis", "diagnosis", "stay"],
        "value": [1.0, 2.0, np.nan, np.nan, 1.0, np.nan, np.nan, np.nan],
    })
    if not with_category:
        events = events.drop(columns="category")
    return EventLog.from_pandas(events)


def test_rollup_log_atc_leaves_other_systems_untouched():
    log = _mixed_log()
    out = rollup_log(log, "atc", 3)
    assert out.code_strings().tolist() == ["A10B", "A10B", "E119", "DEQP003", "C09A", "C09", "I214", "MCO_STAY"]
    assert out.n_events == log.n_events
    np.testing.assert_array_equal(out.value, log.value)
    assert list(out.category) == list(log.category)
    assert out.vocab.counts[out.vocab.encode(["A10B"])[0]] == 2


def test_rollup_log_icd10_chapter_uses_event_category():
    out = rollup_log(_mixed_log(), "icd10", "chapter")
    # diagnosis C09 (tonsil neoplasm) -> chapter II; drugs, acts and stays untouched
    assert out.code_strings().tolist() == ["A10BA02", "A10BB12", "IV", "DEQP003", "C09AA05", "II", "IX", "MCO_STAY"]


def test_rollup_log_collision_between_systems_needs_prefix():
    log = _mixed_log()
    with pytest.raises(PathwaysInputError, match="collide.*'C09'.*prefix"):
        rollup_log(log, "atc", 2)  # ATC C09AA05 -> C09 would merge with the ICD-10 diagnosis C09
    out = rollup_log(log, "atc", 2, prefix="ATC:")
    assert "ATC:C09" in out.vocab and "C09" in out.vocab


def test_rollup_log_without_categories_leaves_ambiguous_codes_and_warns():
    log = _mixed_log(with_category=False)
    with pytest.warns(PathwaysDataWarning, match="3-character codes"):
        out = rollup_log(log, "icd10", "chapter")
    assert out.code_strings().tolist() == ["A10BA02", "A10BB12", "IV", "DEQP003", "C09AA05", "C09", "IX", "MCO_STAY"]


def test_rollup_log_bad_system_or_level():
    with pytest.raises(PathwaysInputError, match="system"):
        rollup_log(_mixed_log(), "ccam", 1)
    with pytest.raises(PathwaysInputError, match="level"):
        rollup_log(_mixed_log(), "icd10", "block")


def test_rollup_log_keeps_sort_order_and_extras():
    events = pd.DataFrame({"patient_id": [1, 1], "time": [0.0, 0.0], "code": ["B01AC06", "A10BA02"],
                           "category": ["drug", "drug"], "prescriber": [7, 9]})
    log = EventLog.from_pandas(events, extra_columns=["prescriber"])
    out = rollup_log(log, "atc", 1)
    assert out.code_strings().tolist() == ["A", "B"]
    assert out.extras["prescriber"].tolist() == [9, 7]


# ---------------------------------------------------------------------------------------------------------------
# real code lists from ../shared (skipped when absent)
# ---------------------------------------------------------------------------------------------------------------
def _read_list(path):
    return pd.read_csv(path, sep=";", dtype=str, encoding="utf-8")


def test_real_atc_lists_roll_up_to_their_parent_levels(shared_dir):
    folder = shared_dir / "data" / "snds" / "nomenclatures" / "OPENMEDIC"
    levels = {k: set(_read_list(folder / f"openmedic_ATC{k}.csv").iloc[:, 0].str.strip()) for k in range(1, 6)}
    atc5 = np.array(sorted(c for c in levels[5] if len(c) == 7), dtype=object)
    assert atc5.size > 1000 and is_atc(atc5).all()
    for k in range(1, 5):
        parents = set(rollup_codes(atc5, "atc", k).tolist())
        # every level-k parent of a real ATC5 code is a real level-k class (a few OPENMEDIC gaps allowed)
        assert len(parents - levels[k]) <= 0.02 * len(parents), sorted(parents - levels[k])[:5]


def test_real_icd10_list_chapters_and_categories(shared_dir):
    table = _read_list(shared_dir / "data" / "snds" / "nomenclatures" / "ORAVAL" / "IR_CIM_V.csv")
    codes = table["CIM_COD"].to_numpy(dtype=object)
    shaped = is_icd10(codes)
    assert shaped.mean() > 0.999  # only placeholder codes such as 'XXX' are not ICD-10 shaped
    cats = rollup_codes(codes[shaped], "icd10", "category")
    np.testing.assert_array_equal(cats, table["CAT_CIM_COD"].to_numpy(dtype=object)[shaped])
    chapters = rollup_codes(codes[shaped], "icd10", "chapter")
    assert set(chapters) <= {c[0] for c in ICD10_CHAPTERS}
    assert len(set(chapters)) == 22
    lookup = dict(zip(codes[shaped], chapters))
    assert (lookup["I219"], lookup["E119"], lookup["S7200"] if "S7200" in lookup else "XIX") == ("IX", "IV", "XIX")


def test_real_ccam_codes_are_not_touched(shared_dir):
    table = pd.read_csv(shared_dir / "data" / "snds" / "nomenclatures" / "ATIH" / "IR_CCAM_V63.csv", sep=";",
                        dtype=str)
    codes = table.iloc[:, 0].to_numpy(dtype=object)
    assert is_ccam(codes).mean() > 0.99
    assert not is_atc(codes).any() and not is_icd10(codes).any()
    np.testing.assert_array_equal(rollup_codes(codes, "atc", 1), codes)
    np.testing.assert_array_equal(rollup_codes(codes, "icd10", "chapter"), codes)

"""Code hierarchies: roll ATC drug codes and ICD-10 diagnosis codes up to coarser levels.

Two kinds of entry points:

* string functions (:func:`atc_level`, :func:`icd10_chapter`, :func:`icd10_category`) and their factories
  (:func:`atc_rollup`, :func:`icd10_rollup`) that plug into :meth:`pathways.data.Vocabulary.rollup`;
* :func:`rollup_log`, which rolls the codes of one coding system inside an :class:`~pathways.data.EventLog` and
  leaves every other system (CCAM acts, stays, the other of ATC / ICD-10, ...) untouched.

Everything works on the vocabulary (a few thousand strings at most), then remaps the event code array with one
integer gather, so rolling up a log of any size costs one pass over its code column.

Code shapes (no dots in SNDS; a dot after the ICD-10 category is accepted):

========  ==========================  ======================================
system    shape                       examples
========  ==========================  ======================================
ATC       ``A``, ``A10``, ``A10B``,   level 1 to 5 = prefix length 1, 3, 4, 5, 7
          ``A10BA``, ``A10BA02``
ICD-10    ``E11``, ``E119``,          category = 3 characters, chapter = WHO
          ``E11.9``, ``K93820``       chapter (roman numeral) of the category
========  ==========================  ======================================

A 3-character code such as ``C09`` is both an ATC level-2 class (ACE inhibitors) and an ICD-10 category
(malignant neoplasm of tonsil): only the event category, or the rest of the vocabulary, can tell them apart
(see :func:`rollup_log`).
"""
from __future__ import annotations

import logging
import re
import warnings
from typing import Callable, Iterable, Literal

import numpy as np
import pandas as pd

from pathways.data.eventlog import EventLog
from pathways.data.vocabulary import Vocabulary  # noqa: F401  (used by the doctests)
from pathways.errors import PathwaysDataWarning, PathwaysInputError

logger = logging.getLogger("pathways")

#: ATC level -> length of the code prefix that identifies it.
ATC_PREFIX_LENGTHS: dict[int, int] = {1: 1, 2: 3, 3: 4, 4: 5, 5: 7}

#: WHO ICD-10 chapters: (roman numeral, first category, last category, title).
ICD10_CHAPTERS: tuple[tuple[str, str, str, str], ...] = (
    ("I", "A00", "B99", "Certain infectious and parasitic diseases"),
    ("II", "C00", "D48", "Neoplasms"),
    ("III", "D50", "D89", "Diseases of the blood and blood-forming organs and certain immune disorders"),
    ("IV", "E00", "E90", "Endocrine, nutritional and metabolic diseases"),
    ("V", "F00", "F99", "Mental and behavioural disorders"),
    ("VI", "G00", "G99", "Diseases of the nervous system"),
    ("VII", "H00", "H59", "Diseases of the eye and adnexa"),
    ("VIII", "H60", "H95", "Diseases of the ear and mastoid process"),
    ("IX", "I00", "I99", "Diseases of the circulatory system"),
    ("X", "J00", "J99", "Diseases of the respiratory system"),
    ("XI", "K00", "K93", "Diseases of the digestive system"),
    ("XII", "L00", "L99", "Diseases of the skin and subcutaneous tissue"),
    ("XIII", "M00", "M99", "Diseases of the musculoskeletal system and connective tissue"),
    ("XIV", "N00", "N99", "Diseases of the genitourinary system"),
    ("XV", "O00", "O99", "Pregnancy, childbirth and the puerperium"),
    ("XVI", "P00", "P96", "Certain conditions originating in the perinatal period"),
    ("XVII", "Q00", "Q99", "Congenital malformations, deformations and chromosomal abnormalities"),
    ("XVIII", "R00", "R99", "Symptoms, signs and abnormal clinical and laboratory findings, not elsewhere classified"),
    ("XIX", "S00", "T98", "Injury, poisoning and certain other consequences of external causes"),
    ("XX", "V01", "Y98", "External causes of morbidity and mortality"),
    ("XXI", "Z00", "Z99", "Factors influencing health status and contact with health services"),
    ("XXII", "U00", "U99", "Codes for special purposes"),
)

#: Event categories that carry each coding system in pathways logs (see ``EventLog.category``).
SYSTEM_CATEGORIES: dict[str, tuple[str, ...]] = {"atc": ("drug",), "icd10": ("diagnosis",)}

#: First letters of ATC anatomical main groups (W = homeopathy, a French OPENMEDIC extension).
ATC_GROUPS = "ABCDGHJLMNPRSVW"
_ATC_RE = re.compile(rf"^[{ATC_GROUPS}](?:\d\d(?:[A-Z](?:[A-Z](?:\d\d)?)?)?)?$")
# ICD-10: letter, two digits, optional dot, then a digit and up to 3 more characters (French extensions). A letter
# in 4th position (French CIM-10 K07A...) is accepted only after a first letter that starts no ATC group, so that
# codes of 4 characters or more never match both systems (A10B is ATC level 3, E119 ICD-10).
_NON_ATC = "".join(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in ATC_GROUPS)
_ICD10_RE = re.compile(rf"^(?:[A-Z]\d\d(?:\.?\d[0-9A-Z+]{{0,3}})?|[{_NON_ATC}]\d\d\.?[A-Z][0-9A-Z+]{{0,3}})$")
_CCAM_RE = re.compile(r"^[A-Z]{4}\d{3}$")
_AMBIGUOUS_RE = re.compile(rf"^[{ATC_GROUPS}]\d\d$")

_ICD10_LEVELS = ("chapter", "category")


def _category_key(category: str) -> int:
    """Integer order of a 3-character ICD-10 category: letter * 100 + number (``"D50"`` -> 350)."""
    return (ord(category[0]) - ord("A")) * 100 + int(category[1:3])


# Chapter lookup by the start of each chapter: categories in the few gaps between WHO ranges (e.g. ``K94``, used
# by some national extensions) fall in the chapter that precedes them; ``V00`` starts chapter XX.
_CHAPTER_STARTS = np.array(sorted(_category_key("V00" if c[0] == "XX" else c[1]) for c in ICD10_CHAPTERS))
_CHAPTER_BY_START = {
    _category_key("V00" if numeral == "XX" else first): numeral for numeral, first, _, _ in ICD10_CHAPTERS
}
_CHAPTER_NAMES = np.array([_CHAPTER_BY_START[k] for k in _CHAPTER_STARTS], dtype=object)


# ----------------------------------------------------------------------------------------------------------------
# shape tests (vectorised over arrays of strings)
# ----------------------------------------------------------------------------------------------------------------
def _as_str_series(codes: Iterable[str]) -> pd.Series:
    return pd.Series(np.asarray(list(codes) if not isinstance(codes, np.ndarray) else codes, dtype=object),
                     dtype=object).astype(str).str.strip().str.upper()


def is_atc(codes: Iterable[str]) -> np.ndarray:
    """Boolean mask of codes shaped like an ATC code of any level (1 to 5).

    Examples
    --------
    >>> is_atc(["A10BA02", "A10", "E119", "DEQP003"]).tolist()
    [True, True, False, False]
    """
    return _as_str_series(codes).str.fullmatch(_ATC_RE.pattern).to_numpy(dtype=bool)


def is_icd10(codes: Iterable[str]) -> np.ndarray:
    """Boolean mask of codes shaped like an ICD-10 (CIM-10) code: category or sub-category, dot optional.

    Examples
    --------
    >>> is_icd10(["E11", "E119", "E11.9", "A10B", "DEQP003"]).tolist()
    [True, True, True, False, False]
    """
    return _as_str_series(codes).str.fullmatch(_ICD10_RE.pattern).to_numpy(dtype=bool)


def is_ccam(codes: Iterable[str]) -> np.ndarray:
    """Boolean mask of codes shaped like a CCAM medical act (4 letters + 3 digits, e.g. ``DEQP003``)."""
    return _as_str_series(codes).str.fullmatch(_CCAM_RE.pattern).to_numpy(dtype=bool)


# ----------------------------------------------------------------------------------------------------------------
# single-code transforms (for Vocabulary.rollup)
# ----------------------------------------------------------------------------------------------------------------
def _check_atc_level(level: int) -> int:
    if level not in ATC_PREFIX_LENGTHS:
        raise PathwaysInputError(f"level: ATC levels are 1 to 5, got {level!r}")
    return ATC_PREFIX_LENGTHS[level]


def atc_level(code: str, level: int) -> str:
    """ATC class of ``code`` at ``level`` (1-5); codes that are not ATC-shaped, or already coarser, are unchanged.

    Examples
    --------
    >>> [atc_level("A10BA02", k) for k in (1, 2, 3, 4, 5)]
    ['A', 'A10', 'A10B', 'A10BA', 'A10BA02']
    >>> atc_level("DEQP003", 3), atc_level("A10", 4)
    ('DEQP003', 'A10')
    """
    length = _check_atc_level(level)
    text = str(code).strip().upper()
    return text[:length] if _ATC_RE.fullmatch(text) else str(code)


def icd10_category(code: str) -> str:
    """3-character ICD-10 category of ``code`` (``"E11.9"`` -> ``"E11"``); other codes are unchanged."""
    text = str(code).strip().upper()
    return text[:3] if _ICD10_RE.fullmatch(text) else str(code)


def icd10_chapter(code: str) -> str:
    """WHO ICD-10 chapter (roman numeral) of ``code``, e.g. ``"I214"`` -> ``"IX"``; other codes are unchanged.

    Examples
    --------
    >>> icd10_chapter("I214"), icd10_chapter("D62"), icd10_chapter("S720"), icd10_chapter("N02BE01")
    ('IX', 'III', 'XIX', 'N02BE01')
    """
    text = str(code).strip().upper()
    if not _ICD10_RE.fullmatch(text):
        return str(code)
    return str(_CHAPTER_NAMES[np.searchsorted(_CHAPTER_STARTS, _category_key(text[:3]), side="right") - 1])


def atc_rollup(level: int) -> Callable[[str], str]:
    """Code transform for :meth:`Vocabulary.rollup` mapping ATC codes to ``level`` (1-5), others unchanged.

    Examples
    --------
    >>> vocab = Vocabulary(["A10BA02", "A10BB12", "I10"])
    >>> new, old_to_new = vocab.rollup(atc_rollup(3))
    >>> new.codes.tolist(), old_to_new.tolist()
    (['A10B', 'I10'], [0, 0, 1])
    """
    _check_atc_level(level)
    return lambda code: atc_level(code, level)


def icd10_rollup(level: Literal["chapter", "category"] = "category") -> Callable[[str], str]:
    """Code transform for :meth:`Vocabulary.rollup` mapping ICD-10 codes to their chapter or 3-character category."""
    if level not in _ICD10_LEVELS:
        raise PathwaysInputError(f"level: ICD-10 levels are {_ICD10_LEVELS}, got {level!r}")
    return icd10_chapter if level == "chapter" else icd10_category


# ----------------------------------------------------------------------------------------------------------------
# vectorised roll-up of many codes
# ----------------------------------------------------------------------------------------------------------------
def rollup_codes(codes: Iterable[str], system: Literal["atc", "icd10"], level: int | str) -> np.ndarray:
    """Roll up an array of codes of one system (vectorised); codes not shaped like that system are unchanged.

    Parameters
    ----------
    codes : code strings.
    system : ``"atc"`` (level 1-5) or ``"icd10"`` (level ``"chapter"`` or ``"category"``).
    level : target level.

    Returns
    -------
    np.ndarray[object] of rolled-up codes, same length as ``codes``.
    """
    raw = np.asarray(list(codes) if not isinstance(codes, np.ndarray) else codes, dtype=object)
    text = _as_str_series(raw)
    out = raw.astype(str).astype(object)
    if system == "atc":
        length = _check_atc_level(int(level) if not isinstance(level, str) or level.isdigit() else -1)
        member = text.str.fullmatch(_ATC_RE.pattern).to_numpy(dtype=bool)
        out[member] = text[member].str[:length].to_numpy(dtype=object)
        return out
    if system != "icd10":
        raise PathwaysInputError(f"system: expected 'atc' or 'icd10', got {system!r}")
    if level not in _ICD10_LEVELS:
        raise PathwaysInputError(f"level: ICD-10 levels are {_ICD10_LEVELS}, got {level!r}")
    member = text.str.fullmatch(_ICD10_RE.pattern).to_numpy(dtype=bool)
    category = text[member].str[:3]
    if level == "category":
        out[member] = category.to_numpy(dtype=object)
        return out
    keys = (category.str[0].map(ord).to_numpy(dtype=np.int64) - ord("A")) * 100 + category.str[1:3].astype(
        np.int64
    ).to_numpy()
    out[member] = _CHAPTER_NAMES[np.searchsorted(_CHAPTER_STARTS, keys, side="right") - 1]
    return out


def _system_members(log: "EventLog", system: str, categories: tuple[str, ...] | None) -> np.ndarray:
    """Boolean mask over the vocabulary: codes that belong to ``system`` in this log.

    A code belongs to the system when it has the system's shape and, if the log carries event categories, most of
    its events have one of the system's categories. Without categories, ambiguous 3-character codes (ATC level 2
    vs ICD-10 category) count as members only if the vocabulary has no unambiguous code of the other system.
    """
    codes = log.vocab.codes
    shape = is_atc(codes) if system == "atc" else is_icd10(codes)
    if log.vocab.oov_index is not None:
        shape[log.vocab.oov_index] = False
    wanted = SYSTEM_CATEGORIES[system] if categories is None else tuple(categories)
    event_cat = pd.Series(log.category)
    if log.n_events and event_cat.notna().any():
        in_system = event_cat.isin(wanted).to_numpy(dtype=bool)
        n_in = np.bincount(log.code[in_system], minlength=log.n_codes)
        n_all = np.bincount(log.code, minlength=log.n_codes)
        return shape & (2 * n_in > n_all)
    ambiguous = shape & _as_str_series(codes).str.fullmatch(_AMBIGUOUS_RE.pattern).to_numpy(dtype=bool)
    other = (is_icd10(codes) if system == "atc" else is_atc(codes)) & ~ambiguous
    if ambiguous.any() and other.any():
        warnings.warn(
            f"rollup_log: {int(ambiguous.sum())} 3-character codes (e.g. {codes[ambiguous][0]!r}) could be ATC or "
            f"ICD-10 and the log has no event categories; they are left unchanged",
            PathwaysDataWarning,
            stacklevel=3,
        )
        return shape & ~ambiguous
    return shape


def rollup_log(
    log: "EventLog",
    system: Literal["atc", "icd10"] = "atc",
    level: int | str = 3,
    *,
    categories: Iterable[str] | None = None,
    prefix: str = "",
) -> "EventLog":
    """Return a new EventLog whose codes of one system are rolled up; codes of other systems are untouched.

    Parameters
    ----------
    log : the event log.
    system : ``"atc"`` or ``"icd10"``.
    level : ATC level 1-5 (prefix length 1, 3, 4, 5, 7) or ICD-10 ``"chapter"`` / ``"category"``.
    categories : event categories that carry this system (default: ``("drug",)`` for ATC, ``("diagnosis",)``
        for ICD-10). Used only when the log has event categories.
    prefix : string prepended to every rolled-up code, e.g. ``"ATC2:"``, to keep ATC level-2 classes apart from
        ICD-10 categories with the same spelling (``C09``).

    Returns
    -------
    EventLog with a new vocabulary (counts summed over merged codes); events, patients, values, categories and
    extras are kept. Events that become identical after the roll-up are kept (they count twice).

    Raises
    ------
    PathwaysInputError
        If a rolled-up code collides with a code of another system already in the vocabulary (pass ``prefix``).

    Examples
    --------
    >>> import pandas as pd
    >>> from pathways.data import EventLog
    >>> events = pd.DataFrame({"patient_id": [1, 1, 1], "time": [0.0, 5.0, 9.0],
    ...                        "code": ["A10BA02", "A10BB12", "E119"],
    ...                        "category": ["drug", "drug", "diagnosis"]})
    >>> rollup_log(EventLog.from_pandas(events), "atc", 3).code_strings().tolist()
    ['A10B', 'A10B', 'E119']
    """
    if system not in SYSTEM_CATEGORIES:
        raise PathwaysInputError(f"system: expected 'atc' or 'icd10', got {system!r}")
    cats = None if categories is None else tuple(str(c) for c in categories)
    member = _system_members(log, system, cats)
    old_codes = log.vocab.codes
    new_codes = old_codes.astype(object).copy()
    if member.any():
        rolled = rollup_codes(old_codes[member], system, level)
        new_codes[member] = np.array([prefix + c for c in rolled], dtype=object) if prefix else rolled
    _check_collisions(old_codes, new_codes, member)
    mapping = dict(zip(old_codes.tolist(), new_codes.tolist()))
    vocab, old_to_new = log.vocab.rollup(mapping.__getitem__)
    logger.info("rollup_log: %s level %s, %d -> %d codes", system, level, log.n_codes, len(vocab))
    return EventLog.from_arrays(
        log.patient, log.time, old_to_new[log.code], vocab, log.patients, end=log.end, value=log.value,
        category=log.category, time_unit=log.time_unit, origin=log.origin, extras=log.extras,
    )


def _check_collisions(old_codes: np.ndarray, new_codes: np.ndarray, member: np.ndarray) -> None:
    """Refuse to merge a rolled-up code with an untouched code of another system that has the same spelling."""
    untouched = set(old_codes[~member].tolist())
    clash = np.array([c in untouched and c != o for c, o in zip(new_codes[member], old_codes[member])], dtype=bool)
    if clash.any():
        example = new_codes[member][clash][0]
        raise PathwaysInputError(
            f"level: {int(clash.sum())} rolled-up codes collide with codes of another system in the vocabulary, "
            f"e.g. {example!r}; pass prefix='...' to keep them apart"
        )


__all__ = [
    "ATC_GROUPS",
    "ATC_PREFIX_LENGTHS",
    "ICD10_CHAPTERS",
    "SYSTEM_CATEGORIES",
    "atc_level",
    "atc_rollup",
    "icd10_category",
    "icd10_chapter",
    "icd10_rollup",
    "is_atc",
    "is_ccam",
    "is_icd10",
    "rollup_codes",
    "rollup_log",
]

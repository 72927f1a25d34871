"""Checks of EventLog input: canonical columns, invalid and duplicate rows, patients and observation windows.

Every check names the problem and the first offending rows (never an identifier): see
:func:`pathways.errors.describe_bad_rows`. ``rule`` arguments are the user's choices of :meth:`EventLog.from_pandas`.
"""
from __future__ import annotations

import logging
import warnings
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from pathways.data.dates import TimeConverter
from pathways.errors import PathwaysDataWarning, PathwaysInputError, describe_bad_rows

logger = logging.getLogger("pathways")

EVENT_COLUMNS = ("patient_id", "time", "code")
OPTIONAL_EVENT_COLUMNS = ("end", "value", "category")
PATIENT_COLUMNS = ("patient_id", "birth", "sex", "death", "start", "end")
PATIENT_TIME_COLUMNS = ("birth", "death", "start", "end")
_SEX_MAP = {"M": "M", "F": "F", "1": "M", "2": "F", "MALE": "M", "FEMALE": "F", "H": "M"}


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise PathwaysInputError(f"{name}: expected one of {allowed}, got {value!r}")


def canonical_frame(frame: pd.DataFrame, mapping: Mapping[str, str] | None, required: Iterable[str],
                     optional: Iterable[str], extra: list[str], what: str) -> pd.DataFrame:
    """Select and rename columns to canonical names; error names every missing column."""
    mapping = dict(mapping or {})
    wanted = list(required) + [c for c in optional if mapping.get(c, c) in frame.columns] + extra
    missing = [f"{c}" + (f" (mapped from '{mapping[c]}')" if c in mapping else "")
               for c in wanted if mapping.get(c, c) not in frame.columns]
    if missing:
        found = [c for c in required if mapping.get(c, c) in frame.columns]
        # none found: the first line is probably data (patient ids as "column names"), so only count them
        available = (f"available: {list(map(str, frame.columns))[:20]}" if found else
                     f"none found among the {frame.shape[1]} columns: does the first line hold the column names?")
        raise PathwaysInputError(f"{what}: missing column(s) {', '.join(missing)}; {available}")
    # Categoricals stay categoricals: Arrow ids and codes arrive dictionary-encoded (no per-row strings)
    return pd.DataFrame({c: _values(frame[mapping.get(c, c)]) for c in wanted})


def _values(column: pd.Series) -> Any:
    return column.array if isinstance(column.dtype, pd.CategoricalDtype) else column.to_numpy()


def apply_invalid(checks: Mapping[str, tuple[np.ndarray, Any, str]] | list[tuple[str, tuple[np.ndarray, Any, str]]],
                  rule: str, argument: str = "on_invalid") -> np.ndarray:
    """Raise on the first invalid check (rule 'raise') or return the mask of rows to keep (rule 'drop'; rule
    'keep' warns and keeps them). ``argument`` is the user's switch named in the message."""
    items = list(checks.items() if isinstance(checks, Mapping) else checks)
    if not items:
        return np.ones(0, dtype=bool)
    keep = np.ones(len(items[0][1][0]), dtype=bool)
    for name, (bad, values, what) in items:
        if not bad.any():
            continue
        message = describe_bad_rows(name, bad, values, what)
        if rule == "raise":
            raise PathwaysInputError(message + f" (pass {argument}='drop' to drop them with a warning)")
        verb = "kept" if rule == "keep" else "dropped"
        warnings.warn(f"{verb}: " + message, PathwaysDataWarning, stacklevel=4)
        logger.info("%s: %s", verb, message)
        if rule != "keep":
            keep &= ~bad
    return keep


def handle_duplicates(frame: pd.DataFrame, rule: str) -> pd.DataFrame:
    if rule == "keep":
        return frame
    dup = frame.duplicated().to_numpy()
    if not dup.any():
        return frame
    message = describe_bad_rows("events", dup, None, "duplicate an earlier row exactly")
    if rule == "raise":
        raise PathwaysInputError(message + " (pass duplicates='drop' or 'keep')")
    warnings.warn("dropped: " + message, PathwaysDataWarning, stacklevel=4)
    return frame[~dup]


def prepare_patients(patients: pd.DataFrame | None, mapping: Mapping[str, str] | None,
                      converter: TimeConverter) -> pd.DataFrame | None:
    if patients is None:
        return None
    if not isinstance(patients, pd.DataFrame):
        raise PathwaysInputError(f"patients: expected a pandas DataFrame, got {type(patients).__name__}")
    mapping = dict(mapping or {})
    renamed = patients.rename(columns={v: k for k, v in mapping.items()})
    if "patient_id" not in renamed:
        raise PathwaysInputError(f"patients: missing column 'patient_id' among the {patients.shape[1]} columns "
                                 f"(mapped with patient_columns?)")
    renamed = renamed.reset_index(drop=True)
    ids = renamed["patient_id"]
    if ids.isna().any():
        raise PathwaysInputError(describe_bad_rows("patients.patient_id", ids.isna().to_numpy(), None, "are missing"))
    if ids.duplicated().any():
        raise PathwaysInputError(describe_bad_rows("patients.patient_id", ids.duplicated().to_numpy(), None,
                                                   "repeat an earlier patient"))
    for col in PATIENT_TIME_COLUMNS:
        if col in renamed:
            values, bad = converter.convert(renamed[col])
            if bad.any():
                raise PathwaysInputError(describe_bad_rows(f"patients.{col}", bad, None,  # may hold swapped ids
                                                           "are unparseable or out of the valid date range"))
            renamed[col] = values
    if "sex" in renamed:
        renamed["sex"] = _normalise_sex(renamed["sex"])
    return renamed


def _normalise_sex(values: pd.Series) -> pd.Series:
    raw = values.astype("string").str.strip().str.upper()
    mapped = raw.map(_SEX_MAP)
    unknown = raw.notna() & mapped.isna() & ~raw.isin(["", "0", "9", "U", "UNKNOWN", "NAN"])
    if unknown.any():
        raise PathwaysInputError(describe_bad_rows("patients.sex", unknown.to_numpy(), None,
                                                   "are not a known sex code (M/F, 1=M/2=F, 0/9/U=unknown)"))
    return pd.Series(pd.Categorical(mapped, categories=["F", "M"]), index=values.index)


def index_patients(ids: pd.Series, patients: pd.DataFrame | None,
                    on_invalid: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Integer patient index per event (-1 = unknown patient, dropped) and the patients table in index order."""
    categorical = isinstance(ids.dtype, pd.CategoricalDtype)
    if categorical:  # work on the distinct ids, then gather by category code
        codes = ids.cat.codes.to_numpy(np.int64)
        used = np.flatnonzero(np.bincount(codes, minlength=len(ids.cat.categories)))
        distinct = pd.Series(ids.cat.categories[used])
    if patients is None:
        rank, uniques = pd.factorize(distinct if categorical else ids, sort=True)
        if not categorical:
            return rank.astype(np.int64), pd.DataFrame({"patient_id": uniques})
        lookup = np.full(len(ids.cat.categories), -1, dtype=np.int64)
        lookup[used] = rank
        return lookup[codes], pd.DataFrame({"patient_id": uniques})
    if categorical:
        lookup = np.full(len(ids.cat.categories), -1, dtype=np.int64)
        lookup[used] = _positions(distinct, pd.Index(patients["patient_id"]))
        pos = lookup[codes]
    else:
        pos = _positions(ids, pd.Index(patients["patient_id"]))
    unknown = pos < 0
    if unknown.any():
        message = describe_bad_rows("patient_id", unknown, None, "refer to patients absent from the patients table")
        if on_invalid == "raise":
            raise PathwaysInputError(message + " (pass on_invalid='drop' to drop them with a warning)")
        warnings.warn("dropped: " + message, PathwaysDataWarning, stacklevel=4)
    return pos, patients


def _positions(ids: pd.Series, index: pd.Index) -> np.ndarray:
    if ids.dtype != index.dtype and pd.api.types.is_numeric_dtype(index) != pd.api.types.is_numeric_dtype(ids):
        ids, index = ids.astype(str), pd.Index(index.astype(str))
    return index.get_indexer(ids).astype(np.int64)


def complete_patients(patients: pd.DataFrame, patient: np.ndarray, time: np.ndarray,
                       end: np.ndarray) -> pd.DataFrame:
    """Fill absent patient columns: unknown birth/sex/death, observation window from first to last event."""
    n = len(patients)
    first = np.full(n, np.nan)
    last = np.full(n, np.nan)
    chunk = 1 << 20  # by chunks: a full-length "stop" array would be one more 80 MB temporary at 10 M events
    for lo in range(0, patient.size, chunk):
        p, t = patient[lo:lo + chunk], time[lo:lo + chunk]
        np.fmin.at(first, p, t)
        np.fmax.at(last, p, np.fmax(end[lo:lo + chunk], t))  # fmax ignores a NaN end: the event's own time
    out = patients.copy()
    for col in ("birth", "death"):
        if col not in out:
            out[col] = np.nan
    if "sex" not in out:
        out["sex"] = pd.Categorical([None] * n, categories=["F", "M"])
    out["start"] = out["start"].fillna(pd.Series(first)) if "start" in out else first
    default_end = np.where(np.isnan(out["death"].to_numpy(dtype=float)), last, out["death"].to_numpy(dtype=float))
    out["end"] = out["end"].fillna(pd.Series(np.fmax(default_end, last))) if "end" in out else np.fmax(default_end, last)
    bad = out["end"].to_numpy(dtype=float) < out["start"].to_numpy(dtype=float)
    if bad.any():
        raise PathwaysInputError(describe_bad_rows("patients.end", bad, None, "end before their observation start"))
    cols = [c for c in PATIENT_COLUMNS] + [c for c in out.columns if c not in PATIENT_COLUMNS]
    return out[cols]


def _window_violations(patients: pd.DataFrame, patient: np.ndarray, time: np.ndarray) -> np.ndarray:
    start = patients["start"].to_numpy(dtype=float)[patient]
    stop = patients["end"].to_numpy(dtype=float)[patient]
    return (time < start) | (time > stop)


def check_windows(patients: pd.DataFrame, patient: np.ndarray, time: np.ndarray, chunk: int = 1 << 20) -> None:
    # By chunks: the gathered window bounds of 10 M events would be two 80 MB temporaries.
    if not any(_window_violations(patients, patient[lo:lo + chunk], time[lo:lo + chunk]).any()
               for lo in range(0, time.size, chunk)):
        return
    outside = _window_violations(patients, patient, time)
    if outside.any():
        raise PathwaysInputError(describe_bad_rows("time", outside, time, "lie outside the patient's observation "
                                                   "window [start, end]"))


def apply_window_rule(patients: pd.DataFrame, patient: np.ndarray, time: np.ndarray,
                       rule: str) -> np.ndarray | None:
    """Apply ``outside_window``: return a keep-mask when events are dropped, None otherwise."""
    outside = _window_violations(patients, patient, time)
    if not outside.any():
        return None
    message = describe_bad_rows("time", outside, time, "lie outside the patient's observation window [start, end]")
    if rule == "raise":
        raise PathwaysInputError(message + " (pass outside_window='drop' or 'extend')")
    if rule == "drop":
        warnings.warn("dropped: " + message, PathwaysDataWarning, stacklevel=4)
        return ~outside
    start = patients["start"].to_numpy(dtype=float).copy()
    stop = patients["end"].to_numpy(dtype=float).copy()
    np.fmin.at(start, patient, time)
    np.fmax.at(stop, patient, time)
    patients["start"], patients["end"] = start, stop
    warnings.warn("extended observation windows: " + message, PathwaysDataWarning, stacklevel=4)
    return None


def check_event_arrays(patient: np.ndarray, time: np.ndarray, code: np.ndarray, end: np.ndarray,
                        n_patients: int, n_codes: int, max_abs: float = np.inf) -> None:
    with np.errstate(invalid="ignore"):
        huge_end = np.abs(end) > max_abs
    checks = [
        ("time", ~np.isfinite(time), time, "are not finite"),
        ("time", np.abs(time) > max_abs, time, f"are implausible (|time| > {max_abs:g} in this time unit)"),
        ("end", huge_end, end, f"are implausible (|end| > {max_abs:g} in this time unit)"),
        ("patient", (patient < 0) | (patient >= n_patients), patient, f"are outside [0, {n_patients})"),
        ("code", (code < 0) | (code >= n_codes), code, f"are outside the vocabulary [0, {n_codes})"),
        ("end", end < time, end, "end before time"),  # a NaN end (no end) compares False
    ]
    for name, bad, values, what in checks:
        if bad.any():
            raise PathwaysInputError(describe_bad_rows(name, bad, values, what))

def as_categorical(category: Any, n: int) -> pd.Categorical:
    if category is None:
        return pd.Categorical(np.full(n, np.nan, dtype=object))
    cat = category if isinstance(category, pd.Categorical) else pd.Categorical(np.asarray(category, dtype=object))
    if len(cat) != n:
        raise PathwaysInputError(f"category: expected {n} values, got {len(cat)}")
    return cat


def text_codes(values: Any, name: str = "code") -> tuple[Any, np.ndarray]:
    """Codes as text exactly as written, and the mask of blank (empty or whitespace-only) ones.

    Numbers become their text, integral floats without ``.0`` (a code column with a blank cell arrives as
    floats: ``3400921605068.0`` is the CIP13 ``3400921605068``; ``410`` and ``410.0`` are one code). The work is
    done on the distinct values, so it costs one hash pass over the column.

    Examples
    --------
    >>> codes, blank = text_codes(np.array([410, 410.0, " ", "I10", None], dtype=object))
    >>> list(codes), blank.tolist()
    (['410', '410', nan, 'I10', nan], [False, False, True, False, False])
    """
    if isinstance(values, pd.Categorical):
        labels, uniques = values.codes.astype(np.int64), pd.Index(values.categories)
    else:
        array = np.asarray(values)
        if array.dtype.kind in "iub":
            array = array.astype(str).astype(object)
        try:
            labels, uniques = pd.factorize(array, use_na_sentinel=True)
        except TypeError:
            raise PathwaysInputError(_unhashable_message(name, array)) from None
    texts = np.array([_code_text(u) for u in uniques], dtype=object)  # distinct values only
    blank_unique = np.array([t.strip() == "" for t in texts], dtype=bool)
    blank = np.zeros(len(labels), dtype=bool)
    if blank_unique.any():
        blank = (labels >= 0) & blank_unique[np.maximum(labels, 0)]
        labels = np.where(blank, -1, labels)
    final, remap = np.unique(texts, return_inverse=True) if texts.size else (texts, np.zeros(0, np.int64))
    codes = np.where(labels >= 0, remap[np.maximum(labels, 0)], -1) if texts.size else labels
    return pd.Categorical.from_codes(codes, categories=pd.Index(final, dtype=object)), blank


def _code_text(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _unhashable_message(name: str, values: np.ndarray) -> str:
    """Column name, count and first row of list / dict / array cells (which no id or code can be)."""
    bad = np.fromiter((isinstance(v, (list, dict, set, tuple, np.ndarray)) for v in values), bool, len(values))
    return describe_bad_rows(name, bad, None, "hold a list, dict or array instead of a single value")


def check_hashable(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    """Raise naming the column and row when an id column holds lists (slow path: called after a TypeError)."""
    for name in columns:
        if name in frame and frame[name].dtype == object:
            message = _unhashable_message(name, frame[name].to_numpy())
            if not message.startswith(f"column '{name}': 0 "):
                raise PathwaysInputError(message)


def life_checks(patients: pd.DataFrame, patient: np.ndarray, time: np.ndarray
                ) -> list[tuple[str, tuple[np.ndarray, None, str]]]:
    """Invalid-row checks of event times against the patients' birth and death (for :func:`apply_invalid`).

    ``patient`` is the event's patient index (-1: unknown patient, not checked here).
    """
    out = []
    known = patient >= 0
    rows = np.maximum(patient, 0)
    with np.errstate(invalid="ignore"):
        for col, bad_if, what in (("birth", np.less, "are before the patient's birth (patients.birth)"),
                                  ("death", np.greater, "are after the patient's death (patients.death)")):
            if col in patients:
                bound = pd.to_numeric(patients[col], errors="coerce").to_numpy(dtype=float)[rows]
                out.append(("time", (known & bad_if(time, bound), None, what)))
    return out

__all__ = [
    "EVENT_COLUMNS", "OPTIONAL_EVENT_COLUMNS", "PATIENT_COLUMNS", "PATIENT_TIME_COLUMNS", "check_hashable", "life_checks", "text_codes", "apply_invalid", "apply_window_rule", "as_categorical", "canonical_frame", "check_choice", "check_event_arrays", "check_windows", "complete_patients", "handle_duplicates", "index_patients", "prepare_patients",
]

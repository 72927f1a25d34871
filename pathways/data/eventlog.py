"""EventLog: the canonical columnar table of timestamped patient events.

Events are stored as flat numpy arrays sorted by (patient, time, code); patients as a small DataFrame. Times are
float64: days since ``origin`` when the input held datetimes, else the user's own numeric unit.
"""
from __future__ import annotations

import io
import json
import logging
import warnings
from dataclasses import dataclass
from os import PathLike
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pathways.data.vocabulary import Vocabulary
from pathways.errors import PathwaysDataWarning, PathwaysInputError, describe_bad_rows
from pathways.utils import atomic_path, offsets_from_sorted

logger = logging.getLogger("pathways")

EVENT_COLUMNS = ("patient_id", "time", "code")
OPTIONAL_EVENT_COLUMNS = ("end", "value", "category")
PATIENT_COLUMNS = ("patient_id", "birth", "sex", "death", "start", "end")
PATIENT_TIME_COLUMNS = ("birth", "death", "start", "end")
DEFAULT_VALID_DATES = ("1900-01-01", "2100-12-31")
_SEX_MAP = {"M": "M", "F": "F", "1": "M", "2": "F", "MALE": "M", "FEMALE": "F", "H": "M"}
_META_KEY = b"pathways.eventlog"
_PATIENTS_KEY = b"pathways.patients"
FORMAT_VERSION = 1


@dataclass
class _TimeConverter:
    """Turns a column of datetimes or numbers into float times and tells which rows were invalid."""

    origin: pd.Timestamp | None
    time_unit: str
    valid_dates: tuple[pd.Timestamp, pd.Timestamp]

    def convert(self, values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Return (float times, mask of values present but unparseable or out of the valid date range)."""
        present = values.notna().to_numpy()
        if self.origin is None:
            out = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
            bad = present & ~np.isfinite(out)
            return np.where(np.isfinite(out), out, np.nan), bad
        stamps = pd.to_datetime(values, errors="coerce")
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_convert(None)
        lo, hi = self.valid_dates
        in_range = (stamps >= lo) & (stamps <= hi)
        bad = present & ~in_range.fillna(False).to_numpy(dtype=bool)
        days = ((stamps - self.origin) / pd.Timedelta(days=1)).to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        days[bad] = np.nan
        return days, bad


def _looks_like_datetime(values: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if pd.api.types.is_numeric_dtype(values) or values.dropna().empty:
        return False
    sample = values.dropna().iloc[:50].astype(str)
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() > 0.5)


class EventLog:
    """Columnar log of patient events sorted by (patient, time, code).

    Build it with :meth:`from_pandas`, :meth:`read_csv`, :meth:`read_parquet` or :meth:`from_arrays`; do not call
    the constructor with unchecked arrays.

    Attributes
    ----------
    patient, time, code, end, value : flat event arrays (see ``docs/architecture.md``).
    category : pandas Categorical of event categories (drug, diagnosis, act, stay, death, ...).
    patients : DataFrame (RangeIndex = patient index) with patient_id, birth, sex, death, start, end + covariates.
    vocab : the code Vocabulary.
    time_unit : unit of all times ("days" when built from datetimes).
    origin : datetime origin of times, or None for numeric input.
    extras : extra per-event columns (e.g. prescriber).

    Examples
    --------
    >>> events = pd.DataFrame({"patient_id": ["a", "a", "b"],
    ...                        "time": ["2020-01-01", "2020-01-11", "2020-02-01"],
    ...                        "code": ["N02BE01", "I10", "N02BE01"]})
    >>> log = EventLog.from_pandas(events)
    >>> log.n_events, log.n_patients, log.n_codes
    (3, 2, 2)
    >>> log.time[:2] - log.time[0]
    array([ 0., 10.])
    """

    def __init__(
        self,
        patient: np.ndarray,
        time: np.ndarray,
        code: np.ndarray,
        end: np.ndarray,
        value: np.ndarray,
        category: pd.Categorical,
        patients: pd.DataFrame,
        vocab: Vocabulary,
        time_unit: str,
        origin: pd.Timestamp | None,
        extras: dict[str, np.ndarray] | None = None,
    ):
        self.patient = patient
        self.time = time
        self.code = code
        self.end = end
        self.value = value
        self.category = category
        self.patients = patients
        self.vocab = vocab
        self.time_unit = time_unit
        self.origin = origin
        self.extras = dict(extras or {})
        self.offsets = offsets_from_sorted(patient, len(patients))

    # ------------------------------------------------------------------------------------------------------------
    # sizes and views
    # ------------------------------------------------------------------------------------------------------------
    @property
    def n_events(self) -> int:
        return int(self.time.size)

    @property
    def n_patients(self) -> int:
        return int(len(self.patients))

    @property
    def n_codes(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return self.n_events

    def __repr__(self) -> str:
        return (
            f"EventLog({self.n_events} events, {self.n_patients} patients, {self.n_codes} codes, "
            f"time_unit={self.time_unit!r}, origin={None if self.origin is None else str(self.origin.date())})"
        )

    def code_strings(self) -> np.ndarray:
        """Code string of every event."""
        return self.vocab.codes[self.code]

    def patient_ids(self) -> np.ndarray:
        """User patient id of every event."""
        return self.patients["patient_id"].to_numpy()[self.patient]

    def summary(self) -> dict[str, Any]:
        """Counts a study report needs (no identifiers)."""
        per_patient = np.diff(self.offsets)
        follow = (self.patients["end"] - self.patients["start"]).to_numpy(dtype=float)
        return {
            "n_events": self.n_events,
            "n_patients": self.n_patients,
            "n_codes": self.n_codes,
            "n_patients_without_events": int((per_patient == 0).sum()),
            "events_per_patient_median": float(np.median(per_patient)) if per_patient.size else 0.0,
            "follow_up_median": float(np.nanmedian(follow)) if follow.size else 0.0,
            "time_unit": self.time_unit,
            "origin": None if self.origin is None else str(self.origin.date()),
            "n_deaths": int(self.patients["death"].notna().sum()),
            "categories": {str(k): int(v) for k, v in pd.Series(self.category).value_counts().items()},
        }

    # ------------------------------------------------------------------------------------------------------------
    # construction
    # ------------------------------------------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        patient: Iterable[int],
        time: Iterable[float],
        code: Iterable[int],
        vocab: Vocabulary,
        patients: pd.DataFrame | None = None,
        end: Iterable[float] | None = None,
        value: Iterable[float] | None = None,
        category: Iterable[Any] | pd.Categorical | None = None,
        *,
        time_unit: str = "days",
        origin: pd.Timestamp | str | None = None,
        extras: Mapping[str, np.ndarray] | None = None,
    ) -> "EventLog":
        """Fast constructor from integer patient/code indices and float times (validated, sorted if needed).

        ``patients`` needs a ``patient_id`` column whose row i describes patient index i; missing columns get
        defaults (unknown birth/sex/death, observation window = first/last event). Without it, patients are
        ``0..max(patient)`` with their index as id.
        """
        patient = np.asarray(patient, dtype=np.int64)
        time = np.asarray(time, dtype=np.float64)
        code = np.asarray(code, dtype=np.int64)
        n = time.size
        if patient.shape != (n,) or code.shape != (n,):
            raise PathwaysInputError(f"patient, time and code must have one length; got {patient.size}, {n}, {code.size}")
        end = np.full(n, np.nan) if end is None else np.asarray(end, dtype=np.float64)
        value = np.full(n, np.nan) if value is None else np.asarray(value, dtype=np.float64)
        category = _as_categorical(category, n)
        n_patients = (int(patient.max()) + 1 if n else 0) if patients is None else len(patients)
        _check_event_arrays(patient, time, code, end, n_patients, len(vocab))
        if patients is None:
            patients = pd.DataFrame({"patient_id": np.arange(n_patients)})
        extras = {k: np.asarray(v) for k, v in (extras or {}).items()}
        if not _is_sorted(patient, time, code):  # sorted input (the readers' usual case) is kept without a copy
            order = np.lexsort((code, time, patient))
            extras = {k: v[order] for k, v in extras.items()}
            patient, time, code, end, value = (a[order] for a in (patient, time, code, end, value))
            category = category[order]
        patients = _complete_patients(patients.reset_index(drop=True), patient, time, end)
        _check_windows(patients, patient, time)
        origin_ts = None if origin is None else pd.Timestamp(origin)
        return cls(patient, time, code, end, value, category, patients, vocab, time_unit, origin_ts, extras)

    @classmethod
    def from_pandas(
        cls,
        events: pd.DataFrame,
        patients: pd.DataFrame | None = None,
        *,
        columns: Mapping[str, str] | None = None,
        patient_columns: Mapping[str, str] | None = None,
        time_unit: str | None = None,
        origin: str | pd.Timestamp = "1970-01-01",
        vocab: Vocabulary | None = None,
        min_count: int = 1,
        unknown_codes: str = "error",
        on_invalid: str = "raise",
        duplicates: str = "drop",
        outside_window: str = "raise",
        empty_patients: str = "keep",
        extra_columns: Iterable[str] = (),
        valid_dates: tuple[str, str] = DEFAULT_VALID_DATES,
    ) -> "EventLog":
        """Validate and convert an events DataFrame (and optional patients DataFrame) into an EventLog.

        Parameters
        ----------
        events : one row per event with columns ``patient_id``, ``time``, ``code`` and optional ``end``,
            ``value``, ``category`` (and any ``extra_columns``).
        patients : one row per patient: ``patient_id`` and optional ``birth``, ``sex``, ``death``, ``start``,
            ``end`` (datetimes or numbers, like the event times) plus static covariates kept as they are.
        columns, patient_columns : map canonical name -> your column name, e.g. ``{"patient_id": "BEN_NIR_PSA"}``.
        time_unit : unit label for numeric times (default "days"); datetimes always give "days".
        origin : datetime origin of day counts when times are datetimes.
        vocab : use this vocabulary (e.g. a fitted model's) instead of building one.
        min_count : when building the vocabulary, codes seen fewer times go to an ``<OOV>`` bucket (only if > 1).
        unknown_codes : with a given ``vocab``: "error" or "oov".
        on_invalid : rows with missing ids/codes, NaN/unparseable/out-of-range times or ``end < time``:
            "raise" (default) or "drop" (warned and counted).
        duplicates : fully identical event rows: "drop" (warned and counted, default), "raise" or "keep".
        outside_window : events outside the patient's observation [start, end]: "raise", "drop" or "extend".
        empty_patients : patients of the patients table without events: "keep" (default), "drop" or "raise".
        valid_dates : datetimes outside this range (e.g. 1600-01-01 placeholders) count as invalid.
        """
        _check_choice("on_invalid", on_invalid, ("raise", "drop"))
        _check_choice("duplicates", duplicates, ("drop", "raise", "keep"))
        _check_choice("outside_window", outside_window, ("raise", "drop", "extend"))
        _check_choice("empty_patients", empty_patients, ("keep", "drop", "raise"))
        if not isinstance(events, pd.DataFrame):
            raise PathwaysInputError(f"events: expected a pandas DataFrame, got {type(events).__name__}")
        extra_columns = list(extra_columns)
        frame = _canonical_frame(events, columns, EVENT_COLUMNS, OPTIONAL_EVENT_COLUMNS, extra_columns, "events")
        if frame.empty:
            raise PathwaysInputError("events: the event table is empty (0 rows)")
        is_datetime = _looks_like_datetime(frame["time"])
        if is_datetime and time_unit not in (None, "days"):
            raise PathwaysInputError(f"time_unit={time_unit!r} given but 'time' holds datetimes (always days)")
        converter = _TimeConverter(
            pd.Timestamp(origin) if is_datetime else None,
            "days" if is_datetime or time_unit is None else time_unit,
            (pd.Timestamp(valid_dates[0]), pd.Timestamp(valid_dates[1])),
        )
        time, bad_time = converter.convert(frame["time"])
        end = np.full(len(frame), np.nan)
        bad_end = np.zeros(len(frame), bool)
        if "end" in frame:
            end, bad_end = converter.convert(frame["end"])
        invalid = {
            "patient_id": (frame["patient_id"].isna().to_numpy(), None, "have a missing patient id"),
            "code": (frame["code"].isna().to_numpy(), None, "have a missing code"),
            "time": (np.isnan(time), frame["time"].to_numpy(), "have a missing, unparseable or out-of-range time"),
            "end": (bad_end, frame["end"].to_numpy() if "end" in frame else None, "have an unparseable end"),
        }
        with np.errstate(invalid="ignore"):
            invalid["end < time"] = (end < time, None, "end before time")
        keep = _apply_invalid(invalid, on_invalid)
        frame, time, end = frame[keep], time[keep], end[keep]
        frame = frame.assign(_time=time, _end=end)
        frame = _handle_duplicates(frame, duplicates)
        time, end = frame.pop("_time").to_numpy(), frame.pop("_end").to_numpy()

        patients_frame = _prepare_patients(patients, patient_columns, converter)
        patient_index, patients_frame = _index_patients(frame["patient_id"], patients_frame, on_invalid)
        keep = patient_index >= 0
        if not keep.all():
            frame, time, end, patient_index = frame[keep], time[keep], end[keep], patient_index[keep]

        codes_str = frame["code"].astype(str).to_numpy(dtype=object)
        if vocab is None:
            vocab = Vocabulary.from_codes(codes_str, min_count=min_count, oov_token="<OOV>" if min_count > 1 else None)
            code = vocab.encode(codes_str, unknown="oov" if min_count > 1 else "error")
        else:
            code = vocab.encode(codes_str, unknown=unknown_codes)
        value = pd.to_numeric(frame["value"], errors="coerce").to_numpy(np.float64) if "value" in frame else None
        category = frame["category"].to_numpy() if "category" in frame else None
        extras = {c: frame[c].to_numpy() for c in extra_columns}
        order = _sort_order(patient_index, time, code)
        patient_index, time, code, end = (a[order] for a in (patient_index, time, code, end))
        value = None if value is None else value[order]
        cat = _as_categorical(category, len(order))[order]
        extras = {k: v[order] for k, v in extras.items()}
        patients_frame = _complete_patients(patients_frame, patient_index, time, end)
        arrays = _apply_window_rule(patients_frame, patient_index, time, outside_window)
        if arrays is not None:
            patient_index, time, code, end, cat = (a[arrays] for a in (patient_index, time, code, end, cat))
            value = None if value is None else value[arrays]
            extras = {k: v[arrays] for k, v in extras.items()}
        value = np.full(time.size, np.nan) if value is None else value
        log = cls(patient_index, time, code, end, value, cat, patients_frame, vocab, converter.time_unit,
                  converter.origin, extras)
        return log._apply_empty_rule(empty_patients)

    @classmethod
    def read_csv(cls, path: str | PathLike, *, patients: str | PathLike | pd.DataFrame | None = None,
                 read_kwargs: Mapping[str, Any] | None = None, **kwargs: Any) -> "EventLog":
        """Read an events CSV (and optional patients CSV) and build an EventLog with :meth:`from_pandas`."""
        events = _read_table(path, "csv", read_kwargs)
        if patients is not None and not isinstance(patients, pd.DataFrame):
            patients = _read_table(patients, "csv", read_kwargs)
        return cls.from_pandas(events, patients, **kwargs)

    @classmethod
    def read_parquet(cls, path: str | PathLike, *, patients: str | PathLike | pd.DataFrame | None = None,
                     **kwargs: Any) -> "EventLog":
        """Read a parquet file written by :meth:`to_parquet` (lossless) or any events parquet (via from_pandas)."""
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise PathwaysInputError(f"cannot read parquet file {str(path)!r}: {exc}") from exc
        meta = table.schema.metadata or {}
        if _META_KEY in meta and not kwargs and patients is None:
            return cls._from_own_parquet(table, meta)
        events = table.to_pandas()
        if patients is not None and not isinstance(patients, pd.DataFrame):
            patients = _read_table(patients, "parquet", None)
        return cls.from_pandas(events, patients, **kwargs)

    # ------------------------------------------------------------------------------------------------------------
    # export
    # ------------------------------------------------------------------------------------------------------------
    def to_pandas(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Return (events with user ids and code strings, patients) as DataFrames."""
        events = pd.DataFrame({
            "patient_id": self.patient_ids(),
            "time": self.time,
            "code": self.code_strings(),
            "end": self.end,
            "value": self.value,
            "category": self.category,
        })
        for k, v in self.extras.items():
            events[k] = v
        return events, self.patients.copy()

    def to_parquet(self, path: str | PathLike) -> None:
        """Write one parquet file (flat events table; patients, vocabulary and units in its metadata), atomically.

        :meth:`read_parquet` restores the identical EventLog.
        """
        table = pa.table({
            "patient": self.patient, "time": self.time, "code": self.code, "end": self.end, "value": self.value,
            "category": pa.DictionaryArray.from_pandas(pd.Categorical(self.category)),
            **{f"extra.{k}": v for k, v in self.extras.items()},
        })
        buf = io.BytesIO()
        self.patients.to_parquet(buf, index=False)
        meta = {
            "format_version": FORMAT_VERSION, "vocab": self.vocab.to_dict(), "time_unit": self.time_unit,
            "origin": None if self.origin is None else self.origin.isoformat(),
        }
        table = table.replace_schema_metadata({_META_KEY: json.dumps(meta).encode(), _PATIENTS_KEY: buf.getvalue()})
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)

    @classmethod
    def _from_own_parquet(cls, table: pa.Table, meta: Mapping[bytes, bytes]) -> "EventLog":
        info = json.loads(meta[_META_KEY])
        if info.get("format_version", 0) > FORMAT_VERSION:
            raise PathwaysInputError(f"parquet written by a newer pathways (format {info['format_version']})")
        patients = pd.read_parquet(io.BytesIO(meta[_PATIENTS_KEY]))
        cols = {name: table.column(name) for name in table.column_names}
        category = pd.Categorical(cols["category"].to_pandas())
        extras = {n[6:]: cols[n].to_numpy() for n in cols if n.startswith("extra.")}
        return cls(
            cols["patient"].to_numpy(), cols["time"].to_numpy(), cols["code"].to_numpy(), cols["end"].to_numpy(),
            cols["value"].to_numpy(), category, patients, Vocabulary.from_dict(info["vocab"]), info["time_unit"],
            None if info["origin"] is None else pd.Timestamp(info["origin"]), extras,
        )

    # ------------------------------------------------------------------------------------------------------------
    # filtering (vocabulary indices never change meaning)
    # ------------------------------------------------------------------------------------------------------------
    def _take_events(self, mask: np.ndarray) -> "EventLog":
        return EventLog(
            self.patient[mask], self.time[mask], self.code[mask], self.end[mask], self.value[mask],
            self.category[mask], self.patients, self.vocab, self.time_unit, self.origin,
            {k: v[mask] for k, v in self.extras.items()},
        )

    def select_patients(self, index_or_mask: Iterable[int] | np.ndarray) -> "EventLog":
        """Keep the given patient indices (or a boolean mask over patients), renumbered in the given order."""
        sel = np.asarray(index_or_mask)
        if sel.dtype == bool:
            if sel.shape != (self.n_patients,):
                raise PathwaysInputError(f"patient mask: expected {self.n_patients} values, got {sel.shape}")
            sel = np.flatnonzero(sel)
        sel = sel.astype(np.int64)
        if sel.size and (sel.min() < 0 or sel.max() >= self.n_patients):
            raise PathwaysInputError(f"patient index out of range [0, {self.n_patients})")
        new_index = np.full(self.n_patients, -1, dtype=np.int64)
        new_index[sel] = np.arange(sel.size)
        mask = new_index[self.patient] >= 0
        patient = new_index[self.patient[mask]]
        order = np.argsort(patient, kind="stable")
        rows = np.flatnonzero(mask)[order]
        return EventLog(
            patient[order], self.time[rows], self.code[rows], self.end[rows], self.value[rows],
            self.category[rows], self.patients.iloc[sel].reset_index(drop=True), self.vocab, self.time_unit,
            self.origin, {k: v[rows] for k, v in self.extras.items()},
        )

    def select_codes(self, codes: Iterable[str]) -> "EventLog":
        """Keep events whose code is in ``codes`` (vocabulary unchanged, so indices keep their meaning)."""
        idx = self.vocab.encode(list(codes))
        return self._take_events(np.isin(self.code, idx))

    def window(self, start: float | None = None, end: float | None = None) -> "EventLog":
        """Keep events with ``start <= time <= end`` and clip observation windows to [start, end]."""
        lo = -np.inf if start is None else float(start)
        hi = np.inf if end is None else float(end)
        if lo > hi:
            raise PathwaysInputError(f"window: start {lo} after end {hi}")
        out = self._take_events((self.time >= lo) & (self.time <= hi))
        patients = out.patients.copy()
        patients["start"] = patients["start"].clip(lower=lo, upper=hi)
        patients["end"] = patients["end"].clip(lower=lo, upper=hi)
        out.patients = patients
        return out

    def with_vocab(self, vocab: Vocabulary, unknown: str = "error") -> "EventLog":
        """Re-encode codes with another vocabulary (e.g. a fitted model's); unknown codes error or go to OOV."""
        code = vocab.encode(self.code_strings(), unknown=unknown)
        out = self._take_events(np.ones(self.n_events, bool))
        out.code, out.vocab = code, vocab
        order = _sort_order(out.patient, out.time, out.code)
        if not np.array_equal(order, np.arange(order.size)):
            out = out._take_events(order)
        return out

    def _apply_empty_rule(self, rule: str) -> "EventLog":
        empty = np.diff(self.offsets) == 0
        if not empty.any() or rule == "keep":
            if empty.any():
                logger.info("%d patients without events kept", int(empty.sum()))
            return self
        if rule == "raise":
            raise PathwaysInputError(
                f"patients: {int(empty.sum())} of {self.n_patients} patients have no events "
                f"(first at patients row {int(np.flatnonzero(empty)[0])}); pass empty_patients='keep' or 'drop'"
            )
        warnings.warn(f"dropped {int(empty.sum())} patients without events", PathwaysDataWarning, stacklevel=3)
        return self.select_patients(~empty)


# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------
def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise PathwaysInputError(f"{name}: expected one of {allowed}, got {value!r}")


def _canonical_frame(frame: pd.DataFrame, mapping: Mapping[str, str] | None, required: Iterable[str],
                     optional: Iterable[str], extra: list[str], what: str) -> pd.DataFrame:
    """Select and rename columns to canonical names; error names every missing column."""
    mapping = dict(mapping or {})
    wanted = list(required) + [c for c in optional if mapping.get(c, c) in frame.columns] + extra
    missing = [f"{c}" + (f" (mapped from '{mapping[c]}')" if c in mapping else "")
               for c in wanted if mapping.get(c, c) not in frame.columns]
    if missing:
        raise PathwaysInputError(
            f"{what}: missing column(s) {', '.join(missing)}; available: {list(map(str, frame.columns))[:20]}"
        )
    return pd.DataFrame({c: frame[mapping.get(c, c)].to_numpy() for c in wanted})


def _apply_invalid(checks: Mapping[str, tuple[np.ndarray, Any, str]], rule: str) -> np.ndarray:
    """Raise on the first invalid check (rule 'raise') or return the mask of rows to keep (rule 'drop')."""
    n = len(next(iter(checks.values()))[0])
    keep = np.ones(n, dtype=bool)
    for name, (bad, values, what) in checks.items():
        if not bad.any():
            continue
        message = describe_bad_rows(name, bad, values, what)
        if rule == "raise":
            raise PathwaysInputError(message + " (pass on_invalid='drop' to drop them with a warning)")
        warnings.warn("dropped: " + message, PathwaysDataWarning, stacklevel=4)
        logger.info("dropped: %s", message)
        keep &= ~bad
    return keep


def _handle_duplicates(frame: pd.DataFrame, rule: str) -> pd.DataFrame:
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


def _prepare_patients(patients: pd.DataFrame | None, mapping: Mapping[str, str] | None,
                      converter: _TimeConverter) -> pd.DataFrame | None:
    if patients is None:
        return None
    if not isinstance(patients, pd.DataFrame):
        raise PathwaysInputError(f"patients: expected a pandas DataFrame, got {type(patients).__name__}")
    mapping = dict(mapping or {})
    renamed = patients.rename(columns={v: k for k, v in mapping.items()})
    if "patient_id" not in renamed:
        raise PathwaysInputError(f"patients: missing column 'patient_id'; available: {list(patients.columns)[:20]}")
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
                raise PathwaysInputError(describe_bad_rows(f"patients.{col}", bad, renamed[col].to_numpy(),
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
        raise PathwaysInputError(describe_bad_rows("patients.sex", unknown.to_numpy(), values.to_numpy(),
                                                   "are not a known sex code (M/F, 1=M/2=F, 0/9/U=unknown)"))
    return pd.Series(pd.Categorical(mapped, categories=["F", "M"]), index=values.index)


def _index_patients(ids: pd.Series, patients: pd.DataFrame | None,
                    on_invalid: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Integer patient index per event (-1 = unknown patient, dropped) and the patients table in index order."""
    if patients is None:
        codes, uniques = pd.factorize(ids, sort=True)
        return codes.astype(np.int64), pd.DataFrame({"patient_id": uniques})
    index = pd.Index(patients["patient_id"])
    if ids.dtype != index.dtype and pd.api.types.is_numeric_dtype(index) != pd.api.types.is_numeric_dtype(ids):
        ids, index = ids.astype(str), pd.Index(index.astype(str))
    pos = index.get_indexer(ids).astype(np.int64)
    unknown = pos < 0
    if unknown.any():
        message = describe_bad_rows("patient_id", unknown, None, "refer to patients absent from the patients table")
        if on_invalid == "raise":
            raise PathwaysInputError(message + " (pass on_invalid='drop' to drop them with a warning)")
        warnings.warn("dropped: " + message, PathwaysDataWarning, stacklevel=4)
    return pos, patients


def _complete_patients(patients: pd.DataFrame, patient: np.ndarray, time: np.ndarray,
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


def _check_windows(patients: pd.DataFrame, patient: np.ndarray, time: np.ndarray, chunk: int = 1 << 20) -> None:
    # By chunks: the gathered window bounds of 10 M events would be two 80 MB temporaries.
    if not any(_window_violations(patients, patient[lo:lo + chunk], time[lo:lo + chunk]).any()
               for lo in range(0, time.size, chunk)):
        return
    outside = _window_violations(patients, patient, time)
    if outside.any():
        raise PathwaysInputError(describe_bad_rows("time", outside, time, "lie outside the patient's observation "
                                                   "window [start, end]"))


def _apply_window_rule(patients: pd.DataFrame, patient: np.ndarray, time: np.ndarray,
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


def _check_event_arrays(patient: np.ndarray, time: np.ndarray, code: np.ndarray, end: np.ndarray,
                        n_patients: int, n_codes: int) -> None:
    checks = [
        ("time", ~np.isfinite(time), time, "are not finite"),
        ("patient", (patient < 0) | (patient >= n_patients), patient, f"are outside [0, {n_patients})"),
        ("code", (code < 0) | (code >= n_codes), code, f"are outside the vocabulary [0, {n_codes})"),
        ("end", end < time, end, "end before time"),  # a NaN end (no end) compares False
    ]
    for name, bad, values, what in checks:
        if bad.any():
            raise PathwaysInputError(describe_bad_rows(name, bad, values, what))


def _sort_order(patient: np.ndarray, time: np.ndarray, code: np.ndarray) -> np.ndarray:
    """Stable order by (patient, time, code); skips the sort when already sorted (the common case)."""
    if patient.size < 2 or _is_sorted(patient, time, code):
        return np.arange(patient.size)
    return np.lexsort((code, time, patient))


def _is_sorted(patient: np.ndarray, time: np.ndarray, code: np.ndarray, chunk: int = 1 << 20) -> bool:
    """Whether rows are in (patient, time, code) order; checked by chunks so that the temporaries stay small."""
    for lo in range(0, patient.size - 1, chunk):
        hi = min(lo + chunk + 1, patient.size)  # chunks overlap by one row: every adjacent pair is compared
        p, t, c = patient[lo:hi], time[lo:hi], code[lo:hi]
        dp, dt = p[1:] - p[:-1], t[1:] - t[:-1]
        if not np.all((dp > 0) | ((dp == 0) & ((dt > 0) | ((dt == 0) & (c[1:] >= c[:-1]))))):
            return False
    return True


def _as_categorical(category: Any, n: int) -> pd.Categorical:
    if category is None:
        return pd.Categorical(np.full(n, np.nan, dtype=object))
    cat = category if isinstance(category, pd.Categorical) else pd.Categorical(np.asarray(category, dtype=object))
    if len(cat) != n:
        raise PathwaysInputError(f"category: expected {n} values, got {len(cat)}")
    return cat


def _read_table(path: str | PathLike, kind: str, kwargs: Mapping[str, Any] | None) -> pd.DataFrame:
    try:
        if kind == "csv":
            return pd.read_csv(path, **dict(kwargs or {}))
        return pd.read_parquet(path)
    except FileNotFoundError as exc:
        raise PathwaysInputError(f"file not found: {str(path)!r}") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, pa.ArrowInvalid) as exc:
        raise PathwaysInputError(f"cannot read {kind} file {str(path)!r}: {exc}") from exc


__all__ = ["EventLog", "EVENT_COLUMNS", "PATIENT_COLUMNS"]

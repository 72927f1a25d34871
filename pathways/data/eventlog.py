"""EventLog: the canonical columnar table of timestamped patient events.

Events are stored as flat numpy arrays sorted by (patient, time, code); patients as a small DataFrame. Times are
float64: days since ``origin`` when the input held datetimes, else the user's own numeric unit. Input checks live
in :mod:`pathways.data.validate`, time parsing in :mod:`pathways.data.dates`, files in :mod:`pathways.data.parquet`.
"""
from __future__ import annotations

import logging
import warnings
from os import PathLike
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

from pathways.data.arrow import (
    arrow_events_frame, arrow_patients_frame, as_arrow_table, events_to_arrow, patients_to_arrow, stored_time,
)
from pathways.data.dates import DEFAULT_DATE_RANGE, TimeConverter, date_window, looks_like_datetime, max_abs_time
from pathways.data.order import event_order
from pathways.data.parquet import own_parquet_fields, parquet_format, read_parquet_table, read_table, write_parquet
from pathways.data.validate import (
    EVENT_COLUMNS, OPTIONAL_EVENT_COLUMNS, PATIENT_COLUMNS, apply_invalid, apply_window_rule, as_categorical,
    canonical_frame, check_choice, check_event_arrays, check_hashable, check_windows, complete_patients,
    handle_duplicates, index_patients, life_checks, prepare_patients, text_codes,
)
from pathways.data.summary import log_summary
from pathways.data.vocabulary import Vocabulary
from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.utils import offsets_from_sorted

logger = logging.getLogger("pathways")

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
        """Counts a study report needs (no identifiers): see :func:`pathways.data.summary.log_summary`."""
        return log_summary(self)

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
        category = as_categorical(category, n)
        n_patients = (int(patient.max()) + 1 if n else 0) if patients is None else len(patients)
        check_event_arrays(patient, time, code, end, n_patients, len(vocab), max_abs_time(time_unit))
        if patients is None:
            patients = pd.DataFrame({"patient_id": np.arange(n_patients)})
        extras = {k: np.asarray(v) for k, v in (extras or {}).items()}
        order = event_order(patient, time, code)
        if order is not None:  # sorted input (the readers' usual case) is kept without a copy
            extras = {k: v[order] for k, v in extras.items()}
            patient, time, code, end, value = (a[order] for a in (patient, time, code, end, value))
            category = category[order]
        patients = complete_patients(patients.reset_index(drop=True), patient, time, end)
        check_windows(patients, patient, time)
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
        valid_dates: tuple[str, str] = DEFAULT_DATE_RANGE,
        outside_life: str = "keep",
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
        outside_life : events before the patient's birth or after their death (patients table): "keep"
            (default: warned and counted, never silent; billing after death is data to study, and SCCS censors
            exposures after death itself), "drop" (warned and counted) or "raise".
        """
        check_choice("on_invalid", on_invalid, ("raise", "drop"))
        check_choice("duplicates", duplicates, ("drop", "raise", "keep"))
        check_choice("outside_window", outside_window, ("raise", "drop", "extend"))
        check_choice("empty_patients", empty_patients, ("keep", "drop", "raise"))
        check_choice("outside_life", outside_life, ("raise", "drop", "keep"))
        if not isinstance(events, pd.DataFrame):
            raise PathwaysInputError(f"events: expected a pandas DataFrame, got {type(events).__name__}")
        extra_columns = list(extra_columns)
        frame = canonical_frame(events, columns, EVENT_COLUMNS, OPTIONAL_EVENT_COLUMNS, extra_columns, "events")
        if frame.empty:
            raise PathwaysInputError("events: the event table is empty (0 rows)")
        try:
            return cls._from_frame(frame, patients, patient_columns, time_unit, origin, vocab, min_count,
                                   unknown_codes, on_invalid, duplicates, outside_window, empty_patients,
                                   extra_columns, valid_dates, outside_life)
        except TypeError:  # list or dict cells in an id column: name the column and row, never the value
            check_hashable(frame, ["patient_id", *extra_columns])
            if patients is not None:
                check_hashable(patients.rename(columns={v: k for k, v in dict(patient_columns or {}).items()}),
                               ["patient_id"])
            raise

    @classmethod
    def _from_frame(cls, frame: pd.DataFrame, patients: pd.DataFrame | None, patient_columns: Any,
                    time_unit: str | None, origin: Any, vocab: Vocabulary | None, min_count: int,
                    unknown_codes: str, on_invalid: str, duplicates: str, outside_window: str,
                    empty_patients: str, extra_columns: list[str], valid_dates: tuple[str, str],
                    outside_life: str) -> "EventLog":
        """:meth:`from_pandas` once the canonical columns are selected."""
        frame["code"], blank_code = text_codes(frame["code"])
        is_datetime = looks_like_datetime(frame["time"])
        if "end" in frame and frame["end"].notna().any() and looks_like_datetime(frame["end"]) != is_datetime:
            raise PathwaysInputError(
                f"column 'end' holds {'datetimes' if not is_datetime else 'numbers'} but 'time' holds "
                f"{'numbers' if not is_datetime else 'datetimes'}: give both as datetimes or both as numbers")
        if is_datetime and time_unit not in (None, "days"):
            raise PathwaysInputError(f"time_unit={time_unit!r} given but 'time' holds datetimes (always days)")
        converter = TimeConverter(
            pd.Timestamp(origin) if is_datetime else None,
            "days" if is_datetime or time_unit is None else time_unit,
            date_window(valid_dates),
        )
        time, bad_time = converter.convert(frame["time"])
        end = np.full(len(frame), np.nan)
        bad_end = np.zeros(len(frame), bool)
        if "end" in frame:
            end, bad_end = converter.convert(frame["end"])
        # no cell values in these messages: with swapped columns the time column holds patient ids
        invalid = {
            "patient_id": (frame["patient_id"].isna().to_numpy(), None, "have a missing patient id"),
            "code": (frame["code"].isna().to_numpy(), None, "have a missing, empty or whitespace-only code"),
            "time": (np.isnan(time), None, "have a missing, unparseable, out-of-range or implausible time"),
            "end": (bad_end, None, "have an unparseable, out-of-range or implausible end"),
        }
        with np.errstate(invalid="ignore"):
            invalid["end < time"] = (end < time, None, "end before time")
        keep = apply_invalid(invalid, on_invalid)
        frame, time, end = frame[keep], time[keep], end[keep]
        frame = frame.assign(_time=time, _end=end)
        frame = handle_duplicates(frame, duplicates)
        time, end = frame.pop("_time").to_numpy(), frame.pop("_end").to_numpy()

        patients_frame = prepare_patients(patients, patient_columns, converter)
        patient_index, patients_frame = index_patients(frame["patient_id"], patients_frame, on_invalid)
        keep = patient_index >= 0
        lives = life_checks(patients_frame, patient_index, time) if patients is not None else []
        if lives:  # plausibility against the patients table: events before birth, after death
            keep &= apply_invalid(lives, outside_life, "outside_life")
        if not keep.all():
            frame, time, end, patient_index = frame[keep], time[keep], end[keep], patient_index[keep]

        if vocab is None:
            counts = frame["code"].value_counts(sort=False)
            vocab = Vocabulary.from_counts(counts[counts > 0], min_count, "<OOV>" if min_count > 1 else None)
            unknown_codes = "oov" if min_count > 1 else "error"
        code = vocab.encode_column(frame["code"], unknown=unknown_codes)
        value = pd.to_numeric(frame["value"], errors="coerce").to_numpy(np.float64) if "value" in frame else None
        category = frame["category"].array if "category" in frame else None
        extras = {c: frame[c].to_numpy() for c in extra_columns}
        cat = as_categorical(category, time.size)
        order = event_order(patient_index, time, code)
        if order is not None:
            patient_index, time, code, end, cat = (a[order] for a in (patient_index, time, code, end, cat))
            value = None if value is None else value[order]
            extras = {k: v[order] for k, v in extras.items()}
        patients_frame = complete_patients(patients_frame, patient_index, time, end)
        arrays = apply_window_rule(patients_frame, patient_index, time, outside_window)
        if arrays is not None:
            patient_index, time, code, end, cat = (a[arrays] for a in (patient_index, time, code, end, cat))
            value = None if value is None else value[arrays]
            extras = {k: v[arrays] for k, v in extras.items()}
        value = np.full(time.size, np.nan) if value is None else value
        log = cls(patient_index, time, code, end, value, cat, patients_frame, vocab, converter.time_unit,
                  converter.origin, extras)
        return log._apply_empty_rule(empty_patients)

    @classmethod
    def from_arrow(cls, events: Any, patients: Any = None, *, columns: Mapping[str, str] | None = None,
                   extra_columns: Iterable[str] = (), **kwargs: Any) -> "EventLog":
        """Build an EventLog from an Arrow table or anything exporting ``__arrow_c_stream__``.

        A pyarrow table, a polars DataFrame, a DuckDB relation or a Spark 4 ``toArrow()`` result; ``patients`` may
        be Arrow too. String ids and codes are dictionary-encoded (no per-row Python strings) and kept as written;
        validation, options and counted drops are those of :meth:`from_pandas`. A table written by
        :meth:`to_arrow` carries its time unit and origin, so numeric times keep their meaning.

        Examples
        --------
        >>> import pyarrow as pa
        >>> table = pa.table({"patient_id": ["a", "a", "b"], "time": [0.0, 2.5, 1.0], "code": ["x", "y", "x"]})
        >>> log = EventLog.from_arrow(table)
        >>> log.n_events, log.patients["patient_id"].tolist(), log.vocab.codes.tolist()
        (3, ['a', 'b'], ['x', 'y'])
        >>> EventLog.from_arrow(log.to_arrow()).code_strings().tolist()
        ['x', 'y', 'x']
        """
        table = as_arrow_table(events)
        extra_columns = list(extra_columns)
        frame = arrow_events_frame(table, columns, extra_columns)
        stored = stored_time(table)
        numeric = "time" in frame and pd.api.types.is_numeric_dtype(frame[dict(columns or {}).get("time", "time")])
        if numeric and stored:
            kwargs.setdefault("time_unit", stored["time_unit"])
        log = cls.from_pandas(frame, arrow_patients_frame(patients), columns=columns, extra_columns=extra_columns,
                              **kwargs)
        if numeric and stored.get("origin") is not None:  # float days since the stored origin
            log.origin = pd.Timestamp(stored["origin"])
        return log

    @classmethod
    def read_csv(cls, path: str | PathLike, *, patients: str | PathLike | pd.DataFrame | None = None,
                 read_kwargs: Mapping[str, Any] | None = None, **kwargs: Any) -> "EventLog":
        """Read an events CSV (and optional patients CSV) and build an EventLog with :meth:`from_pandas`.

        Ids, codes and ``extra_columns`` are read as text exactly as written (``0123`` and ``123`` are two
        patients; only an empty cell is missing); the encoding (UTF-8, UTF-16, latin-1) is detected.
        ``read_kwargs`` go to :func:`pandas.read_csv` (a ``dtype`` there replaces the text columns)."""
        names = {"patient_id": "patient_id", "code": "code", **dict(kwargs.get("columns") or {})}
        text = [names["patient_id"], names["code"], *kwargs.get("extra_columns", ())]
        events = read_table(path, "csv", read_kwargs, text_columns=text)
        if patients is not None and not isinstance(patients, pd.DataFrame):
            pid = dict(kwargs.get("patient_columns") or {}).get("patient_id", "patient_id")
            patients = read_table(patients, "csv", read_kwargs, text_columns=[pid])
        return cls.from_pandas(events, patients, **kwargs)

    @classmethod
    def read_parquet(cls, path: str | PathLike, *, patients: str | PathLike | pd.DataFrame | None = None,
                     **kwargs: Any) -> "EventLog":
        """Read a parquet file written by :meth:`to_parquet` (lossless) or any events parquet (via from_pandas)."""
        table = read_parquet_table(path)
        if parquet_format(table) and not kwargs and patients is None:
            return cls(**own_parquet_fields(table, path))
        events = table.to_pandas()
        if patients is not None and not isinstance(patients, pd.DataFrame):
            patients = read_table(patients, "parquet", None)
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

    def to_arrow(self, table: str = "events") -> "pa.Table":
        """The events (``table="events"``, the :meth:`from_arrow` input) or the patients as an Arrow table.

        Events: ``patient_id`` and ``code`` dictionary-encoded as written, float ``time`` / ``end`` in
        ``time_unit`` since ``origin`` (both in the schema metadata), ``value``, ``category`` and the extras.
        """
        check_choice("table", table, ("events", "patients"))
        return events_to_arrow(self) if table == "events" else patients_to_arrow(self)

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """Arrow PyCapsule export of the events table: ``polars.DataFrame(log)``, ``pa.table(log)``, DuckDB."""
        return self.to_arrow().__arrow_c_stream__(requested_schema)

    def to_parquet(self, path: str | PathLike) -> None:
        """Write the events to ``path`` and the patients and codes beside it, each atomically.

        ``<stem>.parquet`` holds the events as :meth:`to_arrow` does (dictionary-encoded string codes), with
        ``patient``, the row of the patients file, in place of the id;
        ``<stem>.patients.parquet`` the patients table and ``<stem>.codes.parquet`` the vocabulary (code, count);
        each is a plain parquet file that DuckDB and polars read as it is. :meth:`read_parquet` restores the
        identical EventLog (and still reads the single-file format of pathways 0.1).
        """
        write_parquet(self, path)

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
        order = event_order(out.patient, out.time, out.code)
        if order is not None:
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


__all__ = ["EventLog", "EVENT_COLUMNS", "PATIENT_COLUMNS"]

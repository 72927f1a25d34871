"""Cohorts (subjects + their events) and flowcharts, with SCALPEL's semantics.

A :class:`Cohort` is a set of subjects of one *population* (the patients table of an EventLog) together with
events of those subjects (an EventLog over the same patients table). Set operations act on subjects:
``union`` keeps the events of both cohorts, ``intersection`` and ``difference`` keep the left cohort's events of
the remaining subjects. A :class:`Flowchart` chains cohorts by successive intersections and counts subjects at
each step.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from pathways.cohort.codes import event_mask
from pathways.data import EventLog, Vocabulary
from pathways.errors import PathwaysInputError


def subset_events(log: EventLog, rows: np.ndarray) -> EventLog:
    """EventLog with the selected event rows (mask or indices), same patients table and vocabulary."""
    rows = np.asarray(rows)
    return EventLog.from_arrays(
        log.patient[rows], log.time[rows], log.code[rows], log.vocab, log.patients, end=log.end[rows],
        value=log.value[rows], category=log.category[rows], time_unit=log.time_unit, origin=log.origin,
        extras={k: v[rows] for k, v in log.extras.items()},
    )


def derived_events(base: EventLog, patient: np.ndarray, time: np.ndarray, codes: np.ndarray | str,
                   end: np.ndarray | None = None, value: np.ndarray | None = None,
                   category: str | np.ndarray | None = None, code_names: np.ndarray | None = None) -> EventLog:
    """EventLog of new events over the patients table of ``base``.

    ``codes`` are code strings (or one string for all events), or, with ``code_names``, integer indices into
    ``code_names`` (the fast path: only the codes used enter the vocabulary, no string is touched per event).
    """
    patient = np.asarray(patient, dtype=np.int64)
    if isinstance(codes, str):
        code_names, codes = np.array([codes], dtype=object), np.zeros(patient.size, dtype=np.int64)
    elif code_names is None:
        code_names, codes = np.unique(np.asarray(codes, dtype=object).astype(str), return_inverse=True)
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    code_names = np.asarray(code_names, dtype=object)
    if codes.size and (codes.min() < 0 or codes.max() >= code_names.size):
        raise PathwaysInputError(f"codes: indices must lie in [0, {code_names.size}) (code_names), got "
                                 f"[{int(codes.min())}, {int(codes.max())}]")
    # Code indices are bounded by len(code_names): counting finds the used ones in linear time (no sort of events).
    counts = np.bincount(codes, minlength=code_names.size) if codes.size else np.zeros(code_names.size, np.int64)
    used = np.flatnonzero(counts)
    names = code_names[used].astype(str)
    order = np.argsort(names, kind="stable")  # vocabulary sorted by code, as Vocabulary.from_codes does
    new_index = np.zeros(code_names.size, dtype=np.int64)
    new_index[used[order]] = np.arange(order.size)
    code = new_index[codes]
    vocab = Vocabulary(names[order].tolist(), counts[used[order]])
    cat = None
    if category is not None:
        if isinstance(category, str):
            cat = pd.Categorical.from_codes(np.zeros(patient.size, dtype=np.int8), categories=[category])
        elif isinstance(category, pd.Categorical):
            cat = category
        else:
            cat = pd.Categorical(np.asarray(category, dtype=object))
    return EventLog.from_arrays(
        patient, time, code, vocab, base.patients, end=end, value=value, category=cat,
        time_unit=base.time_unit, origin=base.origin,
    )


class Cohort:
    """Subjects of a population and their events.

    Parameters
    ----------
    name : short name, used in flowcharts.
    subjects : patient indices (rows of ``events.patients``) or a boolean mask over them.
    events : EventLog over the whole population's patients table; events of non-subjects are dropped.
    description : one line for reports.

    Examples
    --------
    >>> import pandas as pd
    >>> events = pd.DataFrame({"patient_id": ["a", "b", "c"], "time": [1., 2., 3.], "code": ["x", "y", "x"]})
    >>> base = Cohort.from_eventlog(EventLog.from_pandas(events))
    >>> has_x = base.with_codes(["x"], name="x")
    >>> (base - has_x).n_subjects, (base & has_x).n_subjects
    (1, 2)
    """

    def __init__(self, name: str, subjects: np.ndarray | Sequence[int], events: EventLog, description: str = ""):
        sel = np.asarray(subjects)
        if sel.dtype == bool:
            if sel.shape != (events.n_patients,):
                raise PathwaysInputError(f"subjects: mask of {sel.shape} for {events.n_patients} patients")
            sel = np.flatnonzero(sel)
        sel = np.asarray(sel, dtype=np.int64).reshape(-1)
        bad = (sel < 0) | (sel >= events.n_patients)
        if bad.any():
            raise PathwaysInputError(f"subjects: {int(bad.sum())} indices outside [0, {events.n_patients}), "
                                     f"e.g. {int(sel[bad][0])}")
        # A mask over patients dedups and sorts the subjects in linear time (they may repeat once per event).
        mask = np.zeros(events.n_patients, dtype=bool)
        mask[sel] = True
        self.name = name
        self.description = description
        self.subjects = np.flatnonzero(mask)
        inside = mask[events.patient]
        self.events = events if inside.all() else subset_events(events, inside)

    # -- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def from_eventlog(cls, log: EventLog, name: str = "population", description: str = "all patients") -> "Cohort":
        """Every patient of ``log`` with all their events."""
        return cls(name, np.arange(log.n_patients), log, description)

    def with_codes(self, codes: Iterable[str], *, name: str | None = None, prefix: bool = True,
                   categories: Iterable[str] | None = None) -> "Cohort":
        """Subjects having at least one event whose code matches ``codes`` (prefix match by default)."""
        rows = event_mask(self.events, codes, prefix=prefix, categories=categories)
        return Cohort(name or f"{self.name} with codes", np.unique(self.events.patient[rows]),
                      subset_events(self.events, rows), f"subjects with an event in {list(codes)[:5]}")

    # -- views ----------------------------------------------------------------------------------------------------
    @property
    def population(self) -> pd.DataFrame:
        """The patients table the subjects index into."""
        return self.events.patients

    @property
    def n_subjects(self) -> int:
        return int(self.subjects.size)

    def subject_mask(self) -> np.ndarray:
        """Boolean mask over the population."""
        mask = np.zeros(self.events.n_patients, dtype=bool)
        mask[self.subjects] = True
        return mask

    def to_eventlog(self) -> EventLog:
        """The subjects' events as an EventLog over the subjects only (patients renumbered 0..n_subjects-1)."""
        return self.events.select_patients(self.subjects)

    def intervals(self) -> pd.DataFrame:
        """Events as a table: patient (population index), patient_id, code, start, end, value, category."""
        ev = self.events
        return pd.DataFrame({
            "patient": ev.patient, "patient_id": ev.patient_ids(), "code": ev.code_strings(), "start": ev.time,
            "end": ev.end, "value": ev.value, "category": ev.category,
        })

    def __len__(self) -> int:
        return self.n_subjects

    def __repr__(self) -> str:
        return (f"Cohort({self.name!r}: {self.n_subjects} subjects of {self.events.n_patients}, "
                f"{self.events.n_events} events)")

    # -- set operations -------------------------------------------------------------------------------------------
    def _check_population(self, other: "Cohort") -> None:
        a, b = self.population, other.population
        if a is b:
            return
        if len(a) != len(b) or not np.array_equal(a["patient_id"].to_numpy(), b["patient_id"].to_numpy()):
            raise PathwaysInputError(
                f"cohorts {self.name!r} and {other.name!r} come from different populations "
                f"({len(a)} vs {len(b)} patients or different patient ids)")

    def union(self, other: "Cohort", name: str | None = None) -> "Cohort":
        """Subjects of either cohort; events of both (identical events kept once)."""
        self._check_population(other)
        events = concat_events(self.events, other.events)
        return Cohort(name or f"{self.name} | {other.name}", np.union1d(self.subjects, other.subjects), events,
                      f"union of {self.name} and {other.name}")

    def intersection(self, other: "Cohort", name: str | None = None) -> "Cohort":
        """Subjects of both cohorts; the events of this (left) cohort."""
        self._check_population(other)
        return Cohort(name or f"{self.name} & {other.name}", np.intersect1d(self.subjects, other.subjects),
                      self.events, f"intersection of {self.name} and {other.name}")

    def difference(self, other: "Cohort", name: str | None = None) -> "Cohort":
        """Subjects of this cohort not in ``other``; the events of this (left) cohort."""
        self._check_population(other)
        return Cohort(name or f"{self.name} - {other.name}", np.setdiff1d(self.subjects, other.subjects),
                      self.events, f"{self.name} without {other.name}")

    __or__ = union
    __and__ = intersection
    __sub__ = difference

    def rename(self, name: str, description: str | None = None) -> "Cohort":
        """Same cohort under another name."""
        return Cohort(name, self.subjects, self.events, self.description if description is None else description)


def concat_events(a: EventLog, b: EventLog) -> EventLog:
    """Stack two EventLogs over one patients table; merges vocabularies and drops identical events."""
    if a.vocab == b.vocab:
        vocab, code_a, code_b = a.vocab, a.code, b.code
    else:
        codes = np.union1d(a.vocab.codes.astype(str), b.vocab.codes.astype(str))
        vocab = Vocabulary(codes.tolist())
        code_a = vocab.encode(a.vocab.codes)[a.code]
        code_b = vocab.encode(b.vocab.codes)[b.code]
    cat = pd.Categorical(np.concatenate([np.asarray(a.category, dtype=object), np.asarray(b.category, dtype=object)]))
    frame = pd.DataFrame({
        "patient": np.concatenate([a.patient, b.patient]), "time": np.concatenate([a.time, b.time]),
        "code": np.concatenate([code_a, code_b]), "end": np.concatenate([a.end, b.end]),
        "value": np.concatenate([a.value, b.value]), "category": cat,
    })
    frame = frame[~frame.duplicated().to_numpy()]
    return EventLog.from_arrays(
        frame["patient"].to_numpy(), frame["time"].to_numpy(), frame["code"].to_numpy(), vocab, a.patients,
        end=frame["end"].to_numpy(), value=frame["value"].to_numpy(), category=frame["category"].array,
        time_unit=a.time_unit, origin=a.origin,
    )


class Flowchart:
    """Successive intersections of cohorts, with the subject count at each step.

    ``Flowchart([population, adults, exposed])`` has steps ``population``, ``population & adults``,
    ``population & adults & exposed``; each step keeps the events of the first cohort.
    """

    def __init__(self, cohorts: Sequence[Cohort]):
        if not cohorts:
            raise PathwaysInputError("cohorts: a flowchart needs at least one cohort")
        steps = [cohorts[0]]
        for cohort in cohorts[1:]:
            steps.append(steps[-1].intersection(cohort, name=cohort.name))
        self.inputs = list(cohorts)
        self.steps = steps

    @property
    def final(self) -> Cohort:
        """The cohort after every step."""
        return self.steps[-1]

    def append(self, cohort: Cohort) -> "Flowchart":
        """A new flowchart with one more step."""
        return Flowchart([*self.inputs, cohort])

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, i: int) -> Cohort:
        return self.steps[i]

    def to_frame(self) -> pd.DataFrame:
        """One row per step: step, cohort, description, n_subjects, n_excluded, share_of_initial."""
        n = np.array([c.n_subjects for c in self.steps], dtype=np.int64)
        excluded = np.concatenate([[0], n[:-1] - n[1:]])
        return pd.DataFrame({
            "step": np.arange(len(n)), "cohort": [c.name for c in self.inputs],
            "description": [c.description for c in self.inputs], "n_subjects": n, "n_excluded": excluded,
            "share_of_initial": n / max(int(n[0]), 1),
        })

    def to_markdown(self) -> str:
        """The flowchart as a markdown table."""
        frame = self.to_frame()
        lines = ["| step | cohort | subjects | excluded | % of initial |", "|---:|---|---:|---:|---:|"]
        for row in frame.itertuples(index=False):
            lines.append(f"| {row.step} | {row.cohort} | {row.n_subjects} | {row.n_excluded} | "
                         f"{100 * row.share_of_initial:.1f} |")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        return f"Flowchart({len(self)} steps: {self.steps[0].n_subjects} -> {self.final.n_subjects} subjects)"


__all__ = ["Cohort", "Flowchart", "concat_events", "subset_events", "derived_events"]

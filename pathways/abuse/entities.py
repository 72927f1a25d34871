"""What the abuse detectors share: the watched drug classes, the event columns they read, and entity indexing.

An *entity* is a patient, a prescriber or a pharmacy (executing provider of a dispensation). Entity ids are the
user's pseudonymous identifiers: they index the output tables and are never logged or written into messages.
Provider columns come from the EventLog's optional ``extras`` (``prescriber``, ``provider``, ``institution``,
``paid``, ``base``), filled by :func:`pathways.io.read_snds` or by :func:`pathways.abuse.scenarios.simulate_abuse`.
Integer id columns use negative values for "missing"; object columns use ``None`` / NaN.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pathways.data.eventlog import EventLog
from pathways.errors import PathwaysInputError

ENTITY_TYPES = ("patient", "prescriber", "pharmacy")
#: extras read by the detectors and what they hold
PROVIDER_COLUMNS = {"prescriber": "prescriber id (PFS_PRE_NUM)", "provider": "executing provider id (PFS_EXE_NUM)",
                    "institution": "institution id (ETB_PRE_FIN)", "paid": "amount paid (PRS_PAI_MNT)",
                    "base": "reimbursement base (BSE_REM_MNT)"}


@dataclass(frozen=True)
class DrugClass:
    """A watched drug class: ATC prefixes, days covered by one box, the most boxes one dispensation may hold.

    Examples
    --------
    >>> DRUG_CLASSES["opioids"].matches(np.array(["N02AA05", "ATC:N02AX02", "N05BA01"])).tolist()
    [True, True, False]
    """

    name: str
    atc_prefixes: tuple[str, ...]
    days_per_box: float = 28.0
    max_boxes: float = 2.0

    def matches(self, codes: np.ndarray) -> np.ndarray:
        """Boolean mask of the codes (plain ATC or ``ATC:``-prefixed as read_snds writes them) in this class."""
        text = pd.Series(np.asarray(codes, dtype=object)).astype(str).str.removeprefix("ATC:")
        return text.str.startswith(self.atc_prefixes).to_numpy()


#: the classes of the fraud-control literature on prescription-drug misuse (buprenorphine is N07BC01 and
#: N02AE01; the opioid class leaves N02AE out so that buprenorphine is counted once)
DRUG_CLASSES: dict[str, DrugClass] = {
    "opioids": DrugClass("opioids", ("N02AA", "N02AB", "N02AC", "N02AD", "N02AF", "N02AG", "N02AJ", "N02AX")),
    "benzodiazepines": DrugClass("benzodiazepines", ("N05BA", "N05CD", "N05CF", "N03AE01")),
    "methylphenidate": DrugClass("methylphenidate", ("N06BA04",)),
    "buprenorphine": DrugClass("buprenorphine", ("N07BC01", "N02AE01")),
}


REASON_COLUMNS = ("entity", "entity_index", "reason", "behaviour", "drug_class", "value", "reference", "z", "amount")


@dataclass
class Reasons:
    """A detector's output for one entity type: one row per (entity, indicator) in ``frame``
    (:data:`REASON_COLUMNS` + a count column) and every entity id in ``ids`` (``entity_index`` indexes it)."""

    frame: pd.DataFrame
    ids: np.ndarray = field(default_factory=lambda: np.array([]))

    @classmethod
    def of(cls, frame: pd.DataFrame, ids: np.ndarray) -> Reasons:
        """Reasons with the ``entity`` column filled from ``ids``."""
        ids = np.asarray(ids)
        frame = frame.reset_index(drop=True)
        frame.insert(0, "entity", ids[frame["entity_index"].to_numpy(np.int64)] if ids.size else [])
        return cls(frame, ids)

    @classmethod
    def empty(cls, count: str = "n_events") -> Reasons:
        return cls(pd.DataFrame(columns=[*REASON_COLUMNS, count]), np.array([]))

    def __add__(self, other: Reasons) -> Reasons:
        """Both tables re-indexed on the union of their entity ids."""
        ids = np.union1d(self.ids, other.ids) if self.ids.size and other.ids.size else (
            self.ids if self.ids.size else other.ids)
        parts = [f.assign(entity_index=np.searchsorted(ids, f["entity"].to_numpy())) for f in
                 (self.frame, other.frame) if len(f)]
        return Reasons(pd.concat(parts, ignore_index=True) if parts else self.frame, ids)


def event_classes(log: EventLog, classes: dict[str, DrugClass] | None = None) -> np.ndarray:
    """Watched-class index of every event (position in ``classes``), -1 for events outside every class.

    Only ``drug`` events count; the class is decided once per vocabulary code, not per event.
    """
    classes = DRUG_CLASSES if classes is None else classes
    per_code = np.full(log.n_codes, -1, dtype=np.int64)
    for k, cls in enumerate(classes.values()):
        per_code[cls.matches(log.vocab.codes) & (per_code < 0)] = k
    out = per_code[log.code]
    out[~is_category(log, "drug")] = -1
    return out


def is_category(log: EventLog, name: str) -> np.ndarray:
    """Events of one category (boolean mask, vectorised over the categorical codes)."""
    cats = list(log.category.categories)
    if name not in cats:
        return np.zeros(log.n_events, dtype=bool)
    return np.asarray(log.category.codes) == cats.index(name)


def extra(log: EventLog, name: str, required: bool = True) -> np.ndarray | None:
    """An extra event column, or None (or a clear error naming the column) when the log lacks it."""
    if name in log.extras:
        return log.extras[name]
    if required:
        raise PathwaysInputError(f"log: extra event column '{name}' ({PROVIDER_COLUMNS.get(name, name)}) is "
                                 f"missing; available: {sorted(log.extras)}")
    return None


def entity_index(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense entity indices (-1 for missing ids) and the distinct ids, sorted.

    Examples
    --------
    >>> idx, ids = entity_index(np.array([7, -1, 3, 7]))
    >>> idx.tolist(), ids.tolist()
    ([1, -1, 0, 1], [3, 7])
    >>> entity_index(np.array(["b", None, "a"], dtype=object))[0].tolist()
    [1, -1, 0]
    """
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        missing = values < 0
        ids, inverse = np.unique(values[~missing], return_inverse=True)
        out = np.full(values.size, -1, dtype=np.int64)
        out[~missing] = inverse
        return out, ids
    codes, ids = pd.factorize(pd.Series(values, dtype=object), sort=True)
    return codes.astype(np.int64), np.asarray(ids)


def without_prescription(log: EventLog, cover_days: float = 90.0) -> np.ndarray:
    """Dispensations naming no prescriber, or (when consultations are recorded) a prescriber who had no
    consultation with the patient in the ``cover_days`` before."""
    drug = is_category(log, "drug")
    consult = is_category(log, "consultation")
    n_drug = int(drug.sum())
    # prescribers of dispensations and doctors of consultations indexed together: one id, one index
    idx, uniq = entity_index(np.concatenate([np.asarray(extra(log, "prescriber"))[drug],
                                             np.asarray(extra(log, "provider"))[consult]]))
    presc, doctor = idx[:n_drug], idx[n_drug:]
    out = np.zeros(log.n_events, dtype=bool)
    out[np.flatnonzero(drug)[presc < 0]] = True
    if not consult.any():
        return out
    n_doc = max(uniq.size, 1)
    lo = log.time.min()
    span = log.time.max() - lo + cover_days + 2.0
    ok = doctor >= 0
    key_c = np.sort((log.patient[consult][ok] * n_doc + doctor[ok]) * span + (log.time[consult][ok] - lo))
    named = presc >= 0
    rows = np.flatnonzero(drug)[named]
    key_d = (log.patient[rows] * n_doc + presc[named]) * span + (log.time[rows] - lo)
    pos = np.searchsorted(key_c, key_d, side="right") - 1
    covered = (pos >= 0) & (key_d - key_c[np.maximum(pos, 0)] <= cover_days)
    out[rows[~covered]] = True
    return out


def amounts(log: EventLog) -> np.ndarray:
    """Amount paid per event (``paid`` extra), 0 where unknown."""
    paid = extra(log, "paid", required=False)
    if paid is None:
        return np.zeros(log.n_events)
    return np.nan_to_num(np.asarray(paid, dtype=np.float64), nan=0.0)


__all__ = [
    "DRUG_CLASSES",
    "ENTITY_TYPES",
    "PROVIDER_COLUMNS",
    "REASON_COLUMNS",
    "DrugClass",
    "Reasons",
    "amounts",
    "entity_index",
    "event_classes",
    "extra",
    "is_category",
    "without_prescription",
]

"""Encoder objects: the one place where the pipelines' encoding choices and their defaults live.

Each encoder turns an :class:`~pathways.data.eventlog.EventLog` into the input of one model kind
(``output_kind`` matches the model's ``input_kind``):

- :class:`SequenceEncoder` -> ``"sequences"`` (Hawkes, neural TPPs): :func:`~pathways.encode.sequences.to_sequences`;
- :class:`OutcomeEncoder` -> ``"outcome"`` (recurrent outcome models): binned histories before an index time and
  an outcome label within a horizon after it (:func:`~pathways.encode.outcomes.outcome_dataset`);
- :class:`SCCSEncoder` -> ``"sccs"`` (SCCS, ConvSCCS): self-controlled case-series buckets
  (:func:`~pathways.encode.sccs.sccs_data`).

``fit(log, truth=None)`` makes the choices that depend on the training data (the most frequent diagnosis as the
outcome; SCCS exposures from a synthetic truth), ``transform(log)`` encodes any log the same way, and
``get_params()`` is the JSON-able state the checkpoint stores (``{"_target_": ..., **arguments}``) so that
inference rebuilds the encoder with :func:`encoder_from_state` and encodes new patients identically. Every default
lives once, in the constructor signatures below; ``configs/encode/*.yaml`` are ``_target_`` nodes of them.
"""
from __future__ import annotations

import abc
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from pathways.data.anchors import MIDPOINT, index_times
from pathways.data.eventlog import EventLog
from pathways.encode.outcomes import OutcomeData, outcome_dataset
from pathways.encode.sccs import SCCSData, sccs_data
from pathways.encode.sequences import Sequences, to_sequences
from pathways.errors import PathwaysInputError
from pathways.synthetic.truth import Truth
from pathways.utils import logger

#: categories whose most frequent code becomes the default outcome
_OUTCOME_CATEGORIES = ("diagnosis", "outcome", "event")


class Encoder(abc.ABC):
    """Base of the encoders: ``fit`` (choices from data), ``transform`` and a JSON-able ``get_params``."""

    output_kind: ClassVar[str]

    def fit(self, log: EventLog | Sequences, truth: Truth | None = None) -> "Encoder":
        """Make the data-dependent choices on the training log (none by default); returns self."""
        return self

    @abc.abstractmethod
    def transform(self, log: EventLog | Sequences) -> Any:
        """Encode ``log`` with the fitted choices."""

    def fit_transform(self, log: EventLog | Sequences, truth: Truth | None = None) -> Any:
        """``fit(log, truth).transform(log)``."""
        return self.fit(log, truth).transform(log)

    @abc.abstractmethod
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments with the fitted choices filled in (JSON-able)."""

    def state(self) -> dict[str, Any]:
        """What a checkpoint stores: ``{"_target_": <class path>, **get_params()}``."""
        return {"_target_": f"{type(self).__module__}.{type(self).__qualname__}", **self.get_params()}

    def _event_log(self, log: Any) -> EventLog:
        if not isinstance(log, EventLog):
            raise PathwaysInputError(f"{type(self).__name__} ({self.output_kind!r} input) needs an EventLog; the "
                                     f"data config gave {type(log).__name__}")
        return log


class SequenceEncoder(Encoder):
    """Per-patient event sequences for Hawkes and neural TPP models (Sequences pass through unchanged).

    Examples
    --------
    >>> import pandas as pd
    >>> log = EventLog.from_pandas(pd.DataFrame({"patient_id": [0, 0], "time": [0.0, 1.0], "code": ["a", "b"]}))
    >>> SequenceEncoder().fit_transform(log).n_events
    2
    """

    output_kind = "sequences"

    def transform(self, log: EventLog | Sequences) -> Sequences:
        return log if isinstance(log, Sequences) else to_sequences(self._event_log(log))

    def get_params(self) -> dict[str, Any]:
        return {}


class OutcomeEncoder(Encoder):
    """Binned histories before an index time, labelled by an outcome within a horizon after it.

    Parameters
    ----------
    outcomes : outcome code(s); None = the most frequent diagnosis code of the training log (chosen by ``fit``).
    horizon_days : window after the index time in which an outcome counts as positive.
    lookback_days : history kept before the index time.
    index_time : column of the patients table holding the index time; None = the middle of each observation window.
    censoring : patients followed less than the horizon: "keep" (as negatives) or "drop".
    bin_days : width of the history bins.
    value : bin values, "count" or "indicator".
    """

    output_kind = "outcome"

    def __init__(self, outcomes: str | Sequence[str] | None = None, horizon_days: float = 180.0,
                 lookback_days: float = 365.0, index_time: str | None = None, censoring: str = "keep",
                 bin_days: float = 30.0, value: str = "count") -> None:
        self.outcomes = outcomes
        self.horizon_days = horizon_days
        self.lookback_days = lookback_days
        self.index_time = index_time
        self.censoring = censoring
        self.bin_days = bin_days
        self.value = value
        self.outcomes_: list[str] | None = _as_codes(outcomes)

    def fit(self, log: EventLog | Sequences, truth: Truth | None = None) -> "OutcomeEncoder":
        """Choose the outcome (the most frequent diagnosis code of ``log``) when none was given."""
        if self.outcomes_ is None:
            self.outcomes_ = [most_frequent_diagnosis(self._event_log(log))]
            logger.info("outcome encoder: no outcomes given, using the most frequent diagnosis code")
        return self

    def transform(self, log: EventLog | Sequences) -> OutcomeData:
        log = self._event_log(log)
        if self.outcomes_ is None:
            raise PathwaysInputError("OutcomeEncoder: no outcome codes: give 'outcomes' or call fit first")
        anchor = index_times(log, self.index_time or MIDPOINT)
        return outcome_dataset(log, self.outcomes_, float(self.horizon_days), anchor,
                               lookback=float(self.lookback_days), bin_days=float(self.bin_days),
                               value=str(self.value), censoring=str(self.censoring))

    def get_params(self) -> dict[str, Any]:
        return {"outcomes": self.outcomes_, "horizon_days": float(self.horizon_days),
                "lookback_days": float(self.lookback_days), "index_time": self.index_time,
                "censoring": str(self.censoring), "bin_days": float(self.bin_days), "value": str(self.value)}


class SCCSEncoder(Encoder):
    """Self-controlled case-series buckets of an outcome around exposures (:func:`~pathways.encode.sccs.sccs_data`).

    Parameters
    ----------
    exposures : exposure (drug) codes; None = taken from a synthetic truth by ``fit`` (drugs planted on the
        outcome, plus two null drugs).
    outcome : outcome code; None = the first outcome of a synthetic truth.
    bucket_size : width of the time buckets.
    n_buckets, outcome_mode, first_exposure_only, exposure_value, age_edges : as in ``sccs_data``.
    """

    output_kind = "sccs"

    def __init__(self, exposures: Sequence[str] | None = None, outcome: str | None = None, bucket_size: float = 7.0,
                 n_buckets: int | None = None, outcome_mode: str = "first", first_exposure_only: bool = False,
                 exposure_value: str = "indicator", age_edges: Sequence[float] | None = None) -> None:
        self.exposures = exposures
        self.outcome = outcome
        self.bucket_size = bucket_size
        self.n_buckets = n_buckets
        self.outcome_mode = outcome_mode
        self.first_exposure_only = first_exposure_only
        self.exposure_value = exposure_value
        self.age_edges = age_edges
        self.exposures_: list[str] | None = _as_codes(exposures)
        self.outcome_: str | None = None if outcome is None else str(outcome)

    def fit(self, log: EventLog | Sequences, truth: Truth | None = None) -> "SCCSEncoder":
        """Complete exposures / outcome from the synthetic ``truth``: its first outcome, the drugs planted on it
        and two null drugs."""
        effects = truth.drug_effects if isinstance(truth, Truth) else None
        if (self.exposures_ is None or self.outcome_ is None) and effects is not None:
            self.outcome_ = self.outcome_ or str(effects["event"].iloc[0])
            planted = effects.loc[effects["event"].astype(str) == self.outcome_, "drug"].unique()
            if self.exposures_ is None:
                self.exposures_ = [str(d) for d in planted] + [str(d) for d in list(truth.null_drugs)[:2]]
        self._check()
        return self

    def _check(self) -> None:
        if not self.exposures_ or not self.outcome_:
            raise PathwaysInputError("config 'encode' (SCCSEncoder): set 'exposures' (drug codes) and 'outcome' "
                                     "(event code)")

    def transform(self, log: EventLog | Sequences) -> SCCSData:
        self._check()
        return sccs_data(self._event_log(log), self.exposures_, self.outcome_, float(self.bucket_size),
                         n_buckets=self.n_buckets, outcome_mode=self.outcome_mode,
                         first_exposure_only=bool(self.first_exposure_only), exposure_value=self.exposure_value,
                         age_edges=None if self.age_edges is None else [float(a) for a in self.age_edges])

    def get_params(self) -> dict[str, Any]:
        return {"exposures": self.exposures_, "outcome": self.outcome_, "bucket_size": float(self.bucket_size),
                "n_buckets": self.n_buckets, "outcome_mode": self.outcome_mode,
                "first_exposure_only": bool(self.first_exposure_only), "exposure_value": self.exposure_value,
                "age_edges": None if self.age_edges is None else [float(a) for a in self.age_edges]}


ENCODERS: dict[str, type[Encoder]] = {cls.__name__: cls for cls in (SequenceEncoder, OutcomeEncoder, SCCSEncoder)}


def encoder_from_state(state: Mapping[str, Any], input_kind: str) -> Encoder:
    """Rebuild the encoder a checkpoint stored.

    ``state`` is :meth:`Encoder.state` (``{"_target_": ..., **params}``), or the ``encode`` dict of checkpoints
    written before the encoder objects (blocks ``sequences``, ``sparse_series``, ``labels``, ``sccs``), read for
    the model's ``input_kind`` ("sparse_series" is the former name of "outcome").

    Examples
    --------
    >>> encoder_from_state({"labels": {"outcomes": "X"}, "sparse_series": {"bin_days": 10.0}}, "outcome").bin_days
    10.0
    """
    state = dict(state)
    target = state.pop("_target_", None)
    if target is not None:
        name = str(target).rsplit(".", 1)[-1]
        if name not in ENCODERS or not str(target).startswith("pathways.encode"):
            raise PathwaysInputError(f"checkpoint encoder {target!r} is not one of {sorted(ENCODERS)}")
        return ENCODERS[name](**state)
    return _legacy_encoder(state, input_kind)


def _legacy_encoder(state: Mapping[str, Any], input_kind: str) -> Encoder:
    """The encoder equivalent to an old-style ``encode`` dict (checkpoints of earlier versions)."""
    if input_kind == "sequences":
        return SequenceEncoder()
    if input_kind in ("outcome", "sparse_series"):
        labels, series = dict(state.get("labels") or {}), dict(state.get("sparse_series") or {})
        return OutcomeEncoder(**labels, **series)
    if input_kind == "sccs":
        return SCCSEncoder(**dict(state.get("sccs") or {}))
    raise PathwaysInputError(f"input kind {input_kind!r} has no encoder; expected sequences, outcome or sccs")


def most_frequent_diagnosis(log: EventLog) -> str:
    """The most frequent code among diagnosis / outcome / event rows (among all rows when the log has none)."""
    counts = np.bincount(log.code, minlength=log.n_codes)
    if log.category is not None:
        diag = np.isin(np.asarray(log.category.astype(str)), _OUTCOME_CATEGORIES)
        if diag.any():
            counts = np.bincount(log.code[diag], minlength=log.n_codes)
    return str(log.vocab.codes[int(np.argmax(counts))])


def _as_codes(codes: str | Sequence[str] | None) -> list[str] | None:
    if codes is None or (not isinstance(codes, str) and len(codes) == 0):
        return None
    return [codes] if isinstance(codes, str) else [str(c) for c in codes]

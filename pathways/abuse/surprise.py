"""Model-based surprise: how unlikely each patient's watched-class dispensations are under a point-process model
fitted on the population.

The dispensations of the watched classes become one mark per class; a multivariate Hawkes process with
exponential kernels (refills excite refills) is fitted on a random subset of the treated patients. Each treated
patient then gets its log-likelihood per event (the model protocol's ``score_samples``) and the time-rescaling
residual scores of :func:`pathways.signals.anomalies.model_anomaly_scores`: under the model, rescaled event times
are uniform and counts match the compensators, so a patient refilling far faster than the population, from one
class or several, gets a large ``-log10 p``. Any fitted model with the protocol and that function's interface can
be passed instead.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pathways.abuse.entities import (
    DRUG_CLASSES,
    DrugClass,
    Reasons,
    amounts,
    event_classes,
)
from pathways.abuse.peers import robust_z
from pathways.data.eventlog import EventLog
from pathways.data.vocabulary import Vocabulary
from pathways.errors import PathwaysInputError
from pathways.models.hawkes import HawkesExpKernel
from pathways.signals.anomalies import model_anomaly_scores
from pathways.utils import SeedLike, rng


def class_log(log: EventLog, classes: dict[str, DrugClass] | None = None) -> tuple[EventLog, np.ndarray]:
    """The treated patients' watched-class dispensations, coded by class; and the original index of each patient."""
    classes = DRUG_CLASSES if classes is None else classes
    k = event_classes(log, classes)
    m = k >= 0
    treated = np.unique(log.patient[m])
    if treated.size == 0:
        raise PathwaysInputError("log: no dispensation of a watched drug class; nothing to model")
    new = np.full(log.n_patients, -1, dtype=np.int64)
    new[treated] = np.arange(treated.size)
    patients = log.patients.iloc[treated][["patient_id", "start", "end"]].reset_index(drop=True)
    sub = EventLog.from_arrays(new[log.patient[m]], log.time[m], k[m], Vocabulary(list(classes)), patients,
                               time_unit=log.time_unit, origin=log.origin)
    return sub, treated


def fit_class_model(sub: EventLog, fit_patients: int = 5000, decay: float = 1.0 / 28.0, seed: SeedLike = 0) -> Any:
    """A Hawkes process with exponential kernels fitted on at most ``fit_patients`` random treated patients."""
    g = rng(seed)
    chosen = np.sort(g.permutation(sub.n_patients)[:fit_patients])
    return HawkesExpKernel(decay=decay, penalty="l2", C=1e3).fit(sub.select_patients(chosen))


def model_surprise(log: EventLog, model: Any = None, *, classes: dict[str, DrugClass] | None = None,
                   fit_patients: int = 5000, decay: float = 1.0 / 28.0, seed: SeedLike = 0,
                   min_events: int = 3) -> Reasons:
    """Reasons table (patients) of model-based surprise; reason ``model_surprise``.

    ``value`` is the time-rescaling score (``-log10 p``, the larger of timing and volume), ``loglik_per_event``
    the model's log-likelihood per event; ``model`` (fitted on :func:`class_log` codes) skips the fit. Patients
    with fewer than ``min_events`` watched-class dispensations score 0.
    """
    classes = DRUG_CLASSES if classes is None else classes
    sub, treated = class_log(log, classes)
    model = fit_class_model(sub, fit_patients, decay, seed) if model is None else model
    loglik = model.score_samples(sub)
    scores = model_anomaly_scores(model, sub).sort_values("sequence")
    n_events = np.diff(sub.offsets)
    # a timing test on one or two events says nothing (KS distance 1 for one event); -log10 p capped at 50
    value = np.where(n_events >= min_events, np.clip(np.nan_to_num(scores["score"].to_numpy(), nan=0.0,
                                                                   posinf=50.0), 0.0, 50.0), 0.0)
    z, med = robust_z(value, None, 0.5)
    paid = np.bincount(log.patient, weights=amounts(log) * (event_classes(log, classes) >= 0),
                       minlength=log.n_patients)[treated]
    frame = pd.DataFrame({"entity_index": treated,
                          "reason": "model_surprise", "behaviour": "dispensing rhythm unlikely under the model",
                          "drug_class": "", "value": value, "reference": med, "z": z, "amount": paid,
                          "n_events": n_events.astype(np.int64), "loglik_per_event": loglik / np.maximum(n_events, 1)})
    return Reasons.of(frame, log.patients["patient_id"].to_numpy())


__all__ = ["class_log", "fit_class_model", "model_surprise"]

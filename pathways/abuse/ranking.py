"""One ranked table per entity type (patients, prescribers, pharmacies) with scores, top reasons and amounts.

Every detector writes rows of a *reasons table* (one row per entity and indicator): ``entity`` (the user's id),
``entity_index``, ``reason`` (indicator key), ``behaviour`` (what an analyst would call it), ``drug_class``,
``value``, ``reference`` (population or peer median), ``z`` (robust z-score), ``amount`` (money behind the
indicator) and a count column (``n_events`` or ``n_patients``). :func:`rank_entities` turns it into the ranked
table: the score is the sum of the ``top_k`` largest z-scores (clipped to ``[0, z_cap]`` so that no single
indicator decides alone), the explanation lists the top reasons, and the amount at stake is the largest amount
among the flagged reasons (``z >= z_flag``; amounts of one entity overlap, so they are not added).

Small counts: count columns below ``min_count`` are blanked (the DESIGN rule: nothing from which a small count
could be recomputed), in the ranked table and in the reasons table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from pathways import disclosure
from pathways.abuse.entities import DRUG_CLASSES, DrugClass, Reasons
from pathways.abuse.indicators import patient_indicators, pharmacy_indicators
from pathways.abuse.network import build_network, communities, network_indicators
from pathways.abuse.peers import prescriber_indicators
from pathways.abuse.surprise import model_surprise
from pathways.data.eventlog import EventLog

COUNT_COLUMNS = ("n_events", "n_patients", "n_flags")


def rank_entities(reasons: Reasons, *, top_k: int = 3, z_cap: float = 30.0, z_flag: float = 3.0,
                  top_reasons: int = 3, min_count: int = 0, exclude: tuple[str, ...] = ()) -> pd.DataFrame:
    """Ranked table of one entity type from its reasons (every entity of ``reasons.ids`` gets a row).

    Parameters
    ----------
    top_k, z_cap : score = sum of the ``top_k`` largest z-scores clipped to ``[0, z_cap]``.
    z_flag : reasons at or above this z are flagged (counted in ``n_flags``, amounts at stake).
    top_reasons : how many reasons the explanation lists.
    min_count : count columns below it are blanked.
    exclude : reason keys left out of the score (e.g. ``("model_surprise",)`` for indicators alone).

    Returns
    -------
    DataFrame sorted by decreasing score: ``rank``, ``entity``, ``score``, ``n_flags``, ``behaviours`` (of the
    flagged top reasons), ``top_reasons`` (text), ``amount_at_stake``, ``n_events`` / ``n_patients``.

    Examples
    --------
    >>> r = pd.DataFrame({"entity_index": [0, 0, 1], "reason": ["x", "y", "x"],
    ...                   "behaviour": ["doctor shopping", "overlap", "doctor shopping"], "drug_class": "opioids",
    ...                   "value": [6.0, 90.0, 1.0], "reference": [1.0, 0.0, 1.0], "z": [10.0, 3.2, 0.0],
    ...                   "amount": [120.0, 120.0, 10.0], "n_events": [20, 20, 2]})
    >>> t = rank_entities(Reasons.of(r, np.array(["a", "b"])))
    >>> t[["entity", "score", "n_flags", "behaviours"]].values.tolist()
    [['a', 13.2, 2, 'doctor shopping; overlap'], ['b', 0.0, 0, '']]
    """
    ids = reasons.ids
    frame = reasons.frame
    used = frame[~frame["reason"].isin(exclude)]
    idx = used["entity_index"].to_numpy(np.int64)
    z = np.clip(np.nan_to_num(used["z"].to_numpy(np.float64)), 0.0, z_cap)
    order = np.lexsort((-z, idx))
    rank_in = np.arange(order.size) - np.searchsorted(idx[order], idx[order])
    top = order[rank_in < top_k]
    score = np.bincount(idx[top], weights=z[top], minlength=ids.size)
    flagged = z >= z_flag
    n_flags = np.bincount(idx[flagged], minlength=ids.size)
    amount = np.zeros(ids.size)
    np.maximum.at(amount, idx[flagged], used["amount"].to_numpy(np.float64)[flagged])
    shown = order[(rank_in < top_reasons) & (z[order] > 0)]
    text = _reason_text(used.iloc[shown])
    table = pd.DataFrame({"entity": ids, "score": np.round(score, 6), "n_flags": n_flags,
                          "behaviours": _joined(idx[shown], used["behaviour"].to_numpy()[shown],
                                                flagged[shown], ids.size, unique=True),
                          "top_reasons": _joined(idx[shown], text, np.ones(shown.size, bool), ids.size),
                          "amount_at_stake": np.round(amount, 2)})
    count = "n_patients" if "n_patients" in frame else "n_events"
    table[count] = frame.groupby("entity_index")[count].max().reindex(np.arange(ids.size)).fillna(0).to_numpy()
    table = table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return suppress_small_counts(table, min_count)


def _reason_text(rows: pd.DataFrame) -> np.ndarray:
    klass = rows["drug_class"].astype(str).to_numpy()
    label = np.where(klass == "", rows["behaviour"].to_numpy(), rows["behaviour"].to_numpy() + " (" + klass + ")")
    detail = [f"{r}: {v:.3g} vs {m:.3g} (z={z:.1f})" for r, v, m, z in
              zip(rows["reason"], rows["value"], rows["reference"], rows["z"])]
    return label.astype(object) + " - " + np.asarray(detail, dtype=object)


def _joined(idx: np.ndarray, text: np.ndarray, keep: np.ndarray, n: int, unique: bool = False) -> list[str]:
    s = pd.Series(np.asarray(text, dtype=object)[keep], index=idx[keep])
    if unique:
        s = s.groupby(level=0).agg(lambda v: "; ".join(dict.fromkeys(v)))
    else:
        s = s.groupby(level=0).agg("; ".join)
    return s.reindex(np.arange(n), fill_value="").tolist()


def suppress_small_counts(table: pd.DataFrame, min_count: int) -> pd.DataFrame:
    """Blank (NaN) the count columns below ``min_count`` (zeros stay: a zero reveals nobody); the rule is
    ``pathways.disclosure.TABLES["abuse"]`` (``n_flags`` counts reasons, not people: kept)."""
    return disclosure.suppress(table, int(min_count) if min_count > 0 else None, "abuse", flag=False)


@dataclass
class AbuseResult:
    """Ranked tables and reasons per entity type, and the provider communities."""

    tables: dict[str, pd.DataFrame]
    reasons: dict[str, Reasons]
    communities: pd.DataFrame = field(default_factory=pd.DataFrame)


def detect_abuse(log: EventLog, providers: pd.DataFrame | None = None, *, model: Any = None,
                 use_model: bool = True, classes: dict[str, DrugClass] | None = None, cover_days: float = 90.0,
                 min_count: int = 10, z_flag: float = 3.0, top_k: int = 3, fit_patients: int = 5000,
                 seed: int = 0) -> AbuseResult:
    """Run every detector and rank patients, prescribers and pharmacies.

    ``providers`` (``provider``, ``specialty``, ``region``) defines peer groups; ``model`` a fitted class-level
    point-process model (else one is fitted when ``use_model``).
    """
    classes = DRUG_CLASSES if classes is None else classes
    patients = patient_indicators(log, classes)
    if use_model:
        patients = patients + model_surprise(log, model, classes=classes, fit_patients=fit_patients, seed=seed)
    network = network_indicators(log, classes)
    reasons = {"patient": patients,
               "prescriber": prescriber_indicators(log, providers, classes, cover_days=cover_days)
               + network["prescriber"],
               "pharmacy": pharmacy_indicators(log, providers, cover_days) + network["pharmacy"]}
    tables = {k: rank_entities(v, top_k=top_k, z_flag=z_flag, min_count=min_count) for k, v in reasons.items()}
    rings = communities(build_network(log, classes))
    reasons = {k: Reasons(suppress_small_counts(v.frame, min_count), v.ids) for k, v in reasons.items()}
    return AbuseResult(tables, reasons, rings)


def evaluate(table: pd.DataFrame, positives: np.ndarray, others: np.ndarray, top_share: float = 0.01
             ) -> dict[str, float]:
    """AUROC and precision in the top ``top_share`` of one scenario: ``others`` (planted with another scenario)
    leave the pool, so each scenario is scored as if alone at its prevalence.

    Examples
    --------
    >>> t = pd.DataFrame({"entity": list("abcdef"), "score": [9, 8, 7, 1, 0, 0]})
    >>> evaluate(t, np.array(["a"]), np.array(["b"]), top_share=0.2)
    {'auroc': 1.0, 'precision_top': 1.0, 'n_positives': 1, 'n_top': 1}
    """
    pool = table[~table["entity"].isin(others)]
    y = pool["entity"].isin(positives).to_numpy()
    score = pool["score"].to_numpy(np.float64)
    n_top = max(1, round(top_share * len(pool)))
    top = np.argsort(-score, kind="stable")[:n_top]
    auroc = float(roc_auc_score(y, score)) if 0 < y.sum() < y.size else float("nan")
    return {"auroc": round(auroc, 4), "precision_top": round(float(y[top].mean()), 4), "n_positives": int(y.sum()),
            "n_top": n_top}


__all__ = ["COUNT_COLUMNS", "AbuseResult", "detect_abuse", "evaluate", "rank_entities", "suppress_small_counts"]

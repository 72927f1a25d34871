"""Abuse and fraud: score patients, prescribers and pharmacies whose claims do not look like care.

Detectors (each gives a score and an explanation per entity, vectorised over sparse entity x feature matrices):
transparent indicators (:mod:`~pathways.abuse.indicators`), peer groups of providers
(:mod:`~pathways.abuse.peers`), model-based surprise (:mod:`~pathways.abuse.surprise`), the patient - prescriber -
pharmacy network (:mod:`~pathways.abuse.network`); :func:`detect_abuse` ranks each entity type
(:mod:`~pathways.abuse.ranking`); :func:`simulate_abuse` plants scenarios with their truth
(:mod:`~pathways.abuse.scenarios`). See docs/abuse.md.
"""
from pathways.abuse.entities import DRUG_CLASSES, DrugClass, Reasons
from pathways.abuse.indicators import (
    impossible_dates,
    patient_indicators,
    pharmacy_indicators,
)
from pathways.abuse.network import build_network, communities, network_indicators
from pathways.abuse.peers import prescriber_indicators, robust_z
from pathways.abuse.ranking import (
    AbuseResult,
    detect_abuse,
    evaluate,
    rank_entities,
    suppress_small_counts,
)
from pathways.abuse.scenarios import AbuseTruth, simulate_abuse
from pathways.abuse.surprise import model_surprise

__all__ = [
    "DRUG_CLASSES",
    "AbuseResult",
    "AbuseTruth",
    "DrugClass",
    "Reasons",
    "build_network",
    "communities",
    "detect_abuse",
    "evaluate",
    "impossible_dates",
    "model_surprise",
    "network_indicators",
    "patient_indicators",
    "pharmacy_indicators",
    "prescriber_indicators",
    "rank_entities",
    "robust_z",
    "simulate_abuse",
    "suppress_small_counts",
]

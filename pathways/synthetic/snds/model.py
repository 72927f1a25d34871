"""The medical model of the synthetic SNDS: chronic pathologies (prevalence by age, incidence, remission, mortality,
long-term illness (ALD) declaration, tracer drugs, acts, hospital stays, costs), background care, the age pyramid
and the drugs open to misuse. Figures are orders of magnitude calibrated on public margins (see
``docs/synthetic_snds.md``); every code is a real ATC / ICD-10 / CCAM code of the embedded extract."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Age bands (lower bounds, years) of the prevalence tables and the age pyramid.
AGE_BANDS = np.array([0, 10, 20, 30, 40, 50, 60, 70, 80, 90])
#: Share of the population per age band (France, INSEE 1 January 2020, rounded).
AGE_PYRAMID = np.array([0.113, 0.123, 0.113, 0.121, 0.128, 0.132, 0.122, 0.091, 0.047, 0.010])
SHARE_FEMALE = 0.516
#: Annual death probability outside any pathology: exp(a + b * age) (Gompertz fit of French life tables, rounded).
GOMPERTZ = (-10.6, 0.088)


@dataclass(frozen=True)
class Pathology:
    """A chronic pathology group of the cartography and how it shows in the claims.

    ``prevalence`` is per age band (:data:`AGE_BANDS`); ``incidence`` the yearly onset probability as a fraction
    of the band prevalence; ``remission`` the yearly probability of leaving the active state; ``death_hr`` the
    hazard ratio on death; ``ald`` (ALD number, probability of a declaration); ``drugs`` tracer ATC codes (one
    or two per patient, dispensed every 28-30 days); ``acts`` CCAM acts and their yearly count; ``stays`` the
    yearly rate of stays with ``icd`` as principal diagnosis, their mean length and cost; ``sessions`` yearly
    one-day sessions (dialysis, chemotherapy) with their principal diagnosis and cost.
    """

    key: str
    label: str
    icd: tuple[str, ...]
    prevalence: tuple[float, ...]
    incidence: float
    remission: float
    death_hr: float
    ald: tuple[int, float]
    drugs: tuple[str, ...]
    acts: tuple[str, ...]
    acts_per_year: float
    stays_per_year: float
    stay_days: float
    stay_cost: float
    specialist_per_year: float
    sessions: tuple[str, float, float] = ("", 0.0, 0.0)


PATHOLOGIES: tuple[Pathology, ...] = (
    Pathology("diabetes", "diabetes", ("E119", "E118", "E117", "E109"),
              (0.0005, 0.002, 0.004, 0.01, 0.03, 0.07, 0.12, 0.16, 0.16, 0.12), 0.08, 0.0, 1.3, (8, 0.75),
              ("A10BA02", "A10BB12", "A10BH01", "A10AE04"), ("BGQP002", "DEQP003"), 1.0, 0.08, 4.0, 3500.0, 1.5),
    Pathology("hypertension", "treated hypertension and vascular risk (no other pathology group)", ("I10",),
              (0.0, 0.0, 0.005, 0.02, 0.07, 0.16, 0.30, 0.42, 0.48, 0.45), 0.06, 0.0, 1.1, (0, 0.0),
              ("C09AA05", "C08CA01", "C09CA01", "C03AA03", "C10AA05"), ("DEQP003",), 0.5, 0.01, 3.0, 2500.0, 0.3),
    Pathology("coronary", "chronic coronary disease", ("I251", "I209", "I214"),
              (0.0, 0.0, 0.0002, 0.001, 0.006, 0.02, 0.05, 0.09, 0.12, 0.12), 0.07, 0.0, 1.6, (13, 0.6),
              ("B01AC06", "C07AB07", "C10AA05", "B01AC04"), ("DEQP003", "DZQM006", "DDQH012"), 1.5, 0.15, 4.0,
              4500.0, 1.0),
    Pathology("heart_failure", "chronic heart failure", ("I500", "I509", "I110"),
              (0.0, 0.0, 0.0001, 0.0005, 0.002, 0.005, 0.013, 0.03, 0.07, 0.11), 0.15, 0.0, 2.5, (5, 0.6),
              ("C03CA01", "C07AB07", "C09CA03", "C03DA01", "B01AF01"), ("DZQM006", "DEQP003"), 2.0, 0.45, 9.0,
              5500.0, 1.5),
    Pathology("stroke", "stroke (sequelae)", ("I639", "I64", "G459", "I694"),
              (0.0, 0.0002, 0.0005, 0.001, 0.003, 0.007, 0.014, 0.025, 0.045, 0.06), 0.12, 0.0, 1.8, (1, 0.5),
              ("B01AC04", "B01AF02", "C10AA05"), ("ACQN001", "EBQM001"), 1.0, 0.2, 10.0, 7000.0, 1.0),
    Pathology("cancer", "active cancer (breast, prostate, colon, lung)", ("C509", "C61", "C189", "C349"),
              (0.0003, 0.0003, 0.001, 0.003, 0.008, 0.018, 0.035, 0.05, 0.05, 0.04), 0.35, 0.3, 2.8, (30, 0.85),
              ("L02BA01", "L02BG04", "L02AE02", "L01BC06"), ("QEQK001", "ZBQH001", "ZCQK002"), 2.0, 0.6, 6.0,
              6000.0, 3.0, ("Z511", 8.0, 450.0)),
    Pathology("ckd", "end-stage chronic kidney disease (dialysis)", ("N185",),
              (0.0, 0.00002, 0.0001, 0.0003, 0.0006, 0.001, 0.0016, 0.0022, 0.0022, 0.0012), 0.12, 0.03, 3.0,
              (19, 0.95), ("B03XA01", "V03AE02"), ("JVJF004",), 1.0, 0.8, 7.0, 5000.0, 2.0, ("Z491", 150.0, 330.0)),
    Pathology("psychiatric", "psychiatric disorders (depression, psychosis, bipolar)", ("F329", "F332", "F209", "F319"),
              (0.002, 0.012, 0.03, 0.035, 0.04, 0.04, 0.035, 0.035, 0.04, 0.04), 0.2, 0.12, 1.5, (23, 0.35),
              ("N06AB10", "N06AB06", "N05AH04", "N05AX08", "N05AN01"), (), 0.0, 0.1, 12.0, 4500.0, 4.0),
    Pathology("dementia", "dementia (including Alzheimer disease)", ("G309", "F03", "F001"),
              (0.0, 0.0, 0.0, 0.0, 0.0002, 0.001, 0.005, 0.025, 0.08, 0.17), 0.25, 0.0, 2.2, (15, 0.5),
              ("N06DA02", "N06DX01"), ("ACQN001",), 0.3, 0.15, 9.0, 4500.0, 1.0),
    Pathology("copd", "chronic obstructive pulmonary disease", ("J449", "J441"),
              (0.0, 0.0, 0.001, 0.003, 0.01, 0.025, 0.05, 0.07, 0.08, 0.07), 0.1, 0.0, 1.7, (14, 0.3),
              ("R03AC02", "R03BB04", "R03AK06"), ("GLQP012", "ZBQK002"), 1.0, 0.15, 7.0, 4500.0, 1.0),
)

#: Drugs open to misuse, by class: what doctor/pharmacy shoppers obtain and over-prescribers prescribe.
MISUSE: dict[str, tuple[str, ...]] = {
    "opioids": ("N02AA05", "N02AA01", "N02AX02"),
    "benzodiazepines": ("N05BA12", "N05BA01", "N05CF02"),
    "methylphenidate": ("N06BA04",),
    "buprenorphine": ("N07BC01",),
}
#: Background stays: principal diagnosis of an unplanned stay outside the pathology groups.
BACKGROUND_STAY_ICD = ("J189", "N390", "K358", "S720", "M179", "H251", "I489", "R55", "R53")
#: Background acts (imaging, ECG) anyone may get.
BACKGROUND_ACTS = ("ZBQK002", "DEQP003", "ZCQM001", "QEQM001", "HHQE005", "AHQB027", "JDQJ001")
#: Generic causes of death of patients without a pathology group.
BACKGROUND_DEATH_ICD = ("R99", "J189", "I219", "R53", "S720")

#: Care categories of the cost truth.
COST_CATEGORIES = ("pharmacy", "gp", "specialist", "acts", "hospital")
#: (PRS_NAT_REF, unit price EUR, reimbursement rate) of the outpatient services; PRS_NAT_REF values are
#: plausible benefit-nature codes (the IR_NAT_V nomenclature is not in the shared extract).
SERVICES = {"gp": (1111, 25.0, 0.70), "specialist": (1112, 50.0, 0.70), "pharmacy": (3317, 0.0, 0.65),
            "dispensing_fee": (3336, 1.02, 0.70), "acts": (1351, 0.0, 0.70)}


def age_band(age: np.ndarray) -> np.ndarray:
    """Index in :data:`AGE_BANDS` of each age (years).

    Examples
    --------
    >>> age_band(np.array([0, 9, 10, 95])).tolist()
    [0, 0, 1, 9]
    """
    return np.clip(np.asarray(age) // 10, 0, AGE_BANDS.size - 1).astype(np.int64)


def prevalence_matrix() -> np.ndarray:
    """(pathology, age band) prevalence."""
    return np.array([p.prevalence for p in PATHOLOGIES])


__all__ = [
    "AGE_BANDS",
    "AGE_PYRAMID",
    "BACKGROUND_ACTS",
    "BACKGROUND_DEATH_ICD",
    "BACKGROUND_STAY_ICD",
    "COST_CATEGORIES",
    "GOMPERTZ",
    "MISUSE",
    "PATHOLOGIES",
    "SERVICES",
    "SHARE_FEMALE",
    "Pathology",
    "age_band",
    "prevalence_matrix",
]

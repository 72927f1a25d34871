"""The code catalogue of synthetic cohorts: embedded lists of real ATC, ICD-10 and CCAM codes (the package never
reads ../shared at run time) and the codes of one cohort in vocabulary order."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pathways.data.vocabulary import Vocabulary

#: (ATC code, label); the order puts diverse classes first so small ``n_drugs`` still look like a real cohort.
DRUGS: tuple[tuple[str, str], ...] = (
    ("C09AA05", "ramipril"), ("A10BA02", "metformin"), ("N05BA12", "alprazolam"), ("B01AA03", "warfarin"),
    ("M01AE01", "ibuprofen"), ("N02AX02", "tramadol"), ("C10AA05", "atorvastatin"), ("J01CA04", "amoxicillin"),
    ("A02BC01", "omeprazole"), ("N06AB10", "escitalopram"), ("C07AB07", "bisoprolol"), ("N05CF02", "zolpidem"),
    ("C03CA01", "furosemide"), ("A10BB12", "glimepiride"), ("N02BE01", "paracetamol"), ("B01AF01", "rivaroxaban"),
    ("J01MA02", "ciprofloxacin"), ("H03AA01", "levothyroxine"), ("R03AC02", "salbutamol"), ("C08CA01", "amlodipine"),
    ("N02AA05", "oxycodone"), ("J01CR02", "amoxicillin and beta-lactamase inhibitor"), ("H02AB06", "prednisolone"),
    ("N03AX16", "pregabalin"), ("B01AC06", "acetylsalicylic acid"), ("C01BD01", "amiodarone"),
    ("N05BA01", "diazepam"), ("M01AB05", "diclofenac"), ("R06AE07", "cetirizine"), ("G04CA02", "tamsulosin"),
    ("C10AA01", "simvastatin"), ("N06AB06", "sertraline"), ("J01FA10", "azithromycin"), ("A02BC05", "esomeprazole"),
    ("B01AF02", "apixaban"), ("L04AX03", "methotrexate"), ("N05AH04", "quetiapine"), ("C09CA01", "losartan"),
    ("M04AA01", "allopurinol"), ("C01AA05", "digoxin"),
)
#: Drugs prone to misuse (opioids, benzodiazepines and Z-drugs, gabapentinoids): the class of "frequency" anomalies.
MISUSE_PRONE: frozenset[str] = frozenset({"N05BA12", "N02AX02", "N05CF02", "N02AA05", "N03AX16", "N05BA01"})
#: (ICD-10 code, label): chronic and common conditions.
DIAGNOSES: tuple[tuple[str, str], ...] = (
    ("I10", "essential hypertension"), ("E119", "type 2 diabetes without complication"),
    ("F419", "anxiety disorder"), ("I489", "atrial fibrillation and flutter"), ("M545", "low back pain"),
    ("E785", "hyperlipidaemia"), ("J069", "acute upper respiratory infection"), ("K219", "gastro-oesophageal reflux"),
    ("F329", "depressive episode"), ("N390", "urinary tract infection"), ("I500", "congestive heart failure"),
    ("J449", "chronic obstructive pulmonary disease"), ("J189", "pneumonia"), ("E039", "hypothyroidism"),
    ("J459", "asthma"), ("M179", "gonarthrosis"), ("I214", "subendocardial myocardial infarction"),
    ("I639", "cerebral infarction"), ("G473", "sleep apnoea"), ("H251", "senile nuclear cataract"),
    ("G309", "Alzheimer disease"), ("C509", "malignant neoplasm of breast"), ("C61", "malignant neoplasm of prostate"),
    ("F100", "acute alcohol intoxication"),
)
#: (ICD-10 code, label): adverse events that planted drug effects may raise.
OUTCOMES: tuple[tuple[str, str], ...] = (
    ("K922", "gastrointestinal haemorrhage"), ("S720", "fracture of neck of femur"), ("R001", "bradycardia"),
    ("E871", "hyponatraemia"), ("E162", "hypoglycaemia"), ("N179", "acute kidney failure"),
    ("K716", "toxic liver disease with hepatitis"), ("T783", "angioneurotic oedema"),
    ("M766", "Achilles tendinitis"), ("L270", "generalised drug eruption"), ("R55", "syncope and collapse"),
    ("A047", "Clostridium difficile enterocolitis"),
)
#: (CCAM code, label): medical acts.
ACTS: tuple[tuple[str, str], ...] = (
    ("DEQP003", "electrocardiogram, 12 leads"), ("ZBQK002", "chest X-ray"), ("DZQM006", "transthoracic echo-doppler"),
    ("HHQE005", "total colonoscopy"), ("ZCQK002", "abdominal X-ray"), ("ZBQH001", "chest CT with contrast"),
    ("NFKA007", "total knee replacement"), ("NEKA020", "total hip replacement"), ("HHFA016", "appendicectomy"),
    ("DEQP005", "ambulatory electrocardiogram"), ("QZFA031", "excision of skin lesions"),
    ("AHQB027", "electromyography"),
)
#: Hospital stay codes (PMSI fields: MCO = acute care, SSR = rehabilitation) and the death code.
STAYS: tuple[tuple[str, str], ...] = (("MCO_STAY", "acute-care hospital stay"), ("SSR_STAY", "rehabilitation stay"))
DEATH_CODE = "DEATH"

ANOMALY_KINDS = ("frequency", "prescribers")
DAYS_PER_YEAR = 365.25


class Catalogue:
    """The codes of one cohort in vocabulary (sorted) order, with their kind."""

    def __init__(self, n_drugs: int, n_diagnoses: int, n_acts: int, n_outcomes: int):
        parts = [(DRUGS[:n_drugs], "drug", "drug"), (DIAGNOSES[:n_diagnoses], "diagnosis", "diagnosis"),
                 (OUTCOMES[:n_outcomes], "diagnosis", "outcome"), (ACTS[:n_acts], "act", "act"),
                 (STAYS, "stay", "stay"), (((DEATH_CODE, "death"),), "death", "death")]
        rows = [(c, lab, cat, kind) for items, cat, kind in parts for c, lab in items]
        rows.sort(key=lambda r: r[0])
        self.codes = np.array([r[0] for r in rows], dtype=object)
        self.labels = np.array([r[1] for r in rows], dtype=object)
        self.categories = np.array([r[2] for r in rows], dtype=object)
        self.kinds = np.array([r[3] for r in rows], dtype=object)
        self.vocab = Vocabulary(self.codes.tolist())
        self._pos = {c: i for i, c in enumerate(self.codes)}
        of = lambda kind: np.flatnonzero(self.kinds == kind)  # noqa: E731
        self.drugs, self.diagnoses, self.outcomes, self.acts, self.stays = (
            of("drug"), of("diagnosis"), of("outcome"), of("act"), of("stay"))
        self.death = int(of("death")[0])

    def __len__(self) -> int:
        return self.codes.size

    def index(self, codes: Sequence[str] | np.ndarray) -> np.ndarray:
        return np.array([self._pos[c] for c in codes], dtype=np.int64)


__all__ = ["ACTS", "ANOMALY_KINDS", "Catalogue", "DAYS_PER_YEAR", "DEATH_CODE", "DIAGNOSES", "DRUGS", "MISUSE_PRONE",
           "OUTCOMES", "STAYS"]

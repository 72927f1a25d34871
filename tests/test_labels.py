"""Code labels: shipped nomenclatures, prefixes and shapes, explicit labels first, OMOP concept names."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pathways.data.labels import CodeLabels, omop_concept_labels
from pathways.errors import PathwaysInputError
from pathways.pipelines.report import default_code_labels
from pathways.synthetic.codes import DIAGNOSES, DRUGS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "snds" / "nomenclatures"


def test_nomenclatures_by_prefix_and_by_shape():
    labels = CodeLabels()
    found = labels.label(["CIM10:I10", "ICD10CM:J06.9", "ATC:N02BE01", "CCAM:DEQP003", "C61", "N02BE01", "A04"])
    assert found[0] == "Hypertension essentielle (primitive)"
    assert found[1].startswith("Infection des voies respiratoires supérieures")  # dot dropped
    assert found[2] == "paracetamol"  # OPENMEDIC capitals lower-cased
    assert found[3].startswith("Électrocardiographie")
    assert found[4] == "Tumeur maligne de la prostate"
    assert found[5] == "paracetamol"
    assert found[6] == "Autres infections intestinales bactériennes"  # bare 3 characters: ICD-10 before ATC
    # an unknown prefix or code has no label; the prefix decides the nomenclature (no ICD-10 'N02BE01')
    assert labels.label(["MCO:stay", "ZZZ", "CIM10:N02BE01"]).tolist() == ["", "", ""]


def test_explicit_labels_win_full_code_then_bare_code():
    labels = CodeLabels({"C03CA01": "furosemide", "ATC:C03CA01": "furosemide (ATC)", "X1": "custom"})
    assert labels.label(["ATC:C03CA01", "C03CA01", "X1"]).tolist() == ["furosemide (ATC)", "furosemide", "custom"]
    plain = CodeLabels({"X1": "custom"}, nomenclatures=False)
    assert plain.label(["X1", "I10"]).tolist() == ["custom", ""]
    assert plain.with_labels({"I10": "hypertension"}).describe(["I10", "X1"]) == ["I10 hypertension", "X1 custom"]


def test_describe_cuts_long_labels():
    out = CodeLabels({"A": "a very long label indeed"}).describe(["A"], max_length=8)
    assert out == ["A a very…"]


def test_report_default_labels_read_like_the_issue():
    labels = default_code_labels()
    pair = " → ".join(labels.describe(["J069", "C03CA01"]))
    assert pair == "J069 acute upper respiratory infection → C03CA01 furosemide"
    # every code of the simulator's catalogue has its English label
    codes = [c for c, _ in DRUGS + DIAGNOSES]
    assert (labels.label(codes) == [lab for _, lab in DRUGS + DIAGNOSES]).all()


def test_omop_concept_labels_from_frame_and_files(tmp_path):
    concept = pd.DataFrame({"concept_id": [1, 2], "concept_name": ["Furosemide", "Essential hypertension"],
                            "vocabulary_id": ["RxNorm", "SNOMED"], "concept_code": ["4603", "59621000"],
                            "domain_id": ["Drug", "Condition"]})
    names = omop_concept_labels(concept)
    assert names == {"RxNorm:4603": "Furosemide", "SNOMED:59621000": "Essential hypertension",
                     "1": "Furosemide", "2": "Essential hypertension"}
    concept.to_csv(tmp_path / "concept.csv", sep="\t", index=False)
    concept.to_parquet(tmp_path / "concept.parquet")
    for path in (tmp_path / "concept.csv", tmp_path / "concept.parquet"):
        assert omop_concept_labels(path, codes=["RxNorm:4603"]) == {"RxNorm:4603": "Furosemide"}
    described = CodeLabels(names).describe(["RxNorm:4603", "2"])
    assert described == ["RxNorm:4603 Furosemide", "2 Essential hypertension"]
    with pytest.raises(PathwaysInputError, match="concept_name"):
        omop_concept_labels(concept.drop(columns="concept_name"))
    with pytest.raises(PathwaysInputError, match="no file"):
        omop_concept_labels(tmp_path / "missing.csv")


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared SNDS nomenclatures absent (checked where they exist)")
def test_shipped_labels_match_the_shared_nomenclatures():
    labels = CodeLabels(nomenclatures=True)
    icd = pd.read_csv(SHARED / "ORAVAL" / "IR_CIM_V.csv", sep=";", dtype=str).sample(200, random_state=0)
    assert (labels.label("CIM10:" + icd["CIM_COD"]) == icd["CIM_LIB"].str.strip()).all()
    ccam = pd.read_csv(SHARED / "ATIH" / "IR_CCAM_V63.csv", sep=";", dtype=str).sample(200, random_state=0)
    assert (labels.label("CCAM:" + ccam.iloc[:, 0]) == ccam.iloc[:, 1].str.strip()).all()
    atc = pd.read_csv(SHARED / "OPENMEDIC" / "openmedic_ATC5.csv", sep=";", dtype=str)
    atc = atc[atc.iloc[:, 0].str.len() == 7]  # shorter codes of this file name a substance; groups win for them
    got = labels.label("ATC:" + atc.iloc[:, 0])
    assert (pd.Series(got, index=atc.index).str.lower() == atc.iloc[:, 1].str.strip().str.lower()).all()


def test_report_labels_from_an_omop_source(tmp_path):
    import sys
    import warnings

    sys.path.insert(0, str(Path(__file__).resolve().parent / "io"))
    from omop_fixture import write_csv_folder

    from pathways.io import read_omop
    from pathways.pipelines.report import source_code_labels

    folder = write_csv_folder(tmp_path / "cdm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fixture's messy rows are counted decisions, tested in tests/io
        log = read_omop(folder)
    node = {"_target_": "pathways.io.read_omop", "source": str(folder)}
    names = source_code_labels(node, log.vocab)
    assert names == {"RxNorm:161": "acetaminophen", "RxNorm:12345": "acetaminophen / aspirin",
                     "SNOMED:44054006": "type 2 diabetes"}  # only the vocabulary's concepts
    assert source_code_labels({"_target_": "pathways.synthetic.simulate_cohort"}, log.vocab) == {}
    described = default_code_labels().with_labels(names).describe(["RxNorm:161", "3004249"])
    assert described == ["RxNorm:161 acetaminophen", "3004249"]  # a concept absent from the table stays bare

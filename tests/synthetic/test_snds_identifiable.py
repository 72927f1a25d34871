"""The synthetic SNDS truth says which pathology-years the tables reveal without a shared tracer drug
(``own_drug``, ``identifiable``), checked against the tables read back; no pathology-year of a dead patient
whose onset was drawn after the death."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pathways.io import read_snds
from pathways.synthetic.snds import write_snds
from pathways.synthetic.snds.model import PATHOLOGIES

YEARS = (2020, 2021)


@pytest.fixture(scope="module")
def snds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("snds_identifiable")
    truth = write_snds(folder, 3000, years=YEARS, seed=5, truth_events=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        log = read_snds(folder, cip_to_atc=folder / "nomenclatures" / "IR_PHA_R.parquet")
    events, _ = log.to_pandas()
    drugs = events[events["category"] == "drug"]
    year = drugs["time"].to_numpy().astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    dispensed = pd.DataFrame({"patient_id": drugs["patient_id"].astype(str).to_numpy(), "year": year,
                              "atc": drugs["code"].str.removeprefix("ATC:").to_numpy()}).drop_duplicates()
    return truth, dispensed


def _tracers() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per pathology: its tracer ATC codes, and those no other pathology lists."""
    listed = {p.key: set(p.drugs) for p in PATHOLOGIES}
    own = {k: {a for a in v if all(a not in listed[o] for o in listed if o != k)} for k, v in listed.items()}
    return listed, own


def test_identifiable_is_ald_hospital_or_own_tracer(snds):
    truth, dispensed = snds
    path = truth.pathologies()
    np.testing.assert_array_equal(path["identifiable"], path["ald"] | path["hospital"] | path["own_drug"])
    assert (path["own_drug"] <= path["drug"]).all()
    # the shared statin and antiplatelets leave cardiovascular pathology-years without identifying evidence
    shared_only = path[path["drug"] & ~path["identifiable"]]
    assert set(shared_only["pathology"]) <= {"hypertension", "coronary", "stroke", "heart_failure"}
    assert (shared_only["pathology"] == "hypertension").sum() > 10


def test_own_and_shared_tracer_evidence_match_the_dispensations(snds):
    truth, dispensed = snds
    path = truth.pathologies()
    listed, own = _tracers()
    seen = dispensed.groupby(["patient_id", "year"])["atc"].agg(set)
    for row in path[path["drug"]].itertuples():
        atcs = seen.get((row.patient_id, row.year), set())
        assert atcs & listed[row.pathology], row.pathology  # a tracer of the pathology was dispensed
        if row.own_drug:
            assert atcs & own[row.pathology], row.pathology
    # a shared-tracer-only row: none of the pathology's own tracers was dispensed that year
    for row in path[path["drug"] & ~path["own_drug"]].itertuples():
        assert not (seen.get((row.patient_id, row.year), set()) & own[row.pathology]), row.pathology


def test_no_pathology_year_starts_after_death(snds):
    truth, _ = snds
    path = truth.pathologies().merge(truth.patients()[["patient_id", "death"]], on="patient_id")
    dead = path[path["death"].notna()]
    assert len(dead) > 0 and (dead["onset"] <= dead["death"]).all()

"""write_snds -> read_snds round trip on 10 k patients: the EventLog equals the planted truth; patients, costs,
pathology evidence and fraud actors are checked against the raw tables (read_snds drops amounts and providers,
so those are checked with DuckDB on the tables)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pathways.io import read_snds
from pathways.io.snds_tables import ALL_SOURCES
from pathways.synthetic.snds import write_snds
from pathways.synthetic.snds.truth import EVENT_COLUMNS

duckdb = pytest.importorskip("duckdb")
COLS = ["patient_id", "time", "category", "code", "end", "value"]


@pytest.fixture(scope="module")
def snds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("snds10k")
    truth = write_snds(folder, 10_000, seed=3, chunk_patients=4_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        log = read_snds(folder, sources=ALL_SOURCES)  # the opt-in dcir_services included: the truth has them
    return folder, truth, log


def _frame(log) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": log.patient_ids().astype(str), "time": log.time, "end": log.end,
                         "value": log.value, "code": log.code_strings().astype(str),
                         "category": np.asarray(log.category).astype(str)})


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[COLS].sort_values(COLS, kind="stable").reset_index(drop=True)


def _sql(folder, query: str) -> pd.DataFrame:
    tables = {"prs": "DCIR/ER_PRS_F", "pha": "DCIR/ER_PHA_F", "imb": "DCIR_DCIRS/IR_IMB_R", "ben": "BENEFICIAIRE/IR_BEN_R"}
    con = duckdb.connect()
    for name, path in tables.items():
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{folder}/{path}/*.parquet')")
    try:
        return con.execute(query).df()
    finally:
        con.close()


def test_eventlog_matches_truth_exactly(snds):
    _, truth, log = snds
    expected = truth.events()
    got = _frame(log)
    assert log.origin == pd.Timestamp("1970-01-01") and log.time_unit == "days"
    providers = [c for c in ("prescriber", "provider", "institution") if c in log.extras]
    if not providers:  # a reader without provider columns merges services that differ only by them
        expected = expected.drop_duplicates(EVENT_COLUMNS)
    pd.testing.assert_frame_equal(_sorted(got), _sorted(expected), check_dtype=False)
    counts = lambda f: f.groupby(["patient_id", "category"]).size()
    pd.testing.assert_series_equal(counts(got), counts(expected))
    assert set(got["category"]) == {"drug", "act", "stay", "main_diagnosis", "linked_diagnosis",
                                    "associated_diagnosis", "hospital_act", "death", "service"}
    assert set(got.loc[got["category"] == "service", "code"]) == {"PRS:1111", "PRS:1112", "PRS:3336"}
    if providers:
        cols = COLS + providers
        with_ids = got.assign(**{c: log.extras[c] for c in providers})
        pd.testing.assert_frame_equal(with_ids[cols].astype("string").fillna("").sort_values(cols).reset_index(drop=True),
                                      expected[cols].astype("string").fillna("").sort_values(cols).reset_index(drop=True))


def _net_amounts(folder) -> pd.DataFrame:
    """Hand computation on the tables: the net amount of a service = sum of its signed lines (dispensations or
    acts with their cancellation and re-billing), information lines (DPN_QLF = 71) excluded."""
    keys = " AND ".join(f"d.{k} = p.{k}" for k in ("DCT_ORD_NUM", "FLX_DIS_DTD", "FLX_EMT_NUM", "FLX_EMT_ORD",
                                                   "FLX_EMT_TYP", "FLX_TRT_DTD", "ORG_CLE_NUM", "PRS_ORD_NUM",
                                                   "REM_TYP_AFF"))
    parts = []
    for table, code, category in (("ER_PHA_F", "'CIP13:' || CAST(d.PHA_PRS_C13 AS VARCHAR)", "drug"),
                                  ("ER_CAM_F", "'CCAM:' || upper(trim(d.CAM_PRS_IDE))", "act")):
        parts.append(_sql(folder, f"SELECT CAST(p.BEN_NIR_PSA AS VARCHAR) AS patient_id, "
                                  f"CAST(date_diff('day', DATE '1970-01-01', p.EXE_SOI_DTD) AS DOUBLE) AS time, "
                                  f"{code} AS code, '{category}' AS category, p.PFS_EXE_NUM AS provider, "
                                  f"sum(p.PRS_PAI_MNT) AS paid, sum(p.BSE_REM_MNT) AS base "
                                  f"FROM read_parquet('{folder}/DCIR/{table}/*.parquet') d JOIN prs p ON {keys} "
                                  f"WHERE p.DPN_QLF <> 71 GROUP BY ALL"))
    return pd.concat(parts, ignore_index=True)


def test_amounts_in_the_eventlog_match_the_tables(snds):
    folder, truth, log = snds
    if "paid" not in log.extras:
        assert "base" not in log.extras  # this reader exposes no amounts
        return
    key = ["patient_id", "time", "code", "category", "provider"]
    got = _frame(log).assign(provider=log.extras["provider"], paid=log.extras["paid"], base=log.extras["base"])
    services = got[got["category"] == "service"]
    got = got[got["category"].isin(["drug", "act"])]
    sums = lambda f: f.groupby(key)[["paid", "base"]].sum()
    got_sums, want = sums(got), sums(_net_amounts(folder))
    assert got_sums.index.equals(want.index)
    # services: the planted amounts of consultations and dispensing fees, to the cent (identical lines summed)
    planted = truth.events().query("category == 'service'")
    table = _sql(folder, "SELECT sum(PRS_PAI_MNT), sum(BSE_REM_MNT) FROM prs WHERE DPN_QLF <> 71 AND "
                         "PRS_NAT_REF IN (1111, 1112, 3336)").iloc[0].to_numpy(float)
    np.testing.assert_allclose(services[["paid", "base"]].sum().to_numpy(float), table, atol=0.01)
    assert len(services) == len(planted)  # identical lines: one event in both (the reader sums their amounts)
    expected = truth.events()
    expected = expected[expected["category"].isin(["drug", "act"])]
    regularised = expected.groupby(key)["regularised"].any().reindex(want.index).to_numpy()
    assert 0 < regularised.sum() < 0.05 * len(want)
    # every service, a cancellation and the identical re-billing of a dispensation included, keeps its whole net
    # amount (the duplicate rule merges identical lines and sums their amounts)
    np.testing.assert_allclose(got_sums.to_numpy(), want.to_numpy(), atol=0.01)


def test_stay_costs_are_read_from_the_valorisation_table(snds):
    _, truth, log = snds
    key = ["patient_id", "time", "end"]
    got = _frame(log).assign(paid=log.extras["paid"], base=log.extras["base"])
    got = got[got["category"] == "stay"]
    expected = truth.events()
    expected = expected[expected["category"] == "stay"]
    sums = lambda f: f.groupby(key)[["paid", "base"]].sum().sort_index()
    assert len(got) == len(expected) and got["paid"].notna().all()
    # every kept stay carries its planted GHS-like cost (MNT_TOT_AM as paid, MNT_BR as base), to the cent
    np.testing.assert_allclose(sums(got).to_numpy(), sums(expected).to_numpy(), atol=0.005)
    hospital = truth.costs().query("category == 'hospital'")["reimbursed"].sum()
    assert got["paid"].sum() == pytest.approx(hospital, abs=0.01 * len(got))


def test_patients_match_truth(snds):
    _, truth, log = snds
    t = truth.patients().set_index("patient_id").loc[log.patients["patient_id"].astype(str)]
    assert len(log.patients) == 10_000 == truth.meta["n_patients"]
    birth_month = t["birth"].to_numpy().astype("datetime64[D]").astype("datetime64[M]").astype("datetime64[D]")
    np.testing.assert_array_equal(log.patients["birth"].to_numpy(), birth_month.astype(np.int64).astype(float))
    np.testing.assert_array_equal(log.patients["sex"].astype(str).to_numpy(), t["sex"].to_numpy())
    np.testing.assert_array_equal(log.patients["death"].to_numpy(), t["death"].to_numpy())
    cause = log.patients["death_cause"].to_numpy(object)
    np.testing.assert_array_equal(pd.isna(cause), pd.isna(t["death_cause"].to_numpy()))
    assert 0.005 < np.isfinite(t["death"]).mean() / 3 < 0.02  # about 1 % deaths a year


def test_costs_match_tables(snds):
    folder, truth, _ = snds
    costs = truth.costs()
    outpatient = costs[costs["category"] != "hospital"].groupby(["patient_id", "year"])["reimbursed"].sum()
    # information lines (DPN_QLF = 71) excluded; regularisations cancel out with their re-billing
    table = _sql(folder, "SELECT CAST(BEN_NIR_PSA AS VARCHAR) AS patient_id, year(EXE_SOI_DTD) AS year, "
                         "sum(BSE_REM_MNT) AS r FROM prs WHERE DPN_QLF <> 71 GROUP BY ALL")
    table = table.set_index(["patient_id", "year"])["r"].reindex(outpatient.index)
    np.testing.assert_allclose(table.to_numpy(), outpatient.to_numpy(), atol=0.05)
    per_year = costs.groupby(["patient_id", "year"])["reimbursed"].sum()
    assert 800 < per_year.mean() < 4000  # order of the cartography's mean yearly spending per beneficiary


def test_pathology_evidence_matches_tables(snds):
    folder, truth, log = snds
    path = truth.pathologies()
    rules = truth.rules.set_index("pathology")
    ev = _frame(log)
    ev["year"] = ev["time"].to_numpy().astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    diag = ev[ev["category"].isin(["main_diagnosis", "linked_diagnosis"])]
    seen = set(zip(diag["patient_id"], diag["year"], diag["code"].str[6:]))
    flagged = set(zip(path["patient_id"], path["year"], path["icd10"]))
    hosp = path[path["hospital"]]
    assert set(zip(hosp["patient_id"], hosp["year"], hosp["icd10"])) == flagged & seen
    imb = _sql(folder, "SELECT CAST(BEN_NIR_PSA AS VARCHAR) AS patient_id, MED_MTF_COD AS icd10, IMB_ALD_DTD AS s, "
                       "IMB_ALD_DTF AS e FROM imb")
    ald = path[path["ald"]].merge(imb, on=["patient_id", "icd10"])
    assert len(ald) == path["ald"].sum() > 0
    assert (pd.to_datetime(ald["s"]).dt.year <= ald["year"]).all()
    drugs = ev[ev["category"] == "drug"]
    pha = _sql(folder, "SELECT DISTINCT CAST(PHA_PRS_C13 AS VARCHAR) AS cip FROM pha")
    assert len(pha) > 50
    mapping = pd.read_parquet(folder / "nomenclatures" / "IR_PHA_R.parquet").set_index("PHA_CIP_C13")["PHA_ATC_C07"]
    atc = drugs["code"].str[6:].map(mapping)
    got = set(zip(drugs["patient_id"], drugs["year"], atc))
    for row in path[path["drug"]].sample(200, random_state=0).itertuples():
        assert any((row.patient_id, row.year, a) in got for a in rules.loc[row.pathology, "tracer_atc"].split())
    prevalence = path[path["year"] == 2019].groupby("pathology").size() / 10_000
    assert 0.03 < prevalence["diabetes"] < 0.09 and prevalence["dementia"] < prevalence["diabetes"]


def test_fraud_actors_are_visible_in_tables(snds):
    folder, truth, _ = snds
    actors = truth.fraud_providers
    lines = _sql(folder, "SELECT CAST(p.PFS_PRE_NUM AS VARCHAR) AS pre, CAST(p.PFS_EXE_NUM AS VARCHAR) AS exe, "
                         "p.PRE_PRE_DTD > p.EXE_SOI_DTD AS late, h.PHA_ACT_QSN AS q, CAST(p.BEN_NIR_PSA AS VARCHAR) "
                         "AS pid FROM prs p JOIN pha h USING (DCT_ORD_NUM, FLX_DIS_DTD, FLX_EMT_NUM, FLX_EMT_ORD, "
                         "FLX_EMT_TYP, FLX_TRT_DTD, ORG_CLE_NUM, PRS_ORD_NUM, REM_TYP_AFF) WHERE p.DPN_QLF <> 71")
    kind = lambda p: set(actors.loc[actors["pattern"] == p, "id"])
    assert set(lines.loc[lines["pre"].isna(), "exe"]) <= kind("no_prescription")
    assert set(lines.loc[lines["late"], "exe"]) <= kind("impossible_dates")
    q = lines[lines["q"] > 0].groupby(lines["exe"].isin(kind("inflated_quantity")))["q"].mean()
    assert q[True] > 1.5 * q[False]
    over = kind("over_prescribing")
    per_patient = lines.groupby("pre")["pid"].nunique()
    assert len(over) >= 1 and over <= set(per_patient.index)
    abusers = truth.abusers()
    assert len(abusers) > 0 and (abusers["prescribers"] >= 4).all() and (abusers["pharmacies"] >= 2).all()
    seen = lines[lines["pid"].isin(abusers["patient_id"])].groupby("pid")["pre"].nunique()
    assert (seen.reindex(abusers["patient_id"]).to_numpy() >= abusers["prescribers"].to_numpy()).all()


def test_effects_truth_is_the_simulators(snds):
    _, truth, _ = snds
    eff = truth.effects
    assert list(eff.columns) == ["drug", "event", "lag_start", "lag_end", "relative_incidence", "strength"]
    assert (eff["relative_incidence"] > 1).all() and set(eff["strength"]) == {"strong", "weak"}

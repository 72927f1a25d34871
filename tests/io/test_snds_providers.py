"""read_snds's provider and amount extras (PFS_PRE_NUM, PFS_EXE_NUM, ETB_PRE_FIN, PRS_PAI_MNT, BSE_REM_MNT) on a
hand-built table set and on the shared SNDS sample, against values computed by hand and with pandas."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

duckdb = pytest.importorskip("duckdb", reason="duckdb is the optional 'omop' extra")
pytestmark = pytest.mark.filterwarnings("ignore::pathways.errors.PathwaysDataWarning")

from pathways.io import read_snds
from pathways.io.snds import DCIR_KEYS

SNDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "snds"
A, B = "AAAAAAAAAAAAAAAA1", "BBBBBBBBBBBBBBBB2"
KEYS = {"FLX_EMT_NUM": 1, "FLX_EMT_ORD": 1, "FLX_EMT_TYP": 1, "FLX_TRT_DTD": "2020-02-01",
        "ORG_CLE_NUM": "01C731221", "PRS_ORD_NUM": 1, "REM_TYP_AFF": 1}
PRS_COLUMNS = ["BEN_NIR_PSA", "EXE_SOI_DTD", "DPN_QLF", "DCT_ORD_NUM", "FLX_DIS_DTD", "PFS_PRE_NUM", "PFS_EXE_NUM",
               "ETB_PRE_FIN", "PRS_PAI_MNT", "BSE_REM_MNT"]
PRS = [
    (A, "2020-01-10", 0, 1, "2020-02-01", "DOC1", "PHA1", "ETB1", 10.0, 15.0),
    (A, "2020-01-10", 0, 2, "2020-03-01", "DOC1", "PHA1", None, -4.0, -6.0),   # regularisation, later flux
    (B, "2020-03-05", 0, 3, "2020-03-01", None, "PHA2", " ", 7.5, 11.0),       # no prescriber, blank institution
    (B, "2020-03-05", 0, 4, "2020-03-01", "DOC2", "DOC2", None, 25.0, 25.0),   # CCAM act by DOC2
    (A, "2020-01-10", 71, 5, "2020-02-01", "DOC1", "PHA1", "ETB1", 10.0, 15.0),  # information line
    (B, "2020-04-01", 0, 6, "2020-04-01", "DOC3", "PHA2", None, -3.0, -3.0),   # correction of nothing
]
PHA = [(1, "3400930000001", 2), (2, "3400930000001", -1), (3, "3400930000002", 1), (5, "3400930000001", 2),
       (6, "3400930000001", -1)]
FLUX = {r[3]: r[4] for r in PRS}


def _write(folder: Path, with_providers: bool = True) -> Path:
    prs = pd.DataFrame(PRS, columns=PRS_COLUMNS).assign(**KEYS)
    if not with_providers:
        prs = prs.drop(columns=PRS_COLUMNS[5:])
    pha = pd.DataFrame(PHA, columns=["DCT_ORD_NUM", "PHA_PRS_C13", "PHA_ACT_QSN"]).assign(**KEYS)
    pha["FLX_DIS_DTD"] = pha["DCT_ORD_NUM"].map(FLUX)
    cam = pd.DataFrame({"DCT_ORD_NUM": [4], "CAM_PRS_IDE": ["AHQB026"], "FLX_DIS_DTD": [FLUX[4]]}).assign(**KEYS)
    ben = pd.DataFrame({"BEN_NIR_PSA": [A, B], "BEN_RNG_GEM": [1, 1], "BEN_NAI_ANN": [1950, 1960],
                        "BEN_SEX_COD": [1, 2], "BEN_DCD_DTE": ["1600-01-01", "1600-01-01"]})
    for sub, name, frame in (("DCIR", "ER_PRS_F", prs), ("DCIR", "ER_PHA_F", pha), ("DCIR", "ER_CAM_F", cam),
                             ("BENEFICIAIRE", "IR_BEN_R", ben)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        frame.to_csv(folder / sub / f"{name}.csv", index=False)
    return folder


def _day(date: str) -> float:
    return float((pd.Timestamp(date) - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1))


def _text(value) -> str | None:
    return None if pd.isna(value) else value


def _rows(log) -> set[tuple]:
    ev, _ = log.to_pandas()
    return {(r.patient_id, r.time, r.code, _text(r.prescriber), _text(r.provider), _text(r.institution), r.paid,
             r.base) for r in ev.itertuples(index=False)}


#: hand-computed: the regularisation (-4, -6) is added to A's dispensation; the correction of nothing is dropped
EXPECTED = {
    (A, _day("2020-01-10"), "CIP13:3400930000001", "DOC1", "PHA1", "ETB1", 6.0, 9.0),
    (B, _day("2020-03-05"), "CIP13:3400930000002", None, "PHA2", None, 7.5, 11.0),
    (B, _day("2020-03-05"), "CCAM:AHQB026", "DOC2", "DOC2", None, 25.0, 25.0),
}


@pytest.mark.parametrize("partition_rows", [None, 1])
def test_provider_columns_and_regularised_amounts_match_the_hand_computed_values(tmp_path, partition_rows):
    folder = _write(tmp_path)
    log, report = read_snds(folder, sources=("dcir_drugs", "dcir_acts"), return_report=True,
                            join_partition_rows=partition_rows)
    assert sorted(log.extras) == ["base", "institution", "paid", "prescriber", "provider"]
    assert _rows(log) == EXPECTED
    assert report.count("ER_PHA_F: PHA_ACT_QSN <= 0 (regularisation)") == 1
    assert report.count("ER_PHA_F: PHA_ACT_QSN <= 0 matching no dispensation (patient, date, code, provider)") == 1
    # amounts sum as in the table: every non-information line, less the correction that matched nothing
    table = pd.DataFrame(PRS, columns=PRS_COLUMNS)
    kept = table[table["DPN_QLF"] != 71]
    assert log.extras["paid"].sum() == pytest.approx(kept["PRS_PAI_MNT"].sum() - (-3.0))
    text = report.to_frame().to_string()
    assert not any(i in text for i in ("DOC1", "DOC2", "DOC3", "PHA1", "PHA2", "ETB1"))  # ids never echoed


def test_nonpositive_lines_kept_keep_their_own_amounts(tmp_path):
    log = read_snds(_write(tmp_path), sources=("dcir_drugs",), drop_nonpositive_quantity=False)
    ev, _ = log.to_pandas()
    assert sorted(ev["paid"].tolist()) == [-4.0, -3.0, 7.5, 10.0]
    assert ev.loc[ev["paid"] == -4.0, "value"].tolist() == [-1.0]


def test_without_provider_columns_there_are_no_extras_and_mco_events_get_missing_values(tmp_path):
    assert read_snds(_write(tmp_path / "plain", with_providers=False), sources=("dcir_drugs",)).extras == {}
    log = read_snds(_write(tmp_path / "full"), sources=("dcir_drugs", "deaths"))
    assert set(log.extras) == {"base", "institution", "paid", "prescriber", "provider"}


# -- shared SNDS sample -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared_snds() -> Path:
    if not SNDS.is_dir():
        pytest.skip(f"shared SNDS sample not found at {SNDS} (../shared is beside the project checkout only)")
    return SNDS


def _joined(folder: Path) -> pd.DataFrame:
    prs = pd.read_csv(folder / "DCIR" / "ER_PRS_F.csv", dtype=str)
    pha = pd.read_csv(folder / "DCIR" / "ER_PHA_F.csv", dtype=str)
    joined = pha.merge(prs, on=list(DCIR_KEYS), how="inner")
    joined = joined[joined["DPN_QLF"].astype(int) != 71].copy()
    joined["t"] = [_day(d) for d in joined["EXE_SOI_DTD"]]
    joined["code"] = "CIP13:" + joined["PHA_PRS_C13"]
    joined["paid"] = joined["PRS_PAI_MNT"].astype(float)
    joined["base"] = joined["BSE_REM_MNT"].astype(float)
    joined["qty"] = joined["PHA_ACT_QSN"].astype(float)
    return joined


def _read_shared(folder: Path, **kwargs):
    return read_snds(folder, sources=("dcir_drugs",), events_after_death="keep", death_events=False,
                     events_before_birth="keep",
                     date_range=None, duplicates="keep", **kwargs)


def test_shared_sample_extras_match_pandas_on_every_line(shared_snds):
    joined = _joined(shared_snds)
    log = _read_shared(shared_snds, drop_nonpositive_quantity=False)
    strip = lambda v: None if pd.isna(v) or not str(v).strip() else str(v).strip()
    expected = sorted((r.BEN_NIR_PSA, r.t, r.code, strip(r.PFS_PRE_NUM), strip(r.PFS_EXE_NUM), strip(r.ETB_PRE_FIN),
                       r.paid, r.base) for r in joined.itertuples())
    ev, _ = log.to_pandas()
    got = sorted((r.patient_id, r.time, r.code, _text(r.prescriber), _text(r.provider), _text(r.institution),
                   r.paid, r.base) for r in ev.itertuples(index=False))
    assert got == expected and len(got) > 0


def test_shared_sample_regularisations_are_summed_like_pandas(shared_snds):
    """Net amount per service (patient, date, code, executing provider) = sum of its signed lines, computed with
    pandas; lines of services without a positive dispensation are counted as lost, not summed anywhere."""
    joined = _joined(shared_snds)
    key = ["BEN_NIR_PSA", "t", "code", "PFS_EXE_NUM"]
    has_dispensation = joined.groupby(key, dropna=False)["qty"].transform("max") > 0
    want = joined[has_dispensation].groupby(key, dropna=False)[["paid", "base"]].sum()
    for duplicates in ("keep", "drop"):  # merged identical lines sum their amounts: the totals never change
        log = _read_shared(shared_snds) if duplicates == "keep" else read_snds(
            shared_snds, sources=("dcir_drugs",), events_after_death="keep", death_events=False,
            events_before_birth="keep", date_range=None)
        ev, _ = log.to_pandas()
        got = ev.rename(columns={"patient_id": "BEN_NIR_PSA", "time": "t", "provider": "PFS_EXE_NUM"})
        got = got.groupby(key, dropna=False)[["paid", "base"]].sum()
        assert len(got) == len(want) > 0
        np.testing.assert_allclose(got.sort_index().to_numpy(), want.sort_index().to_numpy(), atol=1e-6)

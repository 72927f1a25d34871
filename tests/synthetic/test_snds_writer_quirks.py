"""The DCIR / PMSI quirks write_snds plants (each with what read_snds does with it), determinism, chunk
independence, CSV output, argument errors and the embedded nomenclature extract."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pathways.errors import PathwaysInputError
from pathways.io import read_snds
from pathways.synthetic.snds import chunk_seed, write_snds
from pathways.synthetic.snds.catalogue import catalogue

duckdb = pytest.importorskip("duckdb")
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "snds"
SENTINEL = np.datetime64("1600-01-01", "D")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("snds_small")
    return folder, write_snds(folder, 3_000, years=(2020, 2021), seed=5, chunk_patients=1_000)


def _read(folder, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_snds(folder, **kwargs)


def _table(folder: Path, name: str) -> pd.DataFrame:
    path = next(p for p in folder.rglob(name) if p.is_dir())
    return pd.concat([pd.read_parquet(f) for f in sorted(path.glob("*.parquet"))], ignore_index=True)


def test_information_lines_are_read_only_when_asked(small):
    folder, _ = small
    prs = _table(folder, "ER_PRS_F")
    info = prs[prs["DPN_QLF"] == 71]
    assert 0.01 < len(info) / len(prs) < 0.03
    base = _read(folder, sources=("dcir_drugs", "dcir_acts"), duplicates="keep")
    with_info = _read(folder, sources=("dcir_drugs", "dcir_acts"), duplicates="keep", exclude_information_lines=False)
    keys = ["DCT_ORD_NUM", "PRS_ORD_NUM", "FLX_DIS_DTD"]
    details = sum(len(_table(folder, t).merge(info[keys], on=keys)) for t in ("ER_PHA_F", "ER_CAM_F"))
    assert details > 0 and with_info.n_events - base.n_events == details
    # an information line repeats a paid service: identical events, merged by the default duplicates rule
    assert _read(folder, sources=("dcir_drugs", "dcir_acts"), exclude_information_lines=False).n_events == \
        _read(folder, sources=("dcir_drugs", "dcir_acts")).n_events


def test_regularisations_cancel_and_rebill(small):
    folder, _ = small
    pha = _table(folder, "ER_PHA_F")
    prs = _table(folder, "ER_PRS_F")
    cancel = pha[pha["PHA_ACT_QSN"] < 0]
    assert len(cancel) > 0
    lines = prs[prs["DCT_ORD_NUM"].isin(cancel["DCT_ORD_NUM"]) & (prs["DPN_QLF"] != 71)]
    # the service's flux lines: original + fee (first flux), cancellation + re-billing (a later flux)
    assert (lines.groupby("DCT_ORD_NUM")["FLX_DIS_DTD"].nunique() == 2).all()
    assert (lines[lines["BSE_REM_SGN"] < 0]["PRS_PAI_MNT"] < 0).all()
    net = lines.groupby("DCT_ORD_NUM")["PRS_PAI_MNT"].sum()
    first = lines[lines["FLX_EMT_ORD"] == 1].groupby("DCT_ORD_NUM")["PRS_PAI_MNT"].sum()
    np.testing.assert_allclose(net.to_numpy(), first.reindex(net.index).to_numpy(), atol=1e-6)
    kept = _read(folder, sources=("dcir_drugs",))
    negative = _read(folder, sources=("dcir_drugs",), drop_nonpositive_quantity=False)
    assert negative.n_events - kept.n_events == len(cancel)
    assert (negative.value < 0).sum() == len(cancel)


def test_several_flux_lines_per_service(small):
    folder, _ = small
    prs = _table(folder, "ER_PRS_F")
    pha = _table(folder, "ER_PHA_F")
    fee = prs[prs["PRS_NAT_REF"] == 3336]
    assert len(fee) == (prs["PRS_NAT_REF"] == 3317).sum() - (prs[prs["PRS_NAT_REF"] == 3317]["FLX_EMT_ORD"] > 1).sum() \
        - ((prs["PRS_NAT_REF"] == 3317) & (prs["DPN_QLF"] == 71)).sum()
    keys = ["DCT_ORD_NUM", "FLX_DIS_DTD", "FLX_EMT_ORD", "PRS_ORD_NUM"]
    assert len(fee[keys].merge(pha[keys], on=keys)) == 0  # fee lines have no dispensation detail
    assert (prs.groupby("DCT_ORD_NUM").size() > 1).mean() > 0.3


def _days(column: pd.Series) -> np.ndarray:
    """Dates as datetime64[D] (pandas' nanosecond timestamps cannot hold the 1600-01-01 sentinel)."""
    return np.asarray(column.astype(str).str[:10], dtype="datetime64[D]")


def test_sentinel_dates(small):
    folder, truth = small
    ben = _table(folder, "IR_BEN_R")
    alive = truth.patients().set_index("patient_id")["death"].isna()
    dates = ben.set_index("BEN_NIR_PSA")["BEN_DCD_DTE"]
    dcd = pd.Series(_days(dates), index=dates.index)
    assert (dcd[alive.index[alive]] == SENTINEL).all() and (dcd[alive.index[~alive]] > SENTINEL).all()
    log = _read(folder, sources=("deaths",))
    assert log.patients["death"].notna().sum() == (~alive).sum()
    imb = _table(folder, "IR_IMB_R")
    assert (_days(imb["IMB_ALD_DTF"]) == SENTINEL).mean() > 0.5
    prs = _table(folder, "ER_PRS_F")
    pharmacy = prs["PRS_NAT_REF"] == 3317
    assert (_days(prs.loc[pharmacy, "EXE_SOI_DTF"]) == SENTINEL).all()
    no_rx = prs["PFS_PRE_NUM"].isna() & pharmacy
    assert (_days(prs.loc[no_rx, "PRE_PRE_DTD"]) == SENTINEL).all()


def test_error_ghm_stays_are_left_out_of_the_truth(small):
    folder, truth = small
    b = pd.concat([_table(folder, f"T_MCO{y}B") for y in ("20", "21")])
    n_error = int((b["GRG_GHM"].astype(str) == "90Z00Z").sum())
    kept = _read(folder, sources=("mco",))
    loose = _read(folder, sources=("mco",), mco_exclude_errors=False)
    stays = lambda log: int((np.asarray(log.category) == "stay").sum())
    assert stays(loose) - stays(kept) == n_error
    assert stays(kept) == int((truth.events()["category"] == "stay").sum()) == len(b) - n_error


def test_deterministic_and_chunks_independent(tmp_path):
    a = write_snds(tmp_path / "a", 500, years=(2021,), seed=9, chunk_patients=200, truth_events=False)
    write_snds(tmp_path / "b", 500, years=(2021,), seed=9, chunk_patients=200, chunks=[2, 1], truth_events=False)
    write_snds(tmp_path / "c", 500, years=(2021,), seed=10, chunk_patients=200, truth_events=False)
    assert a.meta["n_chunks"] == 3
    for table in ("DCIR/ER_PRS_F", "DCIR/ER_PHA_F", "PMSI/PMSI_MCO/T_MCO21B", "BENEFICIAIRE/IR_BEN_R"):
        for part in ("part-00001.parquet", "part-00002.parquet"):
            assert pq.read_table(tmp_path / "a" / table / part).equals(pq.read_table(tmp_path / "b" / table / part))
        assert not (tmp_path / "b" / table / "part-00000.parquet").exists()
        assert not pq.read_table(tmp_path / "a" / table / "part-00001.parquet").equals(
            pq.read_table(tmp_path / "c" / table / "part-00001.parquet"))
    again = write_snds(tmp_path / "d", 500, years=(2021,), seed=9, chunk_patients=200, truth_events=False)
    assert again.meta["rows"] == a.meta["rows"]
    assert chunk_seed(9, 1).spawn_key == np.random.SeedSequence(9).spawn(3)[2].spawn_key


def test_csv_output_reads_like_parquet(tmp_path):
    truth = write_snds(tmp_path, 400, years=(2020,), seed=2, fmt="csv")
    assert (tmp_path / "DCIR" / "ER_PRS_F.csv").exists() and (tmp_path / "PMSI" / "PMSI_MCO" / "T_MCO20C.csv").exists()
    log = _read(tmp_path, cip_to_atc=tmp_path / "nomenclatures" / "IR_PHA_R.csv")
    expected = truth.events().query("category != 'service'")  # the default sources: no dcir_services
    assert log.n_events == len(expected)
    codes = pd.Series(log.code_strings()[np.asarray(log.category) == "drug"])
    assert codes.str.startswith("ATC:").all()
    mapping = catalogue().cip_to_atc().set_index("PHA_CIP_C13")["PHA_ATC_C07"]
    want = expected.loc[expected["category"] == "drug", "code"].str[6:].map(mapping)
    assert sorted(codes.str[4:]) == sorted(want)


@pytest.mark.parametrize("kwargs", [{"fmt": "json"}, {"years": (2019, 2021)}, {"chunks": [7]},
                                    {"n_patients": 0}, {"fmt": "csv", "chunks": [0]}])
def test_bad_arguments(tmp_path, kwargs):
    args = {"n_patients": 10, **kwargs}
    with pytest.raises(PathwaysInputError):
        write_snds(tmp_path, **args)


@pytest.mark.skipif(not SHARED.exists(), reason="needs the shared SNDS nomenclatures (../shared)")
def test_embedded_codes_are_real():
    cat = catalogue()
    nomen = SHARED / "nomenclatures"
    atc = pd.read_csv(nomen / "OPENMEDIC" / "openmedic_ATC5.csv", sep=";", dtype=str).set_index("ATC5")
    cim = pd.read_csv(nomen / "ORAVAL" / "IR_CIM_V.csv", sep=";", dtype=str).set_index("CIM_COD")
    ccam = pd.read_csv(nomen / "ATIH" / "IR_CCAM_V63.csv", sep=";", dtype=str).set_index("CAM_PRS_IDE_COD")
    assert (atc.loc[cat.drugs["atc"], "Libellé ATC5"].str.strip().to_numpy() == cat.drugs["label"].to_numpy()).all()
    assert (cim.loc[cat.icd10["icd10"], "CIM_LIB"].to_numpy() == cat.icd10["label"].to_numpy()).all()
    assert (ccam.loc[cat.ccam["ccam"], "CAM_PRS_IDE_LIB"].to_numpy() == cat.ccam["label"].to_numpy()).all()
    assert 200 <= len(cat.drugs) <= 400 and cat.drugs["cip13"].is_unique


def test_read_synthetic_snds_generates_once_then_reuses(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from pathways.synthetic.snds import read_synthetic_snds

    monkeypatch.setenv("PATHWAYS_CACHE", str(tmp_path))
    cfg = OmegaConf.load(Path(__file__).resolve().parents[2] / "pathways" / "configs" / "data" / "snds_synthetic.yaml")
    assert cfg["_target_"] == "pathways.synthetic.snds.read_synthetic_snds"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        log = read_synthetic_snds(200, years=(2021,), seed=4, sources=("dcir_drugs", "deaths"))
        folder = next(tmp_path.glob("snds_n200_*"))
        stamp = (folder / "truth" / "meta.json").stat().st_mtime_ns
        again = read_synthetic_snds(200, years=(2021,), seed=4, sources=("dcir_drugs", "deaths"))
    assert (folder / "truth" / "meta.json").stat().st_mtime_ns == stamp
    assert log.n_events == again.n_events > 0 and log.n_patients == 200
    assert pd.Series(log.code_strings()[np.asarray(log.category) == "drug"]).str.startswith("ATC:").all()

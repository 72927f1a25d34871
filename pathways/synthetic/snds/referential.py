"""Beneficiary referentials and PMSI MCO tables of one chunk: ``IR_BEN_R`` (sentinel death date 1600-01-01 for
the living), ``IR_IMB_R`` (ALD periods, open ones ending 1600-01-01), ``KI_CCI_R`` (causes of death of 95 % of
the deceased) and ``T_MCOyyB/C/D/A/UM/VALO`` for each year (stays by discharge year, linked through ``NIR_ANO_17``;
0.3 % of stays in the error GHM 90Z00Z; ``VALO``: the GHS-like cost of each stay of a valid GHM as ``MNT_TOT_AM``
and ``MNT_BR``)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from pathways.synthetic.codes import ACTS
from pathways.synthetic.snds.catalogue import Catalogue
from pathways.synthetic.snds.dcir import SENTINEL, _birth_year, coded, dictionary
from pathways.synthetic.snds.hospital import ghm
from pathways.synthetic.snds.model import BACKGROUND_DEATH_ICD, PATHOLOGIES
from pathways.synthetic.snds.population import DEPARTMENTS, Population, department_codes
from pathways.synthetic.snds.providers import Providers, hospital_id

ERROR_GHM_SHARE = 0.003


def _date(days: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(days).astype(np.int32), pa.date32())


def beneficiaries(pop: Population) -> pa.Table:
    """IR_BEN_R: one row per beneficiary."""
    birth = pop.birth.astype("datetime64[D]")
    month = (birth.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(np.int32)
    death = np.where(np.isnan(pop.death), SENTINEL, np.nan_to_num(pop.death))
    n = pop.n
    pid = pa.array(pop.pid, pa.string())  # pseudonyms are text already: no per-row conversion
    labels, dept = department_codes(pop.dept)
    return pa.table({"BEN_NIR_PSA": pid, "BEN_RNG_GEM": pa.array(np.ones(n, np.int32)),
                     "BEN_NIR_ANO": pid, "BEN_IDT_ANO": pa.array(pop.idt, pa.string()),
                     "BEN_NAI_ANN": pa.array(_birth_year(pop)), "BEN_NAI_MOI": pa.array(month),
                     "BEN_SEX_COD": pa.array(pop.sex), "BEN_DCD_DTE": _date(death),
                     "BEN_RES_DPT": coded(dept, labels),
                     "ORG_AFF_BEN": coded(dept, np.char.add("01C", labels))})  # same text order as the labels


def long_term_illnesses(pop: Population) -> pa.Table:
    """IR_IMB_R: one row per ALD declaration (ALD number, ICD-10 reason, start, end or sentinel)."""
    pat, k = np.nonzero(~np.isnan(pop.ald_start))
    start = pop.ald_start[pat, k]
    end = pop.ald_end[pat, k]
    icd = np.array([PATHOLOGIES[j].icd[i] for j, i in zip(k, pop.icd[pat, k])], dtype=object)
    num = np.array([p.ald[0] for p in PATHOLOGIES], dtype=np.int32)[k]
    return pa.table({"BEN_NIR_PSA": pa.array(pop.pid[pat], pa.string()),
                     "BEN_RNG_GEM": pa.array(np.ones(pat.size, np.int32)), "IMB_ALD_DTD": _date(start),
                     "IMB_ALD_DTF": _date(np.where(np.isinf(end), SENTINEL, np.nan_to_num(end, posinf=0))),
                     "IMB_ALD_NUM": pa.array(num), "IMB_ETM_NAT": pa.array(np.full(pat.size, 41, np.int32)),
                     "MED_MTF_COD": pa.array(icd.astype(str)), "INS_DTE": _date(start)})


def causes_of_death(gen: np.random.Generator, pop: Population) -> tuple[pa.Table, np.ndarray]:
    """KI_CCI_R of 95 % of the deceased; the cause of death of every patient (None when alive or no certificate).

    The cause is the ICD-10 code of an active pathology (70 %, the one with the highest hazard) or a generic one.
    """
    dead = np.flatnonzero(~np.isnan(pop.death))
    cause = np.full(pop.n, None, dtype=object)
    hr = np.array([p.death_hr for p in PATHOLOGIES])
    d = pop.death[dead][:, None]
    active = (pop.onset[dead] <= d) & (pop.end[dead] >= d)
    best = np.argmax(np.where(active, hr[None, :], 0.0), axis=1)
    has = active.any(axis=1) & (gen.random(dead.size) < 0.7)
    icd = np.array([PATHOLOGIES[j].icd[pop.icd[p, j]] for p, j in zip(dead, best)], dtype=object)
    generic = np.array(BACKGROUND_DEATH_ICD, dtype=object)[gen.integers(0, len(BACKGROUND_DEATH_ICD), dead.size)]
    certified = gen.random(dead.size) < 0.95
    cause[dead[certified]] = np.where(has, icd, generic)[certified]
    rows = dead[certified]
    table = pa.table({"BEN_IDT_ANO": pa.array(pop.idt[rows], pa.string()), "BEN_DCD_DTE": _date(pop.death[rows]),
                      "DCD_CIM_COD": pa.array(cause[rows].astype(str)),
                      "BEN_NAI_ANN": pa.array(_birth_year(pop)[rows]), "BEN_SEX_COD": pa.array(pop.sex[rows]),
                      "BEN_RES_DPT": pa.array(DEPARTMENTS[pop.dept[rows]].astype(str)),
                      "FLX_PER_ANN": pa.array((pop.death[rows].astype("datetime64[D]").astype("datetime64[Y]")
                                               .astype(np.int64) + 1970).astype(np.int32))})
    return table, cause


def pmsi(gen: np.random.Generator, cat: Catalogue, pop: Population, prov: Providers, st: dict[str, np.ndarray],
         years: tuple[int, ...], chunk: int) -> tuple[dict[str, pa.Table], dict[str, np.ndarray]]:
    """T_MCOyyB/C/D/A/UM/VALO of each year and the per-stay details the truth needs (kept flag, D and A rows)."""
    n = st["pat"].size
    eta = hospital_id(prov.hospital(pop.index[st["pat"]]))
    rsa = chunk * 10**8 + np.arange(n, dtype=np.int64)
    exit_ = st["entry"] + st["los"]
    group = ghm(st)
    error = gen.random(n) < ERROR_GHM_SHARE
    group[error] = "90Z00Z"
    # associated diagnoses: first ICD of up to 3 other active pathologies at entry
    d_rows, d_codes = [], []
    for k, p in enumerate(PATHOLOGIES):
        act = (pop.onset[st["pat"], k] <= st["entry"]) & (st["entry"] < pop.end[st["pat"], k]) & (st["path"] != k)
        act &= gen.random(n) < 0.8
        rows = np.flatnonzero(act)
        d_rows.append(rows), d_codes.append(np.array(p.icd, dtype=object)[pop.icd[st["pat"][rows], k]])
    d_row, d_code = np.concatenate(d_rows), np.concatenate(d_codes)
    # acts: 0-2 acts of the pathology (or general ones), dated entry + delay within the stay
    general = cat.ccam_index([c for c, _ in ACTS])
    n_act = np.where(st["los"] > 0, gen.integers(0, 3, n), 0)
    a_row = np.repeat(np.arange(n), n_act)
    pools = [cat.path_acts[k] if cat.path_acts[k].size else general for k in range(len(PATHOLOGIES))]
    a_item = general[gen.integers(0, general.size, a_row.size)]
    for k, pool in enumerate(pools):
        m = st["path"][a_row] == k
        a_item[m] = pool[gen.integers(0, pool.size, int(m.sum()))]
    a_item_codes = cat.ccam_codes[a_item]
    dedup = np.unique(np.stack([a_row, a_item]), axis=1, return_index=True)[1]
    a_row, a_code = a_row[np.sort(dedup)], a_item_codes[np.sort(dedup)]
    a_delay = np.floor(gen.random(a_row.size) * (st["los"][a_row] + 1)).astype(np.int64)
    sor_year = exit_.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    out = {}
    for y in years:
        yy = f"{y % 100:02d}"
        s = np.flatnonzero(sor_year == y)
        pos = np.full(n, -1)
        pos[s] = np.arange(s.size)
        d = np.flatnonzero(pos[d_row] >= 0)
        a = np.flatnonzero(pos[a_row] >= 0)
        pat = st["pat"][s]
        out[f"T_MCO{yy}B"] = pa.table({
            "ETA_NUM": pa.array(eta[s]), "RSA_NUM": pa.array(rsa[s]), "DGN_PAL": dictionary(st["dp"][s]),
            "DGN_REL": dictionary(st["dr"][s]), "GRG_GHM": dictionary(group[s]),
            "SEJ_NBJ": pa.array(st["los"][s].astype(np.int32)),
            "AGE_ANN": pa.array(((st["entry"][s] - pop.birth[pat]) // 365.25).astype(np.int32)),
            "COD_SEX": dictionary(pop.sex[pat].astype(str)), "NBR_DGN": pa.array(np.bincount(
                pos[d_row[d]], minlength=s.size).astype(np.int32) + 1),
            "NBR_ACT": pa.array(np.bincount(pos[a_row[a]], minlength=s.size).astype(np.int32)),
            "SOR_ANN": pa.array(np.full(s.size, y, np.int32)),
            "SOR_MOI": pa.array((exit_[s].astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
                                 + 1).astype(np.int32)),
            "ENT_MOD": dictionary(np.full(s.size, "8")),
            "SOR_MOD": dictionary(np.full(s.size, "8")), "BDI_DEP": coded(*department_codes(pop.dept[pat])[::-1]),
        })
        out[f"T_MCO{yy}C"] = pa.table({
            "ETA_NUM": pa.array(eta[s]), "RSA_NUM": pa.array(rsa[s]), "NIR_ANO_17": coded(pat, pop.pid),
            "EXE_SOI_DTD": pa.array(st["entry"][s].astype("datetime64[D]").astype("datetime64[s]")),
            "EXE_SOI_DTF": pa.array(exit_[s].astype("datetime64[D]").astype("datetime64[s]")),
            "ENT_DAT": pa.array(_dmy(st["entry"][s])), "SOR_DAT": pa.array(_dmy(exit_[s])),
            "SOR_ANN": pa.array(np.full(s.size, y, np.int32)),
            **{c: dictionary(np.full(s.size, "0")) for c in ("NIR_RET", "NAI_RET", "SEX_RET", "SEJ_RET", "FHO_RET",
                                                              "PMS_RET", "DAT_RET", "COH_NAI_RET", "COH_SEX_RET")},
            "RNG_NAI": pa.array(np.ones(s.size, np.int32)),
        })
        out[f"T_MCO{yy}D"] = pa.table({
            "ETA_NUM": _text(eta[d_row[d]]), "RSA_NUM": _text(rsa[d_row[d]]),
            "ASS_DGN": dictionary(d_code[d]), "DGN_ASS_NUM": pa.array(np.ones(d.size, np.int32))})
        out[f"T_MCO{yy}A"] = pa.table({
            "ETA_NUM": _text(eta[a_row[a]]), "RSA_NUM": _text(rsa[a_row[a]]),
            "CDC_ACT": dictionary(a_code[a]), "ENT_DAT_DEL": pa.array(a_delay[a].astype(np.int32)),
            "NBR_EXE_ACT": pa.array(np.ones(a.size, np.int32)), "ACV_ACT": dictionary(np.full(a.size, "1"))})
        v = s[~error[s]]  # valorisation of the stays of a valid GHM (error GHMs are not valued)
        out[f"T_MCO{yy}VALO"] = pa.table({
            "ETA_NUM": pa.array(eta[v]), "RSA_NUM": pa.array(rsa[v]),
            "MNT_TOT_AM": pa.array(st["cost"][v]), "MNT_BR": pa.array(st["cost"][v])})
        out[f"T_MCO{yy}UM"] = pa.table({
            "ETA_NUM": _text(eta[s]), "RSA_NUM": _text(rsa[s]),
            "UM_ORD_NUM": pa.array(np.ones(s.size, np.int32)), "DGN_PAL": dictionary(st["dp"][s]),
            "DGN_REL": dictionary(st["dr"][s]), "PAR_DUR_SEJ": pa.array(st["los"][s].astype(np.int32))})
    detail = {"error": error, "d_row": d_row, "d_code": d_code, "a_row": a_row, "a_code": a_code,
              "a_delay": a_delay, "ghm": group, "year": sor_year}
    return out, detail


def _text(numbers: np.ndarray) -> pa.Array:
    """Decimal text of integers (ids stored as text), formatted by Arrow."""
    return pa.array(np.asarray(numbers, dtype=np.int64)).cast(pa.string())


def _dmy(days: np.ndarray) -> np.ndarray:
    """ddmmyyyy text dates (PMSI ENT_DAT / SOR_DAT).

    Examples
    --------
    >>> _dmy(np.array([0])).tolist()
    ['01011970']
    """
    days = np.asarray(days, dtype=np.int64)
    if days.size == 0:
        return np.array([], dtype="U8")
    lo, hi = int(days.min()), int(days.max())
    sparse = hi - lo > 4 * days.size + 10_000  # stays span a few years: then each calendar day is formatted once
    calendar = days if sparse else np.arange(lo, hi + 1)
    iso = np.datetime_as_string(calendar.astype("datetime64[D]")).astype("U10")
    v = iso.view("U1").reshape(-1, 10)
    text = (v[:, 8].astype(object) + v[:, 9] + v[:, 5] + v[:, 6] + v[:, 0] + v[:, 1] + v[:, 2] + v[:, 3]).astype(str)
    return text if sparse else text[days - lo]


__all__ = ["ERROR_GHM_SHARE", "beneficiaries", "causes_of_death", "long_term_illnesses", "pmsi"]

"""DCIR tables of one chunk: ``ER_PRS_F`` (one line per service and flux) with its detail tables ``ER_PHA_F``
(CIP13 dispensations) and ``ER_CAM_F`` (CCAM acts) on the nine join keys, and the real DCIR quirks:

* several flux lines per service: each dispensation has a dispensing-fee line (``PRS_NAT_REF`` 3336, no detail);
* regularisations: 1 % of dispensations are cancelled in a later flux (negative quantity and amounts,
  ``BSE_REM_SGN`` = -1) and billed again identically;
* information lines: 2 % of services are repeated with ``DPN_QLF`` = 71 (with their detail line);
* sentinel dates: ``EXE_SOI_DTF`` = 1600-01-01 on dispensations, ``PRE_PRE_DTD`` = 1600-01-01 without a
  prescription.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from pathways.synthetic.snds.care import ACT, GP, PHARMACY, SPECIALIST
from pathways.synthetic.snds.catalogue import Catalogue
from pathways.synthetic.snds.model import SERVICES
from pathways.synthetic.snds.population import DEPARTMENTS, Population
from pathways.synthetic.snds.providers import (
    Providers,
    hospital_id,
    pharmacy_id,
    prescriber_id,
)

SENTINEL = -135140  # 1600-01-01 in days since 1970-01-01
INFO_SHARE, REGUL_SHARE = 0.02, 0.01
#: Line types of ER_PRS_F (truth of the quirks).
MAIN, FEE, INFO, CANCEL, REBILL = 0, 1, 2, 3, 4


def _month_after(day: np.ndarray, months: int | np.ndarray = 1) -> np.ndarray:
    """First day of the month ``months`` after each day's month (days since 1970).

    Service days span a few years: the calendar is converted once per distinct day and month through lookup
    tables instead of per line (datetime64 casts of every line were a tenth of the DCIR build).

    Examples
    --------
    >>> _month_after(np.array([0, 30, 31]), np.array([1, 1, 2])).tolist()  # 1970-01-01, -01-31, -02-01
    [31, 31, 90]
    """
    day = np.asarray(day, dtype=np.int64)
    if day.size == 0 or int(day.max()) - int(day.min()) > 4 * day.size + 100_000:  # short or sparse: direct
        m = day.astype("datetime64[D]").astype("datetime64[M]") + months
        return m.astype("datetime64[D]").astype(np.int64)
    lo = int(day.min())
    month_of = np.arange(lo, int(day.max()) + 1).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    m = month_of[day - lo] + months
    m0 = int(m.min())
    first_day = np.arange(m0, int(m.max()) + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return first_day[m - m0]


def dictionary(values: np.ndarray, mask: np.ndarray | None = None) -> pa.DictionaryArray:
    """Dictionary-encoded strings (ids repeat a lot: small files, fast writes); ``mask``: nulls. For short
    arrays; long ones are built from integer codes with :func:`coded`."""
    uniq, inv = np.unique(np.asarray(values).astype(str), return_inverse=True)
    return coded(inv, uniq, mask)


def coded(index: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> pa.DictionaryArray:
    """Dictionary array of ``labels[index]`` without building the strings of every row."""
    idx = pa.array(np.asarray(index).astype(np.int32), mask=mask)
    labels = np.asarray(labels)
    if labels.dtype.kind not in "OU":  # numbers: formatted; text (pseudonyms, codes) goes to Arrow as it is
        labels = labels.astype(str)
    return pa.DictionaryArray.from_arrays(idx, pa.array(labels, pa.string()))


def coded_ids(values: np.ndarray, label: Any, mask: np.ndarray | None = None) -> pa.DictionaryArray:
    """Dictionary array of integer ids formatted by ``label`` (called on the distinct values only)."""
    index, labels = id_codes(values, label)
    return coded(index, labels, mask)


def id_codes(values: np.ndarray, label: Any) -> tuple[np.ndarray, np.ndarray]:
    """Dictionary indices (int32) and labels of integer ids: ``labels[index]`` is ``label(values)``.

    Examples
    --------
    >>> index, labels = id_codes(np.array([7, 3, 7]), lambda u: u.astype(str))
    >>> index.tolist(), labels.tolist()
    ([1, 0, 1], ['3', '7'])
    """
    values = np.asarray(values, dtype=np.int64)
    if values.size == 0:
        return values.astype(np.int32), label(values)
    lo = int(values.min())
    span = int(values.max()) - lo + 1
    if span > 4 * values.size + 1_000_000:  # sparse ids: sort
        uniq, inv = np.unique(values, return_inverse=True)
        return inv.astype(np.int32), label(uniq)
    present = np.zeros(span, bool)  # dense ids (providers): a linear-time ranking instead of a sort
    present[values - lo] = True
    rank = (np.cumsum(present) - 1).astype(np.int32)
    return rank[values - lo], label(np.flatnonzero(present) + lo)


def amounts(cat: Catalogue, pop: Population, s: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Paid amount (price x quantity) and reimbursement rate (100 % under the ALD of the service's pathology)."""
    kind = s["kind"]
    # kinds are 0..3: per-kind constants are looked up instead of np.select over one mask per kind
    fixed = np.array([0.0, SERVICES["gp"][1], SERVICES["specialist"][1], 0.0])[kind]
    price = np.where(kind == PHARMACY, cat.price[np.where(kind == PHARMACY, s["item"], 0)],
                     np.where(kind == ACT, cat.ccam_price[np.where(kind == ACT, s["item"], 0)], fixed))
    base_rate = np.array([SERVICES["pharmacy"][2], SERVICES["gp"][2], SERVICES["gp"][2], SERVICES["acts"][2]])[kind]
    ald = pop.ald_active(s["day"], s["pat"], s["path"])
    return np.round(price * s["qty"], 2), np.where(ald, 1.0, base_rate)


def lines(gen: np.random.Generator, s: dict[str, np.ndarray], chunk: int) -> dict[str, np.ndarray]:
    """Expand services into ER_PRS_F lines: (service row, line type, flux date, emitter order, PRS_ORD_NUM)."""
    n = s["day"].size
    pha = s["kind"] == PHARMACY
    info = np.flatnonzero(gen.random(n) < INFO_SHARE)
    regul = np.flatnonzero(pha & (gen.random(n) < REGUL_SHARE))
    fee = np.flatnonzero(pha)
    row = np.concatenate([np.arange(n), fee, info, regul, regul])
    typ = np.concatenate([np.full(n, MAIN), np.full(fee.size, FEE), np.full(info.size, INFO),
                          np.full(regul.size, CANCEL), np.full(regul.size, REBILL)])
    late = (gen.random(n) < 0.05).astype(np.int64)  # 5 % of services reach the flux a month late
    flux_line = _month_after(s["day"], 1 + late)[row]  # per service, then to its lines
    regul_lines = np.flatnonzero(typ >= CANCEL)  # the cancellation and the new bill: a month later still
    flux_line[regul_lines] = _month_after(s["day"][row[regul_lines]], 2 + late[row[regul_lines]])
    emt_ord = np.select([typ == CANCEL, typ == REBILL], [2, 3], 1)
    prs_ord = np.select([typ == FEE, typ == INFO], [2, 3], 1)
    return {"row": row, "type": typ, "flux": flux_line, "emt_ord": emt_ord, "prs_ord": prs_ord,
            "dct": chunk * 10**10 + row.astype(np.int64)}


def tables(gen: np.random.Generator, cat: Catalogue, pop: Population, prov: Providers, s: dict[str, np.ndarray],
           chunk: int) -> tuple[dict[str, pa.Table], dict[str, np.ndarray]]:
    """ER_PRS_F, ER_PHA_F, ER_CAM_F of the chunk and the per-service paid / reimbursed amounts (truth)."""
    paid, rate = amounts(cat, pop, s)
    ln = lines(gen, s, chunk)
    r, typ = ln["row"], ln["type"]
    kind = s["kind"][r]
    sign = np.where(typ == CANCEL, -1, 1)
    fee_nat, fee_price, fee_rate = SERVICES["dispensing_fee"]
    nat_of_kind = np.array([SERVICES["pharmacy"][0], SERVICES["gp"][0], SERVICES["specialist"][0],
                            SERVICES["acts"][0]], np.int32)
    qty = s["qty"][r]
    fee_rows = typ == FEE
    line_paid = np.where(fee_rows, fee_price * qty, paid[r]) * sign
    # rounding to cents is odd-symmetric: a service line's amount is its rounded service amount, signed
    base = np.round(paid * rate, 2)
    reimbursed = base[r] * sign
    reimbursed[fee_rows] = np.round(line_paid[fee_rows] * fee_rate, 2)
    pat = s["pat"][r]
    ones = pa.array(np.ones(r.size, np.int32))
    keys = _keys(ln, pop, pat, ones)
    prs = pa.table({
        "BEN_NIR_PSA": coded(pat, pop.pid), "BEN_RNG_GEM": ones,
        "BEN_NAI_ANN": pa.array(_birth_year(pop)[pat]), "BEN_SEX_COD": pa.array(pop.sex[pat]),
        "BEN_RES_DPT": pa.DictionaryArray.from_arrays(keys.pop("_dept"), pa.array(DEPARTMENTS.astype(str))),
        **_service_columns(s, prov, r),
        "PRS_NAT_REF": pa.array(np.where(typ == FEE, np.int32(fee_nat), nat_of_kind[kind])),
        "PRS_ACT_QTE": pa.array((qty * sign).astype(float)),
        "PRS_PAI_MNT": pa.array(line_paid), "BSE_REM_BSE": pa.array(line_paid), "BSE_REM_MNT": pa.array(reimbursed),
        "BSE_REM_SGN": pa.array(sign.astype(np.int32)),
        "RGO_REM_TAU": pa.array(np.where(fee_rows, np.round(fee_rate * 100), np.round(rate * 100)[r])),
        "DPN_QLF": pa.array(np.where(typ == INFO, 71, 0).astype(np.int32)),
        "EXO_MTF": pa.array(np.where(np.where(fee_rows, fee_rate >= 1.0, (rate >= 1.0)[r]), 41, 0).astype(np.int32)),
        **keys,
    })
    prs = prs.select(PRS_COLUMNS)
    out = {"ER_PRS_F": prs}
    for name, k in (("ER_PHA_F", PHARMACY), ("ER_CAM_F", ACT)):
        det = np.flatnonzero((kind == k) & (typ != FEE))
        det_a = pa.array(det)
        dkeys = {c: prs.column(c).take(det_a) for c in KEY_COLUMNS}
        item = s["item"][r[det]]
        if k == PHARMACY:
            out[name] = pa.table({**dkeys, "PHA_PRS_C13": pa.array(cat.cip[item]),
                                  "PHA_PRS_IDE": pa.array((cat.cip[item] // 10 % 10**7).astype(np.int32)),
                                  "PHA_ACT_QSN": pa.array((qty[det] * sign[det]).astype(np.int32)),
                                  "PHA_ACT_PRU": pa.array(cat.price[item]),
                                  "PHA_SEQ_RNV": pa.array(s["seq"][r[det]].astype(np.int32)),
                                  "PHA_ORD_NUM": pa.array(np.ones(det.size, np.int32))})
        else:
            out[name] = pa.table({**dkeys, "CAM_PRS_IDE": coded(item, cat.ccam_codes),
                                  "CAM_ACT_COD": coded(np.zeros(det.size), np.array(["1"])),
                                  "CAM_ACT_PRU": pa.array(cat.ccam_price[item]),
                                  "CAM_REM_BSE": pa.array(cat.ccam_price[item] * sign[det]),
                                  "CAM_ORD_NUM": pa.array(np.ones(det.size, np.int32))})
    fee_total = np.zeros(s["day"].size)
    np.add.at(fee_total, r[fee_rows], reimbursed[fee_rows])
    regularised = np.zeros(s["day"].size, bool)
    regularised[r[typ == CANCEL]] = True
    return out, {"reimbursed": base + fee_total, "paid": paid, "base": base, "regularised": regularised}


def _service_columns(s: dict[str, np.ndarray], prov: Providers, r: np.ndarray) -> dict[str, pa.Array]:
    """Columns of ER_PRS_F that depend on the service only: computed once per service (dictionary indices
    included), then gathered to the lines ``r`` (a third more lines than services: fee, information and
    regularisation lines)."""
    kind, day, presc, executor, etb = s["kind"], s["day"], s["prescriber"], s["executor"], s["etb"]
    pre_day = s["pre_day"]

    def exe_label(u: np.ndarray) -> np.ndarray:  # pharmacies coded -1 - index, professionals by their index
        return np.where(u < 0, pharmacy_id(np.maximum(-1 - u, 0)), prescriber_id(np.maximum(u, 0), prov.n_gp))

    pre_idx, pre_lab = id_codes(np.maximum(presc, 0), lambda u: prescriber_id(u, prov.n_gp))
    exe_idx, exe_lab = id_codes(np.where(kind == PHARMACY, -1 - np.maximum(executor, 0), executor), exe_label)
    etb_idx, etb_lab = id_codes(np.maximum(etb, 0), lambda u: hospital_id(u).astype(str))
    no_presc, no_etb = (presc < 0)[r], (etb < 0)[r]
    return {
        "EXE_SOI_DTD": pa.array(day.astype(np.int32)[r], pa.date32()),
        "EXE_SOI_DTF": pa.array(np.where(kind == PHARMACY, SENTINEL, day).astype(np.int32)[r], pa.date32()),
        "PRE_PRE_DTD": pa.array(np.where(np.isnan(pre_day), SENTINEL, pre_day).astype(np.int32)[r], pa.date32()),
        "PFS_PRE_NUM": coded(pre_idx[r], pre_lab, mask=no_presc),
        "PFS_EXE_NUM": coded(exe_idx[r], exe_lab),
        "ETB_PRE_FIN": coded(etb_idx[r], etb_lab, mask=no_etb),
        "PSE_SPE_COD": pa.array(np.array([50, 1, 3, 3], np.int32)[kind][r]),  # by kind (0..3)
        "PSP_SPE_COD": pa.array(np.where(presc < 0, 0, np.where(presc < prov.n_gp, 1, 3)).astype(np.int32)[r]),
    }


def _birth_year(pop: Population) -> np.ndarray:
    return (pop.birth.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970).astype(np.int32)


def _keys(ln: dict[str, np.ndarray], pop: Population, pat: np.ndarray, ones: pa.Array) -> dict[str, pa.Array]:
    """The nine DCIR join keys of each line (unique per line: décompte, flux, emitter order, line order), and
    ``_dept``: the department index of each line, shared with ``BEN_RES_DPT``."""
    flux = ln["flux"]
    dept = pa.array(pop.dept[pat].astype(np.int32))
    return {
        "DCT_ORD_NUM": pa.array(ln["dct"]), "FLX_DIS_DTD": pa.array(flux.astype(np.int32), pa.date32()),
        "FLX_EMT_NUM": pa.array((1 + pop.dept % 20).astype(np.int32)[pat]),
        "FLX_EMT_ORD": pa.array(ln["emt_ord"].astype(np.int32)),
        "FLX_EMT_TYP": ones,
        "FLX_TRT_DTD": pa.array((flux - 3).astype(np.int32), pa.date32()),
        "ORG_CLE_NUM": pa.DictionaryArray.from_arrays(dept, pa.array(np.char.add("01C", DEPARTMENTS.astype(str)))),
        "PRS_ORD_NUM": pa.array(ln["prs_ord"].astype(np.int32)),
        "REM_TYP_AFF": ones, "_dept": dept,
    }


KEY_COLUMNS = ["DCT_ORD_NUM", "FLX_DIS_DTD", "FLX_EMT_NUM", "FLX_EMT_ORD", "FLX_EMT_TYP", "FLX_TRT_DTD",
               "ORG_CLE_NUM", "PRS_ORD_NUM", "REM_TYP_AFF"]
#: Column order of ER_PRS_F.
PRS_COLUMNS = ["BEN_NIR_PSA", "BEN_RNG_GEM", "BEN_NAI_ANN", "BEN_SEX_COD", "BEN_RES_DPT", "EXE_SOI_DTD",
               "EXE_SOI_DTF", "PRE_PRE_DTD", "PRS_NAT_REF", "PRS_ACT_QTE", "PRS_PAI_MNT", "BSE_REM_BSE",
               "BSE_REM_MNT", "BSE_REM_SGN", "RGO_REM_TAU", "DPN_QLF", "EXO_MTF", "PFS_PRE_NUM", "PFS_EXE_NUM",
               "ETB_PRE_FIN", "PSE_SPE_COD", "PSP_SPE_COD", *KEY_COLUMNS]


__all__ = ["CANCEL", "FEE", "INFO", "MAIN", "REBILL", "SENTINEL", "coded", "coded_ids", "dictionary", "id_codes",
           "tables"]

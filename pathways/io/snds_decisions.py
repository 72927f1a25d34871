"""The counted decisions of the DCIR sources and the PMSI MCO stays, in report order: one home for both claims engines.

The DuckDB engine (:mod:`pathways.io.snds_events`, :mod:`pathways.io.snds_services`) and the Spark engine
(:mod:`pathways.io.spark.snds_events`, :mod:`pathways.io.spark.snds_services`) count the same rows with their own
queries and record them here, so the read reports of the two engines cannot drift apart in wording, decision or
order (their equality tests compare the reports step by step).

``reader`` is either engine's reader: it has ``report`` (a :class:`~pathways.io.report.ReadReport`), ``decide``
(a decision under the user's ``errors=``) and ``rule`` (a documented exclusion rule: counted and warned).
"""
from __future__ import annotations

from typing import Any


def record_dispensations(reader: Any, n: int, unmatched: int, no_pid: int, info: int, qty_bad: int, qty_comma: int,
                         bad_date: int, nonpos: int, unmapped: int, *, regularise: bool, drop_nonpositive: bool,
                         mapped: bool) -> None:
    """ER_PHA_F (dcir_drugs) decisions; the regularisation netting, when on, records its own after these."""
    reader.report.note("ER_PHA_F rows", n)
    reader.decide("ER_PHA_F: no matching ER_PRS_F line on the 9 DCIR keys", "dropped", unmatched, n)
    reader.decide("ER_PHA_F: BEN_NIR_PSA empty in the matching ER_PRS_F line", "dropped", no_pid, n)
    reader.rule("ER_PHA_F: information line (DPN_QLF = 71)", "dropped", info, n)
    reader.decide("ER_PHA_F: PHA_ACT_QSN not a number", "quantity unknown, dispensation kept", qty_bad, n)
    reader.decide("ER_PHA_F: PHA_ACT_QSN with a decimal comma", "read as a decimal point", qty_comma, n)
    reader.decide("ER_PHA_F: EXE_SOI_DTD missing, invalid or out of date_range", "dropped", bad_date, n)
    if not regularise:
        reader.rule("ER_PHA_F: PHA_ACT_QSN <= 0", "dropped" if drop_nonpositive else "kept", nonpos, n)
    if mapped:
        reader.decide("ER_PHA_F: CIP13 absent from cip_to_atc", "kept as CIP13 code", unmapped, n)


def record_acts(reader: Any, n: int, unmatched: int, no_pid: int, info: int, no_code: int, bad_date: int) -> None:
    """ER_CAM_F (dcir_acts) decisions."""
    reader.report.note("ER_CAM_F rows", n)
    reader.decide("ER_CAM_F: no matching ER_PRS_F line on the 9 DCIR keys", "dropped", unmatched, n)
    reader.decide("ER_CAM_F: BEN_NIR_PSA empty in the matching ER_PRS_F line", "dropped", no_pid, n)
    reader.rule("ER_CAM_F: information line (DPN_QLF = 71)", "dropped", info, n)
    reader.decide("ER_CAM_F: CAM_PRS_IDE empty", "dropped", no_code, n)
    reader.decide("ER_CAM_F: EXE_SOI_DTD missing, invalid or out of date_range", "dropped", bad_date, n)


def record_services(reader: Any, n: int, detail: int, no_pid: int, info: int, no_code: int, bad_date: int,
                    nonpos: int, *, regularise: bool, drop_nonpositive: bool) -> None:
    """ER_PRS_F lines without a detail row (dcir_services) decisions; netting, when on, records its own after."""
    reader.report.note("ER_PRS_F rows (dcir_services)", n)
    reader.report.note("ER_PRS_F: line with a detail row (read by dcir_drugs / dcir_acts)", detail)
    reader.decide("ER_PRS_F: BEN_NIR_PSA empty", "dropped", no_pid, n)
    reader.rule("ER_PRS_F: information line (DPN_QLF = 71)", "dropped", info, n)
    reader.decide("ER_PRS_F: PRS_NAT_REF empty", "dropped", no_code, n)
    reader.decide("ER_PRS_F: EXE_SOI_DTD missing, invalid or out of date_range", "dropped", bad_date, n)
    if not regularise:
        reader.rule("ER_PRS_F: PRS_ACT_QTE <= 0", "dropped" if drop_nonpositive else "kept", nonpos, n)


def record_stays(reader: Any, name: str, link: str, n: int, unmatched: int, no_pid: int, ghm: int, ret: int,
                 no_start: int, reversed_: int, *, exclude_errors: bool) -> None:
    """PMSI MCO stays of table ``name`` (patient link table ``link``) decisions."""
    reader.report.note(f"{name} rows", n)
    reader.decide(f"{name}: no patient link in {link} (ETA_NUM, RSA_NUM)", "dropped", unmatched, n)
    reader.decide(f"{name}: NIR_ANO_17 empty in {link}", "dropped", no_pid, n)
    errs = "dropped" if exclude_errors else "kept"
    reader.rule(f"{name}: error GHM (GRG_GHM 90*)", errs, ghm, n)
    reader.rule(f"{name}: quality check *_RET not '0' in {link}", errs, ret, n)
    reader.decide(f"{name}: entry date missing, invalid or out of date_range", "dropped", no_start, n)
    reader.decide(f"{name}: discharge before entry", "end = entry", reversed_, n)

"""SNDS event sources as DuckDB queries: DCIR dispensations and acts joined to ER_PRS_F on the nine DCIR keys
(range by range of flux month), PMSI MCO stays with their diagnoses and acts. Every source appends to one
compressed events table with integer patient ids."""
from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from pathways.errors import PathwaysInputError
from pathways.io.report import ReadReport
from pathways.io.snds_decisions import record_acts, record_dispensations, record_stays
from pathways.io.snds_tables import (
    ATC_LEVELS, CATEGORIES, DCIR_KEYS, DT_FORMATS, MCO_KEYS, MCO_RET_COLUMNS, MCO_VALO_COLUMNS, PLACEHOLDER_DATES, PROVIDER_COLUMNS,
    days_since_epoch,
)
from pathways.io.tabular import TableSet, days_sql, in_range_sql, sql_literal


class SndsEventReader:
    """The event steps of :func:`read_snds` (DCIR drugs and acts, PMSI MCO stays); each builds a DuckDB temp table
    and records its counted decisions. :class:`~pathways.io.snds_patients.SndsReader` adds the patients."""

    def __init__(self, ts: TableSet, report: ReadReport, errors: str, bounds: tuple[float, float],
                 partition_rows: int | None = None):
        self.ts, self.report, self.errors, self.bounds = ts, report, errors, bounds
        self.partition_rows = partition_rows
        self._placeholder_days = [days_since_epoch(d) for d in PLACEHOLDER_DATES]
        #: the one events table every source appends to (pid, t, e, value, code, cat); None until the first
        self.events: str | None = None
        #: patient id dictionary (pid text, id integer) for the integer ``pid`` of :attr:`events`
        self.pids: str | None = None
        #: extra event columns (prescriber, provider, institution, paid, base) when ER_PRS_F carries any of them
        self.extra_names: list[str] = []

    def use_provider_columns(self, sources: Sequence[str]) -> None:
        """Carry provider ids and amounts as extras when a DCIR source is read and ER_PRS_F has any of them, or
        the MCO source is read and a valorisation table T_MCOaaVALO has an amount column."""
        dcir = {"dcir_drugs", "dcir_acts", "dcir_services"} & set(sources) and self.ts.has("ER_PRS_F") and any(
            col in set(self.ts.columns("ER_PRS_F")) for col, _ in PROVIDER_COLUMNS.values())
        valo = "mco" in sources and any(col in set(self.ts.columns(v)) for v in self._mco_tables("VALO")
                                        for col in MCO_VALO_COLUMNS.values())
        if dcir or valo:
            self.extra_names = list(PROVIDER_COLUMNS)

    def _provider_sql(self) -> str:
        """``, <extras>`` over ER_PRS_F (alias ``p``): ids trimmed (empty = missing), amounts as numbers."""
        if not self.extra_names:
            return ""
        present = set(self.ts.columns("ER_PRS_F"))
        parts = []
        for name, (col, typ) in PROVIDER_COLUMNS.items():
            if col not in present:
                parts.append(f"CAST(NULL AS {typ}) AS {name}")
            elif typ == "VARCHAR":
                parts.append(f"NULLIF(trim(CAST(p.{col} AS VARCHAR)), '') AS {name}")
            else:
                parts.append(f"TRY_CAST(p.{col} AS DOUBLE) AS {name}")
        return ", " + ", ".join(parts)

    def seed_patient_ids(self) -> None:
        """Start the patient id dictionary with IR_BEN_R's ids, so that joins can map most ids in passing."""
        if self.ts.has("IR_BEN_R"):
            self.ts.require("IR_BEN_R", ["BEN_NIR_PSA"])
            source = (f"SELECT DISTINCT CAST(BEN_NIR_PSA AS VARCHAR) AS pid FROM {self.ts.ref('IR_BEN_R')} "
                      f"WHERE BEN_NIR_PSA IS NOT NULL")
        else:
            source = "SELECT CAST(NULL AS VARCHAR) AS pid WHERE FALSE"
        self.pids = self.ts.temp_table(f"SELECT pid, CAST(row_number() OVER () - 1 AS INTEGER) AS id "
                                       f"FROM ({source})", "pids")

    def emit(self, query: str, drop: bool = True, with_ids: bool = False, with_extras: bool = False) -> None:
        """Append a source's events to :attr:`events`, then (``drop``) drop the source's staging tables.

        One table filled in place: a union of the sources built at the end would hold every event twice. Patient
        ids are stored as integers of the :attr:`pids` dictionary (4 bytes instead of a 17-character string
        per event); ids not yet in it are added first. ``with_ids``: the query already gives ``pid_id`` (the
        dictionary id, mapped in its own join) and ``pid`` only where ``pid_id`` is missing. ``with_extras``: the
        query gives the :attr:`extra_names` columns (other sources get NULLs there).
        """
        if self.pids is None:
            self.seed_patient_ids()
        pid_id = "CAST(pid_id AS INTEGER)" if with_ids else "CAST(NULL AS INTEGER)"
        extras = "".join(f", CAST({name if with_extras else 'NULL'} AS {PROVIDER_COLUMNS[name][1]}) AS {name}"
                         for name in self.extra_names)
        rows = self.ts.temp_view(
            f"SELECT {pid_id} AS pid_id, CAST(pid AS VARCHAR) AS pid, CAST(t AS DOUBLE) AS t, "
            f"CAST(e AS DOUBLE) AS e, CAST(value AS DOUBLE) AS value, CAST(code AS VARCHAR) AS code, "
            f"CAST(cat AS INTEGER) AS cat{extras} FROM {query}", "emit")
        n_known = self.ts.scalar(f"SELECT count(*) FROM {self.pids}")
        self.ts.con.execute(
            f"INSERT INTO {self.pids} SELECT pid, {n_known} + row_number() OVER () - 1 FROM "
            f"(SELECT DISTINCT r.pid FROM {rows} r ANTI JOIN {self.pids} d ON r.pid = d.pid "
            f"WHERE r.pid_id IS NULL AND r.pid IS NOT NULL)")
        more = "".join(f", r.{name}" for name in self.extra_names)
        encoded = (f"SELECT coalesce(r.pid_id, d.id) AS pid, r.t, r.e, r.value, r.code, r.cat{more} FROM {rows} r "
                   f"LEFT JOIN {self.pids} d ON r.pid = d.pid")
        if self.events is None:
            self.events = self.ts.compressed_table(encoded, "snds_events")
        else:
            self.ts.con.execute(f"INSERT INTO {self.events} {encoded}")
        self.ts.compress()  # about a tenth of the plain size: the events never hold much memory
        if drop:
            self.ts.drop_temps(keep=[self.events, self.pids])

    def _flux_ranges(self, detail: str) -> list[tuple[str, str]]:
        """(detail, ER_PRS_F) predicates splitting a DCIR join into ranges of FLX_DIS_DTD (aliases h and p)."""
        n = self.ts.scalar(f"SELECT count(*) FROM {self.ts.ref('ER_PRS_F')}")
        n_parts = 1 if self.partition_rows is None else math.ceil(n / int(self.partition_rows))
        if n_parts <= 1:
            return [("TRUE", "TRUE")]
        dtype_h = self.ts.columns(detail)["FLX_DIS_DTD"]
        dtype_p = self.ts.columns("ER_PRS_F")["FLX_DIS_DTD"]
        # Typed alike, the raw column keeps parquet's row-group statistics usable; else both sides as text.
        typ = dtype_h if dtype_h == dtype_p else "VARCHAR"
        col_h, col_p = (("h.FLX_DIS_DTD", "p.FLX_DIS_DTD") if dtype_h == dtype_p else
                        ("CAST(h.FLX_DIS_DTD AS VARCHAR)", "CAST(p.FLX_DIS_DTD AS VARCHAR)"))
        probs = ", ".join(f"{k / n_parts!r}" for k in range(1, n_parts))
        cuts = self.ts.scalar(f"SELECT quantile_disc({col_p.replace('p.', '')}, [{probs}]) "
                              f"FROM {self.ts.ref('ER_PRS_F')}") or []
        cuts = sorted({c for c in cuts if c is not None})
        literals = [f"CAST({sql_literal(str(c))} AS {typ})" for c in cuts]
        ranges = []
        for i in range(len(literals) + 1):
            conds_h, conds_p = [], []
            if i > 0:
                conds_h.append(f"{col_h} >= {literals[i - 1]}")
                conds_p.append(f"{col_p} >= {literals[i - 1]}")
            if i < len(literals):
                conds_h.append(f"{col_h} < {literals[i]}")
                conds_p.append(f"{col_p} < {literals[i]}")
            where_h = " AND ".join(conds_h)
            if i == 0:  # detail lines without a flux date match nothing, but are counted: they go in one range
                where_h = f"({where_h} OR {col_h} IS NULL)"
            ranges.append((where_h, " AND ".join(conds_p)))
        return ranges

    def decide(self, step: str, decision: str, count: int, total: int | None = None, detail: str = "") -> None:
        self.report.decide(step, decision, count, total, detail, errors=self.errors)

    def rule(self, step: str, decision: str, count: int, total: int | None = None) -> None:
        """A documented exclusion rule the user switched on: counted and warned, never an error."""
        self.report.decide(step, decision, count, total, "documented rule", errors="warn")

    def _valid_date(self, expr: str) -> str:
        """SQL: ``expr`` when it is a plausible date, else NULL."""
        return f"CASE WHEN {in_range_sql(expr, self.bounds)} THEN {expr} END"

    def _join(self, left: str, right: str, la: str, ra: str, keys: Sequence[str]) -> str:
        """Join condition on ``keys``; keys typed differently in the two tables are compared as text."""
        lt, rt = self.ts.require(left, keys), self.ts.require(right, keys)
        conds = []
        for k in keys:
            if lt[k.upper()] == rt[k.upper()]:
                conds.append(f"{la}.{k} = {ra}.{k}")
            else:
                conds.append(f"CAST({la}.{k} AS VARCHAR) = CAST({ra}.{k} AS VARCHAR)")
        return " AND ".join(conds)

    # -- DCIR -----------------------------------------------------------------------------------------------------
    def _prs_filter(self, exclude_info: bool) -> str:
        cols = self.ts.require("ER_PRS_F", ["BEN_NIR_PSA", "EXE_SOI_DTD", *DCIR_KEYS])
        if exclude_info and "DPN_QLF" not in cols:
            raise PathwaysInputError("table 'ER_PRS_F': missing column DPN_QLF needed by exclude_information_lines")
        return "coalesce(TRY_CAST(p.DPN_QLF AS INTEGER), 0) <> 71" if exclude_info else "TRUE"

    def _dcir_join(self, detail: str, alias: str, columns: str, extra_join: str, counts: Sequence[str],
                   keep: str, label: str, collect: str | None = None) -> list[int]:
        """Join ``detail`` to ER_PRS_F on the nine keys range by range; append kept rows; return summed counts.

        ``columns`` (the staged columns, over aliases ``alias`` and ``p``), ``counts`` (SQL aggregates over the
        stage) and ``keep`` (the SELECT of kept events from the stage, with ``{stage}`` for its name).
        ``collect``: append the kept rows to this table instead of the events (a later step needs them all, e.g.
        regularisations that arrive in a later flux month than the dispensation they correct).
        """
        cond = self._join(detail.upper(), "ER_PRS_F", alias, "p", DCIR_KEYS)
        if self.pids is None:
            self.seed_patient_ids()
        # Patient ids are mapped to the dictionary in the join itself; the text stays only for unknown ones.
        # unmatched: no ER_PRS_F line (a matched line has its keys); no_pid: matched, BEN_NIR_PSA empty
        ids = ("d.id AS pid_id, CASE WHEN d.id IS NULL THEN CAST(p.BEN_NIR_PSA AS VARCHAR) END AS pid, "
               "p.DCT_ORD_NUM IS NULL AS unmatched, p.DCT_ORD_NUM IS NOT NULL AND "
               "coalesce(trim(CAST(p.BEN_NIR_PSA AS VARCHAR)), '') = '' AS no_pid")
        id_join = f"LEFT JOIN {self.pids} d ON d.pid = CAST(p.BEN_NIR_PSA AS VARCHAR)"
        totals = [0] * len(counts)
        for where_h, where_p in self._flux_ranges(detail.upper()):
            stage = self.ts.temp_table(
                f"SELECT {ids}, {columns} FROM (SELECT * FROM {self.ts.ref(detail)} h WHERE {where_h}) {alias} "
                f"LEFT JOIN (SELECT * FROM {self.ts.ref('ER_PRS_F')} p WHERE {where_p}) p ON {cond} {extra_join} "
                f"{id_join}", label)
            row = self.ts.con.execute(f"SELECT {', '.join(counts)} FROM {stage}").fetchall()[0]
            totals = [t + int(c or 0) for t, c in zip(totals, row)]
            if collect is None:
                self.emit(f"({keep.format(stage=stage)})", with_ids=True, with_extras=bool(self.extra_names))
            else:
                self.ts.con.execute(f"INSERT INTO {collect} {keep.format(stage=stage)}")
                self.ts.drop_temps(keep=[self.events, self.pids, collect])
        return totals

    def dcir_drugs(self, exclude_info: bool, drop_nonpositive: bool, mapping: pd.DataFrame | None,
                   atc_level: int | None) -> None:
        """Dispensations: ER_PHA_F joined to ER_PRS_F on the nine DCIR keys."""
        pha_cols = self.ts.require("ER_PHA_F", ["PHA_PRS_C13", *DCIR_KEYS])
        info = f"NOT ({self._prs_filter(exclude_info)})"
        raw_qty = "nullif(trim(CAST(h.PHA_ACT_QSN AS VARCHAR)), '')" if "PHA_ACT_QSN" in pha_cols else "NULL"
        qty = f"TRY_CAST(replace({raw_qty}, ',', '.') AS DOUBLE)"  # '1,5': a French decimal comma
        cip = "CAST(h.PHA_PRS_C13 AS VARCHAR)"
        code = f"'CIP13:' || {cip}"
        join_map = ""
        if mapping is not None:
            self.ts.con.register("pw_cip_atc", mapping)
            atc = "m.atc" if atc_level is None else f"left(m.atc, {ATC_LEVELS[atc_level]})"
            code = f"CASE WHEN m.atc IS NULL THEN {code} ELSE 'ATC:' || {atc} END"
            join_map = f"LEFT JOIN pw_cip_atc m ON m.cip = {cip}"
        columns = (f"{days_sql('p.EXE_SOI_DTD', DT_FORMATS)} AS t, {qty} AS value, "
                   f"{raw_qty} IS NOT NULL AND {qty} IS NULL AS qty_bad, "
                   f"contains(coalesce({raw_qty}, ''), ',') AND {qty} IS NOT NULL AS qty_comma, "
                   f"{code} AS code, {info} AS info, "
                   f"{'m.atc IS NULL' if mapping is not None else 'FALSE'} AS unmapped{self._provider_sql()}")
        valid = in_range_sql('t', self.bounds)
        regularise = drop_nonpositive and bool(self.extra_names)
        # with amounts, non-positive lines are kept until their amounts are added to the dispensation they correct
        pos = "coalesce(value, 1) > 0" if drop_nonpositive and not regularise else "TRUE"
        more = "".join(f", {name}" for name in self.extra_names)
        collect = None
        if regularise:
            collect = self.ts.temp_table(
                f"SELECT CAST(NULL AS INTEGER) AS pid_id, CAST(NULL AS VARCHAR) AS pid, CAST(NULL AS DOUBLE) AS t, "
                f"CAST(NULL AS DOUBLE) AS e, CAST(NULL AS DOUBLE) AS value, CAST(NULL AS VARCHAR) AS code, "
                f"CAST(NULL AS INTEGER) AS cat" + "".join(f", CAST(NULL AS {PROVIDER_COLUMNS[n][1]}) AS {n}"
                                                         for n in self.extra_names) + " WHERE FALSE", "dcir_rows")
        try:
            used = "NOT unmatched AND NOT no_pid AND NOT info"
            n, unmatched, no_pid, info, bad_date, nonpos, unmapped, qty_bad, qty_comma = self._dcir_join(
                "er_pha_f", "h", columns, join_map,
                ["count(*)", "count(*) FILTER (WHERE unmatched)", "count(*) FILTER (WHERE no_pid)",
                 "count(*) FILTER (WHERE NOT unmatched AND NOT no_pid AND info)",
                 f"count(*) FILTER (WHERE {used} AND (t IS NULL OR NOT ({valid})))",
                 f"count(*) FILTER (WHERE {used} AND value <= 0)",
                 f"count(*) FILTER (WHERE {used} AND unmapped)", f"count(*) FILTER (WHERE {used} AND qty_bad)",
                 f"count(*) FILTER (WHERE {used} AND qty_comma)"],
                f"SELECT pid_id, pid, t, NULL AS e, value, code, {CATEGORIES.index('drug')} AS cat{more} "
                f"FROM {{stage}} WHERE {used} AND t IS NOT NULL AND {valid} AND {pos}", "dcir_pha",
                collect)
        finally:
            if mapping is not None:
                self.ts.con.unregister("pw_cip_atc")
        record_dispensations(self, n, unmatched, no_pid, info, qty_bad, qty_comma, bad_date, nonpos, unmapped,
                             regularise=regularise, drop_nonpositive=drop_nonpositive, mapped=mapping is not None)
        if collect is not None:
            self._regularised(collect, n)

    def _regularised(self, rows: str, n: int, table: str = "ER_PHA_F", column: str = "PHA_ACT_QSN",
                     what: str = "dispensation") -> None:
        """Emit the dispensations (``what`` of ``table``) with the amounts of their regularisation lines added.

        A line with ``PHA_ACT_QSN <= 0`` corrects (cancels or regularises) the dispensation of the same patient,
        care date, code and executing provider: it is no event, but its ``PRS_PAI_MNT`` / ``BSE_REM_MNT`` are
        added to that dispensation (shared equally when several lines match; identical lines, such as a
        dispensation and its re-billing after a cancellation, are then merged by the duplicate rule, which sums
        their amounts), so that the amounts of the EventLog sum to the table's: the net amount of a service is
        the sum of its signed lines. Corrections matching no dispensation are counted; their amounts are dropped.
        """
        key = ("pos.pid_id IS NOT DISTINCT FROM reg.pid_id AND pos.pid IS NOT DISTINCT FROM reg.pid AND "
               "pos.t = reg.t AND pos.code = reg.code AND pos.provider IS NOT DISTINCT FROM reg.provider")
        pos = self.ts.temp_view(
            f"SELECT *, count(*) OVER (PARTITION BY pid_id, pid, t, code, provider) AS n_same FROM {rows} "
            f"WHERE coalesce(value, 1) > 0", "dcir_pos")
        reg = self.ts.temp_table(
            f"SELECT pid_id, pid, t, code, provider, sum(paid) AS paid, sum(base) AS base, count(*) AS n_lines "
            f"FROM {rows} WHERE value <= 0 GROUP BY pid_id, pid, t, code, provider", "dcir_reg")
        n_reg, lost = self.ts.con.execute(
            f"SELECT (SELECT coalesce(sum(n_lines), 0) FROM {reg}), "
            f"(SELECT coalesce(sum(n_lines), 0) FROM {reg} reg WHERE NOT EXISTS (SELECT 1 FROM {pos} pos "
            f"WHERE {key}))"
        ).fetchall()[0]
        self.rule(f"{table}: {column} <= 0 (regularisation)", f"dropped, amounts added to the {what}",
                  int(n_reg) - int(lost), n)
        self.rule(f"{table}: {column} <= 0 matching no {what} (patient, date, code, provider)",
                  "dropped with its amounts", int(lost), n)
        ids = "".join(f", pos.{c}" for c in ("prescriber", "provider", "institution"))
        self.emit(f"(SELECT pos.pid_id, pos.pid, pos.t, pos.e, pos.value, pos.code, pos.cat{ids}, "
                  f"pos.paid + coalesce(reg.paid, 0) / pos.n_same AS paid, "
                  f"pos.base + coalesce(reg.base, 0) / pos.n_same AS base FROM {pos} pos LEFT JOIN {reg} reg "
                  f"ON {key})", with_ids=True, with_extras=True)

    def dcir_acts(self, exclude_info: bool) -> None:
        """CCAM acts: ER_CAM_F joined to ER_PRS_F on the nine DCIR keys."""
        self.ts.require("ER_CAM_F", ["CAM_PRS_IDE", *DCIR_KEYS])
        info = f"NOT ({self._prs_filter(exclude_info)})"
        columns = (f"{days_sql('p.EXE_SOI_DTD', DT_FORMATS)} AS t, "
                   f"'CCAM:' || upper(trim(CAST(c.CAM_PRS_IDE AS VARCHAR))) AS code, {info} AS info, "
                   f"coalesce(trim(CAST(c.CAM_PRS_IDE AS VARCHAR)), '') = '' AS no_code{self._provider_sql()}")
        more = "".join(f", {name}" for name in self.extra_names)
        valid = in_range_sql('t', self.bounds)
        used = "NOT unmatched AND NOT no_pid AND NOT info"
        n, unmatched, no_pid, info, no_code, bad_date = self._dcir_join(
            "er_cam_f", "c", columns, "",
            ["count(*)", "count(*) FILTER (WHERE unmatched)", "count(*) FILTER (WHERE no_pid)",
             "count(*) FILTER (WHERE NOT unmatched AND NOT no_pid AND info)",
             f"count(*) FILTER (WHERE {used} AND no_code)",
             f"count(*) FILTER (WHERE {used} AND NOT no_code AND (t IS NULL OR NOT ({valid})))"],
            f"SELECT pid_id, pid, t, NULL AS e, NULL AS value, code, {CATEGORIES.index('act')} AS cat{more} FROM {{stage}} "
            f"WHERE {used} AND NOT no_code AND t IS NOT NULL AND {valid}", "dcir_cam")
        record_acts(self, n, unmatched, no_pid, info, no_code, bad_date)

    # -- PMSI MCO -----------------------------------------------------------------------------------------------
    def _mco_tables(self, letter: str) -> list[str]:
        return self.ts.matching(rf"t_mco(aa|\d\d){letter.lower()}")

    def mco(self, exclude_errors: bool) -> None:
        """Stays, main/linked diagnoses, associated diagnoses and acts (stacked, never crossed), year by year."""
        stays_b = self._mco_tables("B")
        if not stays_b:
            raise PathwaysInputError("source 'mco': no T_MCOaaB table found (expected T_MCOaaB or T_MCO<yy>B)")
        for b in stays_b:
            parts: list[str] = []
            year = b[5:-1]
            c = f"t_mco{year}c"
            if not self.ts.has(c):
                raise PathwaysInputError(f"source 'mco': table {b.upper()} has no patient link table T_MCO{year}C")
            stays = self._stays(b, c, exclude_errors)
            parts.append(self._stay_events(stays))
            d, a = f"t_mco{year}d", f"t_mco{year}a"
            if self.ts.has(d):
                parts.append(self._associated_diagnoses(d, stays))
            else:
                self.report.note(f"{_mco_label(d)} absent: no associated diagnoses", 0)
            if self.ts.has(a):
                parts.append(self._acts(a, stays))
            else:
                self.report.note(f"{_mco_label(a)} absent: no hospital acts", 0)
            for i, part in enumerate(parts):  # the parts share the year's stays: staging dropped after the last
                self.emit(part, drop=False, with_extras=i == 0 and bool(self.extra_names))
            self.ts.drop_temps(keep=[self.events, self.pids])

    def _stays(self, b: str, c: str, exclude_errors: bool) -> str:
        bcols = self.ts.require(b, [*MCO_KEYS, "DGN_PAL"])
        ccols = self.ts.require(c, [*MCO_KEYS, "NIR_ANO_17"])
        name, c_name = _mco_label(b), _mco_label(c)
        n_c = self.ts.scalar(f"SELECT count(*) FROM {self.ts.ref(c)}")
        c_dedup = self.ts.temp_table(
            f"SELECT * FROM {self.ts.ref(c)} QUALIFY row_number() OVER "
            f"(PARTITION BY {', '.join(MCO_KEYS)} ORDER BY NIR_ANO_17) = 1", "mco_c")
        n_c_kept = self.ts.scalar(f"SELECT count(*) FROM {c_dedup}")
        self.decide(f"{c_name}: several patient-link rows per stay (ETA_NUM, RSA_NUM)", "first kept",
                    n_c - n_c_kept, n_c)
        start = _coalesce([days_sql(f"c.{col}", DT_FORMATS, pad) for col, pad in
                           (("EXE_SOI_DTD", None), ("ENT_DAT", 8)) if col in ccols])
        end = _coalesce([days_sql(f"c.{col}", DT_FORMATS, pad) for col, pad in
                         (("EXE_SOI_DTF", None), ("SOR_DAT", 8)) if col in ccols])
        rets = [col for col in MCO_RET_COLUMNS if col in ccols]
        ret_bad = " OR ".join(f"coalesce(trim(CAST(c.{col} AS VARCHAR)), '0') <> '0'" for col in rets) or "FALSE"
        ghm_bad = "left(CAST(b.GRG_GHM AS VARCHAR), 2) = '90'" if "GRG_GHM" in bcols else "FALSE"
        dgn_rel = "b.DGN_REL" if "DGN_REL" in bcols else "NULL"
        valo_join, valo_cols = self._valorisation(b)
        stage = self.ts.temp_table(
            f"SELECT c.NIR_ANO_17 AS pid, b.ETA_NUM AS k1, b.RSA_NUM AS k2, {self._valid_date(start)} AS t, "
            f"{self._valid_date(end)} AS e, upper(trim(CAST(b.DGN_PAL AS VARCHAR))) AS dp, "
            f"upper(trim(CAST({dgn_rel} AS VARCHAR))) AS dr, c.ETA_NUM IS NULL AS unmatched, c.ETA_NUM IS NOT NULL "
            f"AND coalesce(trim(CAST(c.NIR_ANO_17 AS VARCHAR)), '') = '' AS no_pid, "
            f"({ret_bad}) AS ret_bad, ({ghm_bad}) AS ghm_bad{valo_cols} FROM {self.ts.ref(b)} b LEFT JOIN {c_dedup} c "
            f"ON {self._join(b, c, 'b', 'c', MCO_KEYS)}{valo_join}", "mco_stage")
        n, unmatched, no_pid, ghm, ret, no_start, reversed_ = self.ts.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE unmatched), count(*) FILTER (WHERE no_pid), "
            f"count(*) FILTER (WHERE NOT unmatched AND ghm_bad), "
            f"count(*) FILTER (WHERE NOT unmatched AND NOT ghm_bad AND ret_bad), "
            f"count(*) FILTER (WHERE NOT unmatched AND t IS NULL), count(*) FILTER (WHERE e < t) FROM {stage}"
        ).fetchall()[0]
        record_stays(self, name, c_name, n, unmatched, no_pid, ghm, ret, no_start, reversed_,
                     exclude_errors=exclude_errors)
        quality = "NOT ghm_bad AND NOT ret_bad" if exclude_errors else "TRUE"
        kept = f"NOT unmatched AND NOT no_pid AND t IS NOT NULL AND {quality}"
        amounts = "".join(f", CAST(NULL AS DOUBLE) AS {n}" for n in MCO_VALO_COLUMNS) if self.extra_names else ""
        if valo_cols:
            n_kept, no_valo = self.ts.con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE no_valo) FROM {stage} WHERE {kept}").fetchall()[0]
            self.decide(f"{name}: kept stay without valorisation in {_mco_label(b[:-1] + 'valo')} "
                        f"(ETA_NUM, RSA_NUM)", "kept, amounts missing", no_valo, n_kept)
            amounts = ", " + ", ".join(MCO_VALO_COLUMNS)
        return self.ts.temp_table(
            f"SELECT pid, k1, k2, t, CASE WHEN e < t THEN t ELSE e END AS e, dp, dr{amounts} FROM {stage} "
            f"WHERE {kept}", "mco_stays")

    def _valorisation(self, b: str) -> tuple[str, str]:
        """(join, columns) adding a stay's amounts from T_MCOaaVALO (summed per ETA_NUM, RSA_NUM) to the stage
        of ``b``; empty strings when no extras are carried or the table is absent (noted)."""
        v = b[:-1] + "valo"
        if not self.extra_names:
            return "", ""
        if not self.ts.has(v):
            self.report.note(f"{_mco_label(v)} absent: stays without amounts", 0)
            return "", ""
        vcols = self.ts.require(v, MCO_KEYS)
        sums = ", ".join(f"sum(TRY_CAST({col} AS DOUBLE)) AS {name}" if col in vcols else
                         f"CAST(NULL AS DOUBLE) AS {name}" for name, col in MCO_VALO_COLUMNS.items())
        keys = ", ".join(MCO_KEYS)
        agg = self.ts.temp_table(f"SELECT {keys}, {sums}, count(*) AS n_rows FROM {self.ts.ref(v)} GROUP BY {keys}",
                                 "mco_valo")
        n, n_stays = self.ts.con.execute(f"SELECT coalesce(sum(n_rows), 0), count(*) FROM {agg}").fetchall()[0]
        self.report.note(f"{_mco_label(v)} rows", int(n))
        self.decide(f"{_mco_label(v)}: several rows per stay (ETA_NUM, RSA_NUM)", "amounts summed",
                    int(n) - int(n_stays), int(n))
        columns = "".join(f", v.{name} AS {name}" for name in MCO_VALO_COLUMNS) + ", v.n_rows IS NULL AS no_valo"
        return f" LEFT JOIN {agg} v ON {self._join(b, v, 'b', 'v', MCO_KEYS)}", columns

    def _stay_events(self, stays: str) -> str:
        """Stay events (with the valorisation amounts as extras when carried) and their main/linked diagnoses."""
        cat = CATEGORIES.index
        extras = {n: (n if n in MCO_VALO_COLUMNS else "NULL") for n in self.extra_names}
        stay_x = "".join(f", {v} AS {n}" for n, v in extras.items())
        null_x = "".join(", NULL" for _ in extras)
        return self.ts.temp_view(
            f"SELECT pid, t, e, CAST(NULL AS DOUBLE) AS value, 'MCO:stay' AS code, {cat('stay')} AS cat{stay_x} "
            f"FROM {stays} "
            f"UNION ALL SELECT pid, t, CAST(NULL AS DOUBLE), NULL, 'CIM10:' || dp, {cat('main_diagnosis')}{null_x} "
            f"FROM {stays} WHERE coalesce(dp, '') <> '' "
            f"UNION ALL SELECT pid, t, CAST(NULL AS DOUBLE), NULL, 'CIM10:' || dr, {cat('linked_diagnosis')}{null_x} "
            f"FROM {stays} WHERE coalesce(dr, '') <> ''", "mco_stay_events")

    def _associated_diagnoses(self, d: str, stays: str) -> str:
        self.ts.require(d, [*MCO_KEYS, "ASS_DGN"])
        return self._stay_detail(d, stays, "ASS_DGN", "CIM10:", "associated_diagnosis", None)

    def _acts(self, a: str, stays: str) -> str:
        cols = self.ts.require(a, [*MCO_KEYS, "CDC_ACT"])
        delay = "TRY_CAST(x.ENT_DAT_DEL AS DOUBLE)" if "ENT_DAT_DEL" in cols else "NULL"
        return self._stay_detail(a, stays, "CDC_ACT", "CCAM:", "hospital_act", delay)

    def _stay_detail(self, table: str, stays: str, column: str, prefix: str, category: str,
                     delay: str | None) -> str:
        """Rows of a stay detail table (D or A) joined to the kept stays; acts dated entry + ENT_DAT_DEL."""
        name = _mco_label(table)
        cond = " AND ".join(f"CAST(x.{k} AS VARCHAR) = CAST(s.{alias} AS VARCHAR)"
                            for k, alias in zip(MCO_KEYS, ("k1", "k2")))
        raw_delay = delay or "NULL"
        ok_delay = f"({raw_delay} >= 0 AND s.t + {raw_delay} <= coalesce(s.e, s.t))"
        stage = self.ts.temp_table(
            f"SELECT s.pid, s.t AS t0, s.e AS stay_end, {raw_delay} AS delay, {ok_delay} AS ok_delay, "
            f"upper(trim(CAST(x.{column} AS VARCHAR))) AS raw_code, s.pid IS NULL AS unmatched "
            f"FROM {self.ts.ref(table)} x LEFT JOIN {stays} s ON {cond}", "mco_detail")
        n, unmatched, empty, bad_delay = self.ts.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE unmatched), "
            f"count(*) FILTER (WHERE NOT unmatched AND coalesce(raw_code, '') = ''), "
            f"count(*) FILTER (WHERE NOT unmatched AND delay IS NOT NULL AND NOT coalesce(ok_delay, FALSE)) "
            f"FROM {stage}").fetchall()[0]
        self.report.note(f"{name} rows", n)
        self.decide(f"{name}: no kept stay on (ETA_NUM, RSA_NUM)", "dropped", unmatched, n,
                    "stay absent, without patient link or excluded")
        self.decide(f"{name}: {column} empty", "dropped", empty, n)
        if delay is not None:
            self.decide(f"{name}: ENT_DAT_DEL negative or beyond discharge", "dated at stay entry", bad_delay, n)
        time = "CASE WHEN coalesce(ok_delay, FALSE) THEN t0 + delay ELSE t0 END" if delay else "t0"
        return self.ts.temp_view(
            f"SELECT pid, {time} AS t, CAST(NULL AS DOUBLE) AS e, CAST(NULL AS DOUBLE) AS value, "
            f"{sql_literal(prefix)} || raw_code AS code, {CATEGORIES.index(category)} AS cat FROM {stage} "
            f"WHERE NOT unmatched AND coalesce(raw_code, '') <> ''", "mco_detail_events")


def _mco_label(name: str) -> str:
    """Display name of a PMSI MCO table key (``t_mcoaab`` -> ``T_MCOaaB``, ``t_mco20valo`` -> ``T_MCO20VALO``).

    Examples
    --------
    >>> _mco_label("t_mcoaab"), _mco_label("t_mco20valo")
    ('T_MCOaaB', 'T_MCO20VALO')
    """
    if name.endswith("valo"):
        return "T_MCO" + name[5:-4] + "VALO"
    return "T_MCO" + name[5:-1] + name[-1].upper()


def _coalesce(parts: list[str]) -> str:
    if not parts:
        return "NULL"
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


__all__ = ["SndsEventReader"]

"""Read SNDS extracts (DCIR, PMSI MCO, beneficiary referential, causes of death) into an EventLog.

Joins follow the SNDS documentation: DCIR detail tables (``ER_PHA_F`` dispensations, ``ER_CAM_F`` CCAM acts) join
the claims table ``ER_PRS_F`` on the nine DCIR keys; PMSI MCO stays ``T_MCOaaB`` join their patient link
``T_MCOaaC`` on ``ETA_NUM`` + ``RSA_NUM``, and the associated diagnoses ``T_MCOaaD`` and acts ``T_MCOaaA`` are joined
to the stays separately and stacked (never to each other, which would multiply rows). Everything runs in DuckDB
over the CSV/parquet files (out of core); only numeric arrays come back.

Codes carry a namespace prefix so that one vocabulary holds them all without collisions (ATC ``A01`` and ICD-10
``A01`` differ): ``ATC:``, ``CIP13:``, ``CCAM:``, ``CIM10:`` and ``MCO:stay``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from pathways.data import EventLog
from pathways.errors import PathwaysInputError
from pathways.io.tabular import (
    DEFAULT_DATE_RANGE, ReadReport, TableSet, build_eventlog, check_errors_arg, date_bounds, days_sql,
    duckdb_config, in_range_sql, sql_literal,
)

#: The nine keys joining DCIR detail tables to ER_PRS_F.
DCIR_KEYS = ("DCT_ORD_NUM", "FLX_DIS_DTD", "FLX_EMT_NUM", "FLX_EMT_ORD", "FLX_EMT_TYP", "FLX_TRT_DTD",
             "ORG_CLE_NUM", "PRS_ORD_NUM", "REM_TYP_AFF")
#: PMSI MCO keys between stays (B), patient link (C), associated diagnoses (D) and acts (A).
MCO_KEYS = ("ETA_NUM", "RSA_NUM")
#: Quality-check columns of T_MCOaaC: a stay is usable only when each present one equals '0'.
MCO_RET_COLUMNS = ("NIR_RET", "NAI_RET", "SEX_RET", "SEJ_RET", "FHO_RET", "PMS_RET", "DAT_RET", "COH_NAI_RET",
                   "COH_SEX_RET")
#: Dates the SNDS uses as placeholders (e.g. BEN_DCD_DTE = 1600-01-01 for a living beneficiary).
PLACEHOLDER_DATES = ("1600-01-01", "2999-12-31", "9999-12-31", "0001-01-01")
CATEGORIES = ("drug", "act", "stay", "main_diagnosis", "linked_diagnosis", "associated_diagnosis",
              "hospital_act", "death")
SOURCES = ("dcir_drugs", "dcir_acts", "mco", "deaths")
_SEX = {1: "M", 2: "F"}
_ATC_LEVELS = {1: 1, 2: 3, 3: 4, 4: 5, 5: 7}
_DT_FORMATS = ("%d%b%Y:%H:%M:%S", "%d%m%Y", "%Y%m%d", "%d/%m/%Y")


def read_snds(
    folder: Any,
    *,
    sources: Sequence[str] = SOURCES,
    tables: Mapping[str, Any] | None = None,
    cip_to_atc: pd.DataFrame | str | Path | None = None,
    cip_column: str = "PHA_CIP_C13",
    atc_column: str = "PHA_ATC_C07",
    atc_level: int | None = None,
    exclude_information_lines: bool = True,
    drop_nonpositive_quantity: bool = True,
    mco_exclude_errors: bool = True,
    window: tuple[str, str] | None = None,
    unknown_patients: str = "keep",
    events_after_death: str = "drop",
    death_events: bool = True,
    duplicates: str = "drop",
    date_range: tuple[str, str] | None = DEFAULT_DATE_RANGE,
    errors: str = "warn",
    return_report: bool = False,
    memory_limit: str | None = None,
    threads: int | None = None,
    join_partition_rows: int | None = 4_000_000,
) -> EventLog | tuple[EventLog, ReadReport]:
    """Read SNDS tables into an EventLog (times in days since 1970-01-01, patient id = ``BEN_NIR_PSA``).

    Parameters
    ----------
    folder : folder searched recursively for ``ER_PRS_F``, ``ER_PHA_F``, ``ER_CAM_F``, ``T_MCOaaB/C/D/A`` (the
        ``aa`` may be a two-digit year: all years are stacked), ``IR_BEN_R``, ``KI_CCI_R`` as CSV or parquet; or a
        DuckDB database / connection holding them.
    sources : event sources among ``dcir_drugs`` (ER_PHA_F), ``dcir_acts`` (ER_CAM_F), ``mco`` (stays,
        diagnoses, acts) and ``deaths`` (death events). Absent tables of a requested source raise.
    tables : ``name -> path or DataFrame`` overriding or adding tables.
    cip_to_atc : ``IR_PHA_R``-style mapping (DataFrame, CSV or parquet path) with columns ``cip_column`` (CIP13)
        and ``atc_column`` (ATC); drugs become ``ATC:<code>``, unmapped CIP13 stay ``CIP13:<code>`` (counted).
    atc_level : truncate ATC codes to a level (1..5; 5 = full 7-character substance).
    exclude_information_lines : drop ER_PRS_F lines with ``DPN_QLF = 71`` ("for information" lines that
        duplicate a payment, the SNDS community rule).
    drop_nonpositive_quantity : drop dispensations with ``PHA_ACT_QSN <= 0`` (cancellations, regularisations).
    mco_exclude_errors : drop stays in error GHMs (``GRG_GHM`` starting with ``90``) and stays whose
        ``T_MCOaaC`` quality checks (``NIR_RET``, ``SEJ_RET``, ... ) are not ``'0'``.
    window : study window ``(start, end)`` dates: events outside are dropped, patients' windows set to it
        (ended at death when earlier).
    unknown_patients : patients with events but absent from IR_BEN_R: ``"keep"`` (unknown birth/sex) or
        ``"drop"``.
    events_after_death : ``"drop"`` (default) or ``"keep"``.
    death_events : add a ``death`` event at each death date (``CIM10:<cause>`` when KI_CCI_R gives one).
    duplicates : events identical in every field: ``"drop"`` (duplicate claim lines), ``"keep"`` or ``"raise"``.
    date_range : plausible dates; others (and :data:`PLACEHOLDER_DATES`) are invalid.
    errors : ``"warn"`` (counted decisions) or ``"raise"`` (any drop or repair raises).
    memory_limit, threads : DuckDB ``memory_limit`` (e.g. ``"2GB"``; joins and sorts spill to disk beyond it) and
        thread count for connections the reader opens (default: DuckDB's, 80 % of RAM and every core).
    join_partition_rows : DCIR joins run by ranges of ``FLX_DIS_DTD`` (the flux month, one of the nine keys, so
        matching lines always fall in the same range) holding about this many ``ER_PRS_F`` rows each: the join's
        hash table then holds one range at a time (~120 bytes per row) instead of the whole table. Each range
        rescans the tables (row groups of other months are skipped when the files are sorted or partitioned by
        flux, as SNDS extracts usually are). ``None``: one join.
    return_report : also return the :class:`~pathways.io.tabular.ReadReport`.

    Returns
    -------
    EventLog (and ReadReport); the report is also in ``log.patients.attrs["read_report"]``. Categories: drug,
    act (DCIR CCAM), stay, main_diagnosis, linked_diagnosis, associated_diagnosis, hospital_act, death.
    Patients carry ``birth`` (year + month, day 1), ``sex``, ``death``, ``death_cause`` and ``BEN_RNG_GEM``.
    """
    check_errors_arg(errors)
    _check_choice("unknown_patients", unknown_patients, ("keep", "drop"))
    _check_choice("events_after_death", events_after_death, ("keep", "drop"))
    bad_sources = [s for s in sources if s not in SOURCES]
    if bad_sources:
        raise PathwaysInputError(f"sources: unknown source(s) {bad_sources}; choose among {list(SOURCES)}")
    if atc_level is not None and atc_level not in _ATC_LEVELS:
        raise PathwaysInputError(f"atc_level: expected one of {sorted(_ATC_LEVELS)}, got {atc_level!r}")
    if join_partition_rows is not None and int(join_partition_rows) < 1:
        raise PathwaysInputError(f"join_partition_rows: expected >= 1 or None, got {join_partition_rows!r}")
    report = ReadReport("read_snds")
    with TableSet(folder, tables=tables, config=duckdb_config(memory_limit, threads)) as ts:
        reader = _SndsReader(ts, report, errors, date_bounds(date_range), join_partition_rows)
        if "dcir_drugs" in sources:
            reader.dcir_drugs(exclude_information_lines, drop_nonpositive_quantity,
                              _load_mapping(cip_to_atc, cip_column, atc_column), atc_level)
        if "dcir_acts" in sources:
            reader.dcir_acts(exclude_information_lines)
        if "mco" in sources:
            reader.mco(mco_exclude_errors)
        patients = reader.patients()
        if "deaths" in sources and death_events:
            reader.death_events(patients)
        if reader.events is None:
            raise PathwaysInputError("sources: no event source selected")
        patients = reader.complete_patients(reader.events, patients, unknown_patients)
        filters = _filters(patients, window, events_after_death, report, errors)
        if window is not None:
            patients = _apply_window(patients, window, events_after_death)
        log = build_eventlog(ts, reader.events, patients, CATEGORIES, report, duplicates, errors, filters,
                             pid_dictionary=reader.pids)
    return (log, report) if return_report else log


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise PathwaysInputError(f"{name}: expected one of {allowed}, got {value!r}")


def _load_mapping(mapping: pd.DataFrame | str | Path | None, cip: str, atc: str) -> pd.DataFrame | None:
    """CIP13 -> ATC mapping as a two-column text DataFrame (cip, atc), one row per CIP13."""
    if mapping is None:
        return None
    if not isinstance(mapping, pd.DataFrame):
        path = Path(mapping)
        if not path.exists():
            raise PathwaysInputError(f"cip_to_atc: file not found: {str(path)!r}")
        if path.suffix.lower() == ".parquet":
            mapping = pd.read_parquet(path)
        else:
            with open(path, encoding="utf-8", errors="replace") as fh:
                head = fh.readline()
            mapping = pd.read_csv(path, sep=";" if head.count(";") > head.count(",") else ",", dtype=str)
    missing = [c for c in (cip, atc) if c not in mapping.columns]
    if missing:
        raise PathwaysInputError(f"cip_to_atc: missing column(s) {missing}; available: {list(mapping.columns)[:20]}")
    out = pd.DataFrame({"cip": mapping[cip].astype("string").str.strip(),
                        "atc": mapping[atc].astype("string").str.strip().str.upper()})
    out = out.dropna()
    out = out[(out["cip"] != "") & (out["atc"] != "")]
    return out.drop_duplicates("cip", keep="first").reset_index(drop=True)


class _SndsReader:
    """The steps of :func:`read_snds`; each builds a DuckDB temp table and records its counted decisions."""

    def __init__(self, ts: TableSet, report: ReadReport, errors: str, bounds: tuple[float, float],
                 partition_rows: int | None = None):
        self.ts, self.report, self.errors, self.bounds = ts, report, errors, bounds
        self.partition_rows = partition_rows
        self._placeholder_days = [_days_since_epoch(d) for d in PLACEHOLDER_DATES]
        #: the one events table every source appends to (pid, t, e, value, code, cat); None until the first
        self.events: str | None = None
        #: patient id dictionary (pid text, id integer) for the integer ``pid`` of :attr:`events`
        self.pids: str | None = None

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

    def emit(self, query: str, drop: bool = True, with_ids: bool = False) -> None:
        """Append a source's events to :attr:`events`, then (``drop``) drop the source's staging tables.

        One table filled in place: a union of the sources built at the end would hold every event twice. Patient
        ids are stored as integers of the :attr:`pids` dictionary (4 bytes instead of a 17-character string
        per event); ids not yet in it are added first. ``with_ids``: the query already gives ``pid_id`` (the
        dictionary id, mapped in its own join) and ``pid`` only where ``pid_id`` is missing.
        """
        if self.pids is None:
            self.seed_patient_ids()
        pid_id = "CAST(pid_id AS INTEGER)" if with_ids else "CAST(NULL AS INTEGER)"
        rows = self.ts.temp_view(
            f"SELECT {pid_id} AS pid_id, CAST(pid AS VARCHAR) AS pid, CAST(t AS DOUBLE) AS t, "
            f"CAST(e AS DOUBLE) AS e, CAST(value AS DOUBLE) AS value, CAST(code AS VARCHAR) AS code, "
            f"CAST(cat AS INTEGER) AS cat FROM {query}", "emit")
        n_known = self.ts.scalar(f"SELECT count(*) FROM {self.pids}")
        self.ts.con.execute(
            f"INSERT INTO {self.pids} SELECT pid, {n_known} + row_number() OVER () - 1 FROM "
            f"(SELECT DISTINCT r.pid FROM {rows} r ANTI JOIN {self.pids} d ON r.pid = d.pid "
            f"WHERE r.pid_id IS NULL AND r.pid IS NOT NULL)")
        encoded = (f"SELECT coalesce(r.pid_id, d.id) AS pid, r.t, r.e, r.value, r.code, r.cat FROM {rows} r "
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
                   keep: str, label: str) -> list[int]:
        """Join ``detail`` to ER_PRS_F on the nine keys range by range; append kept rows; return summed counts.

        ``columns`` (the staged columns, over aliases ``alias`` and ``p``), ``counts`` (SQL aggregates over the
        stage) and ``keep`` (the SELECT of kept events from the stage, with ``{stage}`` for its name).
        """
        cond = self._join(detail.upper(), "ER_PRS_F", alias, "p", DCIR_KEYS)
        if self.pids is None:
            self.seed_patient_ids()
        # Patient ids are mapped to the dictionary in the join itself; the text stays only for unknown ones.
        ids = (f"d.id AS pid_id, CASE WHEN d.id IS NULL THEN CAST(p.BEN_NIR_PSA AS VARCHAR) END AS pid, "
               f"p.BEN_NIR_PSA IS NULL AS unmatched")
        id_join = f"LEFT JOIN {self.pids} d ON d.pid = CAST(p.BEN_NIR_PSA AS VARCHAR)"
        totals = [0] * len(counts)
        for where_h, where_p in self._flux_ranges(detail.upper()):
            stage = self.ts.temp_table(
                f"SELECT {ids}, {columns} FROM (SELECT * FROM {self.ts.ref(detail)} h WHERE {where_h}) {alias} "
                f"LEFT JOIN (SELECT * FROM {self.ts.ref('ER_PRS_F')} p WHERE {where_p}) p ON {cond} {extra_join} "
                f"{id_join}", label)
            row = self.ts.con.execute(f"SELECT {', '.join(counts)} FROM {stage}").fetchall()[0]
            totals = [t + int(c or 0) for t, c in zip(totals, row)]
            self.emit(f"({keep.format(stage=stage)})", with_ids=True)
        return totals

    def dcir_drugs(self, exclude_info: bool, drop_nonpositive: bool, mapping: pd.DataFrame | None,
                   atc_level: int | None) -> None:
        """Dispensations: ER_PHA_F joined to ER_PRS_F on the nine DCIR keys."""
        pha_cols = self.ts.require("ER_PHA_F", ["PHA_PRS_C13", *DCIR_KEYS])
        info = f"NOT ({self._prs_filter(exclude_info)})"
        qty = "TRY_CAST(h.PHA_ACT_QSN AS DOUBLE)" if "PHA_ACT_QSN" in pha_cols else "NULL"
        cip = "CAST(h.PHA_PRS_C13 AS VARCHAR)"
        code = f"'CIP13:' || {cip}"
        join_map = ""
        if mapping is not None:
            self.ts.con.register("pw_cip_atc", mapping)
            atc = "m.atc" if atc_level is None else f"left(m.atc, {_ATC_LEVELS[atc_level]})"
            code = f"CASE WHEN m.atc IS NULL THEN {code} ELSE 'ATC:' || {atc} END"
            join_map = f"LEFT JOIN pw_cip_atc m ON m.cip = {cip}"
        columns = (f"{days_sql('p.EXE_SOI_DTD', _DT_FORMATS)} AS t, {qty} AS value, "
                   f"{code} AS code, {info} AS info, "
                   f"{'m.atc IS NULL' if mapping is not None else 'FALSE'} AS unmapped")
        valid = in_range_sql('t', self.bounds)
        pos = "coalesce(value, 1) > 0" if drop_nonpositive else "TRUE"
        try:
            n, unmatched, info, bad_date, nonpos, unmapped = self._dcir_join(
                "er_pha_f", "h", columns, join_map,
                ["count(*)", "count(*) FILTER (WHERE unmatched)", "count(*) FILTER (WHERE NOT unmatched AND info)",
                 f"count(*) FILTER (WHERE NOT unmatched AND NOT info AND (t IS NULL OR NOT ({valid})))",
                 "count(*) FILTER (WHERE NOT unmatched AND NOT info AND value <= 0)",
                 "count(*) FILTER (WHERE NOT unmatched AND unmapped)"],
                f"SELECT pid_id, pid, t, NULL AS e, value, code, {CATEGORIES.index('drug')} AS cat FROM {{stage}} "
                f"WHERE NOT unmatched AND NOT info AND t IS NOT NULL AND {valid} AND {pos}", "dcir_pha")
        finally:
            if mapping is not None:
                self.ts.con.unregister("pw_cip_atc")
        self.report.note("ER_PHA_F rows", n)
        self.decide("ER_PHA_F: no matching ER_PRS_F line on the 9 DCIR keys", "dropped", unmatched, n)
        self.rule("ER_PHA_F: information line (DPN_QLF = 71)", "dropped", info, n)
        self.decide("ER_PHA_F: EXE_SOI_DTD missing, invalid or out of date_range", "dropped", bad_date, n)
        self.rule("ER_PHA_F: PHA_ACT_QSN <= 0", "dropped" if drop_nonpositive else "kept", nonpos, n)
        if mapping is not None:
            self.decide("ER_PHA_F: CIP13 absent from cip_to_atc", "kept as CIP13 code", unmapped, n)

    def dcir_acts(self, exclude_info: bool) -> None:
        """CCAM acts: ER_CAM_F joined to ER_PRS_F on the nine DCIR keys."""
        self.ts.require("ER_CAM_F", ["CAM_PRS_IDE", *DCIR_KEYS])
        info = f"NOT ({self._prs_filter(exclude_info)})"
        columns = (f"{days_sql('p.EXE_SOI_DTD', _DT_FORMATS)} AS t, "
                   f"'CCAM:' || upper(trim(CAST(c.CAM_PRS_IDE AS VARCHAR))) AS code, {info} AS info, "
                   f"coalesce(trim(CAST(c.CAM_PRS_IDE AS VARCHAR)), '') = '' AS no_code")
        valid = in_range_sql('t', self.bounds)
        n, unmatched, info, no_code, bad_date = self._dcir_join(
            "er_cam_f", "c", columns, "",
            ["count(*)", "count(*) FILTER (WHERE unmatched)", "count(*) FILTER (WHERE NOT unmatched AND info)",
             "count(*) FILTER (WHERE NOT unmatched AND NOT info AND no_code)",
             f"count(*) FILTER (WHERE NOT unmatched AND NOT info AND NOT no_code AND (t IS NULL OR NOT ({valid})))"],
            f"SELECT pid_id, pid, t, NULL AS e, NULL AS value, code, {CATEGORIES.index('act')} AS cat FROM {{stage}} "
            f"WHERE NOT unmatched AND NOT info AND NOT no_code AND t IS NOT NULL AND {valid}", "dcir_cam")
        self.report.note("ER_CAM_F rows", n)
        self.decide("ER_CAM_F: no matching ER_PRS_F line on the 9 DCIR keys", "dropped", unmatched, n)
        self.rule("ER_CAM_F: information line (DPN_QLF = 71)", "dropped", info, n)
        self.decide("ER_CAM_F: CAM_PRS_IDE empty", "dropped", no_code, n)
        self.decide("ER_CAM_F: EXE_SOI_DTD missing, invalid or out of date_range", "dropped", bad_date, n)

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
            for part in parts:  # the parts share the year's stays: staging is dropped after the last one
                self.emit(part, drop=False)
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
        start = _coalesce([days_sql(f"c.{col}", _DT_FORMATS, pad) for col, pad in
                           (("EXE_SOI_DTD", None), ("ENT_DAT", 8)) if col in ccols])
        end = _coalesce([days_sql(f"c.{col}", _DT_FORMATS, pad) for col, pad in
                         (("EXE_SOI_DTF", None), ("SOR_DAT", 8)) if col in ccols])
        rets = [col for col in MCO_RET_COLUMNS if col in ccols]
        ret_bad = " OR ".join(f"coalesce(trim(CAST(c.{col} AS VARCHAR)), '0') <> '0'" for col in rets) or "FALSE"
        ghm_bad = "left(CAST(b.GRG_GHM AS VARCHAR), 2) = '90'" if "GRG_GHM" in bcols else "FALSE"
        dgn_rel = "b.DGN_REL" if "DGN_REL" in bcols else "NULL"
        stage = self.ts.temp_table(
            f"SELECT c.NIR_ANO_17 AS pid, b.ETA_NUM AS k1, b.RSA_NUM AS k2, {self._valid_date(start)} AS t, "
            f"{self._valid_date(end)} AS e, upper(trim(CAST(b.DGN_PAL AS VARCHAR))) AS dp, "
            f"upper(trim(CAST({dgn_rel} AS VARCHAR))) AS dr, c.NIR_ANO_17 IS NULL AS unmatched, "
            f"({ret_bad}) AS ret_bad, ({ghm_bad}) AS ghm_bad FROM {self.ts.ref(b)} b LEFT JOIN {c_dedup} c "
            f"ON {self._join(b, c, 'b', 'c', MCO_KEYS)}", "mco_stage")
        n, unmatched, ghm, ret, no_start, reversed_ = self.ts.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE unmatched), count(*) FILTER (WHERE NOT unmatched AND ghm_bad), "
            f"count(*) FILTER (WHERE NOT unmatched AND NOT ghm_bad AND ret_bad), "
            f"count(*) FILTER (WHERE NOT unmatched AND t IS NULL), count(*) FILTER (WHERE e < t) FROM {stage}"
        ).fetchall()[0]
        self.report.note(f"{name} rows", n)
        self.decide(f"{name}: no patient link in {c_name} (ETA_NUM, RSA_NUM)", "dropped", unmatched, n)
        errs = "dropped" if exclude_errors else "kept"
        self.rule(f"{name}: error GHM (GRG_GHM 90*)", errs, ghm, n)
        self.rule(f"{name}: quality check *_RET not '0' in {c_name}", errs, ret, n)
        self.decide(f"{name}: entry date missing, invalid or out of date_range", "dropped", no_start, n)
        self.decide(f"{name}: discharge before entry", "end = entry", reversed_, n)
        quality = "NOT ghm_bad AND NOT ret_bad" if exclude_errors else "TRUE"
        return self.ts.temp_table(
            f"SELECT pid, k1, k2, t, CASE WHEN e < t THEN t ELSE e END AS e, dp, dr FROM {stage} "
            f"WHERE NOT unmatched AND t IS NOT NULL AND {quality}", "mco_stays")

    def _stay_events(self, stays: str) -> str:
        cat = CATEGORIES.index
        return self.ts.temp_view(
            f"SELECT pid, t, e, CAST(NULL AS DOUBLE) AS value, 'MCO:stay' AS code, {cat('stay')} AS cat FROM {stays} "
            f"UNION ALL SELECT pid, t, CAST(NULL AS DOUBLE), NULL, 'CIM10:' || dp, {cat('main_diagnosis')} "
            f"FROM {stays} WHERE coalesce(dp, '') <> '' "
            f"UNION ALL SELECT pid, t, CAST(NULL AS DOUBLE), NULL, 'CIM10:' || dr, {cat('linked_diagnosis')} "
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

    # -- patients -------------------------------------------------------------------------------------------------
    def patients(self) -> pd.DataFrame:
        """IR_BEN_R (+ KI_CCI_R) -> one row per BEN_NIR_PSA: birth, sex, death, death_cause, BEN_RNG_GEM."""
        if not self.ts.has("IR_BEN_R"):
            self.report.note("IR_BEN_R absent: birth, sex and death unknown", 0)
            return _empty_patients()
        cols = self.ts.require("IR_BEN_R", ["BEN_NIR_PSA"])
        opt = {c: (c if c in cols else "NULL") for c in ("BEN_RNG_GEM", "BEN_NAI_ANN", "BEN_NAI_MOI",
                                                          "BEN_SEX_COD", "BEN_DCD_DTE", "BEN_IDT_ANO")}
        frame = self.ts.con.execute(
            f"SELECT CAST(BEN_NIR_PSA AS VARCHAR) AS pid, TRY_CAST({opt['BEN_RNG_GEM']} AS INTEGER) AS rng, "
            f"TRY_CAST({opt['BEN_NAI_ANN']} AS INTEGER) AS y, TRY_CAST({opt['BEN_NAI_MOI']} AS INTEGER) AS m, "
            f"TRY_CAST({opt['BEN_SEX_COD']} AS INTEGER) AS sex, {days_sql(opt['BEN_DCD_DTE'], _DT_FORMATS)} AS dcd, "
            f"CAST({opt['BEN_IDT_ANO']} AS VARCHAR) AS idt FROM {self.ts.ref('IR_BEN_R')}").df()
        n = len(frame)
        self.report.note("IR_BEN_R rows", n)
        no_id = frame["pid"].isna().to_numpy()
        self.decide("IR_BEN_R: BEN_NIR_PSA missing", "dropped", int(no_id.sum()), n)
        frame = frame[~no_id].sort_values(["pid", "rng"], kind="stable", na_position="last")
        dup = frame["pid"].duplicated().to_numpy()
        self.decide("IR_BEN_R: several rows per BEN_NIR_PSA", "lowest BEN_RNG_GEM kept", int(dup.sum()), n)
        frame = frame[~dup].reset_index(drop=True)
        sex = frame["sex"].map(_SEX)
        odd = frame["sex"].notna() & ~frame["sex"].isin([0, 1, 2, 9])
        self.decide("IR_BEN_R: BEN_SEX_COD outside {1, 2, 0, 9}", "sex unknown", int(odd.sum()), len(frame))
        birth = _birth(frame["y"], frame["m"], self.bounds)
        self.decide("IR_BEN_R: BEN_NAI_ANN invalid or out of date_range", "birth unknown",
                    int((frame["y"].notna().to_numpy() & np.isnan(birth)).sum()), len(frame))
        death = frame["dcd"].to_numpy(dtype=float, na_value=np.nan)
        placeholder = np.isin(death, self._placeholder_days)
        bad_death = ~placeholder & np.isfinite(death) & ((death < self.bounds[0]) | (death > self.bounds[1]))
        self.report.note("IR_BEN_R: BEN_DCD_DTE placeholder (alive)", int(placeholder.sum()))
        self.decide("IR_BEN_R: BEN_DCD_DTE out of date_range", "death unknown", int(bad_death.sum()), len(frame))
        death = np.where(placeholder | bad_death, np.nan, death)
        out = pd.DataFrame({"patient_id": frame["pid"].to_numpy(object), "birth": birth,
                            "sex": pd.Categorical(sex, categories=["F", "M"]), "death": death,
                            "BEN_RNG_GEM": frame["rng"].to_numpy(), "_idt": frame["idt"].to_numpy(object)})
        return self._causes_of_death(out)

    def _causes_of_death(self, patients: pd.DataFrame) -> pd.DataFrame:
        patients["death_cause"] = pd.Series([None] * len(patients), dtype=object)
        if not self.ts.has("KI_CCI_R"):
            self.report.note("KI_CCI_R absent: no causes of death", 0)
            return patients.drop(columns="_idt")
        cols = self.ts.require("KI_CCI_R", ["BEN_IDT_ANO"])
        cause = "upper(trim(CAST(DCD_CIM_COD AS VARCHAR)))" if "DCD_CIM_COD" in cols else "NULL"
        date = days_sql("BEN_DCD_DTE", _DT_FORMATS) if "BEN_DCD_DTE" in cols else "NULL"
        cci = self.ts.con.execute(
            f"SELECT CAST(BEN_IDT_ANO AS VARCHAR) AS idt, {date} AS dcd, {cause} AS cause "
            f"FROM {self.ts.ref('KI_CCI_R')}").df()
        n = len(cci)
        self.report.note("KI_CCI_R rows", n)
        pos = pd.Index(patients["_idt"]).get_indexer(cci["idt"]) if patients["_idt"].notna().any() else \
            np.full(n, -1)
        self.decide("KI_CCI_R: BEN_IDT_ANO absent from IR_BEN_R", "dropped", int((pos < 0).sum()), n)
        cci = cci.assign(pos=pos)[pos >= 0]
        bad = cci["dcd"].notna() & ~cci["dcd"].between(*self.bounds)
        self.decide("KI_CCI_R: BEN_DCD_DTE out of date_range", "date ignored", int(bad.sum()), n)
        cci.loc[bad, "dcd"] = np.nan
        cci = cci.sort_values(["pos", "dcd"], kind="stable", na_position="last")
        dup = cci["pos"].duplicated().to_numpy()
        self.decide("KI_CCI_R: several certificates per beneficiary", "earliest kept", int(dup.sum()), n)
        cci = cci[~dup]
        rows = cci["pos"].to_numpy()
        patients.loc[rows, "death_cause"] = cci["cause"].to_numpy(object)
        death = patients["death"].to_numpy(float).copy()
        fill = np.isnan(death[rows]) & cci["dcd"].notna().to_numpy()
        self.decide("KI_CCI_R: death date missing in IR_BEN_R", "taken from KI_CCI_R", int(fill.sum()), n)
        death[rows[fill]] = cci["dcd"].to_numpy(float)[fill]
        patients["death"] = death
        return patients.drop(columns="_idt")

    def death_events(self, patients: pd.DataFrame) -> None:
        """One death event per known death (code CIM10:<cause> or DEATH)."""
        dead = patients[patients["death"].notna()]
        frame = pd.DataFrame({"pid": dead["patient_id"].astype(str).to_numpy(),
                              "t": dead["death"].to_numpy(float),
                              "code": np.where(dead["death_cause"].notna(), "CIM10:" + dead["death_cause"].astype(str),
                                               "DEATH")})
        self.ts.con.register("pw_deaths", frame)
        try:
            self.emit(f"(SELECT pid, t, NULL AS e, NULL AS value, code, {CATEGORIES.index('death')} AS cat "
                      f"FROM pw_deaths)")
        finally:
            self.ts.con.unregister("pw_deaths")

    def complete_patients(self, events: str, patients: pd.DataFrame, rule: str) -> pd.DataFrame:
        """Add patients seen in events but absent from IR_BEN_R (rule 'keep'); sort by patient id."""
        # Arrow-registered ids: DuckDB hashes them without Python string objects. The id dictionary has one row
        # per patient with events: the unknown ones are found there, not among the events.
        self.ts.con.register("pw_known", pa.table({"pid": pa.array(patients["patient_id"].astype(str), pa.string())}))
        try:
            unknown = self.ts.temp_table(f"SELECT d.pid, d.id FROM {self.pids} d ANTI JOIN pw_known k "
                                         f"ON d.pid = k.pid", "unknown")
        finally:
            self.ts.con.unregister("pw_known")
        n = self.ts.scalar(f"SELECT count(*) FROM {events}")
        n_unknown = self.ts.scalar(f"SELECT count(*) FROM {events} e SEMI JOIN {unknown} u ON e.pid = u.id")
        extra = sorted(r[0] for r in self.ts.con.execute(f"SELECT pid FROM {unknown}").fetchall())
        decision = "kept, birth/sex unknown" if rule == "keep" else "dropped"
        self.decide("events of patients absent from IR_BEN_R", decision, n_unknown, n,
                    f"{len(extra)} patients")
        if rule == "drop":
            self.events = self.ts.temp_table(f"SELECT e.* FROM {events} e ANTI JOIN {unknown} u ON e.pid = u.id",
                                             "snds_known")
        elif extra:
            add = pd.DataFrame({"patient_id": np.asarray(extra, dtype=object), "birth": np.nan,
                                "sex": pd.Categorical([None] * len(extra), categories=["F", "M"]),
                                "death": np.nan, "BEN_RNG_GEM": pd.NA, "death_cause": None})
            patients = pd.concat([patients, add], ignore_index=True)
            patients["sex"] = pd.Categorical(patients["sex"], categories=["F", "M"])
        return patients.sort_values("patient_id", kind="stable").reset_index(drop=True)


def _days_since_epoch(date: str) -> float:
    """A date (even outside pandas' nanosecond range, e.g. 1600-01-01) as days since 1970-01-01."""
    return float((np.datetime64(date, "D") - np.datetime64("1970-01-01", "D")).astype(np.int64))


def _mco_label(name: str) -> str:
    """Display name of a PMSI MCO table key (``t_mcoaab`` -> ``T_MCOaaB``)."""
    return "T_MCO" + name[5:-1] + name[-1].upper()


def _coalesce(parts: list[str]) -> str:
    if not parts:
        return "NULL"
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


def _birth(year: pd.Series, month: pd.Series, bounds: tuple[float, float]) -> np.ndarray:
    """Birth (days since 1970) from year and month (day 1; missing or invalid month -> January)."""
    m = month.where(month.between(1, 12), 1).fillna(1)
    stamps = pd.to_datetime(pd.DataFrame({"year": year, "month": m, "day": 1}), errors="coerce")
    days = ((stamps - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).to_numpy(dtype=float, na_value=np.nan)
    days = days.copy()
    days[(days < bounds[0]) | (days > bounds[1])] = np.nan
    return days


def _empty_patients() -> pd.DataFrame:
    return pd.DataFrame({"patient_id": pd.Series([], dtype=object), "birth": pd.Series([], dtype=float),
                         "sex": pd.Categorical([], categories=["F", "M"]), "death": pd.Series([], dtype=float),
                         "BEN_RNG_GEM": pd.Series([], dtype=object), "death_cause": pd.Series([], dtype=object)})


def _filters(patients: pd.DataFrame, window: tuple[str, str] | None, after_death: str, report: ReadReport,
             errors: str) -> list[Callable[[np.ndarray, np.ndarray], tuple[str, str, np.ndarray]]]:
    """Numpy filters applied once patient indices are known: study window, events after death."""
    out = []
    if window is not None:
        lo, hi = date_bounds(window)
        out.append(lambda p, t: ("events outside the study window", "dropped", (t < lo) | (t > hi)))
    death = patients["death"].to_numpy(float)
    if after_death == "drop":
        out.append(lambda p, t: ("events after death", "dropped", t > np.nan_to_num(death[p], nan=np.inf)))
    else:
        report.note("events after death kept (events_after_death='keep')", 0)
    return out


def _apply_window(patients: pd.DataFrame, window: tuple[str, str], after_death: str) -> pd.DataFrame:
    """Observation window = study window, ended at death (unless events after death are kept)."""
    lo, hi = date_bounds(window)
    death = patients["death"].to_numpy(float)
    if after_death == "keep":
        death = np.full(len(patients), np.nan)
    out = patients.copy()
    out["start"] = lo
    out["end"] = np.fmin(hi, np.where(death >= lo, death, np.inf))
    return out


__all__ = ["read_snds", "DCIR_KEYS", "MCO_KEYS", "CATEGORIES", "SOURCES", "PLACEHOLDER_DATES"]

"""The ``dcir_services`` source of :func:`~pathways.io.snds.read_snds` (DuckDB engine): ER_PRS_F lines with no
detail row (no ER_PHA_F dispensation, no ER_CAM_F act on the nine DCIR keys) as events ``PRS:<PRS_NAT_REF>``:
consultations, visits, nursing, biology, pharmacy dispensing fees, ... Lines that have a detail row are the
``dcir_drugs`` / ``dcir_acts`` events (their amounts go there) and are never read twice."""
from __future__ import annotations

from pathways.io.snds_events import SndsEventReader
from pathways.io.snds_decisions import record_services
from pathways.io.snds_tables import CATEGORIES, DCIR_KEYS, DT_FORMATS, PROVIDER_COLUMNS, SERVICE_DETAILS
from pathways.io.tabular import days_sql, in_range_sql


class SndsServiceEvents(SndsEventReader):
    """Adds :meth:`dcir_services` to the DCIR and PMSI sources."""

    def _detail_flag(self) -> str:
        """SQL over ER_PRS_F (alias ``p``): the line has a row in a present detail table (absent ones noted)."""
        parts = []
        for detail in SERVICE_DETAILS:
            if not self.ts.has(detail):
                self.report.note(f"{detail} absent: no ER_PRS_F line is taken as its detail", 0)
                continue
            self.ts.require(detail, DCIR_KEYS)
            cond = self._join(detail, "ER_PRS_F", "h", "p", DCIR_KEYS)
            parts.append(f"EXISTS (SELECT 1 FROM {self.ts.ref(detail)} h WHERE {cond})")
        return " OR ".join(parts) or "FALSE"

    def dcir_services(self, exclude_info: bool, drop_nonpositive: bool) -> None:
        """ER_PRS_F lines without a detail row: code ``PRS:<PRS_NAT_REF>``, time ``EXE_SOI_DTD``, value
        ``PRS_ACT_QTE`` (NULL when absent), the DCIR extras; information lines, regularisations and invalid dates
        as for dispensations (see :meth:`~pathways.io.snds_events.SndsEventReader.dcir_drugs`)."""
        cols = self.ts.require("ER_PRS_F", ["PRS_NAT_REF"])
        info = f"NOT ({self._prs_filter(exclude_info)})"
        if self.pids is None:
            self.seed_patient_ids()
        nat = "p.PRS_NAT_REF"
        if cols["PRS_NAT_REF"] in ("DOUBLE", "FLOAT", "REAL") or cols["PRS_NAT_REF"].startswith("DECIMAL"):
            nat = "TRY_CAST(p.PRS_NAT_REF AS BIGINT)"  # a code read as a number with missing values: 1111.0
        raw = f"nullif(upper(trim(CAST({nat} AS VARCHAR))), '')"
        qty = "TRY_CAST(p.PRS_ACT_QTE AS DOUBLE)" if "PRS_ACT_QTE" in cols else "CAST(NULL AS DOUBLE)"
        stage = self.ts.temp_table(
            f"SELECT d.id AS pid_id, CASE WHEN d.id IS NULL THEN CAST(p.BEN_NIR_PSA AS VARCHAR) END AS pid, "
            f"coalesce(trim(CAST(p.BEN_NIR_PSA AS VARCHAR)), '') = '' AS no_pid, {info} AS info, "
            f"({self._detail_flag()}) AS detail, {days_sql('p.EXE_SOI_DTD', DT_FORMATS)} AS t, {qty} AS value, "
            f"'PRS:' || {raw} AS code, {raw} IS NULL AS no_code{self._provider_sql()} "
            f"FROM {self.ts.ref('ER_PRS_F')} p LEFT JOIN {self.pids} d ON d.pid = CAST(p.BEN_NIR_PSA AS VARCHAR)",
            "dcir_prs")
        valid = in_range_sql("t", self.bounds)
        used = "NOT detail AND NOT no_pid AND NOT info"
        n, detail, no_pid, n_info, no_code, bad_date, nonpos = self.ts.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE detail), count(*) FILTER (WHERE NOT detail AND no_pid), "
            f"count(*) FILTER (WHERE NOT detail AND NOT no_pid AND info), "
            f"count(*) FILTER (WHERE {used} AND no_code), "
            f"count(*) FILTER (WHERE {used} AND NOT no_code AND (t IS NULL OR NOT ({valid}))), "
            f"count(*) FILTER (WHERE {used} AND NOT no_code AND t IS NOT NULL AND {valid} AND value <= 0) "
            f"FROM {stage}").fetchall()[0]
        regularise = drop_nonpositive and bool(self.extra_names)
        record_services(self, n, detail, no_pid, n_info, no_code, bad_date, nonpos, regularise=regularise,
                        drop_nonpositive=drop_nonpositive)
        pos = "coalesce(value, 1) > 0" if drop_nonpositive and not regularise else "TRUE"
        more = "".join(f", {name}" for name in self.extra_names)
        keep = (f"SELECT pid_id, pid, t, NULL AS e, value, code, {CATEGORIES.index('service')} AS cat{more} "
                f"FROM {stage} WHERE {used} AND NOT no_code AND t IS NOT NULL AND {valid} AND {pos}")
        if not regularise:
            self.emit(f"({keep})", with_ids=True, with_extras=bool(self.extra_names))
            return
        rows = self.ts.temp_table(
            "SELECT CAST(pid_id AS INTEGER) AS pid_id, CAST(pid AS VARCHAR) AS pid, CAST(t AS DOUBLE) AS t, "
            "CAST(e AS DOUBLE) AS e, CAST(value AS DOUBLE) AS value, CAST(code AS VARCHAR) AS code, "
            "CAST(cat AS INTEGER) AS cat" + "".join(f", CAST({c} AS {PROVIDER_COLUMNS[c][1]}) AS {c}"
                                                    for c in self.extra_names) + f" FROM ({keep})", "dcir_prs_rows")
        self._regularised(rows, n, "ER_PRS_F", "PRS_ACT_QTE", "service")


__all__ = ["SndsServiceEvents"]

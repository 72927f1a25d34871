"""The event sources of the Spark engine of ``read_snds``: DCIR dispensations and acts joined to ER_PRS_F on the
nine DCIR keys, PMSI MCO stays with their diagnoses and acts, stacked. Same rows, codes, times and counted
decisions as :mod:`pathways.io.snds_events` (DuckDB), with the DataFrame API only (no Python function per row).

Each source is a lazy DataFrame of events ``(pid, t, e, value, code, cat, <extras>)`` read from a persisted stage
(the join with its decision flags, computed once); its counted decisions are registered with
:class:`~pathways.io.spark.pending.PendingCounts` and computed with every other count in one Spark action.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from pathways.errors import PathwaysInputError
from pathways.io.report import ReadReport
from pathways.io.spark.pending import PendingCounts
from pathways.io.snds_decisions import record_acts, record_dispensations, record_stays
from pathways.io.snds_tables import (
    ATC_LEVELS,
    CATEGORIES,
    DCIR_KEYS,
    DT_FORMATS,
    MCO_KEYS,
    MCO_RET_COLUMNS,
    MCO_VALO_COLUMNS,
    PROVIDER_COLUMNS,
)
from pathways.io.spark.tables import (
    SparkTables,
    days,
    in_range,
    join_condition,
    number,
    text,
    trimmed_upper,
    valid_date,
)

_SPARK_TYPES = {"VARCHAR": "string", "DOUBLE": "double"}


class SparkSndsEvents:
    """DCIR and PMSI MCO event sources on Spark; :attr:`events` holds the DataFrames to stack."""

    def __init__(self, tables: SparkTables, report: ReadReport, errors: str, bounds: tuple[float, float]):
        self.tables, self.report, self.errors, self.bounds = tables, report, errors, bounds
        self.events: list[Any] = []
        self.extra_names: list[str] = []
        self.pending = PendingCounts()

    def decide(self, step: str, decision: str, count: int, total: int | None = None, detail: str = "") -> None:
        self.report.decide(step, decision, count, total, detail, errors=self.errors)

    def rule(self, step: str, decision: str, count: int, total: int | None = None) -> None:
        self.report.decide(step, decision, count, total, "documented rule", errors="warn")

    def use_provider_columns(self, sources: Sequence[str]) -> None:
        """Extras as the DuckDB engine: DCIR read and ER_PRS_F has any provider/amount column, or MCO read and a
        T_MCOaaVALO has an amount column."""
        dcir = {"dcir_drugs", "dcir_acts", "dcir_services"} & set(sources) and self.tables.has("ER_PRS_F") and any(
            col in set(self.tables.columns("ER_PRS_F")) for col, _ in PROVIDER_COLUMNS.values())
        valo = "mco" in sources and any(col in set(self.tables.columns(v))
                                        for v in self.tables.matching(r"t_mco(aa|\d\d)valo")
                                        for col in MCO_VALO_COLUMNS.values())
        if dcir or valo:
            self.extra_names = list(PROVIDER_COLUMNS)

    def _provider_columns(self, prs: Any) -> list[Any]:
        from pyspark.sql import functions as F

        if not self.extra_names:
            return []
        present = set(prs.columns)
        out = []
        for name, (col, typ) in PROVIDER_COLUMNS.items():
            if col not in present:
                out.append(F.lit(None).cast(_SPARK_TYPES[typ]).alias(name))
            elif typ == "VARCHAR":
                out.append(F.nullif(F.trim(text(prs[col])), F.lit("")).alias(name))
            else:
                out.append(number(prs[col], "double").alias(name))
        return out

    def emit(self, df: Any, with_extras: bool = False) -> None:
        """Append a source's events in the common column order and types."""
        from pyspark.sql import functions as F

        cols = [text(df["pid"]).alias("pid"), df["t"].cast("double").alias("t"), df["e"].cast("double").alias("e"),
                df["value"].cast("double").alias("value"), text(df["code"]).alias("code"),
                df["cat"].cast("int").alias("cat")]
        for name in self.extra_names:
            typ = _SPARK_TYPES[PROVIDER_COLUMNS[name][1]]
            cols.append((df[name] if with_extras else F.lit(None)).cast(typ).alias(name))
        self.events.append(df.select(*cols))

    # -- DCIR -----------------------------------------------------------------------------------------------------
    def _prs(self, exclude_info: bool) -> tuple[Any, Any]:
        """ER_PRS_F and its 'information line' flag (``DPN_QLF = 71``)."""
        from pyspark.sql import functions as F

        cols = self.tables.require("ER_PRS_F", ["BEN_NIR_PSA", "EXE_SOI_DTD", *DCIR_KEYS])
        if exclude_info and "DPN_QLF" not in cols:
            raise PathwaysInputError("table 'ER_PRS_F': missing column DPN_QLF needed by exclude_information_lines")
        prs = self.tables.frame("ER_PRS_F").alias("p")
        info = (F.coalesce(number(prs["DPN_QLF"], "int", cols["DPN_QLF"]), F.lit(0)) == 71) if exclude_info \
            else F.lit(False)
        return prs, info

    def _dcir_stage(self, detail: str, exclude_info: bool, columns: list[Any], mapping_join: Any = None) -> Any:
        """``detail`` LEFT JOIN ER_PRS_F on the nine keys with pid, unmatched, no_pid, info, t and ``columns``."""
        from pyspark.sql import functions as F

        prs, info = self._prs(exclude_info)
        h = self.tables.frame(detail).alias("h")
        cond = join_condition(h, prs, self.tables.columns(detail), self.tables.columns("ER_PRS_F"), DCIR_KEYS)
        joined = h.join(prs, cond, "left")
        if mapping_join is not None:
            joined = mapping_join(joined, h)
        t = days(prs["EXE_SOI_DTD"], self.tables.columns("ER_PRS_F")["EXE_SOI_DTD"], DT_FORMATS)
        # unmatched: no ER_PRS_F line (a matched line has its keys); no_pid: matched, BEN_NIR_PSA empty
        no_pid = prs["DCT_ORD_NUM"].isNotNull() & (F.coalesce(F.trim(text(prs["BEN_NIR_PSA"])), F.lit("")) == "")
        return joined.select(text(prs["BEN_NIR_PSA"]).alias("pid"), prs["DCT_ORD_NUM"].isNull().alias("unmatched"),
                             no_pid.alias("no_pid"), info.alias("info"), t.alias("t"), *columns, *self._provider_columns(prs))

    def dcir_drugs(self, exclude_info: bool, drop_nonpositive: bool, mapping: pd.DataFrame | None,
                   atc_level: int | None) -> None:
        """Dispensations: ER_PHA_F joined to ER_PRS_F on the nine DCIR keys (CIP13 -> ATC when mapped)."""
        from pyspark.sql import functions as F

        pha_cols = self.tables.require("ER_PHA_F", ["PHA_PRS_C13", *DCIR_KEYS])
        h = self.tables.frame("ER_PHA_F").alias("h")
        raw_qty = F.nullif(F.trim(text(h["PHA_ACT_QSN"])), F.lit("")) if "PHA_ACT_QSN" in pha_cols else \
            F.lit(None).cast("string")
        qty = F.regexp_replace(raw_qty, ",", ".").try_cast("double")  # '1,5': a French decimal comma
        qty_bad = raw_qty.isNotNull() & qty.isNull()
        qty_comma = F.coalesce(raw_qty, F.lit("")).contains(",") & qty.isNotNull()
        cip = text(h["PHA_PRS_C13"])
        code, unmapped, join_map = F.concat(F.lit("CIP13:"), cip), F.lit(False), None
        if mapping is not None:
            m = self.tables.spark.createDataFrame(mapping[["cip", "atc"]].astype(str)).alias("m")
            atc = m["atc"] if atc_level is None else F.substring(m["atc"], 1, ATC_LEVELS[atc_level])
            code = F.when(m["atc"].isNull(), code).otherwise(F.concat(F.lit("ATC:"), atc))
            unmapped = m["atc"].isNull()

            def join_map(joined: Any, hh: Any) -> Any:
                return joined.join(F.broadcast(m), m["cip"] == text(hh["PHA_PRS_C13"]), "left")
        stage = self._dcir_stage("ER_PHA_F", exclude_info,
                                 [qty.alias("value"), code.alias("code"), unmapped.alias("unmapped"),
                                  qty_bad.alias("qty_bad"), qty_comma.alias("qty_comma")], join_map)
        stage = self.pending.persist(stage)
        valid = in_range(F.col("t"), self.bounds)
        ok, info, value = ~F.col("unmatched") & ~F.col("no_pid"), F.col("info"), F.col("value")
        used = ok & ~info
        regularise = drop_nonpositive and bool(self.extra_names)
        pos = (F.coalesce(value, F.lit(1.0)) > 0) if drop_nonpositive and not regularise else F.lit(True)
        kept = stage.where(ok & ~info & F.col("t").isNotNull() & valid & pos).select(
            "pid", "t", F.lit(None).cast("double").alias("e"), "value", "code",
            F.lit(CATEGORIES.index("drug")).alias("cat"), *self.extra_names)
        rows: dict[str, int] = {}

        def report(c: list[int]) -> None:
            n, unmatched, no_pid, n_info, bad_date, nonpos, n_unmapped, n_qty_bad, n_comma = c
            rows["n"] = n
            record_dispensations(self, n, unmatched, no_pid, n_info, n_qty_bad, n_comma, bad_date, nonpos,
                                 n_unmapped, regularise=regularise, drop_nonpositive=drop_nonpositive,
                                 mapped=mapping is not None)

        self.pending.count(stage, [
            F.col("unmatched"), F.col("no_pid"), ok & info, used & (F.col("t").isNull() | ~valid),
            used & (value <= 0), used & F.col("unmapped"), used & F.col("qty_bad"), used & F.col("qty_comma")], report)
        if regularise:
            self._regularised(kept, rows)
        else:
            self.emit(kept, with_extras=bool(self.extra_names))

    def _regularised(self, rows: Any, total: dict[str, int], table: str = "ER_PHA_F", column: str = "PHA_ACT_QSN",
                     what: str = "dispensation") -> None:
        """Dispensations with the amounts of their regularisation lines (``PHA_ACT_QSN <= 0``, same patient, date,
        code and executing provider) added, shared equally between the matching dispensations."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        keys = ["pid", "t", "code", "provider"]
        pos = rows.where(F.coalesce(F.col("value"), F.lit(1.0)) > 0).withColumn(
            "n_same", F.count(F.lit(1)).over(Window.partitionBy(*keys)))
        reg = rows.where(F.col("value") <= 0).groupBy(*keys).agg(
            F.sum("paid").alias("r_paid"), F.sum("base").alias("r_base"), F.count(F.lit(1)).alias("n_lines"))
        reg = reg.select(*[F.col(k).alias("r_" + k) for k in keys], "r_paid", "r_base", "n_lines")
        key = None
        for k in keys:
            part = pos[k].eqNullSafe(reg["r_" + k])
            key = part if key is None else key & part
        distinct = rows.where(F.coalesce(F.col("value"), F.lit(1.0)) > 0).select(*keys).distinct() \
            .withColumn("_hit", F.lit(True))
        flagged = reg.join(distinct, _null_safe(reg, distinct, keys), "left")

        def report(c: list[int]) -> None:
            n_reg, n_matched = c
            lost, n = n_reg - n_matched, total["n"]
            self.rule(f"{table}: {column} <= 0 (regularisation)", f"dropped, amounts added to the {what}",
                      n_reg - lost, n)
            self.rule(f"{table}: {column} <= 0 matching no {what} (patient, date, code, provider)",
                      "dropped with its amounts", lost, n)

        self.pending.sums(flagged, [F.sum("n_lines"), F.sum(F.when(F.col("_hit").isNotNull(), F.col("n_lines")))],
                          report)
        out = pos.join(reg, key, "left").select(
            "pid", "t", "e", "value", "code", "cat", "prescriber", "provider", "institution",
            (F.col("paid") + F.coalesce(F.col("r_paid"), F.lit(0.0)) / F.col("n_same")).alias("paid"),
            (F.col("base") + F.coalesce(F.col("r_base"), F.lit(0.0)) / F.col("n_same")).alias("base"))
        self.emit(out, with_extras=True)

    def dcir_acts(self, exclude_info: bool) -> None:
        """CCAM acts: ER_CAM_F joined to ER_PRS_F on the nine DCIR keys."""
        from pyspark.sql import functions as F

        self.tables.require("ER_CAM_F", ["CAM_PRS_IDE", *DCIR_KEYS])
        c = self.tables.frame("ER_CAM_F").alias("h")
        raw = F.trim(text(c["CAM_PRS_IDE"]))
        stage = self._dcir_stage("ER_CAM_F", exclude_info, [
            F.concat(F.lit("CCAM:"), F.upper(raw)).alias("code"),
            (F.coalesce(raw, F.lit("")) == "").alias("no_code")])
        stage = self.pending.persist(stage)
        valid = in_range(F.col("t"), self.bounds)
        ok, info, no_code = ~F.col("unmatched") & ~F.col("no_pid"), F.col("info"), F.col("no_code")
        kept = stage.where(ok & ~info & ~no_code & F.col("t").isNotNull() & valid).select(
            "pid", "t", F.lit(None).cast("double").alias("e"), F.lit(None).cast("double").alias("value"), "code",
            F.lit(CATEGORIES.index("act")).alias("cat"), *self.extra_names)

        def report(c: list[int]) -> None:
            record_acts(self, *c)

        self.pending.count(stage, [F.col("unmatched"), F.col("no_pid"), ok & info, ok & ~info & no_code,
                                   ok & ~info & ~no_code & (F.col("t").isNull() | ~valid)], report)
        self.emit(kept, with_extras=bool(self.extra_names))

    # -- PMSI MCO -------------------------------------------------------------------------------------------------
    def mco(self, exclude_errors: bool) -> None:
        """Stays, main/linked diagnoses, associated diagnoses and acts (stacked, never crossed), year by year."""
        stays_b = self.tables.matching(r"t_mco(aa|\d\d)b")
        if not stays_b:
            raise PathwaysInputError("source 'mco': no T_MCOaaB table found (expected T_MCOaaB or T_MCO<yy>B)")
        for b in stays_b:
            year = b[5:-1]
            c = f"t_mco{year}c"
            if not self.tables.has(c):
                raise PathwaysInputError(f"source 'mco': table {b.upper()} has no patient link table T_MCO{year}C")
            stays = self._stays(b, c, exclude_errors)
            self.emit(self._stay_events(stays), with_extras=bool(self.extra_names))
            parts = []
            d, a = f"t_mco{year}d", f"t_mco{year}a"
            if self.tables.has(d):
                self.tables.require(d, [*MCO_KEYS, "ASS_DGN"])
                parts.append(self._stay_detail(d, stays, "ASS_DGN", "CIM10:", "associated_diagnosis", False))
            else:
                self.pending.later(lambda d=d: self.report.note(f"{mco_label(d)} absent: no associated diagnoses", 0))
            if self.tables.has(a):
                self.tables.require(a, [*MCO_KEYS, "CDC_ACT"])
                parts.append(self._stay_detail(a, stays, "CDC_ACT", "CCAM:", "hospital_act", True))
            else:
                self.pending.later(lambda a=a: self.report.note(f"{mco_label(a)} absent: no hospital acts", 0))
            for part in parts:
                self.emit(part)

    def _stays(self, b: str, c: str, exclude_errors: bool) -> Any:
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        bcols = self.tables.require(b, [*MCO_KEYS, "DGN_PAL"])
        ccols = self.tables.require(c, [*MCO_KEYS, "NIR_ANO_17"])
        name, c_name = mco_label(b), mco_label(c)
        link = self.tables.frame(c)
        first = Window.partitionBy(*MCO_KEYS).orderBy(F.col("NIR_ANO_17").asc_nulls_last())
        link = self.pending.persist(link.withColumn("_rn", F.row_number().over(first)))
        self.pending.count(link, [F.col("_rn") == 1], lambda c: self.decide(
            f"{c_name}: several patient-link rows per stay (ETA_NUM, RSA_NUM)", "first kept", c[0] - c[1], c[0]))
        link = link.where(F.col("_rn") == 1).drop("_rn").alias("c")
        valo = self._valorisation(b)
        start = _first([days(link[col], ccols[col], DT_FORMATS, pad)
                        for col, pad in (("EXE_SOI_DTD", None), ("ENT_DAT", 8)) if col in ccols])
        end = _first([days(link[col], ccols[col], DT_FORMATS, pad)
                      for col, pad in (("EXE_SOI_DTF", None), ("SOR_DAT", 8)) if col in ccols])
        rets = [col for col in MCO_RET_COLUMNS if col in ccols]
        ret_bad = F.lit(False)
        for col in rets:
            ret_bad = ret_bad | (F.coalesce(F.trim(text(link[col])), F.lit("0")) != "0")
        bb = self.tables.frame(b).alias("b")
        ghm_bad = (F.substring(text(bb["GRG_GHM"]), 1, 2) == "90") if "GRG_GHM" in bcols else F.lit(False)
        dgn_rel = trimmed_upper(bb["DGN_REL"]) if "DGN_REL" in bcols else F.lit(None).cast("string")
        cond = join_condition(bb, link, bcols, ccols, MCO_KEYS)
        joined = bb.join(link, cond, "left")
        amounts = []
        if valo is not None:
            agg, vcols = valo
            joined = joined.join(agg, join_condition(bb, agg, bcols, vcols, MCO_KEYS), "left")
            amounts = [agg[n].alias(n) for n in MCO_VALO_COLUMNS] + [agg["_n"].isNull().alias("no_valo")]
        stage = joined.select(
            link["NIR_ANO_17"].alias("pid"), bb["ETA_NUM"].alias("k1"), bb["RSA_NUM"].alias("k2"),
            valid_date(start, self.bounds).alias("t"), valid_date(end, self.bounds).alias("e"),
            trimmed_upper(bb["DGN_PAL"]).alias("dp"), dgn_rel.alias("dr"),
            link["ETA_NUM"].isNull().alias("unmatched"),
            (link["ETA_NUM"].isNotNull() & (F.coalesce(F.trim(text(link["NIR_ANO_17"])), F.lit("")) == ""))
            .alias("no_pid"), ret_bad.alias("ret_bad"), ghm_bad.alias("ghm_bad"), *amounts)
        stage = self.pending.persist(stage)
        ok, ghm, ret = ~F.col("unmatched"), F.col("ghm_bad"), F.col("ret_bad")

        def report(c: list[int]) -> None:
            record_stays(self, name, c_name, *c, exclude_errors=exclude_errors)

        self.pending.count(stage, [F.col("unmatched"), F.col("no_pid"), ok & ghm, ok & ~ghm & ret,
                                   ok & F.col("t").isNull(), F.col("e") < F.col("t")], report)
        quality = (~ghm & ~ret) if exclude_errors else F.lit(True)
        kept = stage.where(ok & ~F.col("no_pid") & F.col("t").isNotNull() & quality)
        cols = [F.col(n) if valo is not None else F.lit(None).cast("double").alias(n) for n in MCO_VALO_COLUMNS] \
            if self.extra_names else []
        if valo is not None:
            v_name = mco_label(b[:-1] + "valo")
            self.pending.count(kept, [F.col("no_valo")], lambda c: self.decide(
                f"{name}: kept stay without valorisation in {v_name} (ETA_NUM, RSA_NUM)", "kept, amounts missing",
                c[1], c[0]))
        return kept.select(
            "pid", "k1", "k2", "t", F.when(F.col("e") < F.col("t"), F.col("t")).otherwise(F.col("e")).alias("e"),
            "dp", "dr", *cols)

    def _valorisation(self, b: str) -> tuple[Any, dict[str, str]] | None:
        """T_MCOaaVALO of ``b`` summed per (ETA_NUM, RSA_NUM) (with its column types), its counts registered; None
        when no extras are carried or the table is absent (noted)."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        v = b[:-1] + "valo"
        if not self.extra_names:
            return None
        label = mco_label(v)
        if not self.tables.has(v):
            self.pending.later(lambda: self.report.note(f"{label} absent: stays without amounts", 0))
            return None
        vcols = self.tables.require(v, MCO_KEYS)
        raw = self.tables.frame(v)
        numbered = raw.select(*MCO_KEYS, F.row_number().over(Window.partitionBy(*MCO_KEYS).orderBy(
            *MCO_KEYS)).alias("_rn"))

        def report(c: list[int]) -> None:
            self.report.note(f"{label} rows", c[0])
            self.decide(f"{label}: several rows per stay (ETA_NUM, RSA_NUM)", "amounts summed", c[1], c[0])

        self.pending.count(numbered, [F.col("_rn") > 1], report)
        sums = [F.sum(number(raw[col], "double")).alias(n) if col in vcols else F.lit(None).cast("double").alias(n)
                for n, col in MCO_VALO_COLUMNS.items()]
        return raw.groupBy(*MCO_KEYS).agg(*sums, F.count(F.lit(1)).alias("_n")).alias("v"), vcols

    def _stay_events(self, stays: Any) -> Any:
        from pyspark.sql import functions as F

        cat = CATEGORIES.index
        none = F.lit(None).cast("double")
        def extras(stay: bool) -> list[Any]:  # the stay carries its valorisation amounts, diagnoses none
            return [F.col(n) if stay and n in MCO_VALO_COLUMNS else F.lit(None).alias(n) for n in self.extra_names]

        stay = stays.select("pid", "t", "e", none.alias("value"), F.lit("MCO:stay").alias("code"),
                            F.lit(cat("stay")).alias("cat"), *extras(True))
        out = stay
        for column, category in (("dp", "main_diagnosis"), ("dr", "linked_diagnosis")):
            out = out.unionByName(stays.where(F.coalesce(F.col(column), F.lit("")) != "").select(
                "pid", "t", none.alias("e"), none.alias("value"), F.concat(F.lit("CIM10:"), F.col(column)).alias("code"),
                F.lit(cat(category)).alias("cat"), *extras(False)))
        return out

    def _stay_detail(self, table: str, stays: Any, column: str, prefix: str, category: str, acts: bool) -> Any:
        """Rows of a stay detail table (D or A) joined to the kept stays; acts dated entry + ENT_DAT_DEL."""
        from pyspark.sql import functions as F

        name = mco_label(table)
        x = self.tables.frame(table).alias("x")
        cols = self.tables.columns(table)
        s = stays.alias("s")
        cond = (text(x["ETA_NUM"]) == text(s["k1"])) & (text(x["RSA_NUM"]) == text(s["k2"]))
        delay = number(x["ENT_DAT_DEL"], "double") if acts and "ENT_DAT_DEL" in cols else F.lit(None).cast("double")
        ok_delay = (delay >= 0) & (s["t"] + delay <= F.coalesce(s["e"], s["t"]))
        stage = x.join(s, cond, "left").select(
            s["pid"].alias("pid"), s["t"].alias("t0"), delay.alias("delay"), ok_delay.alias("ok_delay"),
            trimmed_upper(x[column]).alias("raw_code"), s["pid"].isNull().alias("unmatched"))
        stage = self.pending.persist(stage)
        ok, raw = ~F.col("unmatched"), F.coalesce(F.col("raw_code"), F.lit(""))

        def report(c: list[int]) -> None:
            n, unmatched, empty, bad_delay = c
            self.report.note(f"{name} rows", n)
            self.decide(f"{name}: no kept stay on (ETA_NUM, RSA_NUM)", "dropped", unmatched, n,
                        "stay absent, without patient link or excluded")
            self.decide(f"{name}: {column} empty", "dropped", empty, n)
            if acts:
                self.decide(f"{name}: ENT_DAT_DEL negative or beyond discharge", "dated at stay entry", bad_delay,
                            n)

        self.pending.count(stage, [F.col("unmatched"), ok & (raw == ""),
                                   ok & F.col("delay").isNotNull() & ~F.coalesce(F.col("ok_delay"), F.lit(False))],
                           report)
        time = F.when(F.coalesce(F.col("ok_delay"), F.lit(False)), F.col("t0") + F.col("delay")).otherwise(
            F.col("t0")) if acts else F.col("t0")
        return stage.where(ok & (raw != "")).select(
            "pid", time.alias("t"), F.lit(None).cast("double").alias("e"), F.lit(None).cast("double").alias("value"),
            F.concat(F.lit(prefix), F.col("raw_code")).alias("code"), F.lit(CATEGORIES.index(category)).alias("cat"))


def _null_safe(left: Any, right: Any, keys: Sequence[str]) -> Any:
    cond = None
    for k in keys:
        part = left["r_" + k].eqNullSafe(right[k])
        cond = part if cond is None else cond & part
    return cond


def _first(parts: list[Any]) -> Any:
    from pyspark.sql import functions as F

    if not parts:
        return F.lit(None).cast("double")
    return parts[0] if len(parts) == 1 else F.coalesce(*parts)


def mco_label(name: str) -> str:
    """Display name of a PMSI MCO table key (``t_mcoaab`` -> ``T_MCOaaB``, ``t_mco20valo`` -> ``T_MCO20VALO``)."""
    if name.endswith("valo"):
        return "T_MCO" + name[5:-4] + "VALO"
    return "T_MCO" + name[5:-1] + name[-1].upper()


__all__ = ["SparkSndsEvents", "mco_label"]

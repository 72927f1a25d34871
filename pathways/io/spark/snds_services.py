"""The ``dcir_services`` source on Spark: ER_PRS_F lines with no ER_PHA_F / ER_CAM_F detail row on the nine DCIR
keys as events ``PRS:<PRS_NAT_REF>``, with the rows, codes, amounts and counted decisions of the DuckDB engine
(:mod:`pathways.io.snds_services`)."""
from __future__ import annotations

from typing import Any

from pathways.io.snds_decisions import record_services
from pathways.io.snds_tables import CATEGORIES, DCIR_KEYS, DT_FORMATS, SERVICE_DETAILS
from pathways.io.spark.snds_events import SparkSndsEvents
from pathways.io.spark.tables import days, in_range, join_condition, number, text


class SparkSndsServiceEvents(SparkSndsEvents):
    """Adds :meth:`dcir_services` to the Spark DCIR and PMSI sources."""

    def _with_detail_flag(self, prs: Any) -> tuple[Any, Any]:
        """``prs`` left-joined to the distinct keys of each present detail table, and the 'has a detail row'
        flag (absent tables noted, as the DuckDB engine)."""
        from pyspark.sql import functions as F

        joined, flag = prs, F.lit(False)
        for i, detail in enumerate(SERVICE_DETAILS):
            if not self.tables.has(detail):
                self.pending.later(lambda d=detail: self.report.note(
                    f"{d} absent: no ER_PRS_F line is taken as its detail", 0))
                continue
            dcols = self.tables.require(detail, DCIR_KEYS)
            keys = self.tables.frame(detail).select(*DCIR_KEYS).distinct().withColumn(f"_hit{i}", F.lit(True))
            keys = keys.alias(f"k{i}")
            cond = join_condition(keys, prs, dcols, self.tables.columns("ER_PRS_F"), DCIR_KEYS)
            joined = joined.join(keys, cond, "left")
            flag = flag | F.col(f"_hit{i}").isNotNull()
        return joined, flag

    def dcir_services(self, exclude_info: bool, drop_nonpositive: bool) -> None:
        """ER_PRS_F lines without a detail row (see :meth:`pathways.io.snds_services.SndsServiceEvents.dcir_services`)."""
        from pyspark.sql import functions as F

        cols = self.tables.require("ER_PRS_F", ["PRS_NAT_REF"])
        prs, info = self._prs(exclude_info)
        joined, detail = self._with_detail_flag(prs)
        nat = prs["PRS_NAT_REF"]
        if cols["PRS_NAT_REF"] in ("double", "float") or cols["PRS_NAT_REF"].startswith("decimal"):
            nat = nat.cast("bigint")  # a code read as a number with missing values: 1111.0 (as the DuckDB engine)
        raw = F.nullif(F.upper(F.trim(text(nat))), F.lit(""))
        qty = number(prs["PRS_ACT_QTE"], "double", cols["PRS_ACT_QTE"]) if "PRS_ACT_QTE" in cols else \
            F.lit(None).cast("double")
        t = days(prs["EXE_SOI_DTD"], cols["EXE_SOI_DTD"], DT_FORMATS)
        no_pid = F.coalesce(F.trim(text(prs["BEN_NIR_PSA"])), F.lit("")) == ""
        stage = self.pending.persist(joined.select(
            text(prs["BEN_NIR_PSA"]).alias("pid"), no_pid.alias("no_pid"), info.alias("info"),
            detail.alias("detail"), t.alias("t"), qty.alias("value"), F.concat(F.lit("PRS:"), raw).alias("code"),
            raw.isNull().alias("no_code"), *self._provider_columns(prs)))
        valid = in_range(F.col("t"), self.bounds)
        used = ~F.col("detail") & ~F.col("no_pid") & ~F.col("info")
        dated = used & ~F.col("no_code") & F.col("t").isNotNull() & valid
        regularise = drop_nonpositive and bool(self.extra_names)
        rows: dict[str, int] = {}

        def report(c: list[int]) -> None:
            n, n_detail, n_no_pid, n_info, n_no_code, bad_date, nonpos = c
            rows["n"] = n
            record_services(self, n, n_detail, n_no_pid, n_info, n_no_code, bad_date, nonpos,
                            regularise=regularise, drop_nonpositive=drop_nonpositive)

        self.pending.count(stage, [
            F.col("detail"), ~F.col("detail") & F.col("no_pid"), ~F.col("detail") & ~F.col("no_pid") & F.col("info"),
            used & F.col("no_code"), used & ~F.col("no_code") & (F.col("t").isNull() | ~valid),
            dated & (F.col("value") <= 0)], report)
        pos = (F.coalesce(F.col("value"), F.lit(1.0)) > 0) if drop_nonpositive and not regularise else F.lit(True)
        kept = stage.where(dated & pos).select(
            "pid", "t", F.lit(None).cast("double").alias("e"), "value", "code",
            F.lit(CATEGORIES.index("service")).alias("cat"), *self.extra_names)
        if regularise:
            self._regularised(kept, rows, "ER_PRS_F", "PRS_ACT_QTE", "service")
        else:
            self.emit(kept, with_extras=bool(self.extra_names))


__all__ = ["SparkSndsServiceEvents"]

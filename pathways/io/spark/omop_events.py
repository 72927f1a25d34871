"""Clinical events of the Spark engine of ``read_omop``: domain tables, provider ids and costs, concept codes and the
ingredient roll-up, as DataFrame expressions giving the DuckDB engine's values (:mod:`pathways.io.omop`).

Every counted decision is registered with a :class:`~pathways.io.spark.pending.PendingCounts` in the DuckDB
engine's order; the counts are computed together at its next flush.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import reduce
from typing import Any

from pathways.errors import PathwaysInputError
from pathways.io.omop_tables import CATEGORIES, DOMAINS, EVENT_IDS, EXTRAS
from pathways.io.report import ReadReport
from pathways.io.spark.pending import PendingCounts
from pathways.io.spark.tables import SparkTables, count_if, days, in_range, number, text


def bigint(column: Any, dtype: str) -> Any:
    """``TRY_CAST(x AS BIGINT)``: text through a double rounded half away from zero (as DuckDB), NULL when no
    number; typed numbers cast directly."""
    from pyspark.sql import functions as F

    if dtype != "string":
        return column.try_cast("bigint")
    num = F.trim(text(column)).try_cast("double")
    return F.when(F.abs(F.round(num)) <= 9.2e18, F.round(num).cast("bigint"))


def null(kind: str) -> Any:
    from pyspark.sql import functions as F

    return F.lit(None).cast(kind)


def days_of(frame: Any, name: str, types: Mapping[str, str]) -> Any:
    """``days_sql(column)``: days since 1970 of a date, timestamp or ISO text column; NULL when absent."""
    from pyspark.sql import functions as F

    key = name.upper()
    if key not in types:
        return null("double")
    return days(F.col(key), types[key])


class SparkOmopEvents:
    """Events (pid, t, e, value, c / code, cat and the extras) of the chosen domains."""

    def __init__(self, tables: SparkTables, report: ReadReport, errors: str, bounds: tuple[float, float],
                 pending: PendingCounts):
        self.tables, self.report, self.errors, self.bounds, self.pending = tables, report, errors, bounds, pending
        self.extra_names: list[str] = []
        self.concept_ok = False
        self._costs: Any = None

    def decide(self, step: str, decision: str, count: int, total: int | None = None, detail: str = "") -> None:
        self.report.decide(step, decision, count, total, detail, errors=self.errors)

    def optional(self, name: str, required: Sequence[str]) -> dict[str, str] | None:
        """:meth:`TableSet.optional`: columns, or None when absent (noted) or malformed (a counted skip)."""
        if not self.tables.has(name):
            self.pending.later(lambda: self.report.note(f"{name} table absent", 0))
            return None
        cols = self.tables.columns(name)
        missing = [c for c in required if c.upper() not in cols]
        if not missing:
            return cols
        self.pending.count(self.tables.frame(name), [], lambda c: self.report.decide(
            f"{name}: optional table malformed (missing column(s) {missing})", "table skipped", max(c[0], 1), c[0],
            f"{len(cols)} columns found", errors=self.errors))
        return None

    # -- extras ---------------------------------------------------------------------------------------------------
    def _use_extras(self, domains: list[str]) -> None:
        from pyspark.sql import functions as F

        names = [DOMAINS[d].table for d in domains]
        has_cost = self.tables.has("cost")
        if has_cost or any("PROVIDER_ID" in self.tables.columns(t) for t in names if t in EVENT_IDS):
            self.extra_names = list(EXTRAS)
        if has_cost:
            cols = self.tables.require("cost", ["cost_event_id", "cost_domain_id"])
            cost = self.tables.frame("cost")
            amounts = [F.sum(number(F.col(c.upper()), "double", cols[c.upper()])) if c.upper() in cols
                       else F.sum(null("double")) for c in ("paid_by_payer", "amount_allowed")]
            self._costs = cost.groupBy(text(F.col("COST_EVENT_ID")).alias("_eid"),
                                       text(F.col("COST_DOMAIN_ID")).alias("_dom")).agg(
                amounts[0].alias("paid"), amounts[1].alias("base"))

    # -- events ---------------------------------------------------------------------------------------------------
    def events(self, domains: list[str], concept_codes: bool, ingredients: bool, keep_unmapped: bool) -> Any:
        """Events with their code text (the DuckDB engine's ``omop_events`` table)."""
        self._use_extras(domains)
        self.concept_ok = concept_codes and self.optional(
            "concept", ["concept_id", "vocabulary_id", "concept_code"]) is not None
        parts = [self._domain(name, keep_unmapped, ingredients) for name in domains]
        if not parts:
            raise PathwaysInputError("domains: none of the requested domain tables exist in the source")
        raw = reduce(lambda a, b: a.unionByName(b), parts)
        return self._map_codes(raw)

    def _domain(self, name: str, keep_unmapped: bool, ingredients: bool) -> Any:
        from pyspark.sql import functions as F

        dom = DOMAINS[name]
        cols = self.tables.require(dom.table, ["person_id", dom.concept, dom.start])
        frame = self.tables.frame(dom.table)
        cat = CATEGORIES.index(name.replace("_era", ""))
        start = days_of(frame, dom.start, cols)
        end = days_of(frame, dom.end, cols) if dom.end else null("double")
        supply = number(F.col(dom.supply.upper()), "double", cols[dom.supply.upper()]) \
            if dom.supply and dom.supply.upper() in cols else null("double")
        value = number(F.col(dom.value.upper()), "double", cols[dom.value.upper()]) \
            if dom.value and dom.value.upper() in cols else null("double")
        concept = bigint(F.col(dom.concept.upper()), cols[dom.concept.upper()])
        event_id, dom_id = EVENT_IDS.get(dom.table, (None, None))
        prov = null("string")
        if event_id and "PROVIDER_ID" in cols:
            raw_prov = F.col("PROVIDER_ID")
            prov = F.coalesce(text(bigint(raw_prov, cols["PROVIDER_ID"])), text(raw_prov))
        eid = text(F.col(event_id.upper())) if event_id and event_id.upper() in cols else null("string")
        x = frame.select(text(F.col("PERSON_ID")).alias("pid"), start.alias("s"), end.alias("re"),
                         value.alias("v"), concept.alias("c"), supply.alias("sup"), prov.alias("prov"),
                         eid.alias("eid"))
        s, e, c, sup = F.col("s"), F.col("re"), F.col("c"), F.col("sup")
        bounds = self.bounds

        def decide(st: list[int]) -> None:
            n = st[0]
            self.report.note(f"{dom.table} rows", n)
            self.decide(f"{dom.table}: start date missing or unparseable", "dropped", st[1], n)
            self.decide(f"{dom.table}: start date out of date_range", "dropped", st[2], n)
            self.decide(f"{dom.table}: concept id 0 or NULL", "kept as code '0'" if keep_unmapped else "dropped",
                        st[3], n)
            self.decide(f"{dom.table}: end date out of date_range", "end missing", st[7], n)
            if dom.end:
                self.decide(f"{dom.table}: end date missing", "point event (end NaN) unless days_supply",
                            st[4] - st[5], n)
                if dom.supply:
                    self.decide(f"{dom.table}: end date missing, days_supply given",
                                "end = start + days_supply - 1", st[5], n)
                self.decide(f"{dom.table}: end before start", "end = start", st[6], n)

        self.pending.count(x, [s.isNull(), s.isNotNull() & ~in_range(s, bounds), F.coalesce(c, F.lit(0)) == 0,
                               s.isNotNull() & e.isNull(), e.isNull() & (sup > 0), e < s,
                               e.isNotNull() & ~in_range(e, bounds)], decide)
        x = x.withColumn("e", F.when(in_range(e, bounds), e))
        keep = F.coalesce(c, F.lit(0)) != 0 if not keep_unmapped else F.lit(True)
        x = x.where(s.isNotNull() & in_range(s, bounds) & keep)
        xe = F.col("e")
        out = [F.col("pid"), s.alias("t"),
               F.when(xe.isNull() & (sup > 0), s + sup - 1).when(xe < s, s).otherwise(xe).alias("e"),
               F.col("v").alias("value"), F.coalesce(c, F.lit(0)).alias("c"), F.lit(cat).alias("cat")]
        if self.extra_names:
            drug = dom.table == "drug_exposure"
            out += [(F.col("prov") if drug else null("string")).alias("prescriber"),
                    (null("string") if drug else F.col("prov")).alias("provider")]
            if self._costs is not None and dom_id is not None:
                costs = self._costs.where(F.col("_dom") == dom_id)
                x = x.join(costs, x["eid"] == costs["_eid"], "left")
                out += [F.col("paid"), F.col("base")]
            else:
                out += [null("double").alias("paid"), null("double").alias("base")]
        events = x.select(*out)
        if name == "drug" and ingredients:
            events = self._ingredients(events)
        return events

    def _ingredients(self, drugs: Any) -> Any:
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        if not (self.tables.has("concept_ancestor") and self.tables.has("concept")):
            raise PathwaysInputError("drug_ingredients=True needs the 'concept_ancestor' and 'concept' tables")
        atypes = self.tables.require("concept_ancestor", ["ancestor_concept_id", "descendant_concept_id"])
        ktypes = self.tables.require("concept", ["concept_id", "concept_class_id"])
        ca, k = self.tables.frame("concept_ancestor"), self.tables.frame("concept")
        anc = bigint(ca["ANCESTOR_CONCEPT_ID"], atypes["ANCESTOR_CONCEPT_ID"])
        ing = ca.join(k, bigint(k["CONCEPT_ID"], ktypes["CONCEPT_ID"]) == anc).where(
            k["CONCEPT_CLASS_ID"] == "Ingredient").select(
            bigint(ca["DESCENDANT_CONCEPT_ID"], atypes["DESCENDANT_CONCEPT_ID"]).alias("_c"),
            anc.alias("_ing")).distinct()
        drugs = self.pending.persist(drugs.withColumn("_rid", F.monotonically_increasing_id()))
        joined = drugs.join(ing, drugs["c"] == ing["_c"], "left")

        def decide(st: list[int]) -> None:
            n, matched_rows, matched_drugs = st
            self.decide("drug_exposure: no ingredient in concept_ancestor", "own concept kept", n - matched_drugs, n)
            self.decide("drug_exposure: combination drugs", "one extra event per extra ingredient",
                        matched_rows - matched_drugs, n)

        per_drug = joined.groupBy("_rid").agg(count_if(F.col("_ing").isNotNull()).alias("_m"))
        self.pending.sums(per_drug, [F.count(F.lit(1)), F.sum("_m"), count_if(F.col("_m") > 0)], decide)
        first = F.row_number().over(Window.partitionBy("_rid").orderBy("_ing")) == 1
        extras = [F.col(n) if EXTRAS[n] == "VARCHAR" else F.when(first, F.col(n)).alias(n) for n in self.extra_names]
        return joined.select("pid", "t", "e", "value", F.coalesce(F.col("_ing"), F.col("c")).alias("c"), "cat",
                             *extras)

    def _map_codes(self, raw: Any) -> Any:
        from pyspark.sql import functions as F

        extras = [F.col(n) for n in self.extra_names]
        if not self.concept_ok:
            return raw.select("pid", "t", "e", "value", text(F.col("c")).alias("code"), "cat", *extras)
        concept = self.concept_codes()
        joined = raw.join(concept, raw["c"] == concept["_cid"], "left")
        unmapped = F.col("_cid").isNull()
        code = F.when(unmapped, text(F.col("c"))).otherwise(F.col("_kcode"))
        events = joined.select("pid", "t", "e", "value", code.alias("code"), "cat", *extras,
                               unmapped.alias("_unmapped"))
        self.pending.count(events, [F.col("_unmapped") & (F.col("code") != "0")], lambda c: self.decide(
            "concept id absent from concept table", "concept id kept as code", c[1], c[0]))
        return events.drop("_unmapped")

    def concept_codes(self) -> Any:
        """``(_cid, _kcode)``: one row per concept id (``DISTINCT ON (cid)``), code ``vocabulary_id:concept_code``."""
        from pyspark.sql import functions as F

        types = self.tables.columns("concept")
        k = self.tables.frame("concept")
        return k.select(bigint(F.col("CONCEPT_ID"), types["CONCEPT_ID"]).alias("_cid"),
                        F.concat(text(F.col("VOCABULARY_ID")), F.lit(":"), text(F.col("CONCEPT_CODE"))
                                 ).alias("_kcode")).dropDuplicates(["_cid"])


__all__ = ["SparkOmopEvents", "bigint", "days_of", "null"]

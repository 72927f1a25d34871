"""Patients of the Spark engine of ``read_snds``: IR_BEN_R (birth, sex, death; one row per BEN_NIR_PSA),
causes of death from KI_CCI_R, death events and patients seen only in the events. Same values and counted
decisions as :mod:`pathways.io.snds_patients` (DuckDB + pandas), as Spark DataFrames."""
from __future__ import annotations

from typing import Any

from pathways.io.snds_tables import (
    CATEGORIES,
    DT_FORMATS,
    PLACEHOLDER_DATES,
    days_since_epoch,
)
from pathways.io.spark.snds_services import SparkSndsServiceEvents
from pathways.io.spark.tables import days, number, text, trimmed_upper

#: the patients table of the Spark engine (Spark DDL), in the DuckDB engine's column order
PATIENT_SCHEMA = ("patient_id string, birth double, sex string, death double, BEN_RNG_GEM int, "
                  "death_cause string")


class SparkSndsReader(SparkSndsServiceEvents):
    """Every step of the Spark engine: the event sources plus the patients."""

    def patients(self) -> Any:
        """IR_BEN_R (+ KI_CCI_R) -> one row per BEN_NIR_PSA (lowest BEN_RNG_GEM, then first row)."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        if not self.tables.has("IR_BEN_R"):
            self.pending.later(lambda: self.report.note("IR_BEN_R absent: birth, sex and death unknown", 0))
            return self.tables.spark.createDataFrame([], PATIENT_SCHEMA)
        cols = self.tables.require("IR_BEN_R", ["BEN_NIR_PSA"])
        ben = self.tables.frame("IR_BEN_R")

        def opt(name: str, kind: str | None = None) -> Any:
            if name not in cols:
                return F.lit(None).cast("int" if kind else "string")
            return number(ben[name], kind, cols[name]) if kind else text(ben[name])

        dcd = days(ben["BEN_DCD_DTE"], cols["BEN_DCD_DTE"], DT_FORMATS) if "BEN_DCD_DTE" in cols else \
            F.lit(None).cast("double")
        frame = ben.select(text(ben["BEN_NIR_PSA"]).alias("pid"), opt("BEN_RNG_GEM", "int").alias("rng"),
                           opt("BEN_NAI_ANN", "int").alias("y"), opt("BEN_NAI_MOI", "int").alias("m"),
                           opt("BEN_SEX_COD", "int").alias("sex"), dcd.alias("dcd"), opt("BEN_IDT_ANO").alias("idt"),
                           F.monotonically_increasing_id().alias("_row"))
        first = Window.partitionBy("pid").orderBy(F.col("rng").asc_nulls_last(), F.col("_row"))
        ranked = frame.withColumn("_rank", F.when(F.col("pid").isNotNull(), F.row_number().over(first)))
        month = F.when(F.col("m").between(1, 12), F.col("m")).otherwise(F.lit(1))
        # pandas' nanosecond dates (the DuckDB engine's birth) end in 1677 and 2262
        birth = F.when(F.col("y").between(1678, 2261),
                       F.unix_date(F.make_date(F.col("y"), month, F.lit(1))).cast("double"))
        birth = F.when((birth >= self.bounds[0]) & (birth <= self.bounds[1]), birth)
        placeholder = F.col("dcd").isin([days_since_epoch(d) for d in PLACEHOLDER_DATES])
        out_of_range = (F.col("dcd") < self.bounds[0]) | (F.col("dcd") > self.bounds[1])
        bad_death = ~placeholder & F.col("dcd").isNotNull() & out_of_range
        ranked = ranked.select("pid", "rng", "sex", "idt", birth.alias("birth"), "y", "dcd", "_rank",
                               F.coalesce(placeholder, F.lit(False)).alias("placeholder"),
                               F.coalesce(bad_death, F.lit(False)).alias("bad_death"))
        ranked = self.pending.persist(ranked)  # one numbering of the rows (_row) for the counts and the patients
        death = F.when(~F.col("placeholder") & ~F.col("bad_death"), F.col("dcd"))
        before_birth = F.coalesce(death < F.col("birth"), F.lit(False))
        one = F.col("_rank") == 1
        kept = ranked.where(one)

        def report(c: list[int]) -> None:
            n, no_id, n_kept, odd, bad_birth, n_placeholder, n_bad_death, n_before = c
            self.report.note("IR_BEN_R rows", n)
            self.decide("IR_BEN_R: BEN_NIR_PSA missing", "dropped", no_id, n)
            self.decide("IR_BEN_R: several rows per BEN_NIR_PSA", "lowest BEN_RNG_GEM kept", n - no_id - n_kept, n)
            self.decide("IR_BEN_R: BEN_SEX_COD outside {1, 2, 0, 9}", "sex unknown", odd, n_kept)
            self.decide("IR_BEN_R: BEN_NAI_ANN invalid or out of date_range", "birth unknown", bad_birth, n_kept)
            self.report.note("IR_BEN_R: BEN_DCD_DTE placeholder (alive)", n_placeholder)
            self.decide("IR_BEN_R: BEN_DCD_DTE out of date_range", "death unknown", n_bad_death, n_kept)
            self.decide("IR_BEN_R: BEN_DCD_DTE before birth", "death unknown", n_before, n_kept)

        self.pending.count(ranked, [
            F.col("pid").isNull(), one, one & F.col("sex").isNotNull() & ~F.col("sex").isin(0, 1, 2, 9),
            one & F.col("y").isNotNull() & F.col("birth").isNull(), one & F.col("placeholder"),
            one & F.col("bad_death"), one & before_birth], report)
        sex = F.when(F.col("sex") == 1, "M").when(F.col("sex") == 2, "F")
        death = F.when(~before_birth, death)
        patients = kept.select(F.col("pid").alias("patient_id"), "birth", sex.alias("sex"), death.alias("death"),
                               F.col("rng").alias("BEN_RNG_GEM"), "idt")
        return self._causes_of_death(patients)

    def _causes_of_death(self, patients: Any) -> Any:
        """Cause (and, when IR_BEN_R has none, date) of death from KI_CCI_R's earliest certificate."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        if not self.tables.has("KI_CCI_R"):
            self.pending.later(lambda: self.report.note("KI_CCI_R absent: no causes of death", 0))
            return self.pending.persist(patients.withColumn("death_cause", F.lit(None).cast("string")).drop("idt"))
        cols = self.tables.require("KI_CCI_R", ["BEN_IDT_ANO"])
        raw = self.tables.frame("KI_CCI_R")
        cause = trimmed_upper(raw["DCD_CIM_COD"]) if "DCD_CIM_COD" in cols else F.lit(None).cast("string")
        date = days(raw["BEN_DCD_DTE"], cols["BEN_DCD_DTE"], DT_FORMATS) if "BEN_DCD_DTE" in cols else \
            F.lit(None).cast("double")
        cci = raw.select(text(raw["BEN_IDT_ANO"]).alias("c_idt"), date.alias("dcd"), cause.alias("cause"),
                         F.monotonically_increasing_id().alias("_row"))
        ids = patients.select(F.col("idt").alias("c_idt"), F.col("patient_id").alias("c_pid")).where(
            F.col("c_idt").isNotNull())
        cci = self.pending.persist(cci.join(ids, "c_idt", "left"))  # one numbering (_row) for all its uses
        bad = F.col("dcd").isNotNull() & ((F.col("dcd") < self.bounds[0]) | (F.col("dcd") > self.bounds[1]))
        rows: dict[str, int] = {}

        def report(c: list[int]) -> None:
            rows["n"], absent, n_bad = c
            self.report.note("KI_CCI_R rows", rows["n"])
            self.decide("KI_CCI_R: BEN_IDT_ANO absent from IR_BEN_R", "dropped", absent, rows["n"])
            self.decide("KI_CCI_R: BEN_DCD_DTE out of date_range", "date ignored", n_bad, rows["n"])

        self.pending.count(cci, [F.col("c_pid").isNull(), F.col("c_pid").isNotNull() & bad], report)
        earliest = Window.partitionBy("c_pid").orderBy(F.col("dcd").asc_nulls_last(), F.col("_row"))
        cci = cci.where(F.col("c_pid").isNotNull()).withColumn("dcd", F.when(~bad, F.col("dcd"))).withColumn(
            "_rank", F.row_number().over(earliest))
        first = cci.where(F.col("_rank") == 1).select("c_pid", F.col("dcd").alias("c_dcd"), "cause")
        self.pending.count(cci, [F.col("_rank") == 1], lambda c: self.decide(
            "KI_CCI_R: several certificates per beneficiary", "earliest kept", c[0] - c[1], rows["n"]))
        out = patients.join(first, patients["patient_id"] == first["c_pid"], "left")
        fill = F.col("death").isNull() & F.col("c_dcd").isNotNull()
        out = self.pending.persist(out.select(
            "patient_id", "birth", "sex", F.when(fill, F.col("c_dcd")).otherwise(F.col("death")).alias("death"),
            "BEN_RNG_GEM", F.col("cause").alias("death_cause"), fill.alias("_fill")))
        self.pending.count(out, [F.col("_fill")], lambda c: self.decide(
            "KI_CCI_R: death date missing in IR_BEN_R", "taken from KI_CCI_R", c[1], rows["n"]))
        return out.drop("_fill")

    def death_events(self, patients: Any) -> None:
        """One death event per known death (code CIM10:<cause> or DEATH)."""
        from pyspark.sql import functions as F

        none = F.lit(None).cast("double")
        code = F.when(F.col("death_cause").isNotNull(), F.concat(F.lit("CIM10:"), F.col("death_cause"))) \
            .otherwise(F.lit("DEATH"))
        self.emit(patients.where(F.col("death").isNotNull()).select(
            F.col("patient_id").alias("pid"), F.col("death").alias("t"), none.alias("e"), none.alias("value"),
            code.alias("code"), F.lit(CATEGORIES.index("death")).alias("cat")))

    def stacked_events(self) -> Any:
        """The events of every source, stacked."""
        out = self.events[0]
        for part in self.events[1:]:
            out = out.unionByName(part)
        return out

    def complete_patients(self, events: Any, patients: Any, rule: str) -> Any:
        """Patients plus, with ``rule="keep"``, one row per patient seen in ``events`` but absent from IR_BEN_R
        (birth and sex unknown); ``_listed`` tells the IR_BEN_R ones. The counted decision is registered by
        :meth:`count_unknown` once the events are staged with this column."""
        from pyspark.sql import functions as F

        listed = patients.withColumn("_listed", F.lit(True))
        if rule == "drop":
            return listed
        known = patients.select(F.col("patient_id").alias("pid"))
        unknown = events.select("pid").distinct().join(known, "pid", "left_anti")
        none = F.lit(None)
        return listed.unionByName(unknown.select(
            F.col("pid").alias("patient_id"), none.cast("double").alias("birth"), none.cast("string").alias("sex"),
            none.cast("double").alias("death"), none.cast("int").alias("BEN_RNG_GEM"),
            none.cast("string").alias("death_cause"), F.lit(False).alias("_listed")))

    def count_unknown(self, staged: Any, rule: str) -> None:
        """Register the decision on events of patients absent from IR_BEN_R (``staged``: events with ``_k`` lines
        each and their patient's ``_listed``, NULL when the patient is not in the patients table)."""
        from pyspark.sql import functions as F

        unknown = ~F.coalesce(F.col("_listed"), F.lit(False))
        decision = "kept, birth/sex unknown" if rule == "keep" else "dropped"
        self.pending.sums(staged, [F.sum("_k"), F.sum(F.when(unknown, F.col("_k"))),
                                   F.countDistinct(F.when(unknown, F.col("pid")))], lambda c: self.decide(
            "events of patients absent from IR_BEN_R", decision, c[1], c[0], f"{c[2]} patients"))


__all__ = ["PATIENT_SCHEMA", "SparkSndsReader"]

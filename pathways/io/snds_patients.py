"""SNDS patients: the beneficiary referential IR_BEN_R (birth, sex, death), causes of death from KI_CCI_R, death
events, and patients seen only in the events."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pathways.data.dates import days_from_parts
from pathways.io.snds_services import SndsServiceEvents
from pathways.io.snds_tables import CATEGORIES, DT_FORMATS, SEX_CODES
from pathways.io.tabular import days_sql


class SndsReader(SndsServiceEvents):
    """Every step of :func:`~pathways.io.snds.read_snds`: the event sources plus the patients table."""

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
            f"TRY_CAST({opt['BEN_SEX_COD']} AS INTEGER) AS sex, {days_sql(opt['BEN_DCD_DTE'], DT_FORMATS)} AS dcd, "
            f"CAST({opt['BEN_IDT_ANO']} AS VARCHAR) AS idt FROM {self.ts.ref('IR_BEN_R')}").df()
        n = len(frame)
        self.report.note("IR_BEN_R rows", n)
        no_id = frame["pid"].isna().to_numpy()
        self.decide("IR_BEN_R: BEN_NIR_PSA missing", "dropped", int(no_id.sum()), n)
        frame = frame[~no_id].sort_values(["pid", "rng"], kind="stable", na_position="last")
        dup = frame["pid"].duplicated().to_numpy()
        self.decide("IR_BEN_R: several rows per BEN_NIR_PSA", "lowest BEN_RNG_GEM kept", int(dup.sum()), n)
        frame = frame[~dup].reset_index(drop=True)
        sex = frame["sex"].map(SEX_CODES)
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
        before_birth = death < birth  # NaN compares False
        self.decide("IR_BEN_R: BEN_DCD_DTE before birth", "death unknown", int(before_birth.sum()), len(frame))
        death = np.where(before_birth, np.nan, death)
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
        date = days_sql("BEN_DCD_DTE", DT_FORMATS) if "BEN_DCD_DTE" in cols else "NULL"
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
        patients["BEN_RNG_GEM"] = rank_column(patients["BEN_RNG_GEM"])
        return patients.sort_values("patient_id", kind="stable").reset_index(drop=True)


def rank_column(values: pd.Series) -> np.ndarray | pd.arrays.IntegerArray:
    """``BEN_RNG_GEM`` as both engines give it: numpy int32 when every patient has one, pandas' nullable Int32
    when some are missing (patients absent from IR_BEN_R, or no IR_BEN_R at all).

    Examples
    --------
    >>> rank_column(pd.Series([1, 2])).dtype, rank_column(pd.Series([1.0, np.nan])).dtype
    (dtype('int32'), Int32Dtype())
    >>> rank_column(pd.Series([], dtype=object)).dtype
    dtype('int32')
    """
    rank = pd.array(values.to_numpy(object) if values.dtype == object else values, dtype="Int32")
    return rank.to_numpy(np.int32) if not rank.isna().any() else rank


def _birth(year: pd.Series, month: pd.Series, bounds: tuple[float, float]) -> np.ndarray:
    """Birth (days since 1970) from year and month (day 1; missing or invalid month -> January)."""
    m = month.where(month.between(1, 12), 1).fillna(1)
    days = days_from_parts(year, m)
    days[(days < bounds[0]) | (days > bounds[1])] = np.nan
    return days


def _empty_patients() -> pd.DataFrame:
    return pd.DataFrame({"patient_id": pd.Series([], dtype=object), "birth": pd.Series([], dtype=float),
                         "sex": pd.Categorical([], categories=["F", "M"]), "death": pd.Series([], dtype=float),
                         "BEN_RNG_GEM": pd.Series([], dtype=object), "death_cause": pd.Series([], dtype=object)})


__all__ = ["SndsReader"]

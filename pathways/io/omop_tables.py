"""OMOP CDM tables as both engines of ``read_omop`` read them: domains, categories, extras, and the person and death
rules applied to the raw rows each engine fetches (:mod:`pathways.io.omop` for DuckDB, :mod:`pathways.io.spark.omop`
for Spark), so that the two engines share one definition."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from pathways.data.dates import days_from_parts
from pathways.errors import PathwaysInputError
from pathways.io.report import ReadReport

#: OMOP gender concepts.
GENDER_CONCEPTS = {8507: "M", 8532: "F"}
#: Gender concepts documented as "unknown / other / ambiguous": mapped to unknown sex without a warning.
UNKNOWN_GENDER_CONCEPTS = (0, 8551, 8570, 8521, 4214687)


@dataclass(frozen=True)
class Domain:
    """Where one OMOP domain lives: table, concept column, start/end date columns, optional numeric value."""

    table: str
    concept: str
    start: str
    end: str | None = None
    value: str | None = None
    supply: str | None = None  # days_supply column (drugs): fills a missing end date


DOMAINS: dict[str, Domain] = {
    "drug": Domain("drug_exposure", "drug_concept_id", "drug_exposure_start_date", "drug_exposure_end_date",
                   value="quantity", supply="days_supply"),
    "drug_era": Domain("drug_era", "drug_concept_id", "drug_era_start_date", "drug_era_end_date"),
    "condition": Domain("condition_occurrence", "condition_concept_id", "condition_start_date",
                        "condition_end_date"),
    "condition_era": Domain("condition_era", "condition_concept_id", "condition_era_start_date",
                            "condition_era_end_date"),
    "procedure": Domain("procedure_occurrence", "procedure_concept_id", "procedure_date"),
    "visit": Domain("visit_occurrence", "visit_concept_id", "visit_start_date", "visit_end_date"),
    "measurement": Domain("measurement", "measurement_concept_id", "measurement_date", value="value_as_number"),
    "observation": Domain("observation", "observation_concept_id", "observation_date", value="value_as_number"),
}
DEFAULT_DOMAINS = ("drug", "condition", "procedure", "visit", "measurement")
#: A domain whose table is absent falls back to its era table (and the other way round).
FALLBACK = {"drug": "drug_era", "drug_era": "drug", "condition": "condition_era", "condition_era": "condition"}
CATEGORIES = ("drug", "condition", "procedure", "visit", "measurement", "observation", "death")
#: event id column and ``cost.cost_domain_id`` of each clinical table (provider_id and cost rows attach to them)
EVENT_IDS = {"drug_exposure": ("drug_exposure_id", "Drug"),
             "condition_occurrence": ("condition_occurrence_id", "Condition"), "procedure_occurrence": ("procedure_occurrence_id", "Procedure"),
             "visit_occurrence": ("visit_occurrence_id", "Visit"), "measurement": ("measurement_id", "Measurement"),
             "observation": ("observation_id", "Observation")}
#: EventLog extras read from provider_id (prescriber of a drug, provider of anything else) and the cost table
EXTRAS = {"prescriber": "VARCHAR", "provider": "VARCHAR", "paid": "DOUBLE", "base": "DOUBLE"}


def resolve_domains(ts: Any, domains: Sequence[str] | None, report: ReadReport) -> list[str]:
    """The domains read: explicit ones must have their table; the default set falls back to era tables (noted)."""
    explicit = domains is not None
    wanted = list(DEFAULT_DOMAINS if domains is None else domains)
    unknown = [d for d in wanted if d not in DOMAINS]
    if unknown:
        raise PathwaysInputError(f"domains: unknown domain(s) {unknown}; choose among {sorted(DOMAINS)}")
    chosen: list[str] = []
    for name in wanted:
        if ts.has(DOMAINS[name].table):
            chosen.append(name)
            continue
        alt = FALLBACK.get(name)
        if not explicit and alt and ts.has(DOMAINS[alt].table) and alt not in wanted:
            report.note(f"domain {name}: table {DOMAINS[name].table} absent, read {DOMAINS[alt].table}", 0)
            chosen.append(alt)
        elif explicit:
            raise PathwaysInputError(f"domains: table {DOMAINS[name].table!r} of domain {name!r} not found")
        else:
            report.note(f"domain {name}: table {DOMAINS[name].table} absent, skipped", 0)
    return chosen


def clean_persons(frame: pd.DataFrame, pid_is_int: bool, report: ReadReport, errors: str,
                   bounds: tuple[float, float]) -> tuple[pd.DataFrame, bool]:
    """Persons (pid, birth, sex) from the raw columns (pid, y, y_bad, m, d, g, bdt), counted as both engines count."""
    def decide(step: str, decision: str, count: int, total: int | None = None, detail: str = "") -> None:
        report.decide(step, decision, count, total, detail, errors=errors)

    report.note("person rows", len(frame))
    missing_id = frame["pid"].isna().to_numpy()
    decide("person: missing person_id", "dropped", int(missing_id.sum()), len(frame))
    frame = frame[~missing_id]
    dup = frame["pid"].duplicated().to_numpy()
    decide("person: duplicate person_id", "first row kept", int(dup.sum()), len(frame))
    # OMOP person_id is an integer; CSV sources read it as text, so restore integers when every id is one.
    pid_is_int = pid_is_int or bool(frame["pid"].str.fullmatch(r"-?(0|[1-9]\d{0,17})").all())
    frame = frame[~dup].sort_values("pid", key=id_sort_key(pid_is_int)).reset_index(drop=True)
    birth = birth_days(frame, report, errors, bounds)
    sex = frame["g"].map(GENDER_CONCEPTS)
    odd = frame["g"].notna() & sex.isna() & ~frame["g"].isin(UNKNOWN_GENDER_CONCEPTS)
    decide("person: gender_concept_id not 8507/8532", "sex unknown", int(odd.sum()), len(frame),
           "documented unknown concepts (0, 8551, 8570, 8521) are not counted here")
    out = pd.DataFrame({"pid": frame["pid"].to_numpy(), "birth": birth,
                        "sex": pd.Categorical(sex, categories=["F", "M"])})
    return out, pid_is_int


def clean_deaths(frame: pd.DataFrame, known: pd.Series, report: ReadReport, errors: str,
                  bounds: tuple[float, float]) -> pd.DataFrame:
    """One row per known person with a valid death date (earliest kept) from the raw (pid, death, cause) rows."""
    def decide(step: str, decision: str, count: int, total: int | None = None, detail: str = "") -> None:
        report.decide(step, decision, count, total, detail, errors=errors)

    report.note("death rows", len(frame))
    bad = frame["death"].isna() | ~frame["death"].between(*bounds)
    decide("death: date missing, unparseable or out of date_range", "dropped", int(bad.sum()), len(frame))
    frame = frame[~bad]
    unknown = ~frame["pid"].isin(known).to_numpy()
    decide("death: person absent from person", "dropped", int(unknown.sum()), len(frame))
    frame = frame[~unknown].sort_values(["pid", "death"], kind="stable")
    dup = frame["pid"].duplicated().to_numpy()
    decide("death: several rows per person", "earliest kept", int(dup.sum()), len(frame))
    frame = frame[~dup]
    out = frame[["pid", "death"]].reset_index(drop=True)
    if frame["cause"].notna().any():
        out["death_cause"] = frame["cause"].to_numpy(dtype=object)
    return out


def id_sort_key(numeric: bool):
    """Sort person ids numerically when they are integers, else as text."""
    if numeric:
        return lambda s: pd.to_numeric(s)
    return None


def birth_days(frame: pd.DataFrame, report: ReadReport, errors: str, bounds: tuple[float, float]) -> np.ndarray:
    """Birth in days since 1970: birth_datetime, else year/month/day of birth (missing month/day -> 1)."""
    month_missing = frame["m"].isna() & frame["y"].notna() & frame["bdt"].isna()
    day_missing = frame["d"].isna() & frame["y"].notna() & frame["bdt"].isna()
    report.decide("person: month_of_birth missing", "month 1 (January) imputed", int(month_missing.sum()),
                  len(frame), errors=errors)
    report.decide("person: day_of_birth missing", "day 1 imputed", int((day_missing & ~month_missing).sum()),
                  len(frame), errors=errors)
    days = days_from_parts(frame["y"], frame["m"].fillna(1), frame["d"].fillna(1))
    days = np.where(frame["bdt"].notna(), frame["bdt"].to_numpy(dtype=float, na_value=np.nan), days)
    bad = np.isfinite(days) & ((days < bounds[0]) | (days > bounds[1]))
    bad |= (np.isnan(days) & frame["y"].notna().to_numpy()) | frame["y_bad"].to_numpy(bool)  # 'abc' too
    report.decide("person: birth date invalid or out of date_range", "birth unknown", int(bad.sum()), len(frame),
                  errors=errors)
    days[bad] = np.nan
    return days


def patients_frame(persons: pd.DataFrame, pid_is_int: bool) -> pd.DataFrame:
    ids = persons["pid"].astype(np.int64) if pid_is_int else persons["pid"].astype(object)
    out = pd.DataFrame({
        "patient_id": ids.to_numpy(), "birth": persons["birth"].to_numpy(float), "sex": persons["sex"].to_numpy(),
        "death": persons["death"].to_numpy(float), "start": persons["start"].to_numpy(float),
        "end": persons["end"].to_numpy(float), "n_observation_periods": persons["n_observation_periods"].to_numpy(),
    })
    out["sex"] = pd.Categorical(persons["sex"], categories=["F", "M"])
    if "death_cause" in persons:
        out["death_cause"] = persons["death_cause"].to_numpy()
    return out


__all__ = ["CATEGORIES", "DEFAULT_DOMAINS", "DOMAINS", "Domain", "EVENT_IDS", "EXTRAS", "FALLBACK", "GENDER_CONCEPTS",
           "UNKNOWN_GENDER_CONCEPTS", "birth_days", "clean_deaths", "clean_persons", "patients_frame", "resolve_domains"]

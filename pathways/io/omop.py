"""Read an OMOP CDM (v5.3 / v5.4) database into an EventLog.

Each clinical domain table becomes one event category; concept ids become codes ``<vocabulary_id>:<concept_code>``
through the ``concept`` table when present (else the concept id as text). All joins and filters run in DuckDB, so
the source may be larger than memory; only numeric arrays come back. Every repair or drop of messy rows is a
counted decision recorded in a :class:`~pathways.io.report.ReadReport`.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from pathways.data import EventLog
from pathways.errors import PathwaysInputError
from pathways.data.validate import check_choice
from pathways.data.dates import DEFAULT_DATE_RANGE, date_bounds
from pathways.io.build import build_eventlog, life_filters
from pathways.io.omop_tables import (
    CATEGORIES,
    DEFAULT_DOMAINS,
    DOMAINS,
    EVENT_IDS,
    EXTRAS,
    Domain,
    clean_deaths,
    clean_persons,
    patients_frame,
    resolve_domains,
)
from pathways.io.spark.omop import read_omop_spark
from pathways.io.report import ReadReport, check_errors_arg
from pathways.io.tabular import TableSet, days_sql, duckdb_config, in_range_sql, sql_literal

def read_omop(
    source: Any,
    *,
    domains: Sequence[str] | None = None,
    tables: Mapping[str, Any] | None = None,
    schema: str | None = None,
    concept_codes: bool = True,
    drug_ingredients: bool = False,
    outside_observation: str = "drop",
    keep_unmapped: bool = False,
    death_events: bool = True,
    duplicates: str = "drop",
    date_range: tuple[str, str] | None = DEFAULT_DATE_RANGE,
    errors: str = "warn",
    return_report: bool = False,
    memory_limit: str | None = None,
    threads: int | None = None,
    engine: str = "duckdb",
    spark: Any = None,
) -> EventLog | tuple[EventLog, ReadReport]:
    """Read OMOP CDM tables into an EventLog (times in days since 1970-01-01).

    Parameters
    ----------
    source : DuckDB database file, open DuckDB connection, or folder of ``<table>.csv`` / ``<table>.parquet``.
    domains : domains to read among ``drug``, ``drug_era``, ``condition``, ``condition_era``, ``procedure``,
        ``visit``, ``measurement``, ``observation``. ``None`` reads the default set and skips absent tables
        (``drug``/``condition`` fall back to their era tables); an explicit domain whose table is absent errors.
    tables : ``name -> path or DataFrame`` overriding or adding tables.
    schema : schema of the CDM tables inside a database.
    concept_codes : map concept ids to ``vocabulary_id:concept_code`` via ``concept`` when present.
    drug_ingredients : map drug concepts to their ingredient(s) via ``concept_ancestor`` (one event per
        ingredient of a combination drug; drugs without an ingredient keep their own concept).
    outside_observation : events of persons who have observation periods but that fall outside all of them:
        ``"drop"`` (default, OHDSI convention) or ``"keep"`` (the person's window is extended).
    keep_unmapped : keep events with concept id 0/NULL as code ``"0"`` (default: dropped, counted).
    death_events : add a ``death`` event (category ``death``) at each death date.
    duplicates : events identical in every field: ``"drop"`` (counted), ``"keep"`` or ``"raise"``.
    date_range : plausible dates; dates outside (placeholders) are treated as invalid. ``None`` accepts all.
    errors : ``"warn"`` (counted decisions, the default) or ``"raise"`` (any drop or repair raises).
    memory_limit, threads : DuckDB ``memory_limit`` (e.g. ``"2GB"``; joins and sorts spill to disk beyond it) and
        thread count for connections the reader opens (default: DuckDB's, 80 % of RAM and every core).
    return_report : also return the :class:`ReadReport`.
    engine : ``"duckdb"`` or ``"spark"``: the same EventLog and report computed with Spark DataFrames on the
        SparkSession ``spark`` (None: a local one) from a folder of CSV/parquet tables or ``tables``; the events come
        back through Arrow and are assembled as by the DuckDB engine (:mod:`pathways.io.spark.omop`).

    Returns
    -------
    EventLog (and ReadReport). The report is also in ``log.patients.attrs["read_report"]``. When a domain table
    has ``provider_id`` or a ``cost`` table exists, events carry the extras ``prescriber`` (provider_id of a drug
    exposure), ``provider`` (provider_id of other events; pseudonymous ids as text, never logged), ``paid``
    (sum of the event's ``cost.paid_by_payer`` rows) and ``base`` (sum of ``cost.amount_allowed``). Patients: every
    person of ``person`` in ``person_id`` order with birth, sex, death, observation window (first start, last
    end of their periods; first/last event when they have none) and ``n_observation_periods``.
    """
    check_errors_arg(errors)
    if outside_observation not in ("drop", "keep"):
        raise PathwaysInputError(f"outside_observation: expected 'drop' or 'keep', got {outside_observation!r}")
    check_choice("engine", engine, ("duckdb", "spark"))
    if engine == "spark":
        return read_omop_spark(source, spark=spark, domains=domains, tables=tables, schema=schema,
                               concept_codes=concept_codes, drug_ingredients=drug_ingredients,
                               outside_observation=outside_observation, keep_unmapped=keep_unmapped,
                               death_events=death_events, duplicates=duplicates, date_range=date_range,
                               errors=errors, return_report=return_report, memory_limit=memory_limit,
                               threads=threads)
    report = ReadReport("read_omop")
    with TableSet(source, tables=tables, schema=schema, config=duckdb_config(memory_limit, threads)) as ts:
        reader = _OmopReader(ts, report, errors, date_bounds(date_range))
        persons, pid_is_int = reader.persons()
        events = reader.events(resolve_domains(ts, domains, report), concept_codes, drug_ingredients,
                               keep_unmapped)
        deaths = reader.deaths(concept_codes, persons["pid"])
        if death_events and len(deaths):
            events = reader.add_death_events(events, deaths)
        persons = persons.merge(deaths, on="pid", how="left") if len(deaths) else persons.assign(death=np.nan)
        events = reader.drop_unknown_persons(events)
        persons, events = reader.observation(persons, events, outside_observation)
        patients = patients_frame(persons, pid_is_int)
        log = build_eventlog(ts, events, patients, CATEGORIES, report, duplicates, errors,
                             filters=life_filters(patients), extra_columns=reader.extra_names)
    return (log, report) if return_report else log


class _OmopReader:
    """The steps of :func:`read_omop`, each one SQL statement plus its counted decisions."""

    def __init__(self, ts: TableSet, report: ReadReport, errors: str, bounds: tuple[float, float]):
        self.ts, self.report, self.errors, self.bounds = ts, report, errors, bounds
        self.extra_names: list[str] = []
        self._costs: str | None = None

    def _use_extras(self, domains: list[str]) -> None:
        """Provider ids and amounts are read when a domain table has provider_id or a cost table exists."""
        tables = [DOMAINS[d].table for d in domains]
        if self.ts.has("cost") or any("PROVIDER_ID" in self.ts.columns(t) for t in tables if t in EVENT_IDS):
            self.extra_names = list(EXTRAS)
        if self.ts.has("cost"):
            cols = self.ts.require("cost", ["cost_event_id", "cost_domain_id"])
            paid, base = (f"sum(TRY_CAST({c} AS DOUBLE))" if c.upper() in cols else "CAST(NULL AS DOUBLE)"
                          for c in ("paid_by_payer", "amount_allowed"))
            self._costs = self.ts.temp_table(
                f"SELECT CAST(cost_event_id AS VARCHAR) AS eid, CAST(cost_domain_id AS VARCHAR) AS dom, "
                f"{paid} AS paid, {base} AS base FROM {self.ts.ref('cost')} GROUP BY 1, 2", "omop_costs")

    def _extras_sql(self, table: str, cols: dict[str, str]) -> tuple[str, str, str]:
        """(inner columns, outer columns, cost join) of the extras for one domain table (alias x outside)."""
        if not self.extra_names:
            return "", "", ""
        event_id, dom = EVENT_IDS.get(table, (None, None))
        # OMOP ids are integers (a float column when read with gaps: 501.0 is provider 501)
        prov = ("coalesce(CAST(TRY_CAST(provider_id AS BIGINT) AS VARCHAR), CAST(provider_id AS VARCHAR))"
                if event_id and "PROVIDER_ID" in cols else "CAST(NULL AS VARCHAR)")
        eid = f"CAST({event_id} AS VARCHAR)" if event_id and event_id.upper() in cols else "CAST(NULL AS VARCHAR)"
        drug = table == "drug_exposure"
        outer = (f", {'x.prov' if drug else 'CAST(NULL AS VARCHAR)'} AS prescriber, "
                 f"{'CAST(NULL AS VARCHAR)' if drug else 'x.prov'} AS provider")
        if self._costs is None or dom is None:
            return f", {prov} AS prov, {eid} AS eid", outer + ", CAST(NULL AS DOUBLE) AS paid, " \
                "CAST(NULL AS DOUBLE) AS base", ""
        return (f", {prov} AS prov, {eid} AS eid", outer + ", k.paid AS paid, k.base AS base",
                f"LEFT JOIN {self._costs} k ON k.eid = x.eid AND k.dom = {sql_literal(dom)}")

    def decide(self, step: str, decision: str, count: int, total: int | None = None, detail: str = "") -> None:
        self.report.decide(step, decision, count, total, detail, errors=self.errors)

    # -- person ---------------------------------------------------------------------------------------------------
    def persons(self) -> tuple[pd.DataFrame, bool]:
        """Persons table (pid text, birth, sex) deduplicated; whether person ids are integers."""
        cols = self.ts.require("person", ["person_id", "year_of_birth"])
        pid_is_int = any(k in cols["PERSON_ID"] for k in ("INT", "HUGEINT"))
        opt = {c: (c if c.upper() in cols else "NULL") for c in
               ("month_of_birth", "day_of_birth", "gender_concept_id", "birth_datetime")}
        frame = self.ts.con.execute(
            f"SELECT CAST(person_id AS VARCHAR) AS pid, TRY_CAST(year_of_birth AS INTEGER) AS y, "
            f"nullif(trim(CAST(year_of_birth AS VARCHAR)), '') IS NOT NULL AND TRY_CAST(year_of_birth AS INTEGER) "
            f"IS NULL AS y_bad, "
            f"TRY_CAST({opt['month_of_birth']} AS INTEGER) AS m, TRY_CAST({opt['day_of_birth']} AS INTEGER) AS d, "
            f"TRY_CAST({opt['gender_concept_id']} AS BIGINT) AS g, "
            f"{days_sql(opt['birth_datetime'])} AS bdt FROM {self.ts.ref('person')}"
        ).df()
        return clean_persons(frame, pid_is_int, self.report, self.errors, self.bounds)

    # -- clinical events ----------------------------------------------------------------------------------------
    def events(self, domains: list[str], concept_codes: bool, ingredients: bool, keep_unmapped: bool) -> str:
        """Temp table of events (pid, t, e, value, code, cat) from every domain table."""
        self._use_extras(domains)
        has_concept = concept_codes and self.ts.optional(  # absent or malformed: codes are concept ids
            "concept", ["concept_id", "vocabulary_id", "concept_code"], self.report, self.errors) is not None
        self._concept_ok = has_concept
        parts = [self._domain_sql(name, keep_unmapped, ingredients) for name in domains]
        if not parts:
            raise PathwaysInputError("domains: none of the requested domain tables exist in the source")
        raw = self.ts.temp_table(" UNION ALL ".join(parts), "omop_raw")
        return self._map_codes(raw, has_concept)

    def _domain_sql(self, name: str, keep_unmapped: bool, ingredients: bool) -> str:
        dom = DOMAINS[name]
        cols = self.ts.require(dom.table, ["person_id", dom.concept, dom.start])
        ref = self.ts.ref(dom.table)
        cat = CATEGORIES.index(name.replace("_era", ""))
        start = days_sql(dom.start)
        end = days_sql(dom.end) if dom.end and dom.end.upper() in cols else "NULL"
        supply = (f"TRY_CAST({dom.supply} AS DOUBLE)" if dom.supply and dom.supply.upper() in cols else "NULL")
        value = f"TRY_CAST({dom.value} AS DOUBLE)" if dom.value and dom.value.upper() in cols else "NULL"
        n = self.ts.scalar(f"SELECT count(*) FROM {ref}")
        self.report.note(f"{dom.table} rows", n)
        concept = f"TRY_CAST({dom.concept} AS BIGINT)"
        stats = self.ts.con.execute(
            f"SELECT count(*) FILTER (WHERE s IS NULL), count(*) FILTER (WHERE s IS NOT NULL AND NOT ({in_range_sql('s', self.bounds)})), "
            f"count(*) FILTER (WHERE coalesce(c, 0) = 0), count(*) FILTER (WHERE s IS NOT NULL AND e IS NULL), "
            f"count(*) FILTER (WHERE e IS NULL AND sup > 0), count(*) FILTER (WHERE e < s), "
            f"count(*) FILTER (WHERE e IS NOT NULL AND NOT ({in_range_sql('e', self.bounds)})) "
            f"FROM (SELECT {start} AS s, {end} AS e, {concept} AS c, {supply} AS sup FROM {ref})"
        ).fetchall()[0]
        self.decide(f"{dom.table}: start date missing or unparseable", "dropped", stats[0], n)
        self.decide(f"{dom.table}: start date out of date_range", "dropped", stats[1], n)
        self.decide(f"{dom.table}: concept id 0 or NULL", "kept as code '0'" if keep_unmapped else "dropped",
                    stats[2], n)
        self.decide(f"{dom.table}: end date out of date_range", "end missing", stats[6], n)
        if dom.end:
            self.decide(f"{dom.table}: end date missing", "point event (end NaN) unless days_supply",
                        stats[3] - stats[4], n)
            if dom.supply:
                self.decide(f"{dom.table}: end date missing, days_supply given", "end = start + days_supply - 1",
                            stats[4], n)
            self.decide(f"{dom.table}: end before start", "end = start", stats[5], n)
        keep_concept = "TRUE" if keep_unmapped else "coalesce(x.c, 0) <> 0"
        inner, outer, cost_join = self._extras_sql(dom.table, cols)
        sql = (
            f"SELECT x.pid, x.s AS t, CASE WHEN x.e IS NULL AND x.sup > 0 THEN x.s + x.sup - 1 WHEN x.e < x.s THEN x.s "
            f"ELSE x.e END AS e, x.v AS value, coalesce(x.c, 0) AS c, {cat} AS cat{outer} FROM ("
            f"SELECT CAST(person_id AS VARCHAR) AS pid, {start} AS s, "
            f"CASE WHEN {in_range_sql(end, self.bounds)} THEN {end} END AS e, {value} AS v, {concept} AS c, "
            f"{supply} AS sup{inner} FROM {ref}) x {cost_join} "
            f"WHERE x.s IS NOT NULL AND {in_range_sql('x.s', self.bounds)} AND {keep_concept}"
        )
        if name == "drug" and ingredients:
            sql = self._ingredients_sql(sql)
        return sql

    def _ingredients_sql(self, drug_sql: str) -> str:
        if not (self.ts.has("concept_ancestor") and self.ts.has("concept")):
            raise PathwaysInputError("drug_ingredients=True needs the 'concept_ancestor' and 'concept' tables")
        self.ts.require("concept_ancestor", ["ancestor_concept_id", "descendant_concept_id"])
        self.ts.require("concept", ["concept_id", "concept_class_id"])
        ing = self.ts.temp_table(
            f"SELECT DISTINCT TRY_CAST(ca.descendant_concept_id AS BIGINT) AS c, "
            f"TRY_CAST(ca.ancestor_concept_id AS BIGINT) AS ing FROM {self.ts.ref('concept_ancestor')} ca "
            f"JOIN {self.ts.ref('concept')} k ON TRY_CAST(k.concept_id AS BIGINT) = TRY_CAST(ca.ancestor_concept_id AS BIGINT) "
            f"WHERE k.concept_class_id = 'Ingredient'", "ingredients")
        drugs = self.ts.temp_table(drug_sql, "drugs")
        n, no_ing, extra = self.ts.con.execute(
            f"SELECT (SELECT count(*) FROM {drugs}), "
            f"(SELECT count(*) FROM {drugs} d WHERE NOT EXISTS (SELECT 1 FROM {ing} i WHERE i.c = d.c)), "
            f"(SELECT count(*) FROM {drugs} d JOIN {ing} i ON i.c = d.c) - "
            f"(SELECT count(*) FROM {drugs} d WHERE EXISTS (SELECT 1 FROM {ing} i WHERE i.c = d.c))"
        ).fetchall()[0]
        self.decide("drug_exposure: no ingredient in concept_ancestor", "own concept kept", no_ing, n)
        self.decide("drug_exposure: combination drugs", "one extra event per extra ingredient", extra, n)
        # a combination drug's amounts go with its first ingredient only: they sum as in the cost table
        first = "row_number() OVER (PARTITION BY d.rid ORDER BY i.ing) = 1"
        extras = "".join(f", d.{n}" if EXTRAS[n] == "VARCHAR" else f", CASE WHEN {first} THEN d.{n} END AS {n}"
                         for n in self.extra_names)
        return (f"SELECT d.pid, d.t, d.e, d.value, coalesce(i.ing, d.c) AS c, d.cat{extras} FROM "
                f"(SELECT *, row_number() OVER () AS rid FROM {drugs}) d LEFT JOIN {ing} i ON i.c = d.c")

    def _map_codes(self, raw: str, has_concept: bool) -> str:
        if not has_concept:
            return self.ts.temp_table(
                f"SELECT pid, t, e, value, CAST(c AS VARCHAR) AS code, cat{self._extra_list('')} FROM {raw}",
                "omop_events")
        concept = self.ts.ref("concept")
        events = self.ts.temp_table(
            f"SELECT r.pid, r.t, r.e, r.value, CASE WHEN k.cid IS NULL THEN CAST(r.c AS VARCHAR) "
            f"ELSE k.vocabulary_id || ':' || k.concept_code END AS code, r.cat{self._extra_list('r.')}, "
            f"k.cid IS NULL AS unmapped "
            f"FROM {raw} r LEFT JOIN (SELECT DISTINCT ON (cid) TRY_CAST(concept_id AS BIGINT) AS cid, "
            f"vocabulary_id, concept_code FROM {concept}) k ON k.cid = r.c", "omop_events")
        n, unmapped = self.ts.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE unmapped AND code <> '0') FROM {events}").fetchall()[0]
        self.decide("concept id absent from concept table", "concept id kept as code", unmapped, n)
        return events

    def _extra_list(self, alias: str) -> str:
        return "".join(f", {alias}{n}" for n in self.extra_names)

    # -- death --------------------------------------------------------------------------------------------------
    def deaths(self, concept_codes: bool, known: pd.Series) -> pd.DataFrame:
        """One row per person with a valid death date: pid, death (days) and death_cause when recorded."""
        cols = self.ts.optional("death", ["person_id", "death_date"], self.report, self.errors)
        if cols is None:  # absent, or malformed: reported, skipped
            return pd.DataFrame({"pid": pd.Series([], dtype=object), "death": pd.Series([], dtype=float)})
        ref = self.ts.ref("death")
        cause = "CAST(TRY_CAST(d.cause_concept_id AS BIGINT) AS VARCHAR)" if "CAUSE_CONCEPT_ID" in cols else "NULL"
        join = ""
        if cause != "NULL" and concept_codes and getattr(self, "_concept_ok", False):
            join = (f"LEFT JOIN (SELECT DISTINCT ON (cid) TRY_CAST(concept_id AS BIGINT) AS cid, "
                    f"vocabulary_id || ':' || concept_code AS kcode FROM {self.ts.ref('concept')}) k "
                    f"ON k.cid = TRY_CAST(d.cause_concept_id AS BIGINT)")
            cause = f"coalesce(k.kcode, {cause})"
        frame = self.ts.con.execute(
            f"SELECT CAST(d.person_id AS VARCHAR) AS pid, {days_sql('d.death_date')} AS death, {cause} AS cause "
            f"FROM {ref} d {join}").df()
        return clean_deaths(frame, known, self.report, self.errors, self.bounds)

    def add_death_events(self, events: str, deaths: pd.DataFrame) -> str:
        """Append one ``death`` event per death date."""
        self.ts.con.register("pw_deaths", deaths[["pid", "death"]])
        try:
            self.ts.con.execute(
                f"INSERT INTO {events} SELECT pid, death, NULL, NULL, 'death', {CATEGORIES.index('death')}"
                + ", NULL" * len(self.extra_names) + (", FALSE" if _has_column(self.ts, events, "unmapped") else "") + " FROM pw_deaths")
        finally:
            self.ts.con.unregister("pw_deaths")
        return events

    def drop_unknown_persons(self, events: str) -> str:
        n, unknown = self.ts.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE p.pid IS NULL) FROM {events} e "
            f"LEFT JOIN (SELECT DISTINCT CAST(person_id AS VARCHAR) AS pid FROM {self.ts.ref('person')}) p "
            f"ON e.pid = p.pid").fetchall()[0]
        self.decide("events of persons absent from person", "dropped", unknown, n)
        if not unknown:
            return events
        return self.ts.temp_table(
            f"SELECT * FROM {events} e WHERE e.pid IN (SELECT CAST(person_id AS VARCHAR) FROM {self.ts.ref('person')})",
            "omop_known")

    # -- observation periods ------------------------------------------------------------------------------------
    def observation(self, persons: pd.DataFrame, events: str, rule: str) -> tuple[pd.DataFrame, str]:
        """Attach observation windows; apply ``outside_observation`` to events outside every period."""
        persons = persons.assign(start=np.nan, end=np.nan, n_observation_periods=0)
        if self.ts.optional("observation_period", ["person_id", "observation_period_start_date",
                                                   "observation_period_end_date"], self.report, self.errors) is None:
            return persons, events  # absent or malformed (reported): windows = first/last event
        ref = self.ts.ref("observation_period")
        raw = self.ts.temp_table(
            f"SELECT CAST(person_id AS VARCHAR) AS pid, {days_sql('observation_period_start_date')} AS s, "
            f"{days_sql('observation_period_end_date')} AS e FROM {ref}", "op_raw")
        self.ts.con.register("pw_persons", persons[["pid"]])
        n, unknown, no_start, no_end, reversed_ = self.ts.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE pid NOT IN (SELECT pid FROM pw_persons)), "
            f"count(*) FILTER (WHERE s IS NULL OR NOT ({in_range_sql('s', self.bounds)})), "
            f"count(*) FILTER (WHERE s IS NOT NULL AND (e IS NULL OR NOT ({in_range_sql('e', self.bounds)}))), "
            f"count(*) FILTER (WHERE e < s) FROM {raw}").fetchall()[0]
        self.report.note("observation_period rows", n)
        self.decide("observation_period: person absent from person", "dropped", unknown, n)
        self.decide("observation_period: start missing or invalid", "dropped", no_start, n)
        self.decide("observation_period: end missing or invalid", "end = last date in the database", no_end, n,
                    "open period")
        self.decide("observation_period: end before start", "dropped", reversed_, n)
        # "Last date in the database": the latest event date or valid period end, whichever is later.
        db_end = self.ts.scalar(
            f"SELECT greatest((SELECT max(coalesce(e, t)) FROM {events}), "
            f"(SELECT max(e) FROM {raw} WHERE {in_range_sql('e', self.bounds)}))")
        fill_end = "NULL" if db_end is None else repr(float(db_end))
        periods = self.ts.temp_table(
            f"SELECT pid, s, CASE WHEN e IS NULL OR NOT ({in_range_sql('e', self.bounds)}) THEN greatest(s, {fill_end}) "
            f"ELSE e END AS e FROM {raw} WHERE pid IN (SELECT pid FROM pw_persons) AND s IS NOT NULL "
            f"AND {in_range_sql('s', self.bounds)} AND NOT coalesce(e < s, FALSE)", "op")
        windows = self.ts.con.execute(
            f"SELECT pid, min(s) AS start, max(e) AS end, count(*) AS n FROM {periods} GROUP BY pid").df()
        merged = persons.drop(columns=["start", "end", "n_observation_periods"]).merge(windows, on="pid", how="left")
        persons = persons.assign(start=merged["start"].to_numpy(float), end=merged["end"].to_numpy(float),
                                 n_observation_periods=merged["n"].fillna(0).to_numpy(np.int64))
        self.report.note("persons without observation period (window = first/last event)",
                         int((persons["n_observation_periods"] == 0).sum()))
        flagged = self.ts.temp_table(
            f"SELECT e.*, EXISTS (SELECT 1 FROM {periods} p WHERE p.pid = e.pid) AS has_op, "
            f"EXISTS (SELECT 1 FROM {periods} p WHERE p.pid = e.pid AND e.t BETWEEN p.s AND p.e) AS inside "
            f"FROM {events} e", "omop_flagged")
        n_ev, outside = self.ts.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE has_op AND NOT inside) FROM {flagged}").fetchall()[0]
        self.ts.con.unregister("pw_persons")
        if rule == "drop":
            self.decide("events outside every observation period", "dropped", outside, n_ev)
            return persons, self.ts.temp_table(
                f"SELECT * FROM {flagged} WHERE inside OR NOT has_op", "omop_inside")
        self.decide("events outside every observation period", "kept, window extended", outside, n_ev)
        span = self.ts.con.execute(f"SELECT pid, min(t) AS lo, max(t) AS hi FROM {flagged} GROUP BY pid").df()
        span = persons[["pid"]].merge(span, on="pid", how="left")
        has_window = persons["n_observation_periods"].to_numpy() > 0
        start = persons["start"].to_numpy(float)
        end = persons["end"].to_numpy(float)
        persons["start"] = np.where(has_window, np.fmin(start, span["lo"].to_numpy(float)), start)
        persons["end"] = np.where(has_window, np.fmax(end, span["hi"].to_numpy(float)), end)
        return persons, flagged

def _has_column(ts: TableSet, table: str, column: str) -> bool:
    return column.upper() in {r[0].upper() for r in ts.con.execute(f"DESCRIBE {table}").fetchall()}


__all__ = ["read_omop", "DOMAINS", "DEFAULT_DOMAINS", "CATEGORIES", "Domain"]

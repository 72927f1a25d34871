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

import inspect
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from pathways.data import EventLog
from pathways.data.dates import DEFAULT_DATE_RANGE, date_bounds
from pathways.data.validate import check_choice
from pathways.errors import PathwaysInputError
from pathways.io.build import EventFilter, build_eventlog
from pathways.io.report import ReadReport, check_errors_arg
from pathways.io.snds_patients import SndsReader
from pathways.io.snds_tables import (
    ALL_SOURCES, ATC_LEVELS, CATEGORIES, DCIR_KEYS, MCO_KEYS, PLACEHOLDER_DATES, SOURCES, load_cip_to_atc,
)
from pathways.io.spark.snds import read_snds_spark, write_snds_shards
from pathways.io.tabular import TableSet, duckdb_config


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
    events_before_birth: str = "drop",
    death_events: bool = True,
    duplicates: str = "drop",
    date_range: tuple[str, str] | None = DEFAULT_DATE_RANGE,
    errors: str = "warn",
    return_report: bool = False,
    memory_limit: str | None = None,
    threads: int | None = None,
    join_partition_rows: int | None = 4_000_000,
    engine: str = "duckdb",
    spark: Any = None,
) -> EventLog | tuple[EventLog, ReadReport]:
    """Read SNDS tables into an EventLog (times in days since 1970-01-01, patient id = ``BEN_NIR_PSA``).

    Parameters
    ----------
    folder : folder searched recursively for ``ER_PRS_F``, ``ER_PHA_F``, ``ER_CAM_F``, ``T_MCOaaB/C/D/A`` (the
        ``aa`` may be a two-digit year: all years are stacked), ``IR_BEN_R``, ``KI_CCI_R`` as CSV or parquet; or a
        DuckDB database / connection holding them.
    sources : event sources among ``dcir_drugs`` (ER_PHA_F), ``dcir_acts`` (ER_CAM_F), ``mco`` (stays,
        diagnoses, acts) and ``deaths`` (death events), the default; and, opt-in (results computed without it
        stay as they were), ``dcir_services``: ER_PRS_F lines with no ER_PHA_F / ER_CAM_F detail row on the nine
        keys (consultations, visits, nursing, biology, dispensing fees, ...) as events ``PRS:<PRS_NAT_REF>``
        (category ``service``, time ``EXE_SOI_DTD``, value ``PRS_ACT_QTE``, the DCIR extras; information lines,
        ``PRS_ACT_QTE <= 0`` regularisations and invalid dates handled as for dispensations). Lines with a
        detail row are never read twice. Absent tables of a requested source raise.
    tables : ``name -> path or DataFrame`` overriding or adding tables.
    cip_to_atc : ``IR_PHA_R``-style mapping (DataFrame, CSV or parquet path) with columns ``cip_column`` (CIP13)
        and ``atc_column`` (ATC); drugs become ``ATC:<code>``, unmapped CIP13 stay ``CIP13:<code>`` (counted).
    atc_level : truncate ATC codes to a level (1..5; 5 = full 7-character substance).
    exclude_information_lines : drop ER_PRS_F lines with ``DPN_QLF = 71`` ("for information" lines that
        duplicate a payment, the SNDS community rule).
    drop_nonpositive_quantity : drop dispensations with ``PHA_ACT_QSN <= 0`` (and services with ``PRS_ACT_QTE <= 0``:
        cancellations, regularisations);
        when amounts are read, their ``PRS_PAI_MNT`` / ``BSE_REM_MNT`` are added to the dispensation they correct
        (same patient, care date, code and executing provider), so amounts sum as in the table.
    mco_exclude_errors : drop stays in error GHMs (``GRG_GHM`` starting with ``90``) and stays whose
        ``T_MCOaaC`` quality checks (``NIR_RET``, ``SEJ_RET``, ... ) are not ``'0'``.
    window : study window ``(start, end)`` dates: events outside are dropped, patients' windows set to it
        (ended at death when earlier).
    unknown_patients : patients with events but absent from IR_BEN_R: ``"keep"`` (unknown birth/sex) or
        ``"drop"``.
    events_after_death : ``"drop"`` (default) or ``"keep"``.
    events_before_birth : events dated before the beneficiary's birth (month of BEN_NAI_MOI, year BEN_NAI_ANN):
        ``"drop"`` (default, a counted data problem that raises with ``errors="raise"``) or ``"keep"`` (counted).
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
    engine : ``"duckdb"`` (one machine) or ``"spark"``: the same semantics on a SparkSession ``spark`` (None: a
        local one), through a sharded event dataset (:func:`pathways.io.spark.read_snds_spark`); ``memory_limit``,
        ``threads`` and ``join_partition_rows`` are DuckDB's and ignored there.

    Returns
    -------
    EventLog (and ReadReport); the report is also in ``log.patients.attrs["read_report"]``. Categories: drug,
    act (DCIR CCAM), stay, main_diagnosis, linked_diagnosis, associated_diagnosis, hospital_act, death, service
    (DCIR lines without detail, source ``dcir_services``).
    Patients carry ``birth`` (year + month, day 1), ``sex``, ``death``, ``death_cause`` and ``BEN_RNG_GEM`` (numpy
    int32, or pandas' nullable Int32 when some patients have none, e.g. without IR_BEN_R).
    When ER_PRS_F has any of ``PFS_PRE_NUM``, ``PFS_EXE_NUM``, ``ETB_PRE_FIN``, ``PRS_PAI_MNT``, ``BSE_REM_MNT``,
    the DCIR events carry the extras ``prescriber``, ``provider``, ``institution`` (pseudonymous ids as text, None
    when absent; never logged) and ``paid``, ``base`` (euros, NaN when absent). PMSI stay costs come from the
    optional valorisation table ``T_MCOaaVALO`` (or ``T_MCO<yy>VALO``), joined to the stays on ``ETA_NUM`` +
    ``RSA_NUM``: the ``stay`` event carries ``MNT_TOT_AM`` (total billed to the health insurance) as ``paid`` and
    ``MNT_BR`` (reimbursement base) as ``base``, several rows of a stay summed; a kept stay without a row keeps
    missing amounts (a counted decision); without the table the stays have none (noted). Diagnoses, hospital acts
    and deaths have them missing. Abuse analyses (:mod:`pathways.abuse`) need ``events_after_death="keep"`` to see billing after death.
    """
    check_choice("engine", engine, ("duckdb", "spark"))
    if engine == "spark":
        return read_snds_spark(
            folder, spark=spark, return_report=return_report, sources=sources, tables=tables, cip_to_atc=cip_to_atc,
            cip_column=cip_column, atc_column=atc_column, atc_level=atc_level,
            exclude_information_lines=exclude_information_lines, drop_nonpositive_quantity=drop_nonpositive_quantity,
            mco_exclude_errors=mco_exclude_errors, window=window, unknown_patients=unknown_patients,
            events_after_death=events_after_death, events_before_birth=events_before_birth,
            death_events=death_events, duplicates=duplicates, date_range=date_range, errors=errors)
    check_errors_arg(errors)
    check_choice("unknown_patients", unknown_patients, ("keep", "drop"))
    check_choice("events_after_death", events_after_death, ("keep", "drop"))
    check_choice("events_before_birth", events_before_birth, ("keep", "drop"))
    bad_sources = [s for s in sources if s not in ALL_SOURCES]
    if bad_sources:
        raise PathwaysInputError(f"sources: unknown source(s) {bad_sources}; choose among {list(ALL_SOURCES)}")
    if atc_level is not None and atc_level not in ATC_LEVELS:
        raise PathwaysInputError(f"atc_level: expected one of {sorted(ATC_LEVELS)}, got {atc_level!r}")
    if join_partition_rows is not None and int(join_partition_rows) < 1:
        raise PathwaysInputError(f"join_partition_rows: expected >= 1 or None, got {join_partition_rows!r}")
    bounds = date_bounds(date_range)  # both checked before any table is read
    if window is not None:
        date_bounds(window, "window")
    report = ReadReport("read_snds")
    with TableSet(folder, tables=tables, config=duckdb_config(memory_limit, threads)) as ts:
        reader = SndsReader(ts, report, errors, bounds, join_partition_rows)
        reader.use_provider_columns(sources)
        if "dcir_drugs" in sources:
            reader.dcir_drugs(exclude_information_lines, drop_nonpositive_quantity,
                              load_cip_to_atc(cip_to_atc, cip_column, atc_column), atc_level)
        if "dcir_acts" in sources:
            reader.dcir_acts(exclude_information_lines)
        if "dcir_services" in sources:
            reader.dcir_services(exclude_information_lines, drop_nonpositive_quantity)
        if "mco" in sources:
            reader.mco(mco_exclude_errors)
        patients = reader.patients()
        if "deaths" in sources and death_events:
            reader.death_events(patients)
        if reader.events is None:
            raise PathwaysInputError("sources: no event source selected")
        patients = reader.complete_patients(reader.events, patients, unknown_patients)
        filters = _filters(patients, window, events_after_death, events_before_birth, report)
        if window is not None:
            patients = _apply_window(patients, window, events_after_death)
        log = build_eventlog(ts, reader.events, patients, CATEGORIES, report, duplicates, errors, filters,
                             pid_dictionary=reader.pids, extra_columns=reader.extra_names)
    return (log, report) if return_report else log



def _filters(patients: pd.DataFrame, window: tuple[str, str] | None, after_death: str, before_birth: str,
             report: ReadReport) -> list[EventFilter]:
    """Numpy filters applied once patient indices are known: before birth, study window, after death."""
    birth = patients["birth"].to_numpy(float)
    early = lambda p, t: t < np.nan_to_num(birth[p], nan=-np.inf)  # noqa: E731
    # a data problem (raises under errors='raise') when dropped; counted, not dropped, when kept
    out = [lambda p, t: ("events before birth", "dropped" if before_birth == "drop" else "kept", early(p, t),
                         "data" if before_birth == "drop" else "kept")]
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




#: read_snds parameters that belong to the DuckDB engine or to the call itself, not to the Spark writer
DUCKDB_ONLY = ("memory_limit", "threads", "join_partition_rows", "engine", "spark", "return_report")


def snds_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` over :func:`read_snds`' own defaults: read_snds' signature is the one home of every option's
    default, the Spark engine takes them from there (an unknown or DuckDB-only name raises).

    Examples
    --------
    >>> opts = snds_options({"window": ("2020-01-01", "2020-12-31")})
    >>> opts["window"], opts["duplicates"], "memory_limit" in opts
    (('2020-01-01', '2020-12-31'), 'drop', False)
    """
    defaults = {name: p.default for name, p in inspect.signature(read_snds).parameters.items()
                if p.kind is p.KEYWORD_ONLY and name not in DUCKDB_ONLY}
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise PathwaysInputError(f"options: unknown option(s) {unknown} for the Spark engine; it takes read_snds' "
                                 f"options {sorted(defaults)}")
    return {**defaults, **options}


def write_snds_dataset(folder: Any, output: str | Path, *, spark: Any = None, n_shards: int = 16,
                       **options: Any) -> ReadReport:
    """Read SNDS tables with Spark into a sharded event dataset at ``output`` (read it with
    :class:`pathways.data.dataset.EventDataset`): the national-scale form of ``read_snds(..., engine="spark")``.

    Parameters
    ----------
    folder : folder of CSV/parquet SNDS tables (found as the DuckDB engine finds them).
    output : dataset folder (local path); built beside it and swapped in whole, so an existing dataset is
        replaced only once the new one is complete. A folder that is no pathways dataset is never replaced.
    spark : a SparkSession (any master); None starts :func:`~pathways.io.spark.session.spark_session`.
    n_shards : number of shards (patient hash buckets): a shard's events must fit one worker's memory downstream.
    options : the options of :func:`read_snds` (``sources``, ``tables``, ``cip_to_atc``, ``window``,
        ``duplicates``, ``errors``, ...), with read_snds' defaults (:func:`snds_options`); its DuckDB-only
        ``memory_limit``, ``threads`` and ``join_partition_rows`` are refused.

    Returns
    -------
    The read report (also in ``<output>/metadata/read_report.parquet``).
    """
    return write_snds_shards(folder, output, snds_options(options), spark=spark, n_shards=n_shards)


__all__ = ["read_snds", "write_snds_dataset", "snds_options", "DCIR_KEYS", "MCO_KEYS", "CATEGORIES", "SOURCES",
           "ALL_SOURCES",
           "PLACEHOLDER_DATES"]

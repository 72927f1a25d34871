"""``write_snds``: raw SNDS tables of a synthetic population, streamed to disk chunk by chunk of patients."""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pathways.errors import PathwaysInputError
from pathways.synthetic.snds.care import services
from pathways.synthetic.snds.catalogue import catalogue
from pathways.synthetic.snds.dcir import tables as dcir_tables
from pathways.synthetic.snds.hospital import effects_model, stays
from pathways.synthetic.snds.population import draw_population, year_start
from pathways.synthetic.snds.providers import Providers
from pathways.synthetic.snds.referential import (
    beneficiaries,
    causes_of_death,
    long_term_illnesses,
    pmsi,
)
from pathways.synthetic.snds.truth import (
    SndsTruth,
    abusers_frame,
    costs_frame,
    events_frame,
    own_tracers,
    pathologies_frame,
    patients_frame,
    rules_frame,
)

#: Sub-folder of each table (the layout of the shared SNDS sample).
FOLDERS = {"ER_PRS_F": "DCIR", "ER_PHA_F": "DCIR", "ER_CAM_F": "DCIR", "IR_IMB_R": "DCIR_DCIRS",
           "IR_BEN_R": "BENEFICIAIRE", "KI_CCI_R": "Causes_de_deces", "IR_PHA_R": "nomenclatures"}
FORMATS = ("parquet", "csv")


def chunk_seed(seed: int, chunk: int) -> np.random.SeedSequence:
    """Seed of chunk ``chunk``: child ``chunk + 1`` of ``SeedSequence(seed).spawn`` (child 0 draws the global
    truth), built directly so that any writer gets it without spawning the others.

    Examples
    --------
    >>> chunk_seed(3, 2).spawn_key == np.random.SeedSequence(3).spawn(4)[3].spawn_key
    True
    """
    return np.random.SeedSequence(seed, spawn_key=(chunk + 1,))


class _Sink:
    """Writes a table of a chunk: parquet parts ``<TABLE>/part-<chunk>.parquet`` (parallel-safe) or one CSV per
    table appended chunk after chunk."""

    def __init__(self, folder: Path, fmt: str, compression: str | None):
        self.folder, self.fmt, self.compression = folder, fmt, compression
        self.rows: dict[str, int] = {}

    def path(self, name: str) -> Path:
        sub = FOLDERS.get(name, "PMSI/PMSI_MCO" if name.startswith("T_MCO") else "truth")
        return self.folder / sub / name

    def write(self, name: str, table: pa.Table, chunk: int) -> None:
        self.rows[name] = self.rows.get(name, 0) + table.num_rows
        base = self.path(name)
        if self.fmt == "parquet" or base.parent.name == "truth":
            base.mkdir(parents=True, exist_ok=True)
            # dictionary pages only for the dictionary-encoded (string) columns: numbers write faster plain
            strings = [f.name for f in table.schema if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type)]
            # min/max statistics on the dates only (what readers prune row groups on): statistics of the
            # dictionary string columns cost about a third of the parquet encoding
            dates = [f.name for f in table.schema if pa.types.is_date(f.type)]
            pq.write_table(table, base / f"part-{chunk:05d}.parquet", compression=self.compression,
                           use_dictionary=strings or False, write_statistics=dates or False)
            return
        path = base.with_suffix(".csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        plain = pa.table({c: (col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col)
                          for c, col in zip(table.column_names, table.columns)})
        header = not path.exists()
        with open(path, "ab") as fh:
            pacsv.write_csv(plain, fh, pacsv.WriteOptions(include_header=header))


def write_snds(folder: str | Path, n_patients: int, years: Iterable[int] = (2019, 2020, 2021), seed: int = 0,
               fmt: str = "parquet", chunk_patients: int = 20_000, chunks: Iterable[int] | None = None,
               truth_events: bool = True, compression: str | None = "snappy") -> SndsTruth:
    """Write raw SNDS tables of ``n_patients`` synthetic beneficiaries followed over ``years``, with their truth.

    Parameters
    ----------
    folder : output folder (tables in ``DCIR/``, ``DCIR_DCIRS/``, ``BENEFICIAIRE/``, ``Causes_de_deces/``,
        ``PMSI/PMSI_MCO/`` (``T_MCOyyB/C/D/A/UM`` per year), ``nomenclatures/IR_PHA_R`` (CIP13 -> ATC); truth in
        ``truth/``). Read them back with ``read_snds(folder, cip_to_atc=<folder>/nomenclatures/IR_PHA_R...)``.
    n_patients : beneficiaries alive on January 1st of the first year.
    years : consecutive calendar years.
    seed : the whole output is a function of (``seed``, ``n_patients``, ``years``, ``chunk_patients``).
    fmt : ``"parquet"`` (one part file per chunk and table) or ``"csv"`` (one file per table; chunks appended,
        so written in order by one process).
    chunk_patients : patients generated and written at a time: memory is bounded by the chunk, whatever
        ``n_patients``. Chunk k holds patients ``[k * chunk_patients, (k + 1) * chunk_patients)`` and is drawn
        from its own seed (:func:`chunk_seed`): it is the same whoever writes it.
    chunks : write only these chunk numbers (parallel writers each take a share; parquet only). Each call
        writes ``truth/meta.json`` whole, with its own ``chunks_written`` and ``rows``: after parallel writers
        it holds the last one's; the row counts of the whole output are the sums of each call's ``meta``.
    truth_events : also write the expected events of each chunk (the EventLog ``read_snds`` must give).
    compression : parquet compression codec.

    Returns
    -------
    SndsTruth (also written to ``folder/truth``).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     truth = write_snds(d, 200, years=(2020,), seed=1)
    ...     truth.meta["rows"]["IR_BEN_R"]
    200
    """
    years = tuple(int(y) for y in years)
    if fmt not in FORMATS:
        raise PathwaysInputError(f"fmt: expected one of {list(FORMATS)}, got {fmt!r}")
    if int(n_patients) < 1 or int(chunk_patients) < 1:
        raise PathwaysInputError("n_patients and chunk_patients: expected >= 1")
    if not years or list(years) != list(range(years[0], years[0] + len(years))):
        raise PathwaysInputError(f"years: expected consecutive calendar years, got {list(years)}")
    n_chunks = math.ceil(int(n_patients) / int(chunk_patients))
    todo = range(n_chunks) if chunks is None else sorted({int(c) for c in chunks})
    if any(c < 0 or c >= n_chunks for c in todo):
        raise PathwaysInputError(f"chunks: expected chunk numbers in [0, {n_chunks})")
    if fmt == "csv" and chunks is not None:
        raise PathwaysInputError("chunks: parallel writing needs fmt='parquet' (CSV files are appended in order)")
    folder = Path(folder)
    glob_gen = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    salt = int(glob_gen.integers(0, 10**16))
    prov = Providers.draw(glob_gen, int(n_patients))
    sim, effects = effects_model(glob_gen)
    cat = catalogue()
    sink = _Sink(folder, fmt, compression)
    for k in todo:
        lo, hi = k * int(chunk_patients), min(int(n_patients), (k + 1) * int(chunk_patients))
        write_chunk(sink, np.random.default_rng(chunk_seed(seed, k)), np.arange(lo, hi), k, years, salt, prov, sim,
                    effects, truth_events)
    meta = {"n_patients": int(n_patients), "years": list(years), "seed": int(seed), "fmt": fmt,
            "chunk_patients": int(chunk_patients), "n_chunks": n_chunks, "chunks_written": list(todo),
            "rows": sink.rows, "truth_events": truth_events}
    _write_global(sink, cat, prov, effects, meta)
    return SndsTruth.load(folder)


def write_chunk(sink: _Sink, gen: np.random.Generator, index: np.ndarray, k: int, years: tuple[int, ...], salt: int,
                prov: Providers, sim: Any, effects: pd.DataFrame, truth_events: bool) -> None:
    """Generate and write chunk ``k`` (patients ``index``): tables, then its truth parts."""
    cat = catalogue()
    start, stop = year_start(years[0]), year_start(years[-1] + 1)
    pop = draw_population(gen, index, years, salt)
    serv = services(gen, cat, pop, prov, start, stop)
    dcir, amounts = dcir_tables(gen, cat, pop, prov, serv, k)
    st = stays(gen, cat, pop, start, stop, serv, sim, effects)
    mco, detail = pmsi(gen, cat, pop, prov, st, years, k)
    cci, cause = causes_of_death(gen, pop)
    tables = {**dcir, "IR_BEN_R": beneficiaries(pop), "IR_IMB_R": long_term_illnesses(pop), "KI_CCI_R": cci, **mco}
    for name, table in tables.items():
        sink.write(name, table, k)
    kept = ~detail["error"]
    truth = {"patients": patients_frame(pop, prov, cause),
             "pathologies": pathologies_frame(pop, years, serv, st, kept, own_tracers(cat)),
             "costs": costs_frame(pop, serv, amounts["reimbursed"], st, kept), "abusers": abusers_frame(pop, prov, serv)}
    if truth_events:
        truth["events"] = events_frame(cat, pop, prov, serv, amounts, st, detail, cause)
    for name, frame in truth.items():
        sink.write(name, pa.Table.from_pandas(frame, preserve_index=False), k)


def _write_global(sink: _Sink, cat: Any, prov: Providers, effects: pd.DataFrame, meta: dict[str, Any]) -> None:
    """Files every writer writes identically (the CIP13 -> ATC referential, rules, effects, providers) and the
    meta of this call, each written beside and renamed: parallel writers never leave a half-written file."""
    pha = cat.cip_to_atc()
    path = sink.path("IR_PHA_R")
    path.parent.mkdir(parents=True, exist_ok=True)
    root = sink.folder / "truth"
    root.mkdir(parents=True, exist_ok=True)
    csv = sink.fmt == "csv"
    files = [(path.with_suffix(".csv" if csv else ".parquet"),
              (lambda f: pha.to_csv(f, index=False)) if csv else (lambda f: pha.to_parquet(f, index=False))),
             (root / "rules.parquet", lambda f: rules_frame().to_parquet(f, index=False)),
             (root / "effects.parquet", lambda f: effects.to_parquet(f, index=False)),
             (root / "fraud_providers.parquet", lambda f: prov.actors().to_parquet(f, index=False)),
             (root / "meta.json", lambda f: Path(f).write_text(json.dumps(meta, indent=1)))]
    for target, write in files:
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        write(tmp)
        os.replace(tmp, target)


__all__ = ["FOLDERS", "chunk_seed", "write_chunk", "write_snds"]

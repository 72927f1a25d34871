"""Generate-then-read: raw synthetic SNDS tables written once to a cache folder and read back with
:func:`pathways.io.read_snds`, so that every experiment can start from raw claims (``data=snds_synthetic``)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pathways.data import EventLog
from pathways.io import read_snds
from pathways.synthetic.snds.writer import write_snds


def cache_folder(n_patients: int, years: tuple[int, ...], seed: int, fmt: str, chunk_patients: int) -> Path:
    """Default cache folder of a generation (``$PATHWAYS_CACHE`` or the system temp dir).

    Examples
    --------
    >>> cache_folder(100, (2020,), 0, "parquet", 50).name
    'snds_n100_y2020-2020_s0_c50_parquet'
    """
    root = Path(os.environ.get("PATHWAYS_CACHE", Path(tempfile.gettempdir()) / "pathways_cache"))
    return root / f"snds_n{n_patients}_y{years[0]}-{years[-1]}_s{seed}_c{chunk_patients}_{fmt}"


def read_synthetic_snds(n_patients: int = 2_000, years: Iterable[int] = (2019, 2020, 2021), seed: int = 0,
                        folder: str | Path | None = None, fmt: str = "parquet", chunk_patients: int = 20_000,
                        atc: bool = True, **read_kwargs: Any) -> EventLog:
    """Write synthetic raw SNDS tables (unless ``folder`` already holds this generation) and read them.

    Parameters
    ----------
    n_patients, years, seed, fmt, chunk_patients : see :func:`~pathways.synthetic.snds.write_snds`.
    folder : where the tables go; default :func:`cache_folder` (reused across runs with the same parameters).
    atc : map dispensations to ATC codes through the generated ``IR_PHA_R`` (else they keep their CIP13).
    read_kwargs : passed to :func:`pathways.io.read_snds` (``sources``, ``window``, ``atc_level``, ...).
    """
    years = tuple(int(y) for y in years)
    target = Path(folder) if folder is not None else cache_folder(n_patients, years, seed, fmt, chunk_patients)
    params = {"n_patients": int(n_patients), "years": list(years), "seed": int(seed), "fmt": fmt,
              "chunk_patients": int(chunk_patients)}
    meta = target / "truth" / "meta.json"
    if not (meta.exists() and {k: json.loads(meta.read_text()).get(k) for k in params} == params):
        # written beside, then renamed: a concurrent or interrupted run never leaves a half-written folder
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=_parent(target)))
        write_snds(tmp, n_patients, years=years, seed=seed, fmt=fmt, chunk_patients=chunk_patients,
                   truth_events=False)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    mapping = target / "nomenclatures" / f"IR_PHA_R.{fmt}"
    read_kwargs.setdefault("cip_to_atc", mapping if atc else None)
    return read_snds(target, **read_kwargs)


def _parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent


__all__ = ["cache_folder", "read_synthetic_snds"]

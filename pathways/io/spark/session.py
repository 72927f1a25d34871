"""Spark sessions for the claims readers: local by default, any master and Spark conf from Hydra.

pyspark is an optional extra (``pip install 'pathways[spark]'``) needing Java 17; it is imported only here and in
the functions of :mod:`pathways.io.spark`, so ``import pathways`` never starts a JVM.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

#: Settings every session of the readers needs: UTC dates (days since 1970 do not depend on the machine's zone),
#: the non-legacy date parser (no upgrade exception on odd dates), Arrow transfers to the driver.
REQUIRED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
#: Defaults of a session the readers start themselves (a user's ``conf`` overrides them).
DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.memory": "2g",
    "spark.sql.parquet.compression.codec": "zstd",
}
#: Overrides of :data:`DEFAULT_CONF` for a ``local`` master: adaptive execution re-plans the query and submits a
#: job after each shuffle stage, which on one machine costs more than the partition coalescing saves (measured on
#: the read of 1.38 M claim lines: 103 Spark jobs with it, 23 without, for the same result).
LOCAL_CONF = {"spark.sql.adaptive.enabled": "false"}


def import_pyspark() -> Any:
    """Import pyspark lazily, with an actionable message when the optional extra is missing."""
    try:
        import pyspark
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("the Spark engine needs the optional dependency 'pyspark' (and Java 17); install it "
                          "with: pip install 'pathways[spark]'") from exc
    return pyspark


def spark_session(master: str = "local[*]", app_name: str = "pathways", conf: Mapping[str, Any] | None = None,
                  shuffle_partitions: int | None = None) -> Any:
    """Get or create a SparkSession.

    Parameters
    ----------
    master : ``local[*]`` (every core of this machine), ``local[2]``, ``yarn``, ``spark://host:7077``,
        ``k8s://...``; ignored when a session already runs in this process (Spark allows one per JVM).
    app_name : application name shown by the cluster manager.
    conf : further Spark settings (``spark.executor.memory``, ``spark.executor.instances``, ...), e.g. from
        ``configs/spark/*.yaml``.
    shuffle_partitions : ``spark.sql.shuffle.partitions`` (default 8 locally; on a cluster about 2-3 per core).

    Returns
    -------
    The session, with :data:`REQUIRED_CONF` set (also on an existing one).
    """
    import_pyspark()
    from pyspark.sql import SparkSession

    # executors' Python workers must be this interpreter (the vectorised shard hash imports pathways there)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    local = master.startswith("local")
    settings = {**DEFAULT_CONF, **(LOCAL_CONF if local else {}), **{str(k): str(v) for k, v in (conf or {}).items()}}
    if shuffle_partitions is not None:
        settings["spark.sql.shuffle.partitions"] = str(int(shuffle_partitions))
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in {**settings, **REQUIRED_CONF}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    configure(session)
    return session


def configure(session: Any) -> Any:
    """Set :data:`REQUIRED_CONF` on a session (a user's own one included); return it."""
    for key, value in REQUIRED_CONF.items():
        session.conf.set(key, value)
    return session


__all__ = ["DEFAULT_CONF", "LOCAL_CONF", "REQUIRED_CONF", "configure", "import_pyspark", "spark_session"]

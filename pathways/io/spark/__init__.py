"""The Spark engine of the claims readers (optional extra ``spark``: ``pip install 'pathways[spark]'``, Java 17).

``read_snds(..., engine="spark")`` gives the DuckDB engine's EventLog; ``pathways.io.write_snds_dataset`` (engine
:func:`write_snds_shards`) writes the sharded event dataset that :class:`pathways.data.dataset.EventDataset` reads
shard by shard (national scale).
pyspark is imported inside the functions only: importing this package starts no JVM.
"""
from pathways.io.spark.session import spark_session
from pathways.io.spark.shards import shard_of
from pathways.io.spark.snds import read_snds_spark, write_snds_shards

__all__ = ["read_snds_spark", "shard_of", "spark_session", "write_snds_shards"]

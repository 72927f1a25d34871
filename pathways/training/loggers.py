"""Per-epoch metric loggers: CSV (always available) and TensorBoard (when the ``tensorboard`` package is installed)."""
from __future__ import annotations

import csv
import math
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.utils import atomic_path


class MetricLogger:
    """Interface of a metric logger: ``log(step, metrics)`` once per epoch, ``close()`` at the end."""

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:  # pragma: no cover - interface
        raise PathwaysInputError(f"{type(self).__name__} does not implement log()")

    def close(self) -> None:
        """Flush and release resources."""


class CSVLogger(MetricLogger):
    """Write one row per epoch to ``<log_dir>/metrics.csv``.

    The file is rewritten atomically after every epoch (the history is small), so it is always a complete CSV
    even when a run is interrupted, and a resumed run continues the same file from the rows it is given.
    """

    def __init__(self, log_dir: str | os.PathLike, filename: str = "metrics.csv",
                 history: Sequence[Mapping[str, Any]] = ()) -> None:
        self.path = Path(log_dir) / filename
        self.rows: list[dict[str, Any]] = [dict(r) for r in history]

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        row = {"epoch": step, **{k: v for k, v in metrics.items() if k != "epoch"}}
        self.rows.append(row)
        self._write()

    def _write(self) -> None:
        columns: list[str] = []
        for row in self.rows:
            columns += [k for k in row if k not in columns]
        with atomic_path(self.path) as tmp:
            with open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=columns)
                writer.writeheader()
                writer.writerows(self.rows)


class TensorBoardLogger(MetricLogger):
    """Write scalars to TensorBoard event files under ``log_dir`` (needs the optional ``tensorboard`` package)."""

    def __init__(self, log_dir: str | os.PathLike) -> None:
        from torch.utils.tensorboard import SummaryWriter  # lazy: optional dependency

        self.writer = SummaryWriter(log_dir=str(Path(log_dir) / "tensorboard"))

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value)):
                self.writer.add_scalar(key, float(value), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can be imported (the ``tensorboard`` package is installed)."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def make_loggers(names: Iterable[str] | str | None, log_dir: str | os.PathLike | None,
                 history: Sequence[Mapping[str, Any]] = ()) -> list[MetricLogger]:
    """Build the loggers named in ``names`` ("csv", "tensorboard") writing under ``log_dir``.

    No ``log_dir`` means no loggers. A requested TensorBoard logger without the package installed warns
    (``PathwaysDataWarning``) and is skipped, so a config that asks for it still runs everywhere.
    """
    if log_dir is None or names is None:
        return []
    if isinstance(names, str):
        names = [names]
    out: list[MetricLogger] = []
    for name in names:
        key = str(name).lower()
        if key == "csv":
            out.append(CSVLogger(log_dir, history=history))
        elif key == "tensorboard":
            if tensorboard_available():
                out.append(TensorBoardLogger(log_dir))
            else:
                warnings.warn("logger 'tensorboard' requested but the tensorboard package is not installed; "
                              "skipping it (pip install 'pathways[tensorboard]')", PathwaysDataWarning, stacklevel=2)
        else:
            raise PathwaysInputError(f"argument 'loggers': unknown logger {name!r}; use 'csv' or 'tensorboard'")
    return out

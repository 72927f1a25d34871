"""The read report of the claims readers: every decision that drops or changes rows, counted."""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pathways.errors import PathwaysDataWarning, PathwaysInputError

logger = logging.getLogger("pathways")


@dataclass
class ReadReport:
    """Counted decisions a reader took about the data, in the order taken.

    Every decision that drops or changes rows is recorded with its count, warned once with
    :class:`~pathways.errors.PathwaysDataWarning` (when the count is positive) and logged on the ``pathways``
    logger; informational counts (rows read per table) are recorded without a warning. No identifier ever enters
    the report. The report is attached to the returned EventLog as ``log.patients.attrs["read_report"]`` (a
    DataFrame) and returned as a :class:`ReadReport` with ``return_report=True``.
    """

    reader: str
    records: list[dict[str, Any]] = field(default_factory=list)

    def note(self, step: str, count: int, detail: str = "") -> None:
        """Record an informational count (no warning)."""
        self.records.append({"step": step, "decision": "info", "count": int(count), "total": None,
                             "detail": detail})
        logger.info("%s: %s: %d %s", self.reader, step, int(count), detail)

    def decide(self, step: str, decision: str, count: int, total: int | None = None, detail: str = "",
               errors: str = "warn") -> None:
        """Record a decision touching ``count`` of ``total`` rows; warn (or raise when ``errors='raise'``)."""
        count = int(count)
        self.records.append({"step": step, "decision": decision, "count": count,
                             "total": None if total is None else int(total), "detail": detail})
        if count <= 0:
            return
        share = f" of {int(total)} ({count / max(int(total), 1):.1%})" if total else ""
        message = f"{self.reader}: {step}: {count}{share} rows -> {decision}" + (f" ({detail})" if detail else "")
        if errors == "raise":
            raise PathwaysInputError(message + " (pass errors='warn' to accept this decision)")
        warnings.warn(message, PathwaysDataWarning, stacklevel=3)
        logger.info(message)

    def count(self, step: str) -> int:
        """Total count recorded under ``step`` (0 when absent)."""
        return int(sum(r["count"] for r in self.records if r["step"] == step))

    def to_frame(self) -> pd.DataFrame:
        """One row per record: step, decision, count, total, detail."""
        return pd.DataFrame(self.records, columns=["step", "decision", "count", "total", "detail"])

    def __repr__(self) -> str:
        return f"ReadReport({self.reader}, {len(self.records)} records)\n{self.to_frame().to_string(index=False)}"



def check_errors_arg(errors: str) -> None:
    """Validate the readers' ``errors`` switch."""
    if errors not in ("warn", "raise"):
        raise PathwaysInputError(f"errors: expected 'warn' or 'raise', got {errors!r}")


__all__ = ["ReadReport", "check_errors_arg"]

"""DuckDB errors rewritten at the readers' boundary: file, line number and problem, never a value or a raw line.

DuckDB's own messages repeat the offending CSV line (``Original Line: <BEN_NIR_PSA>,...``) or quote the value
that failed a cast; in a claims extract both are patient data. The readers turn every DuckDB error into a
:class:`~pathways.errors.PathwaysInputError` built only from what is safe to show: the file (relative to the
folder read), the line number, column counts, the column name and DuckDB's error class.
"""
from __future__ import annotations

import re
from pathlib import Path

from pathways.errors import PathwaysInputError

_LINE = re.compile(r"CSV Error on Line:\s*(\d+)")
_COLUMNS = re.compile(r"Expected Number of Columns:\s*(\d+)\s*Found:\s*(\d+)")
_FILE = re.compile(r"^\s*file\s*=\s*(.+?)\s*$", re.MULTILINE)
_SNIFF_FILE = re.compile(r'Error when sniffing file "([^"]+)"')
_COLUMN = re.compile(r'(?:column|Column)\s+"?([A-Za-z_][A-Za-z0-9_]*)"?')
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def _relative(path: str, root: Path | None) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve())) if root is not None else Path(path).name
    except ValueError:
        return Path(path).name


def _problem(text: str) -> str:
    """What went wrong, in DuckDB's words but without any quoted value or line."""
    text = text.split("Possible fix")[0]  # DuckDB's hints name encodings and quotes whatever the error
    lowered = text.lower()
    if "unicode" in lowered or "encoding" in lowered and "utf" in lowered:
        return "the file is not in the detected encoding (pass the file's encoding, e.g. re-save it as UTF-8)"
    if "unterminated quote" in lowered or "quote" in lowered and "sniff" in lowered:
        return "unterminated quote or truncated file"
    if "sniffing" in lowered:
        return "the file is not a readable delimited table (truncated, ragged or binary)"
    if "maximum line size" in lowered:
        return "a line is longer than the CSV reader's maximum line size"
    head = text.strip().splitlines()[0] if text.strip() else "error"
    return _QUOTED.sub("<value>", head)  # a failed cast quotes the value: never shown


def duckdb_error(exc: BaseException, root: Path | None = None, what: str = "read") -> PathwaysInputError:
    """A :class:`PathwaysInputError` for a DuckDB error: file, line, column counts, column name, no values.

    Examples
    --------
    >>> text = ("Invalid Input Error: CSV Error on Line: 3\\nOriginal Line: 1234567890ABCDE,5,6,7\\n"
    ...         "Expected Number of Columns: 3 Found: 4\\n  file = /data/DCIR/ER_PRS_F.csv\\n")
    >>> message = str(duckdb_error(RuntimeError(text), Path("/data")))
    >>> message
    'cannot read DCIR/ER_PRS_F.csv: line 3: expected 3 columns, found 4 (ragged or truncated row)'
    >>> "1234567890ABCDE" in message
    False
    """
    text = str(exc)
    parts = []
    file = _FILE.search(text) or _SNIFF_FILE.search(text)
    where = f"cannot {what} {_relative(file.group(1), root)}" if file else f"cannot {what} the tables"
    line = _LINE.search(text)
    if line:
        parts.append(f"line {line.group(1)}")
    counts = _COLUMNS.search(text)
    if counts:
        parts.append(f"expected {counts.group(1)} columns, found {counts.group(2)} (ragged or truncated row)")
    else:
        safe = "\n".join(ln for ln in text.splitlines() if not ln.startswith("Original Line"))
        if line:  # the first line only says where: the problem is on the next line
            safe = "\n".join(safe.splitlines()[1:]) or safe
        problem = _problem(safe)
        column = _COLUMN.search(_QUOTED.sub("", safe.strip().splitlines()[0]) if safe.strip() else "")
        parts.append(problem + (f" (column {column.group(1)})" if column and column.group(1) not in problem else ""))
    return PathwaysInputError(f"{where}: " + ": ".join(parts))


__all__ = ["duckdb_error"]

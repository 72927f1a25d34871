"""Text tables as users export them: encoding detection (UTF-8, UTF-16, latin-1) and the header line.

Hospital and claims extracts come from Windows tools (latin-1, UTF-16 with a byte-order mark) as often as from
UTF-8 ones; the readers detect the encoding instead of failing deep inside a CSV parser, and read the header
themselves so that no parser ever guesses which line holds the column names.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import io
from os import PathLike
from pathlib import Path
from typing import IO

from pathways.errors import PathwaysInputError

#: bytes read to decide the encoding (a multi-byte character cut at the end is allowed)
SAMPLE_BYTES = 1 << 16


def _open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def detect_encoding(path: str | PathLike) -> str:
    """The encoding of a text file: ``"utf-8"``, ``"utf-8-sig"``, ``"utf-16"`` (byte-order mark) or ``"latin-1"``.

    UTF-8 is kept when the first 64 KiB decode as UTF-8; otherwise the file is read as latin-1 (every byte is a
    character there, so a later non-UTF-8 byte can never fail the read).

    Examples
    --------
    >>> import tempfile
    >>> sample = Path(tempfile.mkdtemp()) / "a.csv"
    >>> _ = sample.write_bytes("code\\ncafé\\n".encode("latin-1"))
    >>> detect_encoding(sample)
    'latin-1'
    """
    path = Path(path)
    try:
        with _open_binary(path) as fh:
            head = fh.read(SAMPLE_BYTES)
    except FileNotFoundError as exc:
        raise PathwaysInputError(f"file not found: {str(path)!r}") from exc
    except OSError as exc:
        raise PathwaysInputError(f"cannot read file {str(path)!r}: {exc.strerror or type(exc).__name__}") from exc
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3 or len(head) < SAMPLE_BYTES:  # not just a character cut by the sample
            return "latin-1"
    return "utf-8"


def _first_line(path: Path, encoding: str) -> str:
    # the text wrapper owns (and closes) the binary handle: a wrapper left to the garbage collector warns
    with io.TextIOWrapper(_open_binary(path), encoding=encoding, errors="replace", newline="") as text:
        return text.readline()


def header_fields(path: str | PathLike, encoding: str, delimiter: str) -> list[str]:
    """Column names of a delimited text file's first line (an empty list for an empty file)."""
    path = Path(path)
    line = _first_line(path, encoding)
    return next(csv.reader([line], delimiter=delimiter), []) if line.strip() else []


def sniff_delimiter(path: str | PathLike, encoding: str = "utf-8") -> str:
    """',' or ';' (French exports) from the header line; tab for ``.tsv`` files."""
    path = Path(path)
    if path.name.lower().endswith((".tsv", ".tsv.gz")):
        return "\t"
    header = _first_line(path, encoding)
    return ";" if header.count(";") > header.count(",") else ","


__all__ = ["SAMPLE_BYTES", "detect_encoding", "header_fields", "sniff_delimiter"]

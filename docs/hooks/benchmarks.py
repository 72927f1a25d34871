"""mkdocs hook: the benchmarks page includes every results file in benchmarks/results/ at build time.

The files present when the site is built are the ones shown (in a fresh checkout, those tracked by git), so a
new benchmark appears without editing the page and a removed one leaves no broken include. Their headings are
demoted under one section per file, whose anchor is the file name with dashes (``cohort_study`` ->
``#cohort-study``).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

MARKER = "<!-- benchmark results -->"


def _demoted(text: str, levels: int = 2) -> str:
    """Headings pushed ``levels`` deeper, outside fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        out.append("#" * levels + line if not fenced and re.match(r"#{1,4} ", line) else line)
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != "benchmarks.md" or MARKER not in markdown:
        return markdown
    results = Path(config.config_file_path).parent / "benchmarks" / "results"
    parts = []
    for path in sorted(results.glob("*.md")):
        parts += [f"## `{path.stem}` {{ #{path.stem.replace('_', '-')} }}", "", _demoted(path.read_text()), ""]
    return markdown.replace(MARKER, "\n".join(parts))

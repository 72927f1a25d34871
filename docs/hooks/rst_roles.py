"""griffe extension: adapt the package's docstrings to mkdocstrings before they are rendered.

* inline reStructuredText markup becomes Markdown code spans: ````x```` -> `` `x` ``, ``:role:`~pkg.mod.name```
  -> `` `name` ``, ``:role:`pkg.mod.name``` -> `` `pkg.mod.name` ``, ``:role:`text <target>``` -> `` `text` ``;
* parameter lines in the project's style, ``name : what it is`` (a description where numpy style puts a type),
  become ``name`` with that description below, so the reference shows it in the Description column.
"""
from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`(~?)([^`<]+?)(?:\s*<[^>]+>)?`")
_LITERAL = re.compile(r"``([^`]+)``")
_ITEM = re.compile(r"^(\s*)([\w*][\w*, ]*?) : (.+)$")
_ITEM_SECTIONS = {"parameters", "other parameters", "attributes", "keyword arguments"}


def _role(match: re.Match) -> str:
    short, target = match.group(1), match.group(2).strip()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def _items_described(text: str) -> str:
    """``name : description`` items of parameter-like sections as ``name`` + indented description."""
    lines, out, section, base = text.splitlines(), [], None, None
    for k, line in enumerate(lines):
        underline = k + 1 < len(lines) and re.fullmatch(r"\s*-{3,}\s*", lines[k + 1] or "") is not None
        if underline and line.strip():
            section, base = line.strip().lower(), None
        elif section in _ITEM_SECTIONS and (match := _ITEM.match(line)):
            indent = match.group(1)
            base = indent if base is None else base
            if indent == base:
                out += [f"{indent}{match.group(2)}", f"{indent}    {match.group(3)}"]
                continue
        out.append(line)
    return "\n".join(out)


def markdown_from_rst(text: str) -> str:
    """The docstring ``text`` with the two rewrites of the module docstring."""
    text = _LITERAL.sub(lambda m: f"`{m.group(1)}`", _ROLE.sub(_role, text))
    return _items_described(text)


class RstRoles(griffe.Extension):
    """Rewrite every docstring once, when its object is loaded."""

    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_from_rst(obj.docstring.value)

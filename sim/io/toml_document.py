"""Write a scenario table back as a TOML document, so that a scenario built in the web app downloads as a file
`csfsim validate` and `tomllib` read back to the same table.

Plain values and distributions (`{ family = ..., ... }`) are written inline; other tables become `[a.b]` sections.
"""

from __future__ import annotations

import re
from typing import Any

from sim.errors import toml_text

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else toml_text(name)


def _inline(value: Any) -> bool:
    """Written on one line: anything but a table, and a table that is a distribution."""
    return not isinstance(value, dict) or "family" in value


def dumps(table: dict[str, Any], header: str = "# A csfsim scenario.\n") -> str:
    """`table` as a TOML document (tomllib.loads(dumps(t)) == t for tables of TOML's own types)."""
    lines = [header.rstrip("\n")] if header else []

    def section(node: dict[str, Any], path: tuple[str, ...]) -> None:
        plain = [(k, v) for k, v in node.items() if _inline(v)]
        tables = [(k, v) for k, v in node.items() if not _inline(v)]
        if path and (plain or not tables):
            lines.append("")
            lines.append("[" + ".".join(_key(p) for p in path) + "]")
        lines.extend(f"{_key(k)} = {toml_text(v)}" for k, v in plain)
        for k, v in tables:
            section(v, (*path, k))

    section(table, ())
    return "\n".join(lines).lstrip("\n") + "\n"

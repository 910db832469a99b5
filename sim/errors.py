"""The one error type users see: bad input, reported as one line naming file, field, value and expectation."""

from __future__ import annotations

import json
import math
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def printable(text: str) -> str:
    """`text` with control characters (terminal escapes among them) written as \\xNN, safe to print."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def toml_text(value: object) -> str:
    """A value as TOML writes it (true, "text", { capacity = 2 }), since users write scenarios in TOML; a value
    that is missing reads "nothing"."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # TOML's basic string: quotes and escapes as JSON's, but DEL too is a control character there
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        items = (f"{k if _BARE_KEY.fullmatch(str(k)) else toml_text(str(k))} = {toml_text(v)}"
                 for k, v in value.items())
        return "{ " + ", ".join(items) + " }" if value else "{}"
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(toml_text(v) for v in value) + "]"
    return printable(repr(value))


class ScenarioError(Exception):
    """Invalid scenario or command-line input. The CLI prints `str(err)` and exits with code 2."""

    def __init__(self, file: str, field: str, value: object, expected: str) -> None:
        self.file = file
        self.field = field
        self.value = value
        self.expected = expected
        shown = toml_text(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(printable(f"{file}: {field} = {shown}: expected {expected}"))


class RunInterrupted(Exception):
    """A run stopped before all replications were written (a worker died, or the run was interrupted).
    Finished replications are kept in OUT.partial/; `--resume` completes the run."""

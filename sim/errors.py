"""The one error type users see: bad input, reported as one line naming file, field, value and expectation."""

from __future__ import annotations


class ScenarioError(Exception):
    """Invalid scenario or command-line input. The CLI prints `str(err)` and exits with code 2."""

    def __init__(self, file: str, field: str, value: object, expected: str) -> None:
        self.file = file
        self.field = field
        self.value = value
        self.expected = expected
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{file}: {field} = {shown}: expected {expected}")


class RunInterrupted(Exception):
    """A run stopped before all replications were written (a worker died, or the run was interrupted).
    Finished replications are kept in OUT.partial/; `--resume` completes the run."""

"""What a submit did, by bulk calls or an upload, and how its summary lists the invalid rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from taskapi.client.cli.output import Output
from taskapi.ingest.rows import Row

SHOWN_INVALID_ROWS: Final = 20
"""Invalid rows listed after a submit; the rest are counted."""


@dataclass
class Tally:
    """What a submit did. `pending`: valid rows with a task_id not seen earlier in the file;
    `sent`: those of them sent (or found existing) so far."""

    rows: int = 0
    created: int = 0
    existing: int = 0
    invalid: int = 0
    pending: int = 0
    sent: int = 0
    shown: list[tuple[int, list[dict[str, Any]]]] = field(default_factory=list)
    """The first SHOWN_INVALID_ROWS invalid rows: row number and errors ({field, message})."""

    def add_invalid(self, row: Row) -> None:
        self.invalid += 1
        self.show(row.row, [dict(error) for error in row.errors or ()])

    def show(self, row: int, errors: list[dict[str, Any]]) -> None:
        if len(self.shown) < SHOWN_INVALID_ROWS:
            self.shown.append((row, errors))

    def counts(self) -> list[tuple[str, str]]:
        """The summary's count lines."""
        return [
            ("rows", str(self.rows)),
            ("created", str(self.created)),
            ("existing", str(self.existing)),
            ("invalid", str(self.invalid)),
        ]


def print_invalid(out: Output, tally: Tally) -> None:
    if not tally.invalid:
        return
    shown = []
    for row, errors in tally.shown:
        for index, problem in enumerate(errors or [{}]):
            field_name = problem.get("field") or "-"
            shown.append((str(row) if index == 0 else "", str(field_name), str(problem.get("message", "?"))))
    out.table(f"Invalid rows, not sent: {tally.invalid}", ("row", "field", "problem"), shown)
    if tally.invalid > len(tally.shown):
        out.line(f"... and {tally.invalid - len(tally.shown)} more invalid rows")

"""What the tests of the user commands read and write: a command's result, its summary lines,
JSON Lines files, and tasks moved to a final status behind the API's back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from taskapi.models.domain import TaskStatus, isoformat, utc_now
from tests.fakes import Fakes


@dataclass
class Ran:
    """A command's exit code and what it printed on stdout."""

    code: int
    out: str


def summary(out: str) -> dict[str, str]:
    """The name/value lines of a plain summary."""
    found = {}
    for line in out.splitlines():
        if line.startswith("  "):
            name, _, value = line.strip().partition("  ")
            found[name] = value.strip()
    return found


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def finish(fakes: Fakes, task_id: str, status: TaskStatus, account: str = "acct_a") -> None:
    """The stored task moved to `status`, as the processor or a cancel would leave it."""
    task = fakes.repo.get(account, task_id)
    assert task is not None
    fakes.repo.save(task.moved_to(status, isoformat(utc_now()), f"test: {status}"), expected_version=task.version)

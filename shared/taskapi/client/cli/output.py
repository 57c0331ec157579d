"""What the user commands print: rich tables, progress bars and live tables on a terminal; plain
lines and aligned columns otherwise (CI logs, pipes, --plain)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from taskapi.client.cli.runtime import Runtime

Update = Callable[[int, int | None, str], None]
"""update(done, total, note) of a progress bar."""


class Output:
    """Rich tables, progress bars and live tables on a terminal; plain lines and aligned columns
    otherwise (or with --plain)."""

    def __init__(self, runtime: Runtime, *, plain: bool) -> None:
        self.stream = runtime.stdout or sys.stdout
        self.console = Console(
            file=self.stream, force_terminal=runtime.force_terminal, width=runtime.width, highlight=False
        )
        self.rich = not plain and self.console.is_terminal

    def line(self, text: str = "") -> None:
        if self.rich:
            self.console.print(text, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    def raw(self, text: str) -> None:
        """A line as it is, whatever the mode (JSON output)."""
        print(text, file=self.stream)

    def table(self, title: str | None, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if title:
            self.heading(title)
        if self.rich:
            self.console.print(_rich_table(headers, rows))
            return
        for text in _aligned(headers, rows):
            self.line(text)

    def summary(self, title: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Name / value lines under a title."""
        self.heading(title)
        if self.rich:
            grid = Table(show_header=False)
            grid.add_column(style="bold")
            grid.add_column(justify="right" if all(v.isdigit() for _, v in pairs) else "left")
            for name, value in pairs:
                grid.add_row(name, value)
            self.console.print(grid)
            return
        width = max(len(name) for name, _ in pairs)
        for name, value in pairs:
            self.line(f"  {name.ljust(width)}  {value}")

    def heading(self, title: str) -> None:
        if self.rich:
            self.console.print(Text(title, style="bold"))
        else:
            self.line(title)

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Update]:
        """update(done, total, note): a progress bar (shown from the first update), or plain lines
        (one per tenth of the total, or per change when the total is unknown)."""
        if not self.rich:
            last: dict[str, object] = {}

            def line(done: int, total: int | None, note: str = "") -> None:
                # at most one line per tenth of a known total; otherwise one per change
                key: object = (done * 10 // total) if total else (done, note)
                if last.get("key") == key and done != total:
                    return
                last["key"] = key
                of = f"/{total}" if total is not None else ""
                self.line(f"{description}: {done}{of}" + (f" ({note})" if note else ""))

            yield line
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
        )
        bar = Progress(*columns, console=self.console, transient=False)
        task = bar.add_task(description, total=total, note="")

        def update(done: int, total: int | None, note: str = "") -> None:
            bar.update(task, completed=done, total=total, note=note)
            if not bar.live.is_started:
                bar.start()

        try:
            yield update
        finally:
            if bar.live.is_started:
                bar.stop()

    @contextmanager
    def live(self) -> Iterator[Callable[[str, Sequence[str], Sequence[Sequence[str]]], None]]:
        """show(title, headers, rows): one live table redrawn in place (gone when it ends), or a
        plain line per call whose rows differ from the previous call's."""
        if not self.rich:
            last: list[Sequence[Sequence[str]]] = []

            def line(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
                if last and last[0] == rows:
                    return
                last[:] = [rows]
                self.line(title)

            yield line
            return
        with Live(console=self.console, transient=True, auto_refresh=False) as live:

            def show(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
                live.update(Group(Text(title, style="bold"), _rich_table(headers, rows)), refresh=True)

            yield show


def _rich_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table()
    for index, header in enumerate(headers):
        table.add_column(header, justify="left" if index == 0 or not _numeric(rows, index) else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _numeric(rows: Sequence[Sequence[str]], index: int) -> bool:
    cells = [row[index] for row in rows if row[index]]
    return bool(cells) and all(cell.rstrip("%").isdigit() for cell in cells)


def _aligned(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    everything = [list(headers), *[list(row) for row in rows]]
    widths = [max(len(row[column]) for row in everything) for column in range(len(headers))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in everything
    ]

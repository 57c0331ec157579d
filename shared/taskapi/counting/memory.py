"""In-memory CounterStore for unit tests: the same contract as DynamoCounterStore."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from taskapi.counting.contributions import Counts as Amounts
from taskapi.counting.contributions import add_into, contributions
from taskapi.counting.store import CounterKey, CounterRecord, Counts
from taskapi.models.domain import Task


class InMemoryCounterStore:
    """Counter items in a dict. Given `tasks` (e.g. a memory repository's all_tasks), it follows
    them instead: every read derives the counters from the tasks through counting.contributions,
    as the stream consumer would have left them once caught up, so tests need no stream.

    `calls` and `items_read` count what get() was asked (one call per GetItem/BatchGetItem the
    DynamoDB adapter would make for up to 100 keys)."""

    def __init__(self, tasks: Callable[[], Iterable[Task]] | None = None) -> None:
        self._items: dict[str, Counts] = {}
        self._tasks = tasks
        self._cursor: str | None = None
        self.calls = 0
        self.items_read = 0

    @property
    def follows(self) -> bool:
        """Whether the counts derive from tasks (rather than from items put by hand)."""
        return self._tasks is not None

    def put(self, key: str, amounts: Mapping[str, int], *, rev: int = 1, changed_at: str | None = None) -> None:
        """Store a counter item as the consumer would have written it."""
        self._items[key] = Counts(dict(amounts), rev=rev, changed_at=changed_at)

    def item(self, key: str) -> Counts | None:
        return self._items.get(key)

    def _derived(self) -> dict[str, Counts]:
        from taskapi.store.dynamodb import task_to_item  # the image a stream record would carry

        total: Amounts = {}
        for task in self._tasks() if self._tasks is not None else ():
            add_into(total, contributions(task_to_item(task)))
        return {key: Counts(amounts) for key, amounts in total.items()}

    def get(self, keys: Iterable[str]) -> dict[str, Counts]:
        wanted = list(dict.fromkeys(keys))
        self.calls += -(-len(wanted) // 100)
        self.items_read += len(wanted)
        items = self._derived() if self._tasks is not None else self._items
        return {key: items.get(key, Counts()) for key in wanted}

    def quiescent(self, *, changed_before: str, want: int) -> list[CounterRecord]:
        keys = sorted(key for key in self._items if CounterKey.parse(key) is not None)
        after = [key for key in keys if self._cursor is None or key > self._cursor]
        found = [
            CounterRecord(key, self._items[key])
            for key in after
            if (self._items[key].changed_at or "") < changed_before
        ][: max(want, 0)]
        self._cursor = found[-1].key if found and len(found) == want else None
        return found

    def repair(self, key: str, counts: Mapping[str, int], *, rev: int) -> bool:
        current = self._items.get(key)
        if current is None or current.rev != rev:
            return False
        self._items[key] = Counts({**current.amounts, **counts}, rev=rev + 1, changed_at=current.changed_at)
        return True

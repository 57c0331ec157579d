"""The in-memory fakes of every adapter, wired into an app or a processor in one call."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fastapi import FastAPI

from taskapi import wiring
from taskapi.auth.api_keys import InMemoryApiKeyStore, generate_key
from taskapi.auth.principal import Role
from taskapi.counting.memory import InMemoryCounterStore
from taskapi.counting.store import CounterStore
from taskapi.engines import get_engine
from taskapi.http import deps
from taskapi.http.deps import RepositoryDep
from taskapi.models.domain import utc_now
from taskapi.queueing.control import InMemoryProcessingControl
from taskapi.queueing.queues import InMemoryTaskQueue
from taskapi.results import InMemoryResultStore
from taskapi.services.processing import Processor
from taskapi.store.memory import InMemoryTaskRepository
from taskapi.uploads.files import InMemoryUploadFiles
from taskapi.uploads.store import InMemoryUploadStore
from taskapi.webhooks.eventstore import MemoryEventStore
from taskapi.webhooks.queue import MemoryDeliveryQueue
from taskapi.webhooks.store import MemoryWebhookStore


class Clock:
    """A clock a test moves by hand: pass it as a Processor's or the reconciler's clock."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or utc_now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Fakes:
    repo: InMemoryTaskRepository = field(default_factory=InMemoryTaskRepository)
    keys: InMemoryApiKeyStore = field(default_factory=InMemoryApiKeyStore)
    queue: InMemoryTaskQueue = field(default_factory=InMemoryTaskQueue)
    results: InMemoryResultStore = field(default_factory=InMemoryResultStore)
    control: InMemoryProcessingControl = field(default_factory=InMemoryProcessingControl)
    uploads: InMemoryUploadStore = field(default_factory=InMemoryUploadStore)
    upload_files: InMemoryUploadFiles = field(default_factory=InMemoryUploadFiles)
    webhooks: MemoryWebhookStore = field(default_factory=MemoryWebhookStore)
    events: MemoryEventStore = field(default_factory=MemoryEventStore)
    deliveries: MemoryDeliveryQueue = field(default_factory=MemoryDeliveryQueue)
    counters: InMemoryCounterStore | None = None
    """The app's counters. By default they follow `repo` (derived from its tasks at every read, as
    the stream consumer leaves them once caught up); a test may set counter items by hand instead
    (InMemoryCounterStore() and put)."""

    def __post_init__(self) -> None:
        if self.counters is None:
            self.counters = InMemoryCounterStore(tasks=self.repo.all_tasks)

    def counters_for(self, repository: RepositoryDep) -> CounterStore:
        """The counter store of a request: `counters`, or, where a test put another repository in
        the app, counters that follow that one (none for a repository that is not in memory)."""
        assert self.counters is not None
        if repository is self.repo or not self.counters.follows:
            return self.counters
        if isinstance(repository, InMemoryTaskRepository):
            return InMemoryCounterStore(tasks=repository.all_tasks)
        return InMemoryCounterStore()

    def install(self, app: FastAPI) -> FastAPI:
        app.dependency_overrides[deps.get_repository] = lambda: self.repo
        app.dependency_overrides[deps.get_key_store] = lambda: self.keys
        app.dependency_overrides[deps.get_queue] = lambda: self.queue
        app.dependency_overrides[deps.get_results] = lambda: self.results
        app.dependency_overrides[deps.get_processing_control] = lambda: self.control
        app.dependency_overrides[deps.get_counter_store] = self.counters_for
        app.dependency_overrides[wiring.get_upload_store] = lambda: self.uploads
        app.dependency_overrides[wiring.get_upload_files] = lambda: self.upload_files
        app.dependency_overrides[deps.get_webhook_store] = lambda: self.webhooks
        app.dependency_overrides[deps.get_event_store] = lambda: self.events
        app.dependency_overrides[deps.get_delivery_queue] = lambda: self.deliveries
        return app

    def api_key(self, account_id: str, plan: str = "free", role: Role = "tenant") -> dict[str, str]:
        key, record = generate_key(account_id, plan, role)
        self.keys.put(record)
        return {"X-API-Key": key}

    def processor(self, **overrides) -> Processor:
        values = {
            "repository": self.repo,
            "queue": self.queue,
            "results": self.results,
            "engine_for": get_engine,
            "retry_delay_seconds": 0,
            # Every report written, so a test's racing write lands at a fence; the throttle's tests
            # set an interval and move a ticker of their own.
            "progress_interval_seconds": 0,
        }
        values.update(overrides)
        return Processor(**values)

    def run_queue(self, processor: Processor | None = None, rounds: int = 10) -> int:
        """Deliver every sent message to the processor until the queue is empty; answers how many."""
        processor = processor or self.processor()
        delivered = 0
        for _ in range(rounds):
            batch = self.queue.drain()
            if not batch:
                break
            for _, message, _ in batch:
                processor.process(message)
                delivered += 1
        return delivered

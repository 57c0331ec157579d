"""The processor on the fakes with the real engines: claim, run, store, complete — and every way a
message can be a duplicate, stale, failing or interrupted, without a task being lost or done twice."""

from __future__ import annotations

import json

import pytest

from taskapi.engines.base import EngineError
from taskapi.errors import Retryable
from taskapi.models.domain import MAX_TRIES, PROCESSING_TIMEOUT_SECONDS, Task, TaskStatus, TaskType
from taskapi.models.requests import BulkRegenerateRequest
from taskapi.queueing.messages import TaskMessage
from taskapi.services.lifecycle import regenerate_tasks
from taskapi.services.processing import Outcome
from taskapi.services.reconcile import reconcile
from tests.support.media import probe_mp4
from tests.unit.processing.support import (
    ACCOUNT,
    BODY_OF,
    PRIMARY_FILE,
    Crash,
    FaultyEngine,
    HookedResults,
    RepositoryProxy,
    completions,
    create,
    deliver,
    event_messages,
    messages,
    principal,
    registry_with,
)

EVERY_TYPE = list(TaskType)


def stored(fakes, task_id: str) -> Task:
    task = fakes.repo.get(ACCOUNT, task_id)
    assert task is not None
    return task


def lease_of(task_type: TaskType) -> dict[str, float]:
    return {"seconds": PROCESSING_TIMEOUT_SECONDS[task_type] + 1}


# ------------------------------------------------------------------ the happy path
@pytest.mark.parametrize("task_type", EVERY_TYPE)
def test_a_queued_task_of_each_type_is_claimed_and_completed_with_a_real_result(fakes, processor, task_type):
    (created,) = create(fakes.repo, fakes.queue, BODY_OF[task_type]("t1"))
    assert created.status is TaskStatus.QUEUED

    assert deliver(fakes, processor) == [Outcome.COMPLETED]

    task = stored(fakes, "t1")
    prefix = task.result_key.rsplit("/", 1)[0] + "/"
    assert prefix.startswith(f"results/{ACCOUNT}/t1/attempt-1/claim-")  # one folder per claim
    assert task.status is TaskStatus.COMPLETED
    assert task.progress == 100
    assert task.progress_message is None
    assert task.tries == 1
    assert task.error_message is None
    assert task.result_key == prefix + PRIMARY_FILE[task_type]
    assert task.result_summary
    assert all(key.startswith(prefix) for key in fakes.results.objects)
    content_type, body = fakes.results.objects[task.result_key]
    assert body
    if content_type == "application/json":
        assert json.loads(body)
    if task_type is TaskType.VIDEO:
        # A video a browser plays: H.264 and AAC in an MP4, as long and as large as the manifest
        # beside it says, at the default resolution, with narration one can hear.
        assert content_type == "video/mp4"
        video = probe_mp4(body)
        manifest = json.loads(fakes.results.objects[prefix + "manifest.json"][1])
        assert (video.video_codec, video.audio_codec) == ("h264", "aac")
        assert (video.width, video.height) == (1920, 1080)
        assert video.audio_rms > 0.01
        assert video.duration_seconds == pytest.approx(manifest["total_duration_seconds"], rel=0.01)
        assert manifest["size_bytes"] == len(body) == task.result_summary["size_bytes"]
        assert {prefix + name for name in manifest["files"].values()} <= set(fakes.results.objects)
    assert event_messages(task) == [
        "Task pending",
        f"Task added to {task_type.value} processing queue",
        f"Processing started (try 1 of {MAX_TRIES[task_type]})",
        "Task completed",
    ]


def test_many_tasks_complete_each_under_its_own_prefix(fakes, processor):
    bodies = [BODY_OF[task_type](f"t{i}_{task_type.value}") for i in range(3) for task_type in EVERY_TYPE]
    create(fakes.repo, fakes.queue, *bodies)

    outcomes = deliver(fakes, processor)

    assert outcomes == [Outcome.COMPLETED] * len(bodies)
    for body in bodies:
        task = stored(fakes, body["task_id"])
        assert task.status is TaskStatus.COMPLETED
        assert task.result_key.startswith(f"results/{ACCOUNT}/{body['task_id']}/attempt-1/")
        assert task.result_key in fakes.results.objects


# ------------------------------------------------------------------ progress
def test_progress_rises_monotonically_below_100_while_running_and_ends_at_100(fakes, clock):
    writes: list[tuple[float, bool]] = []
    seen_while_running: list[float] = []

    class Recording(RepositoryProxy):
        def record_progress(self, account_id, task_id, **kwargs):
            accepted = self.inner.record_progress(account_id, task_id, **kwargs)
            writes.append((kwargs["progress"], accepted))
            return accepted

    repository = Recording(fakes.repo)
    engine = FaultyEngine(TaskType.VIDEO, on_progress=lambda _: seen_while_running.append(stored(fakes, "v1").progress))
    processor = fakes.processor(repository=repository, engine_for=registry_with(engine).get, clock=clock)
    create(
        fakes.repo, fakes.queue, BODY_OF[TaskType.VIDEO]("v1", request_data={"story_prompt": "A b c.", "segments": 5})
    )

    assert deliver(fakes, processor) == [Outcome.COMPLETED]

    percents = [percent for percent, _ in writes]
    assert len(writes) >= 5
    assert all(accepted for _, accepted in writes)
    assert percents == sorted(percents)
    assert all(0 < percent < 100 for percent in percents)
    assert seen_while_running == sorted(seen_while_running)
    assert seen_while_running[0] == 0
    assert stored(fakes, "v1").progress == 100


def test_a_progress_write_is_fenced_on_processing_the_same_attempt_and_never_goes_back(fakes, processor):
    (task,) = create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))

    def write(progress: float, attempt: int = 1) -> bool:
        return fakes.repo.record_progress(
            ACCOUNT, "q1", attempt=attempt, progress=progress, message="m", now=task.updated_at
        )

    assert write(10) is False  # QUEUED: nobody runs it
    claimed = fakes.repo.save(task.model_copy(update={"status": TaskStatus.PROCESSING}), expected_version=task.version)
    assert write(10) is True
    assert write(10) is True
    assert write(40) is True
    assert write(30) is False  # progress never goes back
    assert write(50, attempt=2) is False  # another attempt's worker
    assert stored(fakes, "q1").progress == 40
    assert stored(fakes, "q1").version == claimed.version + 3
    assert write(60, attempt=0) is False
    assert fakes.repo.record_progress(ACCOUNT, "nope", attempt=1, progress=1, message="m", now="x") is False


# ------------------------------------------------------------------ duplicates and stale messages
def test_the_same_message_delivered_twice_is_acknowledged_without_work_and_completes_once(fakes, processor):
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    (message,) = messages(fakes)

    assert processor.process(message) is Outcome.COMPLETED
    done = stored(fakes, "q1")
    objects = dict(fakes.results.objects)
    assert processor.process(message) is Outcome.SKIPPED

    again = stored(fakes, "q1")
    assert again == done
    assert completions(again) == 1
    assert fakes.results.objects == objects
    assert fakes.queue.sent == []


def test_a_duplicate_arriving_while_the_first_delivery_runs_is_acknowledged_without_work(fakes, clock):
    outcomes: list[Outcome] = []
    engine = FaultyEngine(TaskType.QUIZ)
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    (message,) = messages(fakes)

    def duplicate_delivery(percent: float) -> None:
        if percent >= 50:
            engine.on_progress = None
            outcomes.append(processor.process(message))

    engine.on_progress = duplicate_delivery
    assert processor.process(message) is Outcome.COMPLETED

    assert outcomes == [Outcome.SKIPPED]
    assert engine.calls == 1
    assert completions(stored(fakes, "q1")) == 1


def test_a_message_of_an_older_attempt_is_skipped_after_a_regenerate(fakes, processor):
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.DOCUMENTATION]("d1"))
    (old,) = messages(fakes)
    assert processor.process(old) is Outcome.COMPLETED
    regenerate_tasks(fakes.repo, fakes.queue, principal(), BulkRegenerateRequest(task_ids=["d1"]))
    (new,) = messages(fakes)
    assert (old.attempt, new.attempt) == (1, 2)

    assert processor.process(old) is Outcome.SKIPPED
    assert stored(fakes, "d1").status is TaskStatus.QUEUED
    assert processor.process(new) is Outcome.COMPLETED
    assert processor.process(old) is Outcome.SKIPPED

    task = stored(fakes, "d1")
    assert task.attempt == 2
    assert task.result_key.startswith(f"results/{ACCOUNT}/d1/attempt-2/")
    assert completions(task) == 2  # one per attempt


def test_a_message_for_a_task_that_does_not_exist_is_skipped(fakes, processor):
    assert processor.process(TaskMessage(ACCOUNT, "ghost", 1)) is Outcome.SKIPPED
    assert fakes.results.objects == {}


# ------------------------------------------------------------------ engine failures
def test_a_permanent_engine_error_fails_the_task_at_once(fakes, clock):
    engine = FaultyEngine(TaskType.VIDEO, always=EngineError("the prompt names no topic", permanent=True))
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.VIDEO]("v1"))

    assert deliver(fakes, processor) == [Outcome.FAILED]

    task = stored(fakes, "v1")
    assert task.status is TaskStatus.FAILED
    assert task.error_message == "the prompt names no topic"
    assert task.error_details == {"tries": 1, "permanent": True, "last_error": "the prompt names no topic"}
    assert event_messages(task)[-1] == "Task failed (cannot succeed): the prompt names no topic"
    assert engine.calls == 1
    assert fakes.queue.sent == []
    assert fakes.results.objects == {}


def test_the_real_engine_rejects_invalid_stored_request_data_permanently(fakes, processor):
    (task,) = create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    fakes.repo.save(task.model_copy(update={"request_data": {"difficulty": "hard"}}), expected_version=task.version)

    assert deliver(fakes, processor) == [Outcome.FAILED]

    failed = stored(fakes, "q1")
    assert failed.status is TaskStatus.FAILED
    assert "story_prompt" in failed.error_message
    assert failed.error_details["permanent"] is True


@pytest.mark.parametrize("task_type", EVERY_TYPE)
def test_a_transient_engine_error_is_retried_with_a_delay_up_to_the_types_max_tries(fakes, clock, task_type):
    limit = MAX_TRIES[task_type]
    engine = FaultyEngine(task_type, always=EngineError("generator overloaded", permanent=False))
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock, retry_delay_seconds=30)
    create(fakes.repo, fakes.queue, BODY_OF[task_type]("t1"))

    outcomes, delays = [], []
    for _ in range(limit + 2):
        sent = fakes.queue.drain()
        if not sent:
            break
        ((_, message, delay),) = sent
        delays.append(delay)
        outcomes.append(processor.process(message))
        if outcomes[-1] is Outcome.RETRY_SCHEDULED:
            between = stored(fakes, "t1")
            assert between.status is TaskStatus.QUEUED
            assert between.error_details == {"tries": len(outcomes), "last_error": "generator overloaded"}

    assert outcomes == [Outcome.RETRY_SCHEDULED] * (limit - 1) + [Outcome.FAILED]
    assert delays == [0] + [30 * n for n in range(1, limit)]
    assert engine.calls == limit
    task = stored(fakes, "t1")
    assert task.status is TaskStatus.FAILED
    assert task.tries == limit
    assert task.error_message == "generator overloaded"
    assert task.error_details == {"tries": limit, "permanent": False, "last_error": "generator overloaded"}
    assert event_messages(task)[-1] == f"Task failed (failed {limit} of {limit} tries): generator overloaded"
    assert fakes.queue.sent == []


def test_a_transient_error_then_a_success_completes_and_clears_the_error(fakes, clock):
    engine = FaultyEngine(TaskType.QUIZ, [EngineError("timeout upstream", permanent=False)])
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))

    assert deliver(fakes, processor) == [Outcome.RETRY_SCHEDULED]
    assert deliver(fakes, processor) == [Outcome.COMPLETED]

    task = stored(fakes, "q1")
    assert task.status is TaskStatus.COMPLETED
    assert task.tries == 2
    assert task.error_message is None
    assert task.error_details is None
    assert "Try 1 failed: timeout upstream; retrying in 0 s" in event_messages(task)
    assert completions(task) == 1


def test_an_engine_bug_counts_as_a_failed_try(fakes, clock):
    engine = FaultyEngine(TaskType.DOCUMENTATION, always=ZeroDivisionError("division by zero"))
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.DOCUMENTATION]("d1"))

    assert deliver(fakes, processor) == [Outcome.RETRY_SCHEDULED]
    assert deliver(fakes, processor) == [Outcome.FAILED]

    task = stored(fakes, "d1")
    assert task.status is TaskStatus.FAILED
    assert task.error_message == "ZeroDivisionError: division by zero"
    assert engine.calls == MAX_TRIES[TaskType.DOCUMENTATION]


def test_a_retry_sqs_refuses_to_queue_is_redelivered_through_the_current_message(fakes, clock):
    engine = FaultyEngine(TaskType.QUIZ, [EngineError("flaky", permanent=False)])
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    (message,) = messages(fakes)
    fakes.queue.refuse = lambda priority, msg: "ThrottlingException"

    with pytest.raises(Retryable):
        processor.process(message)  # the handler reports the record failed: SQS delivers it again

    assert stored(fakes, "q1").status is TaskStatus.QUEUED
    fakes.queue.refuse = None
    assert processor.process(message) is Outcome.COMPLETED
    assert completions(stored(fakes, "q1")) == 1


def test_an_aws_error_while_storing_the_result_gives_the_claim_back_without_counting_a_try(fakes, clock):
    class FlakyResults(HookedResults):
        failures = 1

        def put(self, prefix, artifact):
            if self.failures:
                self.failures -= 1
                raise Retryable("S3 did not store the result: SlowDown")
            return super().put(prefix, artifact)

    processor = fakes.processor(results=FlakyResults(fakes.results), clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    (message,) = messages(fakes)

    with pytest.raises(Retryable):
        processor.process(message)
    released = stored(fakes, "q1")
    assert released.status is TaskStatus.QUEUED
    assert released.tries == 0
    assert event_messages(released)[-1] == "Processing interrupted by an AWS error; retrying"

    assert processor.process(message) is Outcome.COMPLETED
    assert stored(fakes, "q1").tries == 1


# ------------------------------------------------------------------ a crash between claim and completion
@pytest.mark.parametrize("task_type", EVERY_TYPE)
def test_after_a_crash_the_redelivered_message_reclaims_once_the_lease_ends_and_completes_once(fakes, clock, task_type):
    engine = FaultyEngine(task_type)
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[task_type]("t1"))
    (message,) = messages(fakes)

    def die_halfway(percent: float) -> None:
        if percent >= 50:
            raise Crash

    engine.on_progress = die_halfway
    with pytest.raises(Crash):
        processor.process(message)
    crashed = stored(fakes, "t1")
    assert crashed.status is TaskStatus.PROCESSING
    assert crashed.progress > 0

    engine.on_progress = None
    assert processor.process(message) is Outcome.SKIPPED  # within the lease its worker may still be alive
    assert stored(fakes, "t1") == crashed

    clock.advance(**lease_of(task_type))
    assert processor.process(message) is Outcome.COMPLETED

    task = stored(fakes, "t1")
    assert task.status is TaskStatus.COMPLETED
    assert task.tries == 2
    assert completions(task) == 1
    assert f"Processing started (try 2 of {MAX_TRIES[task_type]})" in event_messages(task)
    assert task.result_key in fakes.results.objects


def test_after_a_crash_without_redelivery_the_reconciler_queues_the_task_again(fakes, clock):
    engine = FaultyEngine(TaskType.QUIZ, [Crash()])
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    with pytest.raises(Crash):
        deliver(fakes, processor)

    clock.advance(**lease_of(TaskType.QUIZ))
    report = reconcile(processor, pending_after_seconds=120, limit=100, clock=clock)

    assert report.timed_out == {"retry_scheduled": 1}
    assert stored(fakes, "q1").status is TaskStatus.QUEUED
    assert deliver(fakes, processor) == [Outcome.COMPLETED]
    task = stored(fakes, "q1")
    assert task.tries == 2
    assert completions(task) == 1


def test_a_worker_outliving_its_lease_does_not_complete_twice_or_remove_the_result(fakes, clock):
    """The first worker is slow, not dead: its lease ends, the redelivered message reclaims the task
    and completes it while the first worker is between storing its result and completing."""
    outcomes: list[Outcome] = []
    results = HookedResults(fakes.results)
    processor = fakes.processor(results=results, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    (message,) = messages(fakes)

    def lease_ends_and_message_is_redelivered() -> None:
        clock.advance(**lease_of(TaskType.QUIZ))
        outcomes.append(processor.process(message))

    results.after_put = lease_ends_and_message_is_redelivered
    first = processor.process(message)

    assert outcomes == [Outcome.COMPLETED]
    assert first is Outcome.STOPPED
    task = stored(fakes, "q1")
    assert task.status is TaskStatus.COMPLETED
    assert completions(task) == 1
    assert task.result_key in fakes.results.objects


def test_a_worker_outliving_its_lease_stops_when_the_reclaimed_run_finished_first(fakes, clock):
    outcomes: list[Outcome] = []
    engine = FaultyEngine(TaskType.VIDEO)
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.VIDEO]("v1"))
    (message,) = messages(fakes)

    def lease_ends_and_message_is_redelivered(percent: float) -> None:
        if percent >= 50:
            engine.on_progress = None  # once: the redelivered run goes through undisturbed
            clock.advance(**lease_of(TaskType.VIDEO))
            outcomes.append(processor.process(message))

    engine.on_progress = lease_ends_and_message_is_redelivered
    first = processor.process(message)

    assert outcomes == [Outcome.COMPLETED]
    assert first is Outcome.STOPPED
    task = stored(fakes, "v1")
    assert task.status is TaskStatus.COMPLETED
    assert completions(task) == 1
    assert task.result_key in fakes.results.objects


def test_progress_of_a_claim_that_was_taken_over_is_refused(fakes, clock):
    """A worker that outlived its lease stops at its next progress write once another delivery
    has reclaimed the task, although both runs belong to the same attempt."""
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    (message,) = messages(fakes)
    engine = FaultyEngine(TaskType.QUIZ)
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    claims: list[Task] = []

    def reclaimed_meanwhile(percent: float) -> None:
        claims.append(stored(fakes, "q1"))
        if len(claims) == 1:
            clock.advance(**lease_of(TaskType.QUIZ))
            # The redelivery takes the task over (its own run is stopped here by the same hook).
            fakes.repo.save(
                claims[0].model_copy(update={"state_since": "2099-01-01T00:00:00.000000Z"}),
                expected_version=claims[0].version,
            )

    engine.on_progress = reclaimed_meanwhile
    assert processor.process(message) is Outcome.STOPPED
    task = stored(fakes, "q1")
    assert task.status is TaskStatus.PROCESSING  # still the new claim's: the old run wrote nothing more
    assert task.progress == claims[0].progress
    assert fakes.results.objects == {}


def test_a_claim_that_loses_to_the_queued_write_is_decided_again_and_keeps_the_queue_event(fakes, clock):
    """A fast worker reads the task while it is still PENDING; enqueue's QUEUED write lands before
    the claim: the claim is retried on a fresh read instead of dropping the message."""
    (task,) = create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    (message,) = messages(fakes)
    pending = task.model_copy(update={"status": TaskStatus.PENDING, "events": task.events[:1]})
    fakes.repo.save(pending, expected_version=task.version)
    repository = RepositoryProxy(fakes.repo)
    reads = []

    def get(account_id, task_id):
        current = fakes.repo.get(account_id, task_id)
        if not reads:  # between this read and the claim, enqueue marks the task QUEUED
            fakes.repo.save(current.model_copy(update={"status": TaskStatus.QUEUED}), expected_version=current.version)
        reads.append(current)
        return current

    repository.get = get
    processor = fakes.processor(repository=repository, clock=clock)
    assert processor.process(message) is Outcome.COMPLETED
    assert reads[0].status is TaskStatus.PENDING
    assert completions(stored(fakes, "q1")) == 1


def test_a_task_claimed_while_still_pending_records_that_it_was_queued(fakes, processor):
    (task,) = create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    (message,) = messages(fakes)
    fakes.repo.save(
        task.model_copy(update={"status": TaskStatus.PENDING, "events": task.events[:1]}), expected_version=task.version
    )
    assert processor.process(message) is Outcome.COMPLETED
    assert event_messages(stored(fakes, "q1"))[:3] == [
        "Task pending",
        "Task added to quiz processing queue",
        "Processing started (try 1 of 2)",
    ]

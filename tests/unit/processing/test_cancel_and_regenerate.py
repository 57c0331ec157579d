"""Cancel and regenerate against running work: cancel wins over a late completion, a stopped run
leaves no result behind, two regenerates of one task start one new attempt, and the regenerate rules."""

from __future__ import annotations

import json
import threading

import pytest

from taskapi.engines.video import VideoEngine
from taskapi.models.domain import Task, TaskStatus, TaskType
from taskapi.models.requests import BulkRegenerateRequest
from taskapi.services.lifecycle import cancel_tasks, regenerate_tasks
from taskapi.services.processing import Outcome
from tests.support.media import (
    CLIP_COLOUR,
    LOGO_COLOUR,
    ServedMedia,
    clip,
    colour_pixels,
    logo_area,
    logo_pixels,
    picture_at,
    png,
    probe_mp4,
)
from tests.unit.processing.support import (
    ACCOUNT,
    BODY_OF,
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

LOGO = "https://cdn.example.com/logo.png"
INTRO = "https://cdn.example.com/intro.mp4"


def result_file(fakes, task: Task, name: str | None = None) -> bytes:
    """The task's primary result file, or the file called `name` beside it."""
    key = task.result_key if name is None else task.result_key.rsplit("/", 1)[0] + "/" + name
    return fakes.results.objects[key][1]


def stored(fakes, task_id: str) -> Task:
    task = fakes.repo.get(ACCOUNT, task_id)
    assert task is not None
    return task


def cancel(fakes, *task_ids: str, reason: str = "User requested cancellation") -> dict:
    return cancel_tasks(fakes.repo, principal(), list(task_ids), reason)


def regenerate(fakes, *task_ids: str, **options) -> dict:
    return regenerate_tasks(
        fakes.repo, fakes.queue, principal(), BulkRegenerateRequest(task_ids=list(task_ids), **options)
    )


def detail(answer: dict, task_id: str) -> dict:
    (found,) = [d for d in answer["details"] if d["task_id"] == task_id]
    return found


def completed(fakes, processor, *bodies) -> None:
    create(fakes.repo, fakes.queue, *bodies)
    assert set(deliver(fakes, processor)) == {Outcome.COMPLETED}


# ------------------------------------------------------------------ cancel racing completion
@pytest.mark.parametrize("task_type", list(TaskType))
def test_a_cancel_landing_while_the_engine_runs_stops_the_run_and_leaves_no_result(fakes, clock, task_type):
    answers: list[dict] = []
    engine = FaultyEngine(task_type)
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[task_type]("t1"))

    def user_cancels(percent: float) -> None:
        if percent >= 30:
            engine.on_progress = None
            answers.append(cancel(fakes, "t1"))
            answers.append(percent)

    engine.on_progress = user_cancels
    assert deliver(fakes, processor) == [Outcome.STOPPED]

    answer, cancelled_at = answers
    assert detail(answer, "t1") == {
        "task_id": "t1",
        "status": "cancelled",
        "reason": "Successfully cancelled: User requested cancellation",
        "queue_result": "Processing stops at its next progress update",
    }
    task = stored(fakes, "t1")
    assert task.status is TaskStatus.CANCELLED
    assert task.result_key is None
    assert completions(task) == 0
    assert event_messages(task)[-1] == "Task cancelled: User requested cancellation"
    assert engine.reported[-1] == cancelled_at  # the first report after the cancel stopped the engine
    assert task.progress < cancelled_at  # ... and was not written
    assert fakes.results.objects == {}
    assert fakes.queue.sent == []


def test_a_cancel_landing_after_the_result_is_stored_wins_and_the_result_is_removed(fakes, clock):
    results = HookedResults(fakes.results, after_put=lambda: cancel(fakes, "q1"))
    processor = fakes.processor(results=results, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))

    assert deliver(fakes, processor) == [Outcome.STOPPED]

    task = stored(fakes, "q1")
    assert task.status is TaskStatus.CANCELLED
    assert task.result_key is None
    (deleted,) = results.deletes
    assert deleted.startswith(f"results/{ACCOUNT}/q1/attempt-1/claim-")
    assert fakes.results.objects == {}


def test_a_cancel_landing_just_before_the_completion_write_wins(fakes, clock):
    # The completion is written unread, against the version the run's own writes left: a cancel
    # just before it changes that version, so the write loses and the task is read to decide.
    class CancelBeforeCompletionWrite(RepositoryProxy):
        armed = False

        def save(self, task, *, expected_version):
            if self.armed:
                self.armed = False
                cancel(fakes, task.task_id)
            return self.inner.save(task, expected_version=expected_version)

    repository = CancelBeforeCompletionWrite(fakes.repo)
    results = HookedResults(fakes.results, after_put=lambda: setattr(repository, "armed", True))
    processor = fakes.processor(repository=repository, results=results, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.DOCUMENTATION]("d1"))

    assert deliver(fakes, processor) == [Outcome.STOPPED]

    task = stored(fakes, "d1")
    assert task.status is TaskStatus.CANCELLED
    assert completions(task) == 0
    assert fakes.results.objects == {}


def test_a_cancelled_task_is_never_completed_by_a_message_delivered_later(fakes, processor):
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    answer = cancel(fakes, "q1")

    assert detail(answer, "q1")["queue_result"] == "Task cancelled from queue"
    assert deliver(fakes, processor) == [Outcome.SKIPPED]
    assert stored(fakes, "q1").status is TaskStatus.CANCELLED
    assert fakes.results.objects == {}


def test_cancel_after_completion_is_skipped_and_the_result_stays(fakes, processor):
    completed(fakes, processor, BODY_OF[TaskType.QUIZ]("q1"))
    before = stored(fakes, "q1")

    answer = cancel(fakes, "q1")

    assert detail(answer, "q1") == {
        "task_id": "q1",
        "status": "skipped",
        "reason": "Task already in final state: COMPLETED",
    }
    assert (answer["cancelled_count"], answer["failed_count"]) == (0, 1)
    assert stored(fakes, "q1") == before
    assert before.result_key in fakes.results.objects


def test_cancel_records_who_why_and_what_happened_to_each_tasks_message(fakes, processor):
    fakes.queue.refuse = lambda priority, message: "refused" if message.task_id == "p1" else None
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("p1"), BODY_OF[TaskType.QUIZ]("q1"))
    fakes.queue.refuse = None

    answer = cancel(fakes, "p1", "q1", "missing", reason="Course cancelled")

    assert answer["success"] is True
    assert answer["message"] == "Cancelled 2 tasks, 0 failures"
    assert (answer["cancelled_count"], answer["not_found_ids"], answer["total_requested"]) == (2, ["missing"], 3)
    assert detail(answer, "p1")["queue_result"] == "Not in queue"
    assert detail(answer, "q1")["queue_result"] == "Task cancelled from queue"
    task = stored(fakes, "p1")
    assert task.error_message == "Cancelled: Course cancelled"
    assert task.error_details["cancelled"] is True
    assert task.error_details["cancelled_by"] == "user_1"
    assert task.error_details["previous_status"] == "PENDING"


# ------------------------------------------------------------------ regenerate rules
def test_regenerate_skips_a_queued_task(fakes):
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))

    answer = regenerate(fakes, "q1")

    assert detail(answer, "q1") == {"task_id": "q1", "status": "skipped", "reason": "Task is already in the queue"}
    assert stored(fakes, "q1").attempt == 1


def test_regenerate_skips_a_processing_task_unless_forced(fakes, clock):
    answers: list[dict] = []
    engine = FaultyEngine(TaskType.QUIZ)
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))

    def regenerate_while_running(percent: float) -> None:
        engine.on_progress = None
        answers.append(regenerate(fakes, "q1"))

    engine.on_progress = regenerate_while_running
    assert deliver(fakes, processor) == [Outcome.COMPLETED]

    assert detail(answers[0], "q1") == {
        "task_id": "q1",
        "status": "skipped",
        "reason": "Task is currently processing. Use force=true to override.",
    }
    assert stored(fakes, "q1").attempt == 1


def test_a_forced_regenerate_stops_the_running_attempt_and_the_new_one_completes_alone(fakes, clock):
    answers: list[dict] = []
    engine = FaultyEngine(TaskType.VIDEO)
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.VIDEO]("v1"))

    def forced_regenerate(percent: float) -> None:
        if percent >= 40:
            engine.on_progress = None
            answers.append(regenerate(fakes, "v1", force=True))

    engine.on_progress = forced_regenerate
    assert deliver(fakes, processor) == [Outcome.STOPPED]
    assert detail(answers[0], "v1")["status"] == "regenerated"
    assert deliver(fakes, processor) == [Outcome.COMPLETED]

    task = stored(fakes, "v1")
    assert task.attempt == 2
    assert completions(task) == 1
    assert all(key.startswith(f"results/{ACCOUNT}/v1/attempt-2/") for key in fakes.results.objects)


def test_regenerate_fails_a_task_without_request_data(fakes):
    create(fakes.repo, fakes.queue, {"task_type": "quiz", "task_id": "bare"})

    answer = regenerate(fakes, "bare")

    assert detail(answer, "bare") == {
        "task_id": "bare",
        "status": "failed",
        "reason": "Task has no request_data to regenerate",
    }
    assert answer["success"] is False
    assert stored(fakes, "bare").attempt == 1
    assert fakes.queue.sent == []


def test_regenerate_writes_video_overrides_into_request_data_and_the_new_result_uses_them(fakes, clock):
    # example.com is not fetched in a unit test: the engine's fetcher serves a magenta logo and a
    # one-second green intro made here.
    served = ServedMedia({LOGO: (png(LOGO_COLOUR), "image/png"), INTRO: (clip(1.0, CLIP_COLOUR), "video/mp4")})
    processor = fakes.processor(engine_for=registry_with(VideoEngine(fetcher=served)).get, clock=clock)
    completed(fakes, processor, BODY_OF[TaskType.VIDEO]("v1"), BODY_OF[TaskType.QUIZ]("q1"))
    quiz_data = stored(fakes, "q1").request_data
    first = stored(fakes, "v1")

    answer = regenerate(fakes, "v1", "q1", logo_url=LOGO, intro_video_url=INTRO)

    assert answer["regenerated_count"] == 2
    video = stored(fakes, "v1")
    assert video.request_data["logo_url"] == LOGO
    assert video.request_data["intro_video_url"] == INTRO
    assert "outro_video_url" not in video.request_data
    assert stored(fakes, "q1").request_data == quiz_data
    assert served.calls == []  # the first run named no branding
    assert deliver(fakes, processor) == [Outcome.COMPLETED, Outcome.COMPLETED]

    # Then the new video is the first one with the intro before it and the logo in its corner
    again = stored(fakes, "v1")
    assert served.calls == [(LOGO, "logo"), (INTRO, "intro")]
    before, after = result_file(fakes, first), result_file(fakes, again)
    manifest = json.loads(result_file(fakes, again, "manifest.json"))
    assert (manifest["logo_url"], manifest["intro_video_url"]) == (LOGO, INTRO)
    assert "outro_video_url" not in manifest
    probed = probe_mp4(after)
    assert probed.duration_seconds == pytest.approx(manifest["total_duration_seconds"], rel=0.01)
    intro_seconds = manifest["total_duration_seconds"] - manifest["narration_duration_ms"] / 1000
    assert intro_seconds == pytest.approx(1.0, abs=0.1)
    opening = picture_at(after, 0.5)
    assert colour_pixels(opening, CLIP_COLOUR) > 0.9 * opening.width * opening.height  # the intro plays first
    corner, elsewhere = logo_pixels(picture_at(after, intro_seconds + 1.0))
    assert corner > 0.5 * logo_area(probed.height)
    assert elsewhere < 0.1 * corner
    assert logo_pixels(picture_at(before, 1.0))[0] == 0  # the first attempt's video has no logo
    assert again.result_summary["duration_seconds"] == manifest["total_duration_seconds"]


def test_regenerate_with_reset_to_pending_clears_result_progress_and_error(fakes, clock):
    completed(fakes, fakes.processor(clock=clock), BODY_OF[TaskType.DOCUMENTATION]("d1"))
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    fakes.repo.save(
        stored(fakes, "q1").model_copy(update={"status": TaskStatus.FAILED, "error_message": "boom", "tries": 2}),
        expected_version=stored(fakes, "q1").version,
    )
    fakes.queue.drain()

    answer = regenerate(fakes, "d1", "q1")

    assert answer["regenerated_count"] == 2
    for task_id in ("d1", "q1"):
        task = stored(fakes, task_id)
        assert task.status is TaskStatus.QUEUED
        assert (task.attempt, task.tries, task.progress) == (2, 0, 0)
        assert task.result_key is None
        assert task.result_summary is None
        assert task.error_message is None
        assert task.error_details is None
        assert event_messages(task)[-2:] == [
            "Task regenerated (attempt 2)",
            f"Task added to {task.task_type.value} processing queue",
        ]
    assert sorted(m.task_id for m in messages(fakes)) == ["d1", "q1"]


def test_regenerate_without_reset_keeps_the_previous_result_until_the_new_attempt_completes(fakes, clock):
    seen_while_running: list[Task] = []
    engine = FaultyEngine(TaskType.QUIZ)
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    completed(fakes, processor, BODY_OF[TaskType.QUIZ]("q1"))
    first = stored(fakes, "q1")

    regenerate(fakes, "q1", reset_to_pending=False)

    queued = stored(fakes, "q1")
    assert (queued.status, queued.attempt) == (TaskStatus.QUEUED, 2)
    assert (queued.result_key, queued.result_summary, queued.progress) == (
        first.result_key,
        first.result_summary,
        100,
    )
    engine.on_progress = lambda percent: seen_while_running.append(stored(fakes, "q1"))
    assert deliver(fakes, processor) == [Outcome.COMPLETED]
    assert seen_while_running[0].status is TaskStatus.PROCESSING
    assert seen_while_running[0].result_key == first.result_key
    task = stored(fakes, "q1")
    assert task.result_key.startswith(f"results/{ACCOUNT}/q1/attempt-2/claim-")
    assert task.result_key.endswith("/quiz.json")
    assert first.result_key in fakes.results.objects  # the old attempt's files are not the new one's


def test_a_failed_task_regenerated_completes_on_its_new_attempt(fakes, clock):
    engine = FaultyEngine(TaskType.QUIZ, [ValueError("bug"), ValueError("bug")])
    processor = fakes.processor(engine_for=registry_with(engine).get, clock=clock)
    create(fakes.repo, fakes.queue, BODY_OF[TaskType.QUIZ]("q1"))
    for _ in range(2):
        deliver(fakes, processor)
    assert stored(fakes, "q1").status is TaskStatus.FAILED

    regenerate(fakes, "q1")
    assert deliver(fakes, processor) == [Outcome.COMPLETED]

    task = stored(fakes, "q1")
    assert (task.status, task.attempt, task.tries) == (TaskStatus.COMPLETED, 2, 1)


# ------------------------------------------------------------------ two regenerates racing
def test_a_regenerate_reading_before_another_writes_starts_no_second_attempt(fakes, processor):
    completed(fakes, processor, BODY_OF[TaskType.QUIZ]("q1"))
    answers: dict[str, dict] = {}

    class SecondRequestReadsFirst(RepositoryProxy):
        def __init__(self, inner) -> None:
            super().__init__(inner)
            self.interleave = True

        def get_many(self, account_id, task_ids):
            found = self.inner.get_many(account_id, task_ids)
            if self.interleave:
                self.interleave = False
                answers["second"] = regenerate(fakes, "q1")  # reads the same version and writes first
            return found

    answers["first"] = regenerate_tasks(
        SecondRequestReadsFirst(fakes.repo), fakes.queue, principal(), BulkRegenerateRequest(task_ids=["q1"])
    )

    statuses = sorted(detail(answer, "q1")["status"] for answer in answers.values())
    assert statuses == ["regenerated", "skipped"]
    task = stored(fakes, "q1")
    assert task.attempt == 2
    assert event_messages(task).count("Task regenerated (attempt 2)") == 1
    assert [m.attempt for m in messages(fakes)] == [2]


def test_two_regenerates_racing_through_the_window_before_the_first_is_queued_start_one_attempt(fakes, processor):
    """Both requests read attempt 1. The first writes attempt 2; the second's write loses and it
    re-reads the task while the first has not queued it yet (still PENDING): it must not start a
    third attempt on top of the one the first request just started."""
    completed(fakes, processor, BODY_OF[TaskType.QUIZ]("q1"))
    a_read, b_read, a_wrote, b_reread = (threading.Event() for _ in range(4))
    reads: dict[str, int] = {"first": 0, "second": 0}

    def step(signal: threading.Event | None, wait: threading.Event | None) -> None:
        if signal is not None:
            signal.set()
        if wait is not None:
            assert wait.wait(timeout=5), "the interleaving stalled"

    class Scripted(RepositoryProxy):
        def get_many(self, account_id, task_ids):
            name = threading.current_thread().name
            found = self.inner.get_many(account_id, task_ids)
            reads[name] += 1
            if name == "first" and reads[name] == 1:
                step(a_read, b_read)
            elif name == "second" and reads[name] == 1:
                step(b_read, None)
            elif name == "second" and reads[name] == 2:
                step(b_reread, None)
            return found

        def save_many(self, changes):
            name = threading.current_thread().name
            if name == "second" and reads[name] == 1:
                step(None, a_wrote)
            saved = self.inner.save_many(changes)
            if name == "first" and reads[name] == 1:
                step(a_wrote, None)
            return saved

    class Queue:
        def send(self, batch, *, delay_seconds=0):
            if threading.current_thread().name == "first":
                step(None, b_reread)
            return fakes.queue.send(batch, delay_seconds=delay_seconds)

    repository, queue = Scripted(fakes.repo), Queue()
    answers: dict[str, dict] = {}

    def request(name: str) -> None:
        if name == "second":
            step(None, a_read)
        answers[name] = regenerate_tasks(repository, queue, principal(), BulkRegenerateRequest(task_ids=["q1"]))

    threads = [threading.Thread(target=request, args=(name,), name=name) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert set(answers) == {"first", "second"}
    assert detail(answers["first"], "q1")["status"] == "regenerated"
    assert detail(answers["second"], "q1")["status"] == "skipped"
    task = stored(fakes, "q1")
    assert task.attempt == 2
    assert [m for m in event_messages(task) if m.startswith("Task regenerated")] == ["Task regenerated (attempt 2)"]
    assert deliver(fakes, processor) == [Outcome.COMPLETED]
    assert json.loads(fakes.results.objects[stored(fakes, "q1").result_key][1])

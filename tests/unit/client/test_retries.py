"""Retries: which failures are repeated, how long the client waits, and when it gives up."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from taskapi.client import BadRequest, NotFound, RateLimited, ServerError, TaskApiClient, TaskApiError
from taskapi.client.retry import Backoff, parse_retry_after
from taskapi.store.base import TaskFilters
from tests import factories
from tests.unit.client.conftest import BASE_URL, mock_client

HEALTH = {"status": "ok", "version": "test"}
REGENERATED = {
    "success": True,
    "message": "Regenerated 1 tasks, 0 failures",
    "regenerated_count": 1,
    "failed_count": 0,
    "not_found_count": 0,
    "not_found_ids": [],
    "total_requested": 1,
    "details": [{"task_id": "t1", "status": "regenerated", "reason": "Successfully queued for regeneration"}],
}


class Script:
    """A MockTransport handler answering from a list: a Response, or an exception to raise."""

    def __init__(self, *steps: httpx.Response | Exception) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step


def busy(status: int = 503, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(status, json={"detail": "busy"}, headers=headers)


def ok(body=None) -> httpx.Response:
    return httpx.Response(200, json=HEALTH if body is None else body)


def test_429_is_retried_after_the_retry_after_seconds(sleeps):
    script = Script(busy(429, "2"), busy(429, "7.5"), ok())
    api = mock_client(script, sleeps)
    assert api.health().status == "ok"
    assert sleeps == [2.0, 7.5]
    assert len(script.requests) == 3
    assert str(script.requests[0].url) == "http://api.test/v1/health"


def test_retry_after_as_an_http_date_is_honoured(sleeps):
    past = format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)
    future = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    api = mock_client(Script(busy(429, past), busy(503, future), ok()), sleeps)
    api.health()
    assert sleeps == [0.0, 30.0], "a past date means now; a far one is capped at backoff_max"


def test_parse_retry_after():
    now = datetime(2025, 6, 15, 10, 30, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Sun, 15 Jun 2025 10:30:45 GMT", now=now) == 45.0
    assert parse_retry_after("Sun, 15 Jun 2025 10:29:00 GMT", now=now) == 0.0
    for unreadable in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(unreadable) is None


def test_retry_after_is_capped_at_backoff_max(sleeps):
    api = mock_client(Script(busy(429, "3600"), ok()), sleeps, backoff_max=4)
    api.health()
    assert sleeps == [4.0]


def test_503_then_success_waits_an_exponential_backoff(sleeps):
    api = mock_client(Script(busy(503), busy(502), busy(504), ok()), sleeps, backoff_base=0.5)
    assert api.health().status == "ok"
    # rand() is 0.5: each wait is 3/4 of min(backoff_max, 0.5 * 2**n)
    assert sleeps == [0.375, 0.75, 1.5]


def test_backoff_has_equal_jitter_and_a_ceiling():
    backoff = Backoff(base=1, maximum=10)
    assert [backoff.delay(n, retry_after=None, rand=0.0) for n in range(5)] == [0.5, 1, 2, 4, 5]
    assert [backoff.delay(n, retry_after=None, rand=0.999) for n in range(5)] == pytest.approx([1, 2, 4, 8, 10], 0.01)
    assert backoff.delay(10_000, retry_after=None, rand=0.0) == 5
    assert backoff.delay(0, retry_after=12, rand=0.0) == 10


def test_gives_up_after_max_retries_with_the_last_error(sleeps):
    script = Script(busy(503, "1"))
    api = mock_client(script, sleeps, max_retries=3)
    with pytest.raises(ServerError) as caught:
        api.queue_status()
    assert caught.value.status_code == 503
    assert caught.value.detail == "busy"
    assert len(script.requests) == 4
    assert sleeps == [1.0, 1.0, 1.0]


def test_rate_limited_error_carries_retry_after(sleeps):
    api = mock_client(Script(busy(429, "9")), sleeps, max_retries=0)
    with pytest.raises(RateLimited) as caught:
        api.health()
    assert caught.value.retry_after == 9.0
    assert sleeps == []


@pytest.mark.parametrize(("status", "error"), [(400, BadRequest), (404, NotFound), (500, ServerError)])
def test_other_errors_are_not_retried(sleeps, status, error):
    script = Script(httpx.Response(status, json={"detail": "no"}), ok())
    api = mock_client(script, sleeps)
    with pytest.raises(error) as caught:
        api.health()
    assert caught.value.status_code == status
    assert len(script.requests) == 1
    assert sleeps == []


def test_api_gateway_answers_are_read_too(sleeps):
    api = mock_client(Script(httpx.Response(403, json={"message": "Missing Authentication Token"})), sleeps)
    with pytest.raises(TaskApiError, match="Missing Authentication Token"):
        api.health()
    api = mock_client(Script(httpx.Response(500, text="upstream exploded")), sleeps)
    with pytest.raises(ServerError, match="upstream exploded"):
        api.health()


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow connect"),
        httpx.ReadTimeout("slow read"),
        httpx.RemoteProtocolError("closed without an answer"),
    ],
)
def test_transport_errors_are_retried_for_idempotent_requests(sleeps, failure):
    script = Script(failure, ok())
    api = mock_client(script, sleeps)
    assert api.health().status == "ok"
    assert len(script.requests) == 2
    assert sleeps == [0.375]


def test_transport_error_outlasting_the_retries_is_raised(sleeps):
    api = mock_client(Script(httpx.ReadTimeout("slow")), sleeps, max_retries=2)
    with pytest.raises(httpx.ReadTimeout):
        api.health()
    assert len(sleeps) == 2


@pytest.mark.parametrize("failure", [busy(503), busy(502), busy(504), httpx.ReadTimeout("slow read")])
def test_bulk_regenerate_is_not_retried_when_it_may_have_been_processed(sleeps, failure):
    script = Script(failure, ok(REGENERATED))
    api = mock_client(script, sleeps)
    with pytest.raises((ServerError, httpx.ReadTimeout)):
        api.bulk_regenerate(["t1"])
    assert len(script.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize("failure", [busy(429, "2"), httpx.ConnectError("refused")])
def test_bulk_regenerate_is_retried_when_it_was_not_processed(sleeps, failure):
    script = Script(failure, ok(REGENERATED))
    api = mock_client(script, sleeps)
    assert api.bulk_regenerate(["t1"]).regenerated_count == 1
    assert len(script.requests) == 2


def test_bulk_create_sends_the_same_ids_on_every_attempt(sleeps):
    script = Script(busy(503), httpx.Response(200, json=[]))
    api = mock_client(script, sleeps)
    api.create_tasks_bulk([factories.quiz(), factories.quiz("mine")])
    first, second = ([t["task_id"] for t in json.loads(r.content)["tasks"]] for r in script.requests)
    assert first == second
    assert first[1] == "mine"


def test_a_lost_answer_to_bulk_create_creates_no_duplicates(fakes, app_http, api_key, sleeps):
    """The server processes the first request, then the answer is lost (a read timeout): the retry
    carries the same filled-in task ids, so the server answers the tasks it already holds."""
    lost: list[httpx.Request] = []

    def lose_first_answer(request: httpx.Request) -> httpx.Response:
        answer = app_http.request(request.method, str(request.url), headers=request.headers, content=request.content)
        if not lost:
            lost.append(request)
            raise httpx.ReadTimeout("answer lost", request=request)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    http = httpx.Client(transport=httpx.MockTransport(lose_first_answer))
    api = TaskApiClient(BASE_URL, api_key=api_key, http=http, sleep=sleeps.append, rand=lambda: 0.0)
    created = api.create_tasks_bulk([factories.quiz(), factories.video(), factories.documentation("doc-1")])

    assert len(lost) == 1
    assert sleeps == [0.25]
    stored = fakes.repo.page("acct_a", TaskFilters(), before=None, want=50)
    assert len(stored) == 3
    assert {t.task_id for t in stored} == {t.task_id for t in created}
    # Each request sent its tasks' messages before inserting (one write per task): the retry's
    # three are duplicates, which the processor acknowledges without running anything twice.
    assert sorted(m.task_id for _, m, _ in fakes.queue.sent) == sorted(2 * [t.task_id for t in created])
    fakes.run_queue()
    done = fakes.repo.get_many("acct_a", [t.task_id for t in created]).values()
    assert [[e.message for e in t.events].count("Task completed") for t in done] == [1, 1, 1]

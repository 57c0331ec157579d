"""`taskapi watch`: polls counts until every matching task is final. The injected sleep moves the
fakes on between polls (the processor runs the queue, or tasks are saved final)."""

from __future__ import annotations

import io
import re

import httpx

from taskapi.client.cli import main
from taskapi.client.cli.runtime import ENV_API_KEY, Runtime
from taskapi.models.domain import TaskStatus
from tests import factories
from tests.unit.client.support import finish


def table(out: str) -> dict[str, dict[str, int]]:
    """The last plain watch table: {type or "all": {column: count}}."""
    lines = out.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("type "))
    headers = lines[start].split()
    rows = {}
    for line in lines[start + 1 :]:
        cells = line.split()
        if len(cells) != len(headers):
            break
        rows[cells[0]] = {h: int(c) for h, c in zip(headers[1:], cells[1:], strict=True)}
    return rows


def test_watch_refreshes_until_every_task_is_final_then_exits_0(cli, api, fakes):
    api.create_tasks_bulk([factories.quiz(task_source_group_id="g") for _ in range(5)])
    api.create_task(factories.quiz("elsewhere", task_source_group_id="other"))
    polls: list[float] = []

    def sleep(seconds: float) -> None:  # between polls, the processor runs what is queued
        polls.append(seconds)
        processor = fakes.processor()
        for _, message, _ in fakes.queue.drain():
            if message.task_id != "elsewhere":
                processor.process(message)

    ran = cli("watch", "--group", "g", "--interval", "2", sleep=sleep)

    assert ran.code == 0
    assert polls == [2.0]
    assert "Tasks of group g: 0/5 final: PENDING 0  QUEUED 5  PROCESSING 0  COMPLETED 0" in ran.out
    assert "Tasks of group g: all 5 final" in ran.out
    assert table(ran.out)["all"] == {**dict.fromkeys(s.value for s in TaskStatus), "COMPLETED": 5, "total": 5} | {
        s.value: 0 for s in TaskStatus if s is not TaskStatus.COMPLETED
    }
    assert api.get_task("elsewhere").status is TaskStatus.QUEUED


def test_watch_exits_1_when_a_task_ended_failed(cli, api, fakes, capsys):
    api.create_tasks_bulk([factories.quiz(f"t{i}", task_source_group_id="g") for i in range(3)])
    steps = [
        lambda: finish(fakes, "t0", TaskStatus.COMPLETED),
        lambda: (finish(fakes, "t1", TaskStatus.FAILED), finish(fakes, "t2", TaskStatus.CANCELLED)),
    ]

    ran = cli("watch", "--group", "g", sleep=lambda _: steps.pop(0)())

    assert ran.code == 1
    assert steps == []
    assert "1 of 3 tasks FAILED" in capsys.readouterr().err
    assert table(ran.out)["all"]["FAILED"] == 1
    assert table(ran.out)["all"]["CANCELLED"] == 1


def test_watch_counts_per_task_type_with_few_calls(cli, api, fakes, seen):
    api.create_tasks_bulk(
        [
            factories.quiz("q1", task_source_group_id="g"),
            factories.quiz("q2", task_source_group_id="g"),
            factories.video("v1", task_source_group_id="g"),
            factories.documentation("d1", task_source_group_id="g"),
        ]
    )
    seen.clear()
    steps = [
        lambda: finish(fakes, "q1", TaskStatus.COMPLETED),
        lambda: [finish(fakes, t, TaskStatus.COMPLETED) for t in ("q2", "v1", "d1")],
    ]

    ran = cli("watch", "--group", "g", "--plain", sleep=lambda _: steps.pop(0)())

    assert ran.code == 0
    rows = table(ran.out)
    assert rows["quiz"]["COMPLETED"] == 2
    assert rows["video"]["COMPLETED"] == 1
    assert rows["documentation"]["total"] == 1
    assert "animated_lesson" not in rows
    counts = [dict(r.url.params) for r in seen]
    assert all(r.url.path == "/api/tasks/count/total" for r in seen)
    # poll 1: 6 statuses + 4 types (discovery) + 2 types x 1 non-zero status (the last by subtraction)
    # poll 2: 6 statuses + 2 types x 2 statuses; poll 3: 6 statuses + 2 x 1, then one open count
    assert len(counts) == (6 + 4 + 2) + (6 + 4) + (6 + 2) + 1
    assert counts[-1] == {"task_source_group_id": "g", "status": "PENDING,QUEUED,PROCESSING"}


def test_watch_sums_more_than_100_ids_over_several_requests(cli, api, fakes, seen):
    ids = [f"t{i}" for i in range(150)]
    api.create_tasks([factories.documentation(i) for i in ids])
    for task_id in ids:
        finish(fakes, task_id, TaskStatus.COMPLETED)
    seen.clear()

    ran = cli("watch", "--ids", ",".join(ids[:120]), "--ids", *ids[120:], sleep=lambda _: None)

    assert ran.code == 0
    assert table(ran.out)["all"]["COMPLETED"] == 150
    assert "Tasks of 150 tasks: all 150 final" in ran.out
    assert {len(r.url.params["task_ids"].split(",")) for r in seen} == {100, 50}


def test_watch_of_nothing_exits_1(cli, capsys):
    ran = cli("watch", "--group", "nobody", sleep=lambda _: None)

    assert ran.code == 1
    assert "no tasks match (group nobody)" in capsys.readouterr().err


def test_watch_gives_up_after_its_timeout(cli, api, capsys):
    api.create_task(factories.quiz("slow", task_source_group_id="g"))
    clock = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    ran = cli("watch", "--group", "g", "--interval", "4", "--timeout", "10", sleep=sleep, clock=lambda: clock[0])

    assert ran.code == 1
    assert waits == [4.0, 4.0, 2.0]
    assert "1 tasks were still open after 10 seconds" in capsys.readouterr().err
    assert table(ran.out)["all"]["QUEUED"] == 1


def test_watch_draws_a_live_table_on_a_terminal(cli, api, fakes):
    api.create_tasks_bulk([factories.quiz(task_source_group_id="g") for _ in range(2)])

    ran = cli("watch", "--group", "g", sleep=lambda _: fakes.run_queue(), force_terminal=True, width=120)

    assert ran.code == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", ran.out)
    assert "Ctrl-C stops watching" in text, "the live table was drawn"
    assert "Tasks of group g: all 2 final" in text
    assert re.search(r"│ all\s+│\s+0 │\s+0 │\s+0 │\s+2 │", text)


def test_an_interrupted_watch_exits_130(cli, api, capsys):
    api.create_task(factories.quiz(task_source_group_id="g"))

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    assert cli("watch", "--group", "g", sleep=interrupt).code == 130
    assert "stopped watching" in capsys.readouterr().err


def test_watch_reports_an_unreachable_api(api_key, capsys):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    runtime = Runtime(
        env={ENV_API_KEY: api_key},
        http=httpx.Client(transport=httpx.MockTransport(refuse)),
        sleep=lambda _: None,
        stdout=io.StringIO(),
    )

    assert main(["watch", "--group", "g"], runtime) == 1
    err = capsys.readouterr().err
    assert "cannot count the tasks: http://127.0.0.1:8000 did not answer (ConnectError" in err


def test_watch_shows_a_task_type_added_while_it_watches(cli, api, fakes):
    api.create_task(factories.quiz("q1", task_source_group_id="g"))
    steps = [
        lambda: api.create_task(factories.documentation("d1", task_source_group_id="g")),
        lambda: None,
        lambda: fakes.run_queue(),
    ]

    ran = cli("watch", "--group", "g", sleep=lambda _: steps.pop(0)())

    assert ran.code == 0
    assert steps == []
    rows = table(ran.out)
    assert (rows["quiz"]["COMPLETED"], rows["documentation"]["COMPLETED"], rows["all"]["total"]) == (1, 1, 2)

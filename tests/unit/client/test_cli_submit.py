"""`taskapi submit` through bulk calls, against the real app over the in-memory fakes (no socket)."""

from __future__ import annotations

import csv
import json
import re

import httpx

from taskapi import cli as operator_cli
from taskapi.client.cli.runtime import ENV_API_KEY
from taskapi.models.domain import TaskType
from tests import factories
from tests.unit.client.support import summary, write_jsonl


def paths(seen: list[httpx.Request]) -> list[str]:
    return [f"{r.method} {r.url.path}" for r in seen]


def test_submit_jsonl_creates_the_tasks_in_bulk_calls_of_100_and_prints_a_summary(cli, tmp_path, fakes, seen, api):
    file = write_jsonl(tmp_path / "batch.jsonl", [factories.quiz(task_source_id=f"s{i}") for i in range(250)])

    ran = cli("submit", file, "--group", "batch_1")

    assert ran.code == 0
    assert paths(seen) == ["GET /api/tasks", "POST /api/tasks/bulk"] * 3
    assert summary(ran.out) == {
        "file": "batch.jsonl",
        "format": "jsonl",
        "sent as": "bulk calls",
        "rows": "250",
        "created": "250",
        "existing": "0",
        "invalid": "0",
        "group": "batch_1",
    }
    assert "rows sent: 250/250 (created 250, existing 0)" in ran.out
    assert api.count_tasks(task_source_group_id="batch_1").total == 250
    assert api.count_tasks(task_source_ids="s7").total == 1


def test_submitting_the_same_file_again_creates_nothing_twice(cli, tmp_path, seen, api):
    file = write_jsonl(tmp_path / "batch.jsonl", [factories.quiz() for _ in range(120)])
    assert cli("submit", file, "--group", "g").code == 0
    seen.clear()

    again = cli("submit", file, "--group", "g")

    assert again.code == 0
    assert (summary(again.out)["created"], summary(again.out)["existing"]) == ("0", "120")
    assert paths(seen) == ["GET /api/tasks"] * 2, "chunks that exist already are not sent"
    assert api.count_tasks(task_source_group_id="g").total == 120


def test_invalid_rows_are_reported_and_not_sent(cli, tmp_path, seen, api, capsys):
    file = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            factories.quiz("ok-1"),
            factories.video("bad-1", request_data={"story_prompt": "x"}),
            "not json",
            factories.documentation("ok-2"),
        ],
    )

    ran = cli("submit", file)

    assert ran.code == 1
    assert "2 of 4 rows are invalid and were not sent" in capsys.readouterr().err
    assert (summary(ran.out)["rows"], summary(ran.out)["created"], summary(ran.out)["invalid"]) == ("4", "2", "2")
    assert "Invalid rows, not sent: 2" in ran.out
    lines = ran.out.splitlines()
    assert any(line.split()[:2] == ["2", "request_data.segments"] for line in lines)
    assert any(line.startswith("3 ") and "not valid JSON" in line for line in lines)
    sent = json.loads(next(r for r in seen if r.method == "POST").content)
    assert [t["task_id"] for t in sent["tasks"]] == ["ok-1", "ok-2"]
    assert api.count_tasks().total == 2


def test_submit_csv_with_request_data_columns(cli, tmp_path, api):
    file = tmp_path / "lessons.csv"
    with file.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["task_id", "task_type", "priority", "request_data.story_prompt", "request_data.difficulty"])
        writer.writerow(["c1", "quiz", "high", "Fractions", "easy"])
        writer.writerow(["c2", "quiz", "", "Decimals", "hard"])
        writer.writerow(["c3", "documentation", "low", "How to use the API", ""])

    ran = cli("submit", file, "--group", "csv_batch")

    assert ran.code == 0
    assert (summary(ran.out)["format"], summary(ran.out)["created"]) == ("csv", "3")
    c1 = api.get_task("c1")
    assert (c1.task_type, c1.priority.value, c1.task_source_group_id) == (TaskType.QUIZ, "high", "csv_batch")
    assert c1.request_data == {"story_prompt": "Fractions", "difficulty": "easy"}
    assert api.get_task("c3").task_type is TaskType.DOCUMENTATION


def test_submit_json_document_applies_its_shared_video_settings(cli, tmp_path, api):
    file = tmp_path / "bulk.json"
    file.write_text(
        json.dumps(factories.bulk(factories.video("v1"), factories.quiz("q1"), logo_url="https://example.com/logo.png"))
    )

    ran = cli("submit", file)

    assert ran.code == 0
    assert summary(ran.out)["created"] == "2"
    assert api.get_task("v1").request_data["logo_url"] == "https://example.com/logo.png"
    assert "logo_url" not in api.get_task("q1").request_data


def test_group_is_given_only_to_rows_without_one(cli, tmp_path, api):
    file = write_jsonl(
        tmp_path / "t.jsonl", [factories.quiz("mine"), factories.quiz("theirs", task_source_group_id="x")]
    )

    assert cli("submit", file, "--group", "g").code == 0

    assert api.get_task("mine").task_source_group_id == "g"
    assert api.get_task("theirs").task_source_group_id == "x"


def test_a_task_id_repeated_in_the_file_is_sent_once_and_counted_existing(cli, tmp_path, seen, api):
    file = write_jsonl(tmp_path / "t.jsonl", [factories.quiz("same"), factories.quiz("other"), factories.quiz("same")])

    ran = cli("submit", file)

    assert ran.code == 0
    assert (summary(ran.out)["created"], summary(ran.out)["existing"]) == ("2", "1")
    sent = json.loads(next(r for r in seen if r.method == "POST").content)
    assert [t["task_id"] for t in sent["tasks"]] == ["same", "other"]


def test_a_file_that_cannot_be_read_sends_nothing(cli, tmp_path, seen, capsys):
    file = tmp_path / "t.csv"
    file.write_text("task_type,colour\nquiz,red\n")

    ran = cli("submit", file)

    assert ran.code == 1
    assert "t.csv cannot be read as CSV: unknown columns: 'colour'" in capsys.readouterr().err
    assert seen == []


def test_dry_run_validates_every_row_without_credentials_or_requests(cli, tmp_path, seen):
    file = write_jsonl(tmp_path / "t.jsonl", [factories.quiz() for _ in range(3)] + ['{"task_type": "nope"}'])

    ran = cli("submit", file, "--dry-run", "--upload-threshold", "2", env={})

    assert ran.code == 1
    assert seen == []
    assert summary(ran.out) | {"rows": "4", "valid": "3", "invalid": "1"} == summary(ran.out)
    assert summary(ran.out)["would go as"] == "an upload (more than 2 rows)"
    assert cli("submit", write_jsonl(tmp_path / "ok.jsonl", [factories.quiz()]), "--dry-run", env={}).code == 0


def test_format_comes_from_the_extension_or_format(cli, tmp_path, capsys, api):
    file = write_jsonl(tmp_path / "tasks.txt", [factories.quiz("t1")])

    assert cli("submit", file).code == 2
    assert "pass --format jsonl, json or csv" in capsys.readouterr().err
    assert cli("submit", file, "--format", "jsonl").code == 0
    assert api.get_task("t1").task_type is TaskType.QUIZ
    assert cli("submit", tmp_path / "missing.jsonl").code == 2
    assert "no such file" in capsys.readouterr().err


def test_a_failed_call_stops_the_submit_and_running_it_again_finishes(cli, tmp_path, app_http, api, capsys):
    """The second bulk call fails with a 500 (not retried): the first chunk stays created, the
    summary says what was not sent, and the same command sends only the rest."""
    file = write_jsonl(tmp_path / "t.jsonl", [factories.quiz() for _ in range(150)])
    posts = []

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(request)
            if len(posts) == 2:
                return httpx.Response(500, json={"detail": "boom"})
        return app_http.send(request)

    broken = httpx.Client(transport=httpx.MockTransport(flaky))

    ran = cli("submit", file, http=broken)

    assert ran.code == 1
    assert "cannot create the tasks: HTTP 500: boom (run the same command again" in capsys.readouterr().err
    assert summary(ran.out) | {"created": "100", "not sent": "50"} == summary(ran.out)
    assert api.count_tasks().total == 100

    again = cli("submit", file)
    assert again.code == 0
    assert (summary(again.out)["created"], summary(again.out)["existing"]) == ("50", "100")
    assert api.count_tasks().total == 150


def test_rich_output_on_a_terminal(cli, tmp_path):
    file = write_jsonl(tmp_path / "t.jsonl", [factories.quiz() for _ in range(5)])

    ran = cli("submit", file, "--group", "g", force_terminal=True, width=100)

    assert ran.code == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", ran.out)
    assert "Submitted" in text
    assert re.search(r"│ created\s+│ 5\s+│", text), text
    assert "━" in ran.out, "a progress bar was drawn"
    assert "\x1b[" in ran.out, "styled for a terminal"
    plain = cli("submit", file, "--plain", force_terminal=True)
    assert "\x1b[" not in plain.out


def test_the_taskapi_command_routes_submit_to_these_commands(tmp_path, capsys, monkeypatch):
    file = write_jsonl(tmp_path / "t.jsonl", [factories.quiz()])
    monkeypatch.delenv(ENV_API_KEY, raising=False)
    monkeypatch.delenv("TASKAPI_TOKEN", raising=False)

    assert operator_cli.main(["submit", str(file), "--dry-run"]) == 0
    assert "Validated (dry run: nothing sent)" in capsys.readouterr().out
    assert operator_cli.main(["submit", str(file)]) == 2
    assert "no credentials" in capsys.readouterr().err

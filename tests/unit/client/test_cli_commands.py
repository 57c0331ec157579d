"""`taskapi cancel`, `regenerate` and `tasks`, and the credentials every user command takes."""

from __future__ import annotations

import json

import httpx
import pytest

from taskapi.auth.tokens import issue_local_token
from taskapi.client.cli.runtime import ENV_ACCOUNT, ENV_API_KEY, ENV_TOKEN, ENV_URL
from taskapi.models.domain import TaskStatus
from taskapi.settings import Settings
from tests import factories
from tests.unit.client.conftest import BASE_URL
from tests.unit.client.support import finish, summary


@pytest.fixture
def two_groups(api, fakes):
    api.create_tasks_bulk(
        [
            factories.quiz("a1", task_source_group_id="ga", task_source_id="s1"),
            factories.video("a2", task_source_group_id="ga", task_source_id="s2"),
            factories.quiz("a3", task_source_group_id="ga", task_source_id="s3"),
            factories.quiz("b1", task_source_group_id="gb", task_source_id="s1"),
        ]
    )
    finish(fakes, "a3", TaskStatus.COMPLETED)


# ------------------------------------------------------------------ cancel


def test_cancel_with_a_group_cancels_its_open_tasks_only(cli, api, two_groups, seen):
    seen.clear()

    ran = cli("cancel", "--group", "ga", "--reason", "wrong prompts")

    assert ran.code == 0
    assert summary(ran.out) == {"matched": "2", "cancelled": "2", "skipped": "0", "not found": "0"}
    assert "Cancelled: group ga" in ran.out
    assert [api.get_task(t).status for t in ("a1", "a2", "a3", "b1")] == [
        TaskStatus.CANCELLED,
        TaskStatus.CANCELLED,
        TaskStatus.COMPLETED,
        TaskStatus.QUEUED,
    ]
    body = json.loads(next(r for r in seen if r.method == "POST").content)
    assert (sorted(body["task_ids"]), body["reason"]) == (["a1", "a2"], "wrong prompts")
    listing = next(r for r in seen if r.method == "GET")
    assert listing.url.params["status"] == "PENDING,QUEUED,PROCESSING"


def test_cancel_by_source_and_status_and_reasons_for_skipped_tasks(cli, api, two_groups):
    ran = cli("cancel", "--source", "s1", "--status", "QUEUED,COMPLETED")

    assert ran.code == 0
    assert summary(ran.out) == {"matched": "2", "cancelled": "2", "skipped": "0", "not found": "0"}
    assert api.get_task("b1").status is TaskStatus.CANCELLED

    again = cli("cancel", "--source", "s1,s3", "--status", "CANCELLED,COMPLETED")
    assert summary(again.out) | {"matched": "3", "cancelled": "0", "skipped": "3"} == summary(again.out)
    assert "Not cancelled" in again.out


def test_cancel_with_nothing_open_says_so(cli, two_groups):
    ran = cli("cancel", "--ids", "a3")

    assert ran.code == 0
    assert ran.out.strip() == "No tasks to cancel: none of task a3 is PENDING, QUEUED or PROCESSING."


def test_cancel_dry_run_counts_only(cli, api, two_groups, seen):
    seen.clear()

    ran = cli("cancel", "--group", "ga", "--dry-run")

    assert ran.code == 0
    assert "Would cancel 2 tasks of group ga in status PENDING, QUEUED or PROCESSING" in ran.out
    assert {r.url.path for r in seen} == {"/api/tasks/count/total"}
    assert api.get_task("a1").status is TaskStatus.QUEUED


# ------------------------------------------------------------------ regenerate


def test_regenerate_with_a_group_keep_results_and_force(cli, api, fakes, two_groups, seen):
    finish(fakes, "a1", TaskStatus.FAILED)
    seen.clear()

    ran = cli("regenerate", "--group", "ga", "--keep-results", "--force")

    assert ran.code == 0
    body = json.loads(next(r for r in seen if r.method == "POST").content)
    assert (body["reset_to_pending"], body["force"]) == (False, True)
    assert sorted(body["task_ids"]) == ["a1", "a2", "a3"]
    assert summary(ran.out) == {"matched": "3", "regenerated": "2", "skipped": "1", "not found": "0"}
    assert "Not regenerated" in ran.out
    assert "skipped" in ran.out.split("Not regenerated", 1)[1]
    assert (api.get_task("a1").attempt, api.get_task("a3").attempt) == (2, 2)
    assert api.get_task("b1").attempt == 1


def test_regenerate_only_the_failed_tasks_of_a_group(cli, api, fakes, two_groups, seen):
    finish(fakes, "a1", TaskStatus.FAILED)
    seen.clear()

    ran = cli("regenerate", "--group", "ga", "--status", "failed")

    assert ran.code == 0
    body = json.loads(next(r for r in seen if r.method == "POST").content)
    assert (body["task_ids"], body["reset_to_pending"], body["force"]) == (["a1"], True, False)
    assert summary(ran.out)["regenerated"] == "1"
    nothing = cli("regenerate", "--group", "gb", "--status", "FAILED")
    assert nothing.out.strip() == "No tasks to regenerate: none match group gb in status FAILED."


@pytest.mark.parametrize("command", ["cancel", "regenerate"])
def test_cancel_and_regenerate_need_a_selector(cli, two_groups, seen, capsys, command):
    seen.clear()

    assert cli(command).code == 2
    assert cli(command, "--status", "QUEUED").code == 2
    assert f"{command} needs --group, --source or --ids" in capsys.readouterr().err
    assert seen == []
    assert cli(command, "--group", "ga", "--ids", "a1").code == 2, "one selector at a time"


# ------------------------------------------------------------------ tasks


def test_tasks_lists_with_filters_as_a_table(cli, two_groups, seen):
    seen.clear()

    ran = cli("tasks", "--group", "ga", "--status", "QUEUED", "--type", "quiz")

    assert ran.code == 0
    lines = ran.out.splitlines()
    assert lines[0].split() == ["id", "type", "status", "progress", "group", "updated"]
    assert lines[1].split()[:5] == ["a1", "quiz", "QUEUED", "0%", "ga"]
    assert lines[-1] == "1 of 1 tasks"
    assert dict(seen[0].url.params) == {
        "task_source_group_id": "ga",
        "status": "QUEUED",
        "task_type": "quiz",
        "limit": "50",
    }


def test_tasks_as_json_lines(cli, api, two_groups):
    ran = cli("tasks", "--source", "s1", "--json")

    assert ran.code == 0
    tasks = [json.loads(line) for line in ran.out.splitlines()]
    assert sorted(t["task_id"] for t in tasks) == ["a1", "b1"]
    assert tasks[0] == json.loads(api.get_task(tasks[0]["task_id"]).model_dump_json())


def test_tasks_limit_and_all_follow_pages(cli, api):
    api.create_tasks([factories.documentation(f"d{i:03}") for i in range(230)])

    limited = cli("tasks", "--limit", "120")
    every = cli("tasks", "--all", "--priority", "normal")

    assert limited.out.splitlines()[-1] == "120 of 230 tasks (--all lists every one)"
    assert len(limited.out.splitlines()) == 1 + 120 + 1
    assert every.out.splitlines()[-1] == "230 of 230 tasks"
    ids = [line.split()[0] for line in every.out.splitlines()[1:-1]]
    assert sorted(ids) == [f"d{i:03}" for i in range(230)]
    assert cli("tasks", "--group", "none").out.strip() == "No tasks match."
    assert cli("tasks", "--limit", "0").code == 2


# ------------------------------------------------------------------ credentials


@pytest.mark.parametrize(
    "argv",
    [["tasks"], ["watch"], ["cancel", "--group", "g"], ["regenerate", "--group", "g"], ["submit", "FILE"]],
)
def test_missing_credentials_exit_2_with_a_clear_message(cli, tmp_path, seen, capsys, argv):
    file = tmp_path / "t.jsonl"
    file.write_text(json.dumps(factories.quiz()) + "\n")

    ran = cli(*[str(file) if a == "FILE" else a for a in argv], env={ENV_URL: BASE_URL})

    assert ran.code == 2
    assert capsys.readouterr().err.strip() == (
        "taskapi: error: no credentials: pass --api-key (or set TASKAPI_API_KEY), or --token with --account "
        "(or set TASKAPI_TOKEN and TASKAPI_ACCOUNT_ID)"
    )
    assert seen == []


def test_a_bearer_token_with_its_account(cli, api, two_groups):
    token = issue_local_token(Settings(), subject="u1", accounts=["acct_a"])

    from_flags = cli("tasks", "--token", token, "--account", "acct_a", "--ids", "a1", env={ENV_URL: BASE_URL})
    from_env = cli("tasks", "--ids", "a1", env={ENV_URL: BASE_URL, ENV_TOKEN: token, ENV_ACCOUNT: "acct_a"})

    assert from_flags.code == from_env.code == 0
    assert from_flags.out.splitlines()[1].split()[0] == "a1"
    assert from_env.out == from_flags.out


def test_credential_mistakes_exit_2(cli, api_key, capsys):
    token = issue_local_token(Settings(), subject="u1", accounts=["acct_a"])

    assert cli("tasks", "--token", token, env={ENV_URL: BASE_URL}).code == 2
    assert "--token needs --account (or TASKAPI_ACCOUNT_ID)" in capsys.readouterr().err
    assert cli("tasks", "--api-key", api_key, "--token", token).code == 2
    assert "--api-key and --token are both set" in capsys.readouterr().err
    assert cli("tasks", "--api-key", api_key, "--account", "acct_a").code == 2
    assert "--account goes with --token only" in capsys.readouterr().err
    assert cli("tasks", "--url", "ftp://x").code == 2


def test_flags_win_over_the_environment(cli, two_groups, api_key):
    token = issue_local_token(Settings(), subject="u1", accounts=["acct_a"])
    env = {ENV_URL: BASE_URL, ENV_TOKEN: token, ENV_ACCOUNT: "acct_a", ENV_API_KEY: "tk.acct_a.nokey.secret"}

    assert cli("tasks", "--api-key", api_key, env=env).code == 0
    assert cli("tasks", "--token", token, "--account", "acct_a", env=env).code == 0


def test_a_wrong_api_key_is_an_api_failure(cli, capsys):
    ran = cli("tasks", "--api-key", "tk.acct_a.nokey.secret")

    assert ran.code == 1
    assert "cannot list the tasks: HTTP 401" in capsys.readouterr().err


def test_retry_notices_are_plain_lines_on_stderr(cli, app_http, two_groups, capsys):
    answers = [httpx.Response(503, headers={"Retry-After": "1"}, json={"detail": "busy"})]

    def busy_once(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else app_http.send(request)

    ran = cli("tasks", "--json", http=httpx.Client(transport=httpx.MockTransport(busy_once)))

    assert ran.code == 0
    assert len(ran.out.splitlines()) == 4, "stdout holds the JSON lines only"
    captured = capsys.readouterr()
    assert captured.err.startswith("taskapi: retrying GET /api/tasks after HTTP 503 in 1.00s (retry 1 of 5)")
    assert "retrying" not in captured.out

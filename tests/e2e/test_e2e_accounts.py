"""Identity and account isolation over HTTP: API keys made with `taskapi keys create`, bearer
tokens made with `taskapi token`, and the 401/403/404 answers of the design (sections 3 and 5)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.support import CliRunner, processing_paused

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", autouse=True)
def _paused(run_cli: CliRunner) -> Iterator[None]:
    """These tests compare tasks as answered with tasks as read: processing stays paused meanwhile
    (the tasks are processed once the module is done)."""
    with processing_paused(run_cli):
        yield


def _video(task_id: str, prompt: str) -> dict[str, Any]:
    return {"task_id": task_id, "task_type": "video", "request_data": {"story_prompt": prompt, "segments": 1}}


@pytest.fixture(scope="module")
def keys(create_api_key: Callable[[str], str]) -> dict[str, str]:
    return {account: create_api_key(account) for account in ("alpha", "beta")}


def test_two_accounts_owning_the_same_task_id_stay_independent(client: httpx.Client, keys: dict[str, str]) -> None:
    alpha, beta = {"X-API-Key": keys["alpha"]}, {"X-API-Key": keys["beta"]}

    made_by_alpha = client.post("/api/tasks/bulk", headers=alpha, json={"tasks": [_video("shared_001", "Alpha's")]})
    made_by_beta = client.post("/api/tasks/bulk", headers=beta, json={"tasks": [_video("shared_001", "Beta's")]})

    assert made_by_alpha.status_code == made_by_beta.status_code == 200
    (alpha_task,), (beta_task,) = made_by_alpha.json(), made_by_beta.json()
    # Beta's insert was not answered with alpha's stored task: the key is (account, task id).
    assert beta_task["request_data"]["story_prompt"] == "Beta's"
    assert (alpha_task["account_id"], beta_task["account_id"]) == ("alpha", "beta")
    assert beta_task["user_id"] == "api_key_user_beta"
    assert client.get("/api/tasks/shared_001", headers=alpha).json() == alpha_task
    assert client.get("/api/tasks/shared_001", headers=beta).json() == beta_task
    for headers, task in ((alpha, alpha_task), (beta, beta_task)):
        listed = client.get("/api/tasks", headers=headers, params={"task_ids": "shared_001"}).json()
        assert listed["tasks"] == [task]


def test_another_accounts_task_is_not_found_exactly_like_a_missing_one(
    client: httpx.Client, keys: dict[str, str]
) -> None:
    alpha, beta = {"X-API-Key": keys["alpha"]}, {"X-API-Key": keys["beta"]}
    created = client.post("/api/tasks/bulk", headers=alpha, json={"tasks": [_video("alpha_only", "Private")]})
    assert created.status_code == 200

    foreign = client.get("/api/tasks/alpha_only", headers=beta)
    missing = client.get("/api/tasks/nowhere_at_all", headers=beta)

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["detail"] == missing.json()["detail"].replace("nowhere_at_all", "alpha_only")
    assert foreign.headers.get("content-type") == missing.headers.get("content-type")
    hidden = client.get("/api/tasks", headers=beta, params={"task_ids": "alpha_only"}).json()
    assert hidden["tasks"] == []
    assert hidden["total"] == 0
    counted = client.get("/api/tasks/count/total", headers=beta, params={"task_ids": "alpha_only"})
    assert counted.json() == {"total": 0}


def test_an_api_key_with_an_x_account_id_naming_another_account_is_refused(
    client: httpx.Client, keys: dict[str, str]
) -> None:
    body = {"tasks": [_video("alpha_header", "Mine")]}
    refused = client.post("/api/tasks/bulk", headers={"X-API-Key": keys["alpha"], "X-Account-ID": "beta"}, json=body)
    assert refused.status_code == 403, refused.text
    assert refused.json() == {"detail": "This API key acts only for its own account; X-Account-ID names another"}
    for account in ("alpha", "beta"):
        assert client.get("/api/tasks/alpha_header", headers={"X-API-Key": keys[account]}).status_code == 404

    response = client.post("/api/tasks/bulk", headers={"X-API-Key": keys["alpha"], "X-Account-ID": "alpha"}, json=body)
    assert response.status_code == 200, response.text
    assert response.json()[0]["account_id"] == "alpha"
    assert client.get("/api/tasks/alpha_header", headers={"X-API-Key": keys["beta"]}).status_code == 404


def test_one_bearer_token_granting_two_accounts_acts_for_each_separately(
    client: httpx.Client, as_account: Callable[[str], dict[str, str]], keys: dict[str, str]
) -> None:
    # alpha and beta each own a "shared_001" made above with their API keys (or make them now).
    for account in ("alpha", "beta"):
        body = {"tasks": [_video("shared_001", f"{account.title()}'s")]}
        assert client.post("/api/tasks/bulk", headers={"X-API-Key": keys[account]}, json=body).status_code == 200

    as_alpha = client.get("/api/tasks/shared_001", headers=as_account("alpha"))
    as_beta = client.get("/api/tasks/shared_001", headers=as_account("beta"))

    assert as_alpha.status_code == as_beta.status_code == 200
    assert as_alpha.json()["account_id"] == "alpha"
    assert as_beta.json()["account_id"] == "beta"
    assert as_alpha.json()["request_data"]["story_prompt"] == "Alpha's"
    assert as_beta.json()["request_data"]["story_prompt"] == "Beta's"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/tasks", None),
        ("GET", "/api/tasks/count/total", None),
        ("GET", "/api/tasks/task_001", None),
        ("POST", "/api/tasks/bulk", {"tasks": [_video("anonymous", "Nobody's")]}),
    ],
)
def test_without_credentials_every_route_is_401(
    client: httpx.Client, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = client.request(method, path, json=body)

    assert response.status_code == 401
    assert isinstance(response.json()["detail"], str)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "tk.demo.0123456789abcdef.notTheRealSecretButLongEnough"},
        {"X-API-Key": "garbage"},
        {"Authorization": "Bearer not.a.jwt", "X-Account-ID": "demo"},
        {"Authorization": "Basic ZGVtbzpkZW1v", "X-Account-ID": "demo"},
    ],
    ids=["unknown-key", "malformed-key", "bad-jwt", "basic-auth"],
)
def test_invalid_credentials_are_401(client: httpx.Client, headers: dict[str, str]) -> None:
    response = client.get("/api/tasks", headers=headers)

    assert response.status_code == 401
    assert "detail" in response.json()


def test_a_bearer_token_without_x_account_id_is_401(client: httpx.Client, stack: Any) -> None:
    response = client.get("/api/tasks", headers={"Authorization": f"Bearer {stack.bearer_token}"})

    assert response.status_code == 401
    assert "X-Account-ID" in response.json()["detail"]


def test_a_token_for_another_account_is_403(client: httpx.Client, stack: Any, keys: dict[str, str]) -> None:
    # The demo token grants only "demo"; alpha exists and owns tasks.
    headers = {"Authorization": f"Bearer {stack.bearer_token}", "X-Account-ID": "alpha"}

    listed = client.get("/api/tasks", headers=headers)
    created = client.post("/api/tasks/bulk", headers=headers, json={"tasks": [_video("intruder", "No")]})

    assert listed.status_code == created.status_code == 403
    assert "alpha" in listed.json()["detail"]
    assert client.get("/api/tasks/intruder", headers={"X-API-Key": keys["alpha"]}).status_code == 404

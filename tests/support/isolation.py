"""The tenant isolation suite's world: two accounts whose tasks collide on purpose, every
credential either account holds, a snapshot of every adapter to prove "nothing anywhere
changed", two ways in (TestClient, and API Gateway's shape: authorizer event -> policy ->
REST proxy event through the API function), and a log capture that sees every record.

    world = build_world()
    gateway = Gateway(*load_handlers())  # or Local(a TestClient)
    gateway.bind(world)
    before = snapshot(world.fakes)
    reply = gateway("GET", "/api/tasks/b-pending", headers=world.key_a)
    assert (reply.status, snapshot(world.fakes)) == (404, before)

Accounts A and B both hold a task "shared-1" (different type, status, group and source), B
holds ids, a group and a source A never uses, and both have an upload, a stored result and
queue messages. The world is built with the same service code the API runs where it can
(uploads, enrolments), directly in the fakes where a status has to be set."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from taskapi.auth.api_keys import AccountEnrolment, ApiKeyStore, hash_key, parse_key
from taskapi.auth.principal import Principal
from taskapi.models.domain import Priority, Task, TaskStatus, TaskType, isoformat, utc_now
from taskapi.results import result_prefix
from taskapi.settings import get_settings
from taskapi.uploads import service as upload_service
from tests import factories
from tests.fakes import Fakes
from tests.support.accounts import enrol

ROOT = Path(__file__).resolve().parents[2]
AUTHORIZER_HANDLER = ROOT / "functions" / "authorizer" / "app.py"
API_HANDLER = ROOT / "functions" / "api" / "app.py"

ACCOUNT_A = "acct_a"
ACCOUNT_B = "acct_b"
ACCOUNT_OPS = "ops"
"""The operator's own account (it holds no tasks)."""
GROUP_A, GROUP_B = "grp-a", "grp-b"
SOURCE_A, SOURCE_B = "src-a", "src-b"
SHARED_ID = "shared-1"
"""A task id both accounts hold (A: a PENDING quiz; B: a stale QUEUED video)."""
A_IDS = (SHARED_ID, "a-pending", "a-queued", "a-completed")
B_ONLY_IDS = ("b-pending", "b-queued", "b-processing", "b-completed", "b-failed", "b-nodata")
"""Ids only B holds, one per status B has (and one PENDING task without request_data)."""
UNKNOWN_IDS = ("nobody-1", "nobody-2")
"""Ids no account holds: the answer for B's ids must be the answer for these."""
UNKNOWN_UPLOAD_ID = "00000000-0000-4000-8000-000000000000"
STALE = timedelta(days=1)
"""Age of the QUEUED tasks: past requeue_queued_after_seconds, so requeue-pending re-sends them."""

LEAK_WORDS = ("another account", "other account", "belongs to", "owned by", "forbidden for this account")
"""Phrases that would confirm a foreign id exists."""
EVENT_MARKERS = ("multiValueHeaders", "methodArn")
"""Keys only a whole API Gateway event has: a log line holding one logged the event."""


# ---------------------------------------------------------------------------------- the world
@dataclass
class World:
    fakes: Fakes
    key_a: dict[str, str]
    key_b: dict[str, str]
    token_a: str
    token_b: str
    key_ops: dict[str, str]
    token_ops: str
    """An operator's API key and bearer token (roles: [operator]), on its own account."""
    upload_a: str
    upload_b: str
    enrolments: dict[str, AccountEnrolment]
    secrets: list[str] = field(default_factory=list)
    """Every credential (and credential part) minted for this world: none may be logged."""

    def remember(self, *secrets: str) -> None:
        for secret in secrets:
            if secret and secret not in self.secrets:
                self.secrets.append(secret)

    def remember_key(self, key: str) -> str:
        self.remember(key, key.split(".")[-1])
        return key

    def remember_token(self, token: str) -> str:
        parts = token.split(".")
        self.remember(token, *(parts[2:3] if len(parts) == 3 and len(parts[2]) >= 16 else []))
        return token

    def bearer(self, token: str, account_id: str | None) -> dict[str, str]:
        self.remember_token(token)
        headers = {"Authorization": f"Bearer {token}"}
        if account_id is not None:
            headers["X-Account-ID"] = account_id
        return headers

    @property
    def bearer_a(self) -> dict[str, str]:
        return self.bearer(self.token_a, ACCOUNT_A)

    @property
    def bearer_b(self) -> dict[str, str]:
        return self.bearer(self.token_b, ACCOUNT_B)

    @property
    def bearer_ops(self) -> dict[str, str]:
        return self.bearer(self.token_ops, ACCOUNT_OPS)


def _task(
    account_id: str,
    task_id: str,
    status: TaskStatus,
    *,
    task_type: TaskType = TaskType.QUIZ,
    age: timedelta = timedelta(minutes=5),
    group: str | None = None,
    source: str | None = None,
    data: bool = True,
    **extra: Any,
) -> Task:
    created = isoformat(utc_now() - age)
    request_data: dict[str, Any] | None = None
    if data:
        request_data = (
            {"story_prompt": f"{account_id} {task_id}", "segments": 2}
            if task_type is TaskType.VIDEO
            else {"story_prompt": f"{account_id} {task_id}", "difficulty": "easy"}
        )
    return Task(
        account_id=account_id,
        task_id=task_id,
        user_id=f"seed-{account_id}",
        task_type=task_type,
        priority=Priority.HIGH if task_type is TaskType.VIDEO else Priority.NORMAL,
        status=status,
        created_at=created,
        updated_at=created,
        task_source_name="seed",
        task_source_id=source,
        task_source_group_id=group,
        request_data=request_data,
        **extra,
    )


def _completed(fakes: Fakes, account_id: str, task_id: str, **kwargs: Any) -> Task:
    key = result_prefix(account_id, task_id, 1) + "result.json"
    fakes.results.objects[key] = ("application/json", json.dumps({"account": account_id}).encode())
    return _task(account_id, task_id, TaskStatus.COMPLETED, progress=100.0, result_key=key, **kwargs)


def _tasks(fakes: Fakes) -> list[Task]:
    a, b = ACCOUNT_A, ACCOUNT_B
    return [
        # A: no PROCESSING task, so the queue status's current task can only be B's if it leaks.
        _task(a, SHARED_ID, TaskStatus.PENDING, group=GROUP_A, source=SOURCE_A, age=timedelta(minutes=9)),
        _task(a, "a-pending", TaskStatus.PENDING, group=GROUP_A, source="src-a2", age=timedelta(minutes=8)),
        _task(a, "a-queued", TaskStatus.QUEUED, group=GROUP_A, age=STALE),
        _completed(fakes, a, "a-completed", group=GROUP_A, age=timedelta(minutes=7)),
        # B: the same id as A's, stale QUEUED (requeue-pending would re-send it if it leaked).
        _task(b, SHARED_ID, TaskStatus.QUEUED, task_type=TaskType.VIDEO, group=GROUP_B, source=SOURCE_B, age=STALE),
        _task(b, "b-pending", TaskStatus.PENDING, group=GROUP_B, source=SOURCE_B, age=timedelta(minutes=6)),
        _task(b, "b-queued", TaskStatus.QUEUED, group=GROUP_B, source=SOURCE_B, age=STALE + timedelta(hours=1)),
        _task(b, "b-processing", TaskStatus.PROCESSING, group=GROUP_B, progress=40.0, age=timedelta(minutes=4)),
        _completed(fakes, b, "b-completed", group=GROUP_B, source=SOURCE_B, age=timedelta(minutes=3)),
        _task(
            b,
            "b-failed",
            TaskStatus.FAILED,
            task_type=TaskType.DOCUMENTATION,
            group=GROUP_B,
            error_message="engine failed",
            age=timedelta(minutes=2),
        ),
        _task(b, "b-nodata", TaskStatus.PENDING, group=GROUP_B, data=False, age=timedelta(minutes=1)),
    ]


def local_token(subject: str, accounts: list[str], roles: list[str] | None = None) -> str:
    """An HS256 token of the local configuration (what `taskapi token` issues)."""
    from taskapi.auth.tokens import issue_local_token

    return issue_local_token(get_settings(), subject=subject, accounts=accounts, roles=roles)


def build_world(
    *, processing_paused: bool = True, mint: Callable[[str, list[str], list[str] | None], str] = local_token
) -> World:
    """Both accounts and the operator with keys, enrolments, tokens (`mint(subject, accounts,
    roles)`), tasks, results, messages and uploads. Processing starts paused, so a queue restart
    that should not have happened shows."""
    fakes = Fakes()
    key_a = fakes.api_key(ACCOUNT_A, "standard")
    key_b = fakes.api_key(ACCOUNT_B, "enterprise")
    key_ops = fakes.api_key(ACCOUNT_OPS, "enterprise", role="operator")
    enrolments = {account: enrol(fakes.keys, account, "free") for account in (ACCOUNT_A, ACCOUNT_B, ACCOUNT_OPS)}
    token_a = mint("user-a", [ACCOUNT_A], None)
    token_b = mint("user-b", [ACCOUNT_B], None)
    token_ops = mint("operator-1", [ACCOUNT_OPS], ["operator"])

    tasks = _tasks(fakes)
    for account in (ACCOUNT_A, ACCOUNT_B):
        fakes.repo.insert_new([t for t in tasks if t.account_id == account])
    from taskapi.queueing.messages import TaskMessage

    fakes.queue.send([(t.priority, TaskMessage.of(t)) for t in tasks if t.status is TaskStatus.QUEUED])
    if processing_paused:
        fakes.control.set_enabled(False)

    uploads = {}
    for account in (ACCOUNT_A, ACCOUNT_B):
        principal = Principal(account_id=account, user_id=f"user-{account}", auth_method="jwt")
        made = upload_service.create_upload(
            fakes.uploads,
            fakes.upload_files,
            principal,
            upload_format="jsonl",
            task_source_group_id=GROUP_A if account == ACCOUNT_A else GROUP_B,
            filename=f"{account}.jsonl",
            max_bytes=1024,
            expires_in=600,
        )
        uploads[account] = made.upload.upload_id

    world = World(
        fakes=fakes,
        key_a=key_a,
        key_b=key_b,
        token_a=token_a,
        token_b=token_b,
        key_ops=key_ops,
        token_ops=token_ops,
        upload_a=uploads[ACCOUNT_A],
        upload_b=uploads[ACCOUNT_B],
        enrolments=enrolments,
    )
    world.remember_key(key_a["X-API-Key"])
    world.remember_key(key_b["X-API-Key"])
    world.remember_key(key_ops["X-API-Key"])
    world.remember_token(token_a)
    world.remember_token(token_b)
    world.remember_token(token_ops)
    for enrolment in enrolments.values():
        world.remember(enrolment.metering_key)
    return world


# ---------------------------------------------------------------------------------- snapshots
def snapshot(fakes: Fakes) -> dict[str, Any]:
    """Everything any adapter holds, as plain comparable values (tasks as full model dumps,
    version included)."""
    return {
        "tasks": {key: task.model_dump(mode="json") for key, task in sorted(fakes.repo._tasks.items())},
        "messages": [(p.value, m.account_id, m.task_id, m.attempt, delay) for p, m, delay in fakes.queue.sent],
        "results": dict(fakes.results.objects),
        "api_keys": dict(fakes.keys._records),
        "enrolments": dict(fakes.keys._accounts),
        "uploads": dict(fakes.uploads._uploads),
        "upload_objects": dict(fakes.upload_files.objects),
        "upload_posts": {key: dict(value) for key, value in fakes.upload_files.posts.items()},
        "processing": fakes.control.mappings(),
    }


def account_part(snap: dict[str, Any], account_id: str) -> dict[str, Any]:
    """What of a snapshot belongs to one account (the shared processor state is nobody's)."""

    def owned(key: str) -> bool:
        return key.split("/")[1:2] == [account_id]

    return {
        "tasks": {key: value for key, value in snap["tasks"].items() if key[0] == account_id},
        "messages": [m for m in snap["messages"] if m[1] == account_id],
        "results": {key: value for key, value in snap["results"].items() if owned(key)},
        "api_keys": {key: value for key, value in snap["api_keys"].items() if value.account_id == account_id},
        "enrolments": {key: value for key, value in snap["enrolments"].items() if key == account_id},
        "uploads": {key: value for key, value in snap["uploads"].items() if key[0] == account_id},
        "upload_objects": {key: value for key, value in snap["upload_objects"].items() if owned(key)},
        "upload_posts": {key: value for key, value in snap["upload_posts"].items() if owned(key)},
    }


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Which parts of two snapshots differ (for readable assertion messages)."""
    return [name for name in before if before[name] != after.get(name)]


# ---------------------------------------------------------------------------------- transports
@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]
    text: str
    reached_api: bool = True
    """False when API Gateway answered without invoking the API function."""


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def local_client() -> Iterator[Any]:
    """A TestClient of a fresh app, its portal kept open (one event loop thread for all of a
    module's requests, not one per request). Use as a module-scoped fixture's body."""
    from fastapi.testclient import TestClient

    from taskapi.http.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client


class Local:
    """The app verifying credentials itself (uvicorn locally): FastAPI's TestClient."""

    name = "local"

    def __init__(self, client: Any) -> None:
        self.client = client
        self.app = client.app

    def bind(self, world: World) -> None:
        self.app.dependency_overrides.clear()
        world.fakes.install(self.app)

    def __call__(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        query: dict[str, str] | None = None,
        body: Any = None,
    ) -> Reply:
        answer = self.client.request(method, path, headers=headers, params=query, json=body)
        return Reply(answer.status_code, _json(answer.text), dict(answer.headers), answer.text)


UNAUTHORIZED_BODY = {
    "detail": "Not authenticated: send a valid X-API-Key, or Authorization: Bearer <token> with X-Account-ID"
}
"""template.yaml's UNAUTHORIZED gateway response."""
ACCESS_DENIED_TEMPLATE = '{"detail": "$context.authorizer.detail"}'
"""template.yaml's ACCESS_DENIED gateway response (the authorizer escapes detail for it)."""
FORBIDDEN_BODY = {"detail": "Forbidden"}
"""DEFAULT_4XX for a usage identifier key that is no API key of a usage plan."""


class Gateway:
    """API Gateway's REST API as template.yaml configures it, with the authorizer cache off:
    each request's REQUEST authorizer event goes through functions/authorizer/app.handler;
    "Unauthorized" raised -> 401 (UNAUTHORIZED response), a Deny or a policy that does not cover
    the method ARN -> 403 (ACCESS_DENIED), an Allow whose usageIdentifierKey is no live API
    Gateway key -> 403 (API key source AUTHORIZER); only then the REST proxy event, carrying the
    policy's context as requestContext.authorizer, goes through functions/api/app.handler."""

    name = "gateway"

    def __init__(self, authorizer: ModuleType, api: ModuleType) -> None:
        self.authorizer = authorizer
        self.api = api
        self.world: World | None = None
        self.decisions: list[dict[str, Any] | str] = []
        """Each authorizer answer: its policy, or "Unauthorized"."""

    def bind(self, world: World) -> None:
        self.world = world
        setattr(self.authorizer, "get_key_store", lambda: world.fakes.keys)  # noqa: B010 (a module's global)
        self.api.app.dependency_overrides.clear()
        world.fakes.install(self.api.app)
        self.decisions = []

    @property
    def last_policy(self) -> dict[str, Any]:
        decision = self.decisions[-1]
        assert isinstance(decision, dict), decision
        return decision

    def _usage_key_is_live(self, key: str | None) -> bool:
        """API Gateway meters on the key the authorizer names: an API key of one of the
        stack's usage plans (each live API key, each account's metering key)."""
        assert self.world is not None
        if not key:
            return False
        store: ApiKeyStore = self.world.fakes.keys
        parsed = parse_key(key)
        if parsed is not None:
            record = store.get(parsed.key_id)
            return record is not None and record.key_hash == hash_key(key) and not record.is_revoked()
        return any(e.metering_key == key for e in self.world.fakes.keys._accounts.values())

    def __call__(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        query: dict[str, str] | None = None,
        body: Any = None,
        multi_value_headers: dict[str, list[str]] | None = None,
    ) -> Reply:
        event = factories.authorizer_event(method, path, headers=headers, multi_value_headers=multi_value_headers)
        context = factories.LambdaContext(function_name="taskapi-AuthorizerFunction")
        try:
            policy = self.authorizer.handler(event, context)
        except Exception as exc:
            if str(exc) != "Unauthorized":
                raise
            self.decisions.append("Unauthorized")
            return Reply(401, UNAUTHORIZED_BODY, {}, json.dumps(UNAUTHORIZED_BODY), reached_api=False)
        self.decisions.append(policy)
        if not _allows(policy, event["methodArn"]):
            detail = (policy.get("context") or {}).get("detail", "")
            text = ACCESS_DENIED_TEMPLATE.replace("$context.authorizer.detail", detail)
            return Reply(403, json.loads(text), {}, text, reached_api=False)
        if not self._usage_key_is_live(policy.get("usageIdentifierKey")):
            return Reply(403, FORBIDDEN_BODY, {}, json.dumps(FORBIDDEN_BODY), reached_api=False)
        # API Gateway hands the context on with string values (plus principalId and latency).
        authorizer_context = {name: str(value) for name, value in (policy.get("context") or {}).items()}
        proxy = factories.apigw_event(
            method, path, headers=headers, query=query, body=body, authorizer=authorizer_context
        )
        answer = self.api.handler(proxy, factories.LambdaContext())
        headers_out = {name.lower(): value for name, value in (answer.get("headers") or {}).items()}
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            headers_out.setdefault(name.lower(), ",".join(values))
        return Reply(answer["statusCode"], _json(answer["body"]), headers_out, answer["body"])


def _allows(policy: dict[str, Any], method_arn: str) -> bool:
    """IAM evaluation of an authorizer policy for one method ARN: an explicit Deny wins."""
    allowed = False
    for statement in policy.get("policyDocument", {}).get("Statement", []):
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if not any(fnmatch.fnmatchcase(method_arn, pattern) for pattern in resources):
            continue
        if statement.get("Effect") == "Deny":
            return False
        actions = statement.get("Action", [])
        if statement.get("Effect") == "Allow" and "execute-api:Invoke" in (
            [actions] if isinstance(actions, str) else actions
        ):
            allowed = True
    return allowed


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def load_handlers() -> tuple[ModuleType, ModuleType]:
    """The two Lambda handlers, freshly imported (a test module loads them once, as a warm
    container would hold them). The API is served under the stage, as in AWS."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TASKAPI_ROOT_PATH", "/v1")
        suffix = f"{time.monotonic_ns()}"
        authorizer = load_module(AUTHORIZER_HANDLER, f"isolation_authorizer_{suffix}")
        api = load_module(API_HANDLER, f"isolation_api_{suffix}")
        get_settings.cache_clear()
    return authorizer, api


# ---------------------------------------------------------------------------------- logs
@dataclass
class Logs:
    """What the taskapi logger (Powertools JSON on stdout), any other logger (caplog at DEBUG)
    and stdout/stderr received."""

    capsys: Any
    caplog: Any
    seen: list[str] = field(default_factory=list)

    def text(self) -> str:
        """Everything logged so far. Call it within the test: capsys hands the test phase's
        output on to pytest's report when the phase ends."""
        out, err = self.capsys.readouterr()
        self.seen += [out, err]
        records = [
            *self.caplog.get_records("setup"),
            *self.caplog.get_records("call"),
            *self.caplog.records,
        ]
        lines = [f"{r.getMessage()} {r.args!r} {r.__dict__!r} {r.exc_text or ''}" for r in records]
        return "\n".join([*self.seen, self.caplog.text, *lines])

    def assert_clean(self, secrets: list[str]) -> None:
        logged = self.text()
        for secret in secrets:
            assert secret not in logged, f"a credential was logged: {secret[:12]}..."
        for marker in EVENT_MARKERS:
            assert marker not in logged, f"a whole event was logged ({marker})"


class _CurrentStdout:
    """Whatever sys.stdout is when a record is written (capsys swaps it in every test phase)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@contextmanager
def captured_logs(capsys: Any, caplog: Any) -> Iterator[Logs]:
    """taskapi's logger at DEBUG, its Powertools stream handler writing to the captured stdout,
    every logger's records in caplog at DEBUG."""
    from taskapi.observability import logger

    level = logger.log_level
    logger.setLevel("DEBUG")
    caplog.set_level(logging.DEBUG)
    handlers = [handler for handler in logger._logger.handlers if isinstance(handler, logging.StreamHandler)]
    streams = [handler.stream for handler in handlers]
    for handler in handlers:
        handler.stream = _CurrentStdout()  # capsys's, in each phase: Powertools' JSON is read back
    try:
        yield Logs(capsys, caplog)
    finally:
        for handler, stream in zip(handlers, streams, strict=True):
            handler.stream = stream  # no flush: capsys may have closed its stream already
        logger.setLevel(level)


def assert_nothing_confirmed(reply: Reply, *, foreign_account: str = ACCOUNT_B) -> None:
    """A foreign id's answer neither names the other account nor hints that the id exists."""
    assert foreign_account not in reply.text, reply.text
    lowered = reply.text.lower()
    for words in LEAK_WORDS:
        assert words not in lowered, reply.text

"""/api/webhooks and /api/events over the fakes: the secret is answered once, an account holds at
most 10 endpoints, URLs are https (http to loopback on the local stack only), another account's
endpoint is not found, and deliveries, replays and the events cursor behave as documented."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook

from taskapi.client.errors import NotFound
from taskapi.client.webhooks import InvalidSignature, WebhookEndpoints, verify
from taskapi.http import deps
from taskapi.http.app import create_app
from taskapi.models.domain import isoformat, utc_now
from taskapi.settings import Settings, get_settings
from taskapi.webhooks import signing
from taskapi.webhooks.eventstore import MemoryEventStore
from taskapi.webhooks.models import DEFAULT_EVENT_TYPES, Delivery, StoredEvent, event_id_for
from taskapi.webhooks.queue import MemoryDeliveryQueue
from taskapi.webhooks.store import MemoryWebhookStore
from tests.fakes import Fakes

ACCOUNT = "acct_a"
OTHER = "acct_b"
HOOK = "https://hooks.example.com/taskapi"


class Push:
    """The push side's memory adapters, installed in the app next to Fakes'."""

    def __init__(self) -> None:
        self.store = MemoryWebhookStore()
        self.events = MemoryEventStore()
        self.queue = MemoryDeliveryQueue()
        self.settings = Settings()

    def install(self, client: TestClient) -> None:
        overrides = client.app.dependency_overrides  # type: ignore[attr-defined]
        overrides[deps.get_webhook_store] = lambda: self.store
        overrides[deps.get_event_store] = lambda: self.events
        overrides[deps.get_delivery_queue] = lambda: self.queue
        overrides[get_settings] = lambda: self.settings


@pytest.fixture
def push() -> Push:
    return Push()


@pytest.fixture
def api(push: Push) -> TestClient:
    fakes = Fakes()
    client = TestClient(fakes.install(create_app()), raise_server_exceptions=False)
    push.install(client)
    client.fakes = fakes  # type: ignore[attr-defined]
    return client


def key(api: TestClient, account: str = ACCOUNT) -> dict[str, str]:
    return api.fakes.api_key(account)  # type: ignore[attr-defined]


def create(api: TestClient, account: str = ACCOUNT, **body: object) -> dict:
    answer = api.post("/api/webhooks", headers=key(api, account), json={"url": HOOK, **body})
    assert answer.status_code == 201, answer.text
    return answer.json()


def event(account: str = ACCOUNT, *, task_id: str = "t1", sequence: int = 1, kind: str = "task.completed", at=None):
    created_at = isoformat(at or utc_now())
    event_id = event_id_for(account, task_id, sequence, kind, created_at)
    body = {
        "id": event_id,
        "type": kind,
        "created_at": created_at,
        "account_id": account,
        "data": {"task_id": task_id, "status": "COMPLETED"},
        "sequence": sequence,
        "group_id": None,
    }
    return StoredEvent(
        account_id=account, event_id=event_id, type=kind, created_at=created_at, body=json.dumps(body), task_id=task_id
    )


def delivery(stored: StoredEvent, endpoint_id: str, status: str = "failed") -> Delivery:
    return Delivery(
        account_id=stored.account_id,
        endpoint_id=endpoint_id,
        event_id=stored.event_id,
        event_type=stored.type,
        status=status,  # type: ignore[arg-type]
        attempts=8 if status == "failed" else 1,
        last_status_code=500 if status == "failed" else 200,
        created_at=stored.created_at,
        updated_at=stored.created_at,
    )


# ------------------------------------------------------------------ create, and the secret
def test_create_answers_the_secret_once_and_never_again(api, push):
    created = create(api, description="orders")

    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert created["id"].startswith("we_")
    assert created["events"] == list(DEFAULT_EVENT_TYPES)
    assert "task.progress" not in created["events"]
    assert created["enabled"] is True
    assert created["disabled_reason"] is None
    for answer in (
        api.get(f"/api/webhooks/{created['id']}", headers=key(api)),
        api.get("/api/webhooks", headers=key(api)),
        api.patch(f"/api/webhooks/{created['id']}", headers=key(api), json={"description": "orders v2"}),
    ):
        assert answer.status_code == 200, answer.text
        assert secret not in answer.text
        assert "secret" not in answer.text
    assert push.store.get_endpoint(ACCOUNT, created["id"]).active_secrets(utc_now()) == [secret]


def test_the_answered_secret_verifies_deliveries_with_a_standard_webhooks_library(api, push):
    created = create(api)
    endpoint = push.store.get_endpoint(ACCOUNT, created["id"])
    body = b'{"type":"task.completed"}'

    headers = signing.headers(endpoint.active_secrets(utc_now()), "evt_1", body)

    assert Webhook(created["secret"]).verify(body, headers) == {"type": "task.completed"}


def test_an_endpoint_names_its_events_and_group(api):
    created = create(api, events=["task.progress", "group.completed", "task.progress"], task_source_group_id="g 1")

    assert created["events"] == ["task.progress", "group.completed"]
    assert created["task_source_group_id"] == "g 1"


def test_an_unknown_event_type_is_a_422_naming_the_field(api):
    answer = api.post("/api/webhooks", headers=key(api), json={"url": HOOK, "events": ["task.done"]})

    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body", "events", 0]
    assert "task.done" in problem["msg"]
    assert "task.completed" in problem["msg"]


def test_an_account_holds_at_most_its_maximum_of_endpoints(api, push):
    for _ in range(push.settings.webhook_max_endpoints):
        create(api)

    answer = api.post("/api/webhooks", headers=key(api), json={"url": HOOK})

    assert answer.status_code == 409
    assert answer.json() == {
        "detail": "An account may have at most 10 webhook endpoints; delete one before adding another"
    }
    assert len(api.get("/api/webhooks", headers=key(api)).json()["webhooks"]) == 10
    create(api, OTHER)  # the limit is per account
    first = api.get("/api/webhooks", headers=key(api)).json()["webhooks"][0]["id"]
    assert api.delete(f"/api/webhooks/{first}", headers=key(api)).status_code == 204
    create(api)


# ------------------------------------------------------------------ where an endpoint may point
LOCAL_OK = ["http://localhost:8000/hook", "http://127.0.0.1:9000/", "http://[::1]/x", HOOK]
LOCAL_REFUSED = [
    ("http://hooks.example.com/x", "pattern"),  # the document already says http is for loopback only
    ("https://user:pw@hooks.example.com/x", "pattern"),
    ("https://hooks.example.com/x#frag", "pattern"),
    ("https://hooks.example.com:99999/x", "pattern"),
    ("ftp://hooks.example.com/x", "pattern"),
    ("https://10.1.2.3/x", "a private address"),
    ("https://169.254.169.254/latest", "a cloud metadata address"),
    ("https://0.0.0.0/x", "an unspecified address"),
]
AWS_REFUSED = [
    ("http://localhost:8000/hook", "must use https outside the local stack"),
    ("http://127.0.0.1/x", "must use https outside the local stack"),
    ("https://127.0.0.1/x", "a loopback address"),
    ("https://localhost/x", "a loopback address"),
]


@pytest.mark.parametrize("url", LOCAL_OK)
def test_locally_http_is_allowed_to_a_loopback_receiver(api, url):
    assert create(api, url=url)["url"] == url


@pytest.mark.parametrize(("url", "why"), LOCAL_REFUSED)
def test_locally_other_urls_are_refused_on_the_url_field(api, url, why):
    answer = api.post("/api/webhooks", headers=key(api), json={"url": url})

    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body", "url"]
    assert why in problem["msg"]


@pytest.mark.parametrize(("url", "why"), AWS_REFUSED)
def test_in_aws_only_https_to_a_public_host_is_accepted(api, push, url, why):
    push.settings = Settings(environment="aws")

    answer = api.post("/api/webhooks", headers=key(api), json={"url": url})

    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body", "url"]
    assert why in problem["msg"]
    assert create(api)["url"] == HOOK


# ------------------------------------------------------------------ change, delete, rotate
def test_patch_changes_only_the_fields_it_names(api):
    created = create(api, description="orders", task_source_group_id="g1")

    answer = api.patch(
        f"/api/webhooks/{created['id']}",
        headers=key(api),
        json={"events": ["task.failed"], "description": None, "enabled": False},
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["events"] == ["task.failed"]
    assert body["description"] is None
    assert body["enabled"] is False
    assert body["disabled_reason"] is None
    assert body["task_source_group_id"] == "g1"
    assert body["url"] == HOOK
    assert api.get(f"/api/webhooks/{created['id']}", headers=key(api)).json() == body


def test_enabling_an_endpoint_the_service_disabled_clears_its_reason(api, push):
    created = create(api)
    stored = push.store.get_endpoint(ACCOUNT, created["id"])
    push.store.save_endpoint(
        stored.model_copy(
            update={
                "enabled": False,
                "disabled_reason": "the receiver answered 410",
                "failing_since": isoformat(utc_now()),
            }
        ),
        expected_version=stored.version,
    )
    assert api.get(f"/api/webhooks/{created['id']}", headers=key(api)).json()["disabled_reason"] == (
        "the receiver answered 410"
    )

    answer = api.patch(f"/api/webhooks/{created['id']}", headers=key(api), json={"enabled": True})

    assert answer.json()["enabled"] is True
    assert answer.json()["disabled_reason"] is None
    assert push.store.get_endpoint(ACCOUNT, created["id"]).failing_since is None


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, None), ({"url": None}, "url"), ({"enabled": "yes"}, "enabled"), ({"url": "http://hooks.example.com"}, "url")],
)
def test_patch_refuses_what_it_cannot_apply(api, body, field):
    created = create(api)

    answer = api.patch(f"/api/webhooks/{created['id']}", headers=key(api), json=body)

    assert answer.status_code == 422, answer.text
    if field is not None:
        assert answer.json()["detail"][0]["loc"][:2] == ["body", field]
    assert api.get(f"/api/webhooks/{created['id']}", headers=key(api)).json()["url"] == HOOK


def test_delete_removes_the_endpoint(api):
    created = create(api)

    assert api.delete(f"/api/webhooks/{created['id']}", headers=key(api)).status_code == 204

    assert api.get(f"/api/webhooks/{created['id']}", headers=key(api)).status_code == 404
    assert api.delete(f"/api/webhooks/{created['id']}", headers=key(api)).status_code == 404
    assert api.get("/api/webhooks", headers=key(api)).json() == {"webhooks": []}


def test_rotation_answers_a_new_secret_and_signs_with_both_for_a_day(api, push):
    created = create(api)
    before = utc_now()

    answer = api.post(f"/api/webhooks/{created['id']}/rotate-secret", headers=key(api))

    assert answer.status_code == 200, answer.text
    rotated = answer.json()
    assert rotated["id"] == created["id"]
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != created["secret"]
    assert rotated["secret"] not in api.get(f"/api/webhooks/{created['id']}", headers=key(api)).text
    endpoint = push.store.get_endpoint(ACCOUNT, created["id"])
    assert endpoint.active_secrets(before + timedelta(hours=23)) == [rotated["secret"], created["secret"]]
    assert endpoint.active_secrets(before + timedelta(hours=25)) == [rotated["secret"]]
    expires = rotated["previous_secret_expires_at"]
    assert isoformat(before + timedelta(hours=24)) <= expires <= isoformat(utc_now() + timedelta(hours=24))


def test_a_second_rotation_keeps_the_first_grace_and_drops_nothing_still_valid(api, push):
    created = create(api)
    first = api.post(f"/api/webhooks/{created['id']}/rotate-secret", headers=key(api)).json()
    second = api.post(f"/api/webhooks/{created['id']}/rotate-secret", headers=key(api)).json()

    secrets = push.store.get_endpoint(ACCOUNT, created["id"]).active_secrets(utc_now())

    assert secrets == [second["secret"], first["secret"], created["secret"]]


# ------------------------------------------------------------------ tenants
def test_another_accounts_endpoint_answers_exactly_like_a_missing_one(api, push):
    theirs = create(api, OTHER)
    missing = "we_" + "0" * 24
    paths = [
        ("GET", "/api/webhooks/{id}", None),
        ("PATCH", "/api/webhooks/{id}", {"enabled": False}),
        ("DELETE", "/api/webhooks/{id}", None),
        ("POST", "/api/webhooks/{id}/rotate-secret", None),
        ("GET", "/api/webhooks/{id}/deliveries", None),
        ("POST", "/api/webhooks/{id}/replay", {"event_id": event().event_id}),
    ]
    for method, template, body in paths:
        answers = [
            api.request(method, template.format(id=endpoint_id), headers=key(api), json=body)
            for endpoint_id in (theirs["id"], missing)
        ]
        assert [a.status_code for a in answers] == [404, 404], (method, template)
        assert [a.json() for a in answers] == [
            {"detail": f"Webhook {theirs['id']} not found"},
            {"detail": f"Webhook {missing} not found"},
        ]
    assert api.get("/api/webhooks", headers=key(api)).json() == {"webhooks": []}
    still = push.store.get_endpoint(OTHER, theirs["id"])
    assert still.enabled is True
    assert still.active_secrets(utc_now()) == [theirs["secret"]]


def test_every_route_needs_credentials(api):
    for method, path in [
        ("POST", "/api/webhooks"),
        ("GET", "/api/webhooks"),
        ("GET", "/api/webhooks/we_1"),
        ("PATCH", "/api/webhooks/we_1"),
        ("DELETE", "/api/webhooks/we_1"),
        ("POST", "/api/webhooks/we_1/rotate-secret"),
        ("GET", "/api/webhooks/we_1/deliveries"),
        ("POST", "/api/webhooks/we_1/replay"),
        ("GET", "/api/events"),
    ]:
        answer = api.request(method, path)
        assert answer.status_code == 401, (method, path)
        assert answer.headers["www-authenticate"] == "Bearer"


# ------------------------------------------------------------------ deliveries and replay
def test_deliveries_are_listed_by_status_a_page_at_a_time(api, push):
    created = create(api)
    now = utc_now()
    stored = [event(task_id=f"t{i}", at=now + timedelta(seconds=i)) for i in range(4)]
    statuses = ["failed", "succeeded", "failed", "pending"]
    for item, status in zip(stored, statuses, strict=True):
        push.store.save_delivery(delivery(item, created["id"], status))
    url = f"/api/webhooks/{created['id']}/deliveries"

    everything = api.get(url, headers=key(api)).json()
    first = api.get(url, headers=key(api), params={"status": "failed", "limit": 1}).json()
    second = api.get(url, headers=key(api), params={"status": "failed", "limit": 1, "next_token": first["next_token"]})

    assert [d["status"] for d in everything["deliveries"]] == statuses
    assert everything["next_token"] is None
    assert [d["event_id"] for d in first["deliveries"]] == [stored[0].event_id]
    assert first["deliveries"][0]["last_status_code"] == 500
    assert first["deliveries"][0]["attempts"] == 8
    assert [d["event_id"] for d in second.json()["deliveries"]] == [stored[2].event_id]
    assert second.json()["next_token"] is None
    assert api.get(url, headers=key(api), params={"status": "lost"}).status_code == 422


def test_replay_of_one_event_queues_it_again_under_its_own_id(api, push):
    created = create(api)
    stored = event()
    push.events.put_many([stored])
    push.store.save_delivery(delivery(stored, created["id"], "failed"))

    answer = api.post(f"/api/webhooks/{created['id']}/replay", headers=key(api), json={"event_id": stored.event_id})

    assert answer.status_code == 202, answer.text
    assert answer.json() == {"scheduled": [stored.event_id], "refused": {}, "next_since": None}
    assert [(m.endpoint_id, m.event_id) for m, _ in push.queue.sent] == [(created["id"], stored.event_id)]
    assert push.store.get_delivery(created["id"], stored.event_id).status == "pending"


def test_replay_of_one_event_sends_a_delivered_one_again_but_not_one_under_way(api, push):
    created = create(api)
    done, running = event(task_id="done"), event(task_id="running")
    for item in (done, running):
        push.events.put_many([item])
    push.store.save_delivery(delivery(done, created["id"], "succeeded"))
    push.store.save_delivery(delivery(running, created["id"], "pending").model_copy(update={"attempts": 2}))
    url = f"/api/webhooks/{created['id']}/replay"

    again = api.post(url, headers=key(api), json={"event_id": done.event_id}).json()
    busy = api.post(url, headers=key(api), json={"event_id": running.event_id}).json()

    assert again["scheduled"] == [done.event_id]
    assert busy["scheduled"] == []
    assert "under way" in busy["refused"][running.event_id]
    assert [m.event_id for m, _ in push.queue.sent] == [done.event_id]


def test_replay_of_a_window_sends_only_its_failed_deliveries(api, push):
    created = create(api)
    start = utc_now() - timedelta(hours=3)
    stored = [event(task_id=f"t{i}", at=start + timedelta(hours=i)) for i in range(4)]
    for item, status in zip(stored, ["failed", "failed", "succeeded", "failed"], strict=True):
        push.events.put_many([item])
        push.store.save_delivery(delivery(item, created["id"], status))
    window = {
        "since": isoformat(start + timedelta(minutes=30)),
        "until": isoformat(start + timedelta(hours=2, minutes=30)),
    }

    answer = api.post(f"/api/webhooks/{created['id']}/replay", headers=key(api), json=window)

    assert answer.status_code == 202, answer.text
    assert answer.json()["scheduled"] == [stored[1].event_id]
    assert [m.event_id for m, _ in push.queue.sent] == [stored[1].event_id]
    assert push.store.get_delivery(created["id"], stored[0].event_id).status == "failed"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"since": "2025-01-02T00:00:00Z"},
        {"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
        {"event_id": "evt_1", "since": "2025-01-01T00:00:00Z", "until": "2025-01-02T00:00:00Z"},
        {"since": "2025-01-01", "until": "2025-01-02T00:00:00Z"},
    ],
)
def test_replay_takes_an_event_id_or_a_window(api, body):
    created = create(api)

    assert api.post(f"/api/webhooks/{created['id']}/replay", headers=key(api), json=body).status_code == 422


def test_replay_refuses_a_disabled_endpoint_and_an_unknown_event(api, push):
    created = create(api)
    missing = event().event_id

    unknown = api.post(f"/api/webhooks/{created['id']}/replay", headers=key(api), json={"event_id": missing})
    api.patch(f"/api/webhooks/{created['id']}", headers=key(api), json={"enabled": False})
    disabled = api.post(f"/api/webhooks/{created['id']}/replay", headers=key(api), json={"event_id": missing})

    assert unknown.status_code == 404
    assert "kept 7 days" in unknown.json()["detail"]
    assert disabled.status_code == 409
    assert "enable it" in disabled.json()["detail"]
    assert push.queue.sent == []


def test_replay_never_sends_another_accounts_event(api, push):
    created = create(api)
    theirs = event(OTHER)
    push.events.put_many([theirs])

    answer = api.post(f"/api/webhooks/{created['id']}/replay", headers=key(api), json={"event_id": theirs.event_id})

    assert answer.status_code == 404
    assert push.queue.sent == []


# ------------------------------------------------------------------ events
def test_events_are_read_oldest_first_with_a_cursor_that_keeps_polling(api, push):
    now = utc_now()
    mine = [event(task_id=f"t{i}", sequence=i, at=now - timedelta(minutes=10 - i)) for i in range(3)]
    for item in [*mine, event(OTHER, at=now - timedelta(minutes=9))]:
        push.events.put_many([item])

    first = api.get("/api/events", headers=key(api), params={"limit": 2}).json()
    rest = api.get("/api/events", headers=key(api), params={"after": first["next_cursor"]}).json()
    idle = api.get("/api/events", headers=key(api), params={"after": rest["next_cursor"]}).json()

    assert [e["id"] for e in first["events"]] == [mine[0].event_id, mine[1].event_id]
    assert first["has_more"] is True
    assert first["next_cursor"] == mine[1].event_id
    assert first["events"][0] == json.loads(mine[0].body)
    assert [e["id"] for e in rest["events"]] == [mine[2].event_id]
    assert rest["has_more"] is False
    assert idle == {"events": [], "next_cursor": mine[2].event_id, "has_more": False}


def test_events_refuse_a_cursor_that_is_not_an_event_id(api):
    answer = api.get("/api/events", headers=key(api), params={"after": "yesterday"})

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "after"]


# ------------------------------------------------------------------ the document
def test_every_webhook_route_is_documented_with_a_summary_and_its_answers(api):
    paths = api.get("/openapi.json").json()["paths"]
    operations = {
        (method, path): operation
        for path, item in paths.items()
        if path.startswith(("/api/webhooks", "/api/events"))
        for method, operation in item.items()
    }

    assert len(operations) == 9
    for (method, path), operation in operations.items():
        assert operation.get("summary"), (method, path)
        assert "401" in operation["responses"], (method, path)
        if "{webhook_id}" in path:
            assert "404" in operation["responses"], (method, path)
    created = paths["/api/webhooks"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/WebhookCreatedOut"}


# ------------------------------------------------------------------ the Python client
class WebhookClient(WebhookEndpoints):
    """The webhook methods alone (TaskApiClient composes its endpoint groups the same way)."""


@pytest.fixture
def client(api: TestClient) -> WebhookClient:
    return WebhookClient("http://testserver", api_key=key(api)["X-API-Key"], http=api, sleep=lambda _: None)


def test_the_client_manages_an_endpoint_and_replays_through_the_api(client, push):
    created = client.create_webhook(HOOK, events=["task.failed"], description="alerts")
    stored = event(kind="task.failed")
    push.events.put_many([stored])
    push.store.save_delivery(delivery(stored, created.id, "failed"))

    assert [w.id for w in client.list_webhooks()] == [created.id]
    assert client.update_webhook(created.id, {"enabled": False}).enabled is False
    client.update_webhook(created.id, {"enabled": True})
    assert client.rotate_webhook_secret(created.id).secret != created.secret
    assert [d.event_id for d in client.list_deliveries(created.id, status="failed").deliveries] == [stored.event_id]
    assert client.replay_webhook(created.id, event_id=stored.event_id).scheduled == [stored.event_id]
    assert [e.id for e in client.iter_events()] == [stored.event_id]
    client.delete_webhook(created.id)
    with pytest.raises(NotFound):
        client.get_webhook(created.id)


def test_the_client_refuses_a_replay_the_server_would_refuse_without_sending_it(client, push):
    created = client.create_webhook(HOOK)

    with pytest.raises(ValidationError):
        client.replay_webhook(created.id, since="2025-01-01T00:00:00Z")

    assert push.queue.sent == []


def test_verify_accepts_what_a_standard_webhooks_library_signs_and_refuses_a_forgery():
    secret = signing.new_secret()
    body = b'{"id":"evt_1","type":"task.completed"}'
    now = utc_now()
    signed = Webhook(secret).sign("evt_1", now, body.decode())
    headers = {"Webhook-Id": "evt_1", "Webhook-Timestamp": str(int(now.timestamp())), "Webhook-Signature": signed}

    verify(headers, body, secret)
    with pytest.raises(InvalidSignature):
        verify(headers, body.replace(b"completed", b"failed"), secret)
    with pytest.raises(InvalidSignature):
        verify(headers, body, signing.new_secret())

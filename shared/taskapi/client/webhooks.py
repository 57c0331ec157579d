"""Receiving webhooks, and the endpoints under /api/webhooks and /api/events.

    from taskapi.client.webhooks import InvalidSignature, verify

    def receive(request):                       # your web framework's handler
        try:
            verify(request.headers, request.body, secret)   # raw bytes, before any JSON parsing
        except InvalidSignature:
            return 400
        event = json.loads(request.body)        # {id, type, created_at, account_id, data, ...}
        ...                                     # deduplicate on event["id"] (= webhook-id)
        return 204

`verify` checks the Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature)
with the endpoint's secret, and refuses a timestamp more than 5 minutes from now (a replayed old
request); any Standard Webhooks library does the same.

WebhookEndpoints (a mixin of BaseClient; TaskApiClient's other endpoint groups are built the same
way):
* create_webhook: POST /api/webhooks. Its answer holds the secret, shown this once. Not
  idempotent (each call that lands adds an endpoint): repeated only when nothing was processed.
* list_webhooks, get_webhook, update_webhook, delete_webhook, rotate_webhook_secret (the new
  secret, shown this once; not idempotent), list_deliveries, replay_webhook (not idempotent: a
  repeat sends the events again, with the same webhook-id).
* iter_events: GET /api/events page after page, oldest first, from a cursor (next_cursor of an
  earlier answer), until no more are waiting.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from taskapi.client.base import BaseClient, Params
from taskapi.models.webhooks import (
    DeliveryListOut,
    EventListOut,
    EventOut,
    ReplayOut,
    ReplayRequest,
    RotateSecretOut,
    WebhookCreate,
    WebhookCreatedOut,
    WebhookListOut,
    WebhookOut,
    WebhookUpdate,
)
from taskapi.webhooks.signing import InvalidSignature, verify

__all__ = ["InvalidSignature", "WebhookEndpoints", "verify"]


def _path(webhook_id: str, tail: str = "") -> str:
    return f"/api/webhooks/{quote(webhook_id, safe='')}{tail}"


class WebhookEndpoints(BaseClient):
    def create_webhook(
        self,
        url: str,
        *,
        events: Iterable[str] | None = None,
        task_source_group_id: str | None = None,
        description: str | None = None,
    ) -> WebhookCreatedOut:
        fields: dict[str, Any] = {"url": url}
        if events is not None:
            fields["events"] = list(events)
        if task_source_group_id is not None:
            fields["task_source_group_id"] = task_source_group_id
        if description is not None:
            fields["description"] = description
        body = WebhookCreate.model_validate(fields)
        return self._call("POST", "/api/webhooks", WebhookCreatedOut, idempotent=False, body=body)

    def list_webhooks(self) -> list[WebhookOut]:
        return self._call("GET", "/api/webhooks", WebhookListOut, idempotent=True).webhooks

    def get_webhook(self, webhook_id: str) -> WebhookOut:
        return self._call("GET", _path(webhook_id), WebhookOut, idempotent=True)

    def update_webhook(self, webhook_id: str, changes: Mapping[str, Any]) -> WebhookOut:
        """`changes`: the fields to change (enabled, url, events, task_source_group_id, description)."""
        body = WebhookUpdate.model_validate(dict(changes))
        return self._call("PATCH", _path(webhook_id), WebhookOut, idempotent=True, body=body)

    def delete_webhook(self, webhook_id: str) -> None:
        """Repeated on a lost answer like any idempotent call: a repeat after a delete that landed
        answers NotFound."""
        self._send("DELETE", _path(webhook_id), idempotent=True)

    def rotate_webhook_secret(self, webhook_id: str) -> RotateSecretOut:
        return self._call("POST", _path(webhook_id, "/rotate-secret"), RotateSecretOut, idempotent=False)

    def list_deliveries(
        self, webhook_id: str, *, status: str | None = None, limit: int | None = None, next_token: str | None = None
    ) -> DeliveryListOut:
        params: dict[str, str | int] = {}
        if status is not None:
            params["status"] = status
        if limit is not None:
            params["limit"] = limit
        if next_token is not None:
            params["next_token"] = next_token
        return self._call("GET", _path(webhook_id, "/deliveries"), DeliveryListOut, idempotent=True, params=params)

    def replay_webhook(
        self, webhook_id: str, *, event_id: str | None = None, since: str | None = None, until: str | None = None
    ) -> ReplayOut:
        """One event by id, or every failed delivery created from `since` to `until` (ISO times)."""
        fields = {k: v for k, v in {"event_id": event_id, "since": since, "until": until}.items() if v is not None}
        ReplayRequest.model_validate(fields)  # refused here as the server would refuse it
        # Sent as given: the model holds since and until as datetimes.
        response = self._send("POST", _path(webhook_id, "/replay"), idempotent=False, json=fields)
        return ReplayOut.model_validate_json(response.content)

    def list_events(self, *, after: str | None = None, limit: int | None = None) -> EventListOut:
        params: Params = {k: v for k, v in {"after": after, "limit": limit}.items() if v is not None}
        return self._call("GET", "/api/events", EventListOut, idempotent=True, params=params)

    def iter_events(self, *, after: str | None = None) -> Iterator[EventOut]:
        """Every event after the cursor that exists now, oldest first. Keep the id of the last one
        to continue from it later."""
        while True:
            page = self.list_events(after=after)
            yield from page.events
            after = page.next_cursor
            if not page.has_more:
                return

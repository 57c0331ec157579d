"""Domain models of push: endpoints (where an account wants events), deliveries (one event to one
endpoint, with its attempts), stored events (the exact body delivered) and the delivery queue's
message. Independent of HTTP and DynamoDB; the item layout lives in taskapi.webhooks.store.

Times are ISO 8601 text in UTC as taskapi.models.domain.isoformat writes them ("...T12:00:00.000000Z"),
so they sort as text; `expires_at` of a delivery is epoch seconds (DynamoDB's TTL)."""

from __future__ import annotations

import hashlib
import json
import secrets as _random
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

EVENT_TYPES: tuple[str, ...] = (
    "task.queued",
    "task.started",
    "task.progress",
    "task.completed",
    "task.failed",
    "task.cancelled",
    "upload.completed",
    "upload.failed",
    "group.completed",
)
DEFAULT_EVENT_TYPES: tuple[str, ...] = tuple(t for t in EVENT_TYPES if t != "task.progress")
"""What an endpoint that names no events gets: task.progress is chatty, so it is opt-in."""

DELIVERY_RETENTION = timedelta(days=30)
"""A delivery item lives this long (its TTL), whatever its status."""

DeliveryStatus = Literal["pending", "succeeded", "failed"]


def parse_time(value: str | datetime) -> datetime:
    """An ISO time (with Z or an offset) or a datetime, as an aware UTC datetime."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class Secret(BaseModel):
    """A signing secret ("whsec_..."); `expires_at` is set on the old one after a rotation."""

    model_config = ConfigDict(frozen=True)

    secret: str
    expires_at: str | None = None


class Endpoint(BaseModel):
    """Where an account's events go. (account_id, endpoint_id) is its identity; `version` guards
    every save (optimistic locking); `leases` are the deliveries in flight (lease id -> expiry)."""

    model_config = ConfigDict(frozen=True)

    endpoint_id: str
    account_id: str
    url: str
    events: list[str] = Field(default_factory=list)
    """The event types wanted; empty: DEFAULT_EVENT_TYPES."""
    task_source_group_id: str | None = None
    """When set, only events of this group."""
    description: str | None = None
    enabled: bool = True
    disabled_reason: str | None = None
    """Why we disabled it (410, three days of failures); None when the user did, or when enabled."""
    secrets: list[Secret]
    created_at: str
    updated_at: str
    failing_since: str | None = None
    """The first failed attempt of an unbroken run of failures; cleared by a success."""
    leases: dict[str, str] = Field(default_factory=dict)
    version: int = 0

    def wants(self, event_type: str, group_id: str | None) -> bool:
        """Whether an event of this type (and group) goes to this endpoint: enabled, the type among
        its events (or the defaults), and the group its filter names if it has one."""
        if not self.enabled:
            return False
        if event_type not in (self.events or DEFAULT_EVENT_TYPES):
            return False
        return self.task_source_group_id is None or self.task_source_group_id == group_id

    def active_secrets(self, now: str | datetime) -> list[str]:
        """The secrets a delivery at `now` is signed with: the current one and any rotated-out one
        still in its grace period."""
        moment = parse_time(now)
        return [s.secret for s in self.secrets if s.expires_at is None or parse_time(s.expires_at) > moment]


class Delivery(BaseModel):
    """One event to one endpoint. (endpoint_id, event_id) is its identity: the fan-out creates it
    once, so a replayed stream batch delivers nothing twice."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus = "pending"
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    next_attempt_at: str | None = None
    created_at: str
    updated_at: str
    expires_at: int = 0
    """Epoch seconds (TTL); 0 means created_at + DELIVERY_RETENTION."""

    @model_validator(mode="after")
    def _default_expiry(self) -> Delivery:
        if self.expires_at == 0:
            expiry = int((parse_time(self.created_at) + DELIVERY_RETENTION).timestamp())
            object.__setattr__(self, "expires_at", expiry)
        return self


class StoredEvent(BaseModel):
    """An event as EventsTable keeps it: `body` is the exact JSON payload every endpoint receives,
    so a retry or a replay sends the same bytes."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    event_id: str
    type: str
    created_at: str
    body: str
    task_id: str | None = None
    group_id: str | None = None
    fanned_out: bool = False
    bus_sent: bool = False


class DeliveryMessage(BaseModel):
    """The delivery queue's message: which delivery to attempt. The worker reads the event and the
    endpoint again, so a stale message never carries an old secret or URL. `attempt` counts the
    attempts made so far; `not_before` is when the next may be made (SQS delays at most 15 min)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    account_id: str = Field(min_length=1)
    endpoint_id: str = Field(min_length=1)
    event_id: str = Field(min_length=1)
    attempt: int = Field(default=0, ge=0, strict=True)
    not_before: str | None = None

    def to_json(self) -> str:
        return json.dumps(self.model_dump(), separators=(",", ":"))

    @classmethod
    def parse(cls, body: str) -> DeliveryMessage:
        """Raises ValueError for anything that is not a delivery message (a poison message)."""
        try:
            message = cls.model_validate_json(body)
            if message.not_before is not None:
                parse_time(message.not_before)
        except (ValidationError, ValueError, TypeError) as exc:
            raise ValueError("message body is not a webhook delivery message") from exc
        return message


def new_endpoint_id() -> str:
    return "we_" + _random.token_hex(12)


def event_id_for(account_id: str, subject: str, sequence: int | str, type: str, created_at: str | datetime) -> str:
    """`evt_<created_at as 20 digits>_<16 hex>`: sorts by time within an account, and is the same
    when a stream batch is replayed (it depends on nothing but the change itself)."""
    stamp = parse_time(created_at).strftime("%Y%m%d%H%M%S%f")
    digest = hashlib.sha256(f"{account_id}|{subject}|{sequence}|{type}".encode()).hexdigest()[:16]
    return f"evt_{stamp}_{digest}"

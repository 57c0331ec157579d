"""Request and response bodies of /api/webhooks and /api/events, mapped explicitly from the push
domain (taskapi.webhooks.models). A signing secret appears in two answers only: the endpoint's
creation and a rotation."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from taskapi.models import limits
from taskapi.models.requests import SourceId
from taskapi.webhooks.models import (
    DEFAULT_EVENT_TYPES,
    EVENT_TYPES,
    Delivery,
    DeliveryStatus,
    Endpoint,
    StoredEvent,
    parse_time,
)

MAX_EVENT_PAGE = 100
DEFAULT_EVENT_PAGE = 100
MAX_DELIVERY_PAGE = 100
DEFAULT_DELIVERY_PAGE = 50
EVENT_ID_PATTERN = r"^evt_[0-9]{20}_[0-9a-f]{16}$"
"""What taskapi.webhooks.models.event_id_for makes; also the events cursor."""
ENDPOINT_ID_MAX_LENGTH = 64


def _known_event_type(value: str) -> str:
    if value not in EVENT_TYPES:
        raise PydanticCustomError(
            "unknown_event_type",
            "unknown event type '{event_type}'; expected one of {expected}",
            {"event_type": value, "expected": ", ".join(EVENT_TYPES)},
        )
    return value


# The enum documents (and the validator enforces, with the list in words) the known types.
EventType = Annotated[str, Field(json_schema_extra={"enum": list(EVENT_TYPES)}), AfterValidator(_known_event_type)]


def _distinct(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


EventTypes = Annotated[
    list[EventType],
    Field(
        min_length=1,
        max_length=len(EVENT_TYPES),
        description="The event types to receive (repeats count once). Left out: every type but task.progress, "
        "which is opt-in.",
    ),
    AfterValidator(_distinct),
]
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_PORT = r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0))?"
_URL_PATTERN = (
    r"^(?:[Hh][Tt][Tt][Pp][Ss]://[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?"  # https to a host name or IPv4 address
    rf"|[Hh][Tt][Tt][Pp]://(?:localhost|127(?:\.{_OCTET}){{3}}|\[::1\]))"  # http to loopback (local stack only)
    rf"{_PORT}(?:[/?][^\x00-\x20\x7f#]*)?$"  # no credentials, no fragment
)
"""What some deployment accepts: the service refuses more (http outside the local stack, a literal
address that is not public) with a 422 on the url field."""
WebhookUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=limits.MAX_URL_LENGTH,
        pattern=_URL_PATTERN,
        description="Where events are POSTed: https (on the local stack, http to a loopback host is allowed "
        "too). No credentials, no fragment. Redirects are not followed.",
    ),
]
# Optional for the model, never null on the wire (null is refused): the schema is the value's own.
OptionalEventTypes = Annotated[
    EventTypes | None,
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "string", "enum": list(EVENT_TYPES)},
            "minItems": 1,
            "maxItems": len(EVENT_TYPES),
            "description": "The event types to receive (repeats count once).",
        }
    ),
]
OptionalWebhookUrl = Annotated[
    WebhookUrl | None,
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": limits.MAX_URL_LENGTH, "pattern": _URL_PATTERN}),
]
Description = Annotated[str, Field(max_length=256, pattern=limits.SOURCE_TEXT_PATTERN)]
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def _moment(value: Any) -> datetime:
    try:
        if not isinstance(value, str) or not _RFC3339.fullmatch(value):
            raise ValueError(value)
        return parse_time(value.upper())
    except ValueError:
        raise PydanticCustomError(
            "datetime_format", "must be a date-time with its offset, e.g. 2025-01-31T12:00:00Z"
        ) from None


# A string on the wire (JSON numbers are refused), a UTC datetime in the model.
Moment = Annotated[datetime, BeforeValidator(_moment), WithJsonSchema({"type": "string", "format": "date-time"})]
OptionalMoment = Annotated[Moment | None, WithJsonSchema({"type": "string", "format": "date-time"})]
OptionalEventId = Annotated[
    Annotated[str, Field(pattern=EVENT_ID_PATTERN)] | None,
    WithJsonSchema({"type": "string", "pattern": EVENT_ID_PATTERN}),
]


def _not_null(value: Any) -> Any:
    """For fields the schema declares non-null, whose None only means "left out" (a validator
    runs only for a value the body gave)."""
    if value is None:
        raise PydanticCustomError("not_null", "may not be null; leave the field out instead")
    return value


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl
    events: OptionalEventTypes = Field(
        default=None, description="Left out: every event type but task.progress, which is opt-in."
    )
    task_source_group_id: SourceId | None = Field(default=None, description="Only events of this group.")
    description: Description | None = None

    _events_not_null = field_validator("events")(_not_null)


class WebhookUpdate(BaseModel):
    """PATCH /api/webhooks/{id}: the fields to change, at least one; a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    enabled: Annotated[StrictBool | None, WithJsonSchema({"type": "boolean"})] = Field(
        default=None, description="true enables it again (and clears disabled_reason); false pauses deliveries."
    )
    url: OptionalWebhookUrl = None
    events: OptionalEventTypes = None
    task_source_group_id: SourceId | None = Field(default=None, description="null removes the group filter.")
    description: Description | None = Field(default=None, description="null clears it.")

    @model_validator(mode="after")
    def _changes_something(self) -> WebhookUpdate:
        if not self.model_fields_set:
            raise PydanticCustomError(
                "empty_update",
                "name at least one field to change: enabled, url, events, task_source_group_id or description",
            )
        return self

    _given_not_null = field_validator("enabled", "url", "events")(_not_null)


class WebhookOut(BaseModel):
    """An endpoint as every answer shows it: never its secret."""

    id: str = Field(description="we_ and 24 hex digits.")
    url: str
    events: list[str] = Field(description="The event types it receives.")
    task_source_group_id: str | None
    description: str | None
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why the service disabled it (the receiver answered 410, or every delivery failed for "
        "3 days); null when enabled or paused by you."
    )
    created_at: str
    updated_at: str

    @classmethod
    def from_endpoint(cls, endpoint: Endpoint) -> WebhookOut:
        return cls(
            id=endpoint.endpoint_id,
            url=endpoint.url,
            events=list(endpoint.events or DEFAULT_EVENT_TYPES),
            task_source_group_id=endpoint.task_source_group_id,
            description=endpoint.description,
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
        )


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(
        description="whsec_ + base64 of 32 random bytes: verify every delivery's webhook-signature with it. "
        "Shown this once; a rotation makes a new one."
    )


class WebhookListOut(BaseModel):
    webhooks: list[WebhookOut] = Field(description="The account's endpoints, oldest first.")


class RotateSecretOut(BaseModel):
    id: str
    secret: str = Field(description="The new secret, shown this once.")
    previous_secret_expires_at: str | None = Field(
        description="Until then deliveries carry a signature with the previous secret too; null: no grace period."
    )


class DeliveryOut(BaseModel):
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int = Field(ge=0)
    last_status_code: int | None = Field(description="The receiver's status on the last attempt.")
    last_error: str | None
    next_attempt_at: str | None
    created_at: str
    updated_at: str

    @classmethod
    def from_delivery(cls, delivery: Delivery) -> DeliveryOut:
        return cls(
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            status=delivery.status,
            attempts=delivery.attempts,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            next_attempt_at=delivery.next_attempt_at,
            created_at=delivery.created_at,
            updated_at=delivery.updated_at,
        )


class DeliveryListOut(BaseModel):
    deliveries: list[DeliveryOut] = Field(description="By event id (oldest event first).")
    next_token: str | None = Field(description="Pass back as next_token for the following page; null on the last.")


class ReplayRequest(BaseModel):
    """One event by its id (sent again whatever became of it), or every failed delivery of the
    endpoint whose event was created from since to until (both included)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["event_id"], "not": {"anyOf": [{"required": ["since"]}, {"required": ["until"]}]}},
                {"required": ["since", "until"], "not": {"required": ["event_id"]}},
            ]
        },
    )

    event_id: OptionalEventId = None
    since: OptionalMoment = None
    until: OptionalMoment = None

    _given_not_null = field_validator("event_id", "since", "until")(_not_null)

    @model_validator(mode="after")
    def _one_way(self) -> ReplayRequest:
        by_time = self.since is not None or self.until is not None
        if (self.event_id is None) == (not by_time):
            raise PydanticCustomError("replay_choice", "name either event_id, or since and until")
        if by_time and (self.since is None or self.until is None):
            raise PydanticCustomError("replay_window", "since and until go together")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise PydanticCustomError("replay_window", "since must not be after until")
        return self


class ReplayOut(BaseModel):
    scheduled: list[str] = Field(description="Event ids sent to the endpoint again (with their original webhook-id).")
    refused: dict[str, str] = Field(description="Event id -> why it could not be queued; replay it again later.")
    next_since: str | None = Field(
        default=None, description="The window held more failed deliveries: replay again with since = next_since."
    )


class EventOut(BaseModel):
    """An event exactly as its webhook delivers it."""

    id: str
    type: Annotated[str, Field(json_schema_extra={"enum": list(EVENT_TYPES)})]
    created_at: str
    account_id: str
    data: dict[str, Any] = Field(
        description="The task as GET /api/tasks/{task_id} answers it, or the group's or upload's summary."
    )
    sequence: int | None = Field(default=None, description="Orders one task's events (the task's version).")
    group_id: str | None = None

    @classmethod
    def from_stored(cls, event: StoredEvent) -> EventOut:
        payload = json.loads(event.body)
        return cls(
            id=event.event_id,
            type=event.type,
            created_at=event.created_at,
            account_id=event.account_id,
            data=payload.get("data") or {},
            sequence=payload.get("sequence"),
            group_id=payload.get("group_id", event.group_id),
        )


class EventListOut(BaseModel):
    events: list[EventOut] = Field(description="Oldest first.")
    next_cursor: str | None = Field(
        description="Pass back as `after` for the events that follow (also once they exist: poll with it); "
        "null only when the account has no events yet and no cursor was given."
    )
    has_more: bool = Field(description="More events follow already: ask again at once.")


EventCursor = Annotated[str, Field(pattern=EVENT_ID_PATTERN)]
DeliveryFilter = Literal["pending", "succeeded", "failed"]

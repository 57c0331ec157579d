"""The item layout of WebhooksTable (template.yaml): endpoints and deliveries to and from DynamoDB
items. Used by taskapi.webhooks.store's adapter only.

  endpoint   pk="A#<account_id>", sk="EP#<endpoint_id>": the Endpoint's fields; secrets as a list
             of maps; leases as a map lease id -> ISO expiry, with lease_rev (N) guarding its
             rewrites (a save of the endpoint never touches leases, so a PATCH and a delivery do
             not conflict); version (N) guards every save.
  count      pk="A#<account_id>", sk="EPCOUNT": n (N), the account's endpoints, kept in the same
             transaction as each create and delete so "at most N endpoints" holds under races.
  delivery   pk="D#<endpoint_id>", sk="<event_id>": the Delivery's fields; expires_at is its TTL.
"""

from __future__ import annotations

from typing import Any

from taskapi.webhooks.models import Delivery, Endpoint, Secret

ENDPOINT_PREFIX = "EP#"
COUNT_SK = "EPCOUNT"
OPTIONAL_ENDPOINT_TEXT = ("task_source_group_id", "description", "disabled_reason", "failing_since")


def string_attr(value: str) -> dict[str, str]:
    return {"S": value}


def number_attr(value: int) -> dict[str, str]:
    return {"N": str(value)}


def endpoint_key(account_id: str, endpoint_id: str) -> dict[str, Any]:
    return {"pk": string_attr(f"A#{account_id}"), "sk": string_attr(ENDPOINT_PREFIX + endpoint_id)}


def count_key(account_id: str) -> dict[str, Any]:
    return {"pk": string_attr(f"A#{account_id}"), "sk": string_attr(COUNT_SK)}


def delivery_key(endpoint_id: str, event_id: str) -> dict[str, Any]:
    return {"pk": string_attr(f"D#{endpoint_id}"), "sk": string_attr(event_id)}


def endpoint_fields(endpoint: Endpoint) -> dict[str, Any]:
    """The endpoint's attributes but its key and leases; absent optional ones are left out."""
    fields: dict[str, Any] = {
        "endpoint_id": string_attr(endpoint.endpoint_id),
        "account_id": string_attr(endpoint.account_id),
        "url": string_attr(endpoint.url),
        "events": {"L": [string_attr(kind) for kind in endpoint.events]},
        "enabled": {"BOOL": endpoint.enabled},
        "secrets": {"L": [{"M": _secret_item(s)} for s in endpoint.secrets]},
        "created_at": string_attr(endpoint.created_at),
        "updated_at": string_attr(endpoint.updated_at),
        "version": number_attr(endpoint.version),
    }
    for name in OPTIONAL_ENDPOINT_TEXT:
        value = getattr(endpoint, name)
        if value is not None:
            fields[name] = string_attr(value)
    return fields


def _secret_item(secret: Secret) -> dict[str, Any]:
    item = {"secret": string_attr(secret.secret)}
    if secret.expires_at is not None:
        item["expires_at"] = string_attr(secret.expires_at)
    return item


def item_to_endpoint(item: dict[str, Any]) -> Endpoint:
    def text(name: str) -> str | None:
        value = item.get(name)
        return None if value is None else str(value["S"])

    secrets = [
        Secret(secret=s["M"]["secret"]["S"], expires_at=s["M"].get("expires_at", {}).get("S"))
        for s in item.get("secrets", {}).get("L", [])
    ]
    return Endpoint(
        endpoint_id=item["endpoint_id"]["S"],
        account_id=item["account_id"]["S"],
        url=item["url"]["S"],
        events=[kind["S"] for kind in item.get("events", {}).get("L", [])],
        task_source_group_id=text("task_source_group_id"),
        description=text("description"),
        enabled=bool(item.get("enabled", {}).get("BOOL", True)),
        disabled_reason=text("disabled_reason"),
        secrets=secrets,
        created_at=item["created_at"]["S"],
        updated_at=item["updated_at"]["S"],
        failing_since=text("failing_since"),
        leases={lease: value["S"] for lease, value in item.get("leases", {}).get("M", {}).items()},
        version=int(item.get("version", {}).get("N", "0")),
    )


def delivery_to_item(delivery: Delivery) -> dict[str, Any]:
    item: dict[str, Any] = {
        **delivery_key(delivery.endpoint_id, delivery.event_id),
        "account_id": string_attr(delivery.account_id),
        "endpoint_id": string_attr(delivery.endpoint_id),
        "event_id": string_attr(delivery.event_id),
        "event_type": string_attr(delivery.event_type),
        "status": string_attr(delivery.status),
        "attempts": number_attr(delivery.attempts),
        "created_at": string_attr(delivery.created_at),
        "updated_at": string_attr(delivery.updated_at),
        "expires_at": number_attr(delivery.expires_at),
    }
    if delivery.last_status_code is not None:
        item["last_status_code"] = number_attr(delivery.last_status_code)
    for name in ("last_error", "next_attempt_at"):
        value = getattr(delivery, name)
        if value is not None:
            item[name] = string_attr(value)
    return item


def item_to_delivery(item: dict[str, Any]) -> Delivery:
    code = item.get("last_status_code")
    return Delivery(
        account_id=item["account_id"]["S"],
        endpoint_id=item["endpoint_id"]["S"],
        event_id=item["event_id"]["S"],
        event_type=item["event_type"]["S"],
        status=item["status"]["S"],
        attempts=int(item["attempts"]["N"]),
        last_status_code=None if code is None else int(code["N"]),
        last_error=item.get("last_error", {}).get("S"),
        next_attempt_at=item.get("next_attempt_at", {}).get("S"),
        created_at=item["created_at"]["S"],
        updated_at=item["updated_at"]["S"],
        expires_at=int(item["expires_at"]["N"]),
    )

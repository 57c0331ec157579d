"""WebhookStore: endpoints and deliveries (template.yaml, WebhooksTable). The DynamoDB adapter and
the in-memory fake; the item layout is in taskapi.webhooks.items.

Two rules both keep: an account has at most `limit` endpoints (a count item changes in the same
transaction as each create and delete, so racing creates cannot pass it), and a delivery worker's
lease on an endpoint slot expires (a crashed worker cannot keep a slot).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from taskapi.aws_errors import AWS_ERRORS, AwsError, cancellation_reasons, error_code, translate
from taskapi.errors import Conflict, TaskApiError
from taskapi.webhooks.items import (
    ENDPOINT_PREFIX,
    OPTIONAL_ENDPOINT_TEXT,
    count_key,
    delivery_key,
    delivery_to_item,
    endpoint_fields,
    endpoint_key,
    item_to_delivery,
    item_to_endpoint,
    number_attr,
    string_attr,
)
from taskapi.webhooks.models import Delivery, Endpoint, parse_time

LEASE_ROUNDS = 5
"""Tries of a lease change that lost a race with another worker's, before giving up (busy)."""
_CONDITION_FAILED = "ConditionalCheckFailedException"


class EndpointLimitReached(Conflict):
    """The account has as many endpoints as it may (409): delete one first."""


class WebhookStore(Protocol):
    def create_endpoint(self, endpoint: Endpoint, *, limit: int) -> Endpoint:
        """Store a new endpoint; EndpointLimitReached when the account has `limit` already."""
        ...

    def list_endpoints(self, account_id: str) -> list[Endpoint]:
        """The account's endpoints, by id."""
        ...

    def get_endpoint(self, account_id: str, endpoint_id: str) -> Endpoint | None: ...

    def save_endpoint(self, endpoint: Endpoint, *, expected_version: int) -> Endpoint:
        """Write every field but the leases, if the stored version is `expected_version`
        (else Conflict; NotFound-free: a deleted endpoint is a Conflict too). Answers the
        endpoint as saved, its version one higher."""
        ...

    def delete_endpoint(self, account_id: str, endpoint_id: str) -> bool:
        """True when it existed. Its deliveries stay until their TTL."""
        ...

    def acquire_lease(
        self, account_id: str, endpoint_id: str, lease_id: str, *, now: str, expires_at: str, limit: int
    ) -> bool:
        """Take one of the endpoint's `limit` delivery slots until `expires_at`. Leases expired at
        `now` are dropped first (a crashed worker's slot frees itself). False when all are taken
        or the endpoint is gone."""
        ...

    def release_lease(self, account_id: str, endpoint_id: str, lease_id: str) -> None: ...

    def put_delivery_if_absent(self, delivery: Delivery) -> bool:
        """Store the delivery unless one for (endpoint, event) exists; True when this call stored it."""
        ...

    def get_delivery(self, endpoint_id: str, event_id: str) -> Delivery | None: ...

    def save_delivery(self, delivery: Delivery) -> None: ...

    def list_deliveries(
        self, endpoint_id: str, *, status: str | None, limit: int, after: str | None
    ) -> tuple[list[Delivery], str | None]:
        """Up to `limit` deliveries by event id (oldest first) after the cursor `after`, of one
        status or all; with the cursor of the next page (None at the end)."""
        ...


def _live_leases(leases: dict[str, str], now: str) -> dict[str, str]:
    moment = parse_time(now)
    return {lease: expiry for lease, expiry in leases.items() if parse_time(expiry) > moment}


def _failed(exc: AwsError) -> TaskApiError:
    return translate(exc, service="DynamoDB")


class DynamoWebhookStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def create_endpoint(self, endpoint: Endpoint, *, limit: int) -> Endpoint:
        item = {
            **endpoint_key(endpoint.account_id, endpoint.endpoint_id),
            **endpoint_fields(endpoint),
            "leases": {"M": {}},
            "lease_rev": number_attr(0),
        }
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": count_key(endpoint.account_id),
                            "UpdateExpression": "SET n = if_not_exists(n, :zero) + :one",
                            "ConditionExpression": "attribute_not_exists(n) OR n < :limit",
                            "ExpressionAttributeValues": {
                                ":zero": number_attr(0),
                                ":one": number_attr(1),
                                ":limit": number_attr(limit),
                            },
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except AWS_ERRORS as exc:
            reasons = [str(r.get("Code", "")) for r in cancellation_reasons(exc)]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise EndpointLimitReached(f"An account may have at most {limit} webhook endpoints") from exc
            raise translate(exc, service="DynamoDB", conflict="The endpoint id is taken; retry") from exc
        return endpoint.model_copy(update={"leases": {}})

    def list_endpoints(self, account_id: str) -> list[Endpoint]:
        args: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": string_attr(f"A#{account_id}"),
                ":prefix": string_attr(ENDPOINT_PREFIX),
            },
            "ConsistentRead": True,
        }
        endpoints: list[Endpoint] = []
        try:
            while True:
                page = self._client.query(**args)
                endpoints.extend(item_to_endpoint(item) for item in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return endpoints
                args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except AWS_ERRORS as exc:
            raise _failed(exc) from exc

    def get_endpoint(self, account_id: str, endpoint_id: str) -> Endpoint | None:
        item = self._get(endpoint_key(account_id, endpoint_id))
        return None if item is None else item_to_endpoint(item)

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        try:
            answer = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        except AWS_ERRORS as exc:
            raise _failed(exc) from exc
        item: dict[str, Any] | None = answer.get("Item")
        return item

    def save_endpoint(self, endpoint: Endpoint, *, expected_version: int) -> Endpoint:
        saved = endpoint.model_copy(update={"version": expected_version + 1})
        fields = endpoint_fields(saved)
        names = {f"#a{i}": name for i, name in enumerate(fields)}
        values = {f":a{i}": value for i, value in enumerate(fields.values())}
        removed = [f"#r{i}" for i, name in enumerate(OPTIONAL_ENDPOINT_TEXT) if name not in fields]
        names.update({f"#r{i}": name for i, name in enumerate(OPTIONAL_ENDPOINT_TEXT) if name not in fields})
        expression = "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(fields)))
        if removed:
            expression += " REMOVE " + ", ".join(removed)
        values[":expected"] = number_attr(expected_version)
        try:
            self._client.update_item(
                TableName=self._table,
                Key=endpoint_key(endpoint.account_id, endpoint.endpoint_id),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk) AND #version = :expected",
                ExpressionAttributeNames={**names, "#version": "version"},
                ExpressionAttributeValues=values,
            )
        except AWS_ERRORS as exc:
            raise translate(exc, service="DynamoDB", conflict="The webhook endpoint changed meanwhile") from exc
        return saved

    def delete_endpoint(self, account_id: str, endpoint_id: str) -> bool:
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": endpoint_key(account_id, endpoint_id),
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": count_key(account_id),
                            "UpdateExpression": "SET n = n - :one",
                            "ConditionExpression": "n > :zero",
                            "ExpressionAttributeValues": {":zero": number_attr(0), ":one": number_attr(1)},
                        }
                    },
                ]
            )
        except AWS_ERRORS as exc:
            reasons = [str(r.get("Code", "")) for r in cancellation_reasons(exc)]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False
            raise _failed(exc) from exc
        return True

    def acquire_lease(
        self, account_id: str, endpoint_id: str, lease_id: str, *, now: str, expires_at: str, limit: int
    ) -> bool:
        key = endpoint_key(account_id, endpoint_id)
        for _ in range(LEASE_ROUNDS):
            item = self._get(key)
            if item is None:
                return False
            leases = {lease: value["S"] for lease, value in item.get("leases", {}).get("M", {}).items()}
            live = _live_leases(leases, now)
            if len(live) >= limit:
                return False
            live[lease_id] = expires_at
            rev = item.get("lease_rev")
            if self._write_leases(key, live, None if rev is None else int(rev["N"])):
                return True
        return False  # every round lost a race: the endpoint is busy

    def _write_leases(self, key: dict[str, Any], leases: dict[str, str], rev: int | None) -> bool:
        condition = "attribute_exists(pk) AND " + (
            "attribute_not_exists(lease_rev)" if rev is None else "lease_rev = :rev"
        )
        values: dict[str, Any] = {
            ":leases": {"M": {k: string_attr(v) for k, v in leases.items()}},
            ":one": number_attr(1),
            ":zero": number_attr(0),
        }
        if rev is not None:
            values[":rev"] = number_attr(rev)
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET leases = :leases, lease_rev = if_not_exists(lease_rev, :zero) + :one",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except AWS_ERRORS as exc:
            if error_code(exc) == _CONDITION_FAILED:
                return False
            raise _failed(exc) from exc
        return True

    def release_lease(self, account_id: str, endpoint_id: str, lease_id: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=endpoint_key(account_id, endpoint_id),
                UpdateExpression="REMOVE leases.#lease SET lease_rev = if_not_exists(lease_rev, :zero) + :one",
                ConditionExpression="attribute_exists(leases)",
                ExpressionAttributeNames={"#lease": lease_id},
                ExpressionAttributeValues={":zero": number_attr(0), ":one": number_attr(1)},
            )
        except AWS_ERRORS as exc:
            if error_code(exc) == _CONDITION_FAILED:
                return  # the endpoint is gone, and its leases with it
            raise _failed(exc) from exc

    def put_delivery_if_absent(self, delivery: Delivery) -> bool:
        try:
            self._client.put_item(
                TableName=self._table, Item=delivery_to_item(delivery), ConditionExpression="attribute_not_exists(pk)"
            )
        except AWS_ERRORS as exc:
            if error_code(exc) == _CONDITION_FAILED:
                return False
            raise _failed(exc) from exc
        return True

    def get_delivery(self, endpoint_id: str, event_id: str) -> Delivery | None:
        item = self._get(delivery_key(endpoint_id, event_id))
        return None if item is None else item_to_delivery(item)

    def save_delivery(self, delivery: Delivery) -> None:
        try:
            self._client.put_item(TableName=self._table, Item=delivery_to_item(delivery))
        except AWS_ERRORS as exc:
            raise _failed(exc) from exc

    def list_deliveries(
        self, endpoint_id: str, *, status: str | None, limit: int, after: str | None
    ) -> tuple[list[Delivery], str | None]:
        values: dict[str, Any] = {":pk": string_attr(f"D#{endpoint_id}")}
        args: dict[str, Any] = {"TableName": self._table, "KeyConditionExpression": "pk = :pk"}
        if after is not None:
            args["KeyConditionExpression"] += " AND sk > :after"
            values[":after"] = string_attr(after)
        if status is not None:
            args["FilterExpression"] = "#status = :status"
            args["ExpressionAttributeNames"] = {"#status": "status"}
            values[":status"] = string_attr(status)
        args["ExpressionAttributeValues"] = values
        found: list[Delivery] = []
        try:
            while len(found) <= limit:  # one more than asked: whether there is a next page
                page = self._client.query(**args, Limit=max(limit + 1 - len(found), 25))
                found.extend(item_to_delivery(item) for item in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except AWS_ERRORS as exc:
            raise _failed(exc) from exc
        return _page(found, limit)


def _page(found: list[Delivery], limit: int) -> tuple[list[Delivery], str | None]:
    if len(found) > limit:
        return found[:limit], found[limit - 1].event_id
    return found, None


# ------------------------------------------------------------------ in memory


class MemoryWebhookStore:
    """The same rules over dicts, for unit tests; `fail` makes chosen operations raise (fault injection)."""

    def __init__(self) -> None:
        self.endpoints: dict[tuple[str, str], Endpoint] = {}
        self.deliveries: dict[tuple[str, str], Delivery] = {}
        self.fail: Callable[[str], TaskApiError | None] | None = None
        self._lock = threading.RLock()

    def _check(self, operation: str) -> None:
        error = self.fail(operation) if self.fail else None
        if error is not None:
            raise error

    def create_endpoint(self, endpoint: Endpoint, *, limit: int) -> Endpoint:
        with self._lock:
            self._check("create_endpoint")
            if len(self.list_endpoints(endpoint.account_id)) >= limit:
                raise EndpointLimitReached(f"An account may have at most {limit} webhook endpoints")
            key = (endpoint.account_id, endpoint.endpoint_id)
            if key in self.endpoints:
                raise Conflict("The endpoint id is taken; retry")
            self.endpoints[key] = endpoint.model_copy(update={"leases": {}})
            return self.endpoints[key]

    def list_endpoints(self, account_id: str) -> list[Endpoint]:
        with self._lock:
            return sorted((e for (a, _), e in self.endpoints.items() if a == account_id), key=lambda e: e.endpoint_id)

    def get_endpoint(self, account_id: str, endpoint_id: str) -> Endpoint | None:
        with self._lock:
            return self.endpoints.get((account_id, endpoint_id))

    def save_endpoint(self, endpoint: Endpoint, *, expected_version: int) -> Endpoint:
        with self._lock:
            self._check("save_endpoint")
            key = (endpoint.account_id, endpoint.endpoint_id)
            stored = self.endpoints.get(key)
            if stored is None or stored.version != expected_version:
                raise Conflict("The webhook endpoint changed meanwhile")
            saved = endpoint.model_copy(update={"version": expected_version + 1, "leases": stored.leases})
            self.endpoints[key] = saved
            return saved

    def delete_endpoint(self, account_id: str, endpoint_id: str) -> bool:
        with self._lock:
            return self.endpoints.pop((account_id, endpoint_id), None) is not None

    def acquire_lease(
        self, account_id: str, endpoint_id: str, lease_id: str, *, now: str, expires_at: str, limit: int
    ) -> bool:
        with self._lock:
            stored = self.endpoints.get((account_id, endpoint_id))
            if stored is None:
                return False
            live = _live_leases(stored.leases, now)
            if len(live) >= limit:
                return False
            self.endpoints[(account_id, endpoint_id)] = stored.model_copy(
                update={"leases": {**live, lease_id: expires_at}}
            )
            return True

    def release_lease(self, account_id: str, endpoint_id: str, lease_id: str) -> None:
        with self._lock:
            stored = self.endpoints.get((account_id, endpoint_id))
            if stored is not None:
                leases = {k: v for k, v in stored.leases.items() if k != lease_id}
                self.endpoints[(account_id, endpoint_id)] = stored.model_copy(update={"leases": leases})

    def put_delivery_if_absent(self, delivery: Delivery) -> bool:
        with self._lock:
            self._check("put_delivery_if_absent")
            key = (delivery.endpoint_id, delivery.event_id)
            if key in self.deliveries:
                return False
            self.deliveries[key] = delivery
            return True

    def get_delivery(self, endpoint_id: str, event_id: str) -> Delivery | None:
        with self._lock:
            return self.deliveries.get((endpoint_id, event_id))

    def save_delivery(self, delivery: Delivery) -> None:
        with self._lock:
            self._check("save_delivery")
            self.deliveries[(delivery.endpoint_id, delivery.event_id)] = delivery

    def list_deliveries(
        self, endpoint_id: str, *, status: str | None, limit: int, after: str | None
    ) -> tuple[list[Delivery], str | None]:
        with self._lock:
            found = sorted(
                (
                    d
                    for (e, event_id), d in self.deliveries.items()
                    if e == endpoint_id and (after is None or event_id > after) and status in (None, d.status)
                ),
                key=lambda d: d.event_id,
            )
        return _page(found[: limit + 1], limit)

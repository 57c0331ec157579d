"""API Gateway's side of API keys: usage plans meter and throttle each caller through the key the
authorizer names (API key source AUTHORIZER). Every API key we issue has a twin API Gateway key
with the same value on its plan's usage plan, and so does every account's metering key.

The usage plans themselves come from template.yaml (`<stack name>-<plan>`, settings.usage_plan_name);
this module only finds them by name and attaches keys to them."""

from __future__ import annotations

import itertools
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from taskapi.aws_errors import AWS_ERRORS, AwsError, error_code, error_message, translate
from taskapi.errors import Conflict, InvalidRequest, NotFound, Retryable, TaskApiError
from taskapi.settings import PLANS, Settings, usage_plan_name


class UsagePlanGateway(Protocol):
    def register_key(self, name: str, value: str, plan: str) -> str:
        """Create an enabled API Gateway key with exactly this value on the plan's usage plan;
        answers its id. Nothing is left behind when it fails."""
        ...

    def delete_key(self, gateway_key_id: str) -> None:
        """Detach the key from its usage plans and delete it; a key already gone is fine."""
        ...

    def move_key(self, gateway_key_id: str, old_plan: str, new_plan: str) -> None:
        """Attach the key to new_plan's usage plan instead of old_plan's."""
        ...


class UsagePlansUnavailable(Retryable):
    """API Gateway did not answer, or answered with something a retry may change."""


def check_plan(plan: str) -> str:
    if plan not in PLANS:
        raise InvalidRequest(f"unknown plan {plan!r}: the plans are {', '.join(PLANS)}")
    return plan


def _message(exc: AwsError) -> str:
    code = error_code(exc)
    return f"{code}: {error_message(exc)}".rstrip(": ") if code else str(exc)


def _failure(action: str, exc: AwsError) -> TaskApiError:
    """What API Gateway said, as a domain error whose message names the action: its own codes
    for a missing key or plan, a duplicate and a refused value; the rest as every adapter does."""
    code = error_code(exc)
    detail = f"API Gateway could not {action} ({_message(exc)})"
    if code == "NotFoundException":
        return NotFound(detail)
    if code == "ConflictException":
        return Conflict(detail)
    if code == "BadRequestException":
        return InvalidRequest(detail)
    failure = translate(exc, service="API Gateway")
    return UsagePlansUnavailable(detail) if isinstance(failure, Retryable) else failure


class ApiGatewayUsagePlans:
    """UsagePlanGateway on the apigateway API. Usage plan ids are looked up by name once."""

    def __init__(self, client: Any, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._plan_ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def plan_id(self, plan: str) -> str:
        check_plan(plan)
        with self._lock:
            if plan not in self._plan_ids:
                self._load_plan_ids()
            if plan not in self._plan_ids:
                raise NotFound(
                    f"usage plan {usage_plan_name(self._settings, plan)} does not exist at this endpoint "
                    f"(is stack {self._settings.stack_name} deployed, or the local stack running?)"
                )
            return self._plan_ids[plan]

    def _load_plan_ids(self) -> None:
        by_name = {usage_plan_name(self._settings, plan): plan for plan in PLANS}
        for usage_plan in self._usage_plans():
            if usage_plan.get("name") in by_name:
                self._plan_ids[by_name[usage_plan["name"]]] = usage_plan["id"]

    def _usage_plans(self, **filters: str) -> list[dict[str, Any]]:
        try:
            pages = self._client.get_paginator("get_usage_plans").paginate(**filters)
            return [usage_plan for page in pages for usage_plan in page.get("items", [])]
        except AWS_ERRORS as exc:
            raise _failure("list its usage plans", exc) from exc

    def _attached_plan_ids(self, gateway_key_id: str) -> list[str]:
        return [usage_plan["id"] for usage_plan in self._usage_plans(keyId=gateway_key_id)]

    def _attach(self, plan_id: str, gateway_key_id: str) -> None:
        self._client.create_usage_plan_key(usagePlanId=plan_id, keyId=gateway_key_id, keyType="API_KEY")

    def _detach(self, plan_id: str, gateway_key_id: str) -> None:
        try:
            self._client.delete_usage_plan_key(usagePlanId=plan_id, keyId=gateway_key_id)
        except AWS_ERRORS as exc:
            if error_code(exc) != "NotFoundException":
                raise

    def register_key(self, name: str, value: str, plan: str) -> str:
        plan_id = self.plan_id(plan)  # an unknown or missing plan makes nothing
        try:
            gateway_key_id: str = self._client.create_api_key(
                name=name,
                value=value,
                enabled=True,
                description=f"{self._settings.stack_name}: {name} ({plan} plan)",
            )["id"]
        except AWS_ERRORS as exc:
            raise _failure(f"create API key {name}", exc) from exc
        try:
            self._attach(plan_id, gateway_key_id)
        except AWS_ERRORS as exc:
            failure = _failure(f"attach API key {name} to usage plan {usage_plan_name(self._settings, plan)}", exc)
            try:
                self.delete_key(gateway_key_id)
            except TaskApiError as undo:
                failure.add_note(f"deleting API key {gateway_key_id} failed as well ({undo}); delete it by hand")
            raise failure from exc
        return gateway_key_id

    def delete_key(self, gateway_key_id: str) -> None:
        try:
            # API Gateway detaches a deleted key by itself; explicit detaching also keeps emulators
            # (moto) from listing a deleted key among a usage plan's keys.
            for plan_id in self._attached_plan_ids(gateway_key_id):
                self._detach(plan_id, gateway_key_id)
            self._client.delete_api_key(apiKey=gateway_key_id)
        except NotFound:
            return
        except AWS_ERRORS as exc:
            if error_code(exc) == "NotFoundException":
                return
            raise _failure(f"delete API key {gateway_key_id}", exc) from exc

    def move_key(self, gateway_key_id: str, old_plan: str, new_plan: str) -> None:
        old_id, new_id = self.plan_id(old_plan), self.plan_id(new_plan)
        attached = self._attached_plan_ids(gateway_key_id)
        if old_id == new_id and new_id in attached:
            return
        # A key may be on only one usage plan per API stage: detach, then attach.
        detached = [plan_id for plan_id in attached if plan_id != new_id]
        try:
            for plan_id in detached:
                self._detach(plan_id, gateway_key_id)
            if new_id not in attached:
                self._attach(new_id, gateway_key_id)
        except AWS_ERRORS as exc:
            failure = _failure(
                f"move API key {gateway_key_id} to usage plan {usage_plan_name(self._settings, new_plan)}", exc
            )
            for plan_id in detached:  # put it back where it was, as far as possible
                try:
                    self._attach(plan_id, gateway_key_id)
                except AWS_ERRORS as undo:
                    failure.add_note(f"re-attaching it to usage plan {plan_id} failed as well ({_message(undo)})")
            raise failure from exc


@dataclass
class GatewayKey:
    name: str
    value: str
    enabled: bool = True


@dataclass
class InMemoryUsagePlans:
    """The in-memory UsagePlanGateway: keys by id, and each plan's set of attached key ids.
    Plans left out of `plans` behave like usage plans missing from API Gateway."""

    plans: tuple[str, ...] = PLANS
    keys: dict[str, GatewayKey] = field(default_factory=dict)
    attached: dict[str, set[str]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def _plan(self, plan: str) -> set[str]:
        check_plan(plan)
        if plan not in self.plans:
            raise NotFound(f"usage plan {plan} does not exist")
        return self.attached.setdefault(plan, set())

    def register_key(self, name: str, value: str, plan: str) -> str:
        members = self._plan(plan)
        if any(key.value == value for key in self.keys.values()):
            raise Conflict(f"API Gateway could not create API key {name} (ConflictException: API Key already exists)")
        gateway_key_id = f"gk{next(self._ids):04d}{secrets.token_hex(3)}"
        self.keys[gateway_key_id] = GatewayKey(name=name, value=value)
        members.add(gateway_key_id)
        return gateway_key_id

    def delete_key(self, gateway_key_id: str) -> None:
        self.keys.pop(gateway_key_id, None)
        for members in self.attached.values():
            members.discard(gateway_key_id)

    def move_key(self, gateway_key_id: str, old_plan: str, new_plan: str) -> None:
        self._plan(old_plan)
        new_members = self._plan(new_plan)
        if gateway_key_id not in self.keys:
            raise NotFound(f"API Gateway could not move API key {gateway_key_id} (NotFoundException)")
        for members in self.attached.values():
            members.discard(gateway_key_id)
        new_members.add(gateway_key_id)

    # ---------------------------------------------------------------- test helpers
    def plan_of(self, gateway_key_id: str) -> str | None:
        return next((plan for plan, members in self.attached.items() if gateway_key_id in members), None)

    def value_of(self, gateway_key_id: str) -> str | None:
        key = self.keys.get(gateway_key_id)
        return key.value if key else None

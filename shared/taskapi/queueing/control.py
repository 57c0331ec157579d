"""ProcessingControl: whether the processor consumes its queues. In AWS it is the processor's
event source mappings (Lambda ListEventSourceMappings / UpdateEventSourceMapping); on the local
stack, where no Lambda service runs, the pollers keep the same states in SSM parameters."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from taskapi.aws_errors import AWS_ERRORS, translate


@dataclass(frozen=True)
class MappingState:
    mapping_id: str
    source_arn: str
    enabled: bool
    state: str
    priority: str | None = None
    """The priority of the queue the mapping consumes (None for a queue of no known priority)."""


def queue_name(arn_or_url: str) -> str:
    """The queue's name from its ARN (arn:...:name) or URL (https://.../account/name)."""
    return arn_or_url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def priorities_by_queue_name(queue_urls: Mapping[str, str]) -> dict[str, str]:
    """Queue name -> priority, from the priority -> queue URL settings."""
    return {queue_name(url): priority for priority, url in queue_urls.items() if url}


class ProcessingControl(Protocol):
    def mappings(self) -> list[MappingState]: ...

    def set_enabled(self, enabled: bool) -> list[MappingState]:
        """Enable or disable every mapping of the processor; answers their new states."""
        ...


def processing_active(mappings: list[MappingState]) -> bool:
    """Processing is active when the processor has mappings and every one of them consumes."""
    return bool(mappings) and all(m.enabled for m in mappings)


class LambdaProcessingControl:
    def __init__(self, client: Any, function_name: str, queue_urls: Mapping[str, str] | None = None) -> None:
        self._client = client
        self._function = function_name
        self._priorities = priorities_by_queue_name(queue_urls or {})

    def mappings(self) -> list[MappingState]:
        found: list[MappingState] = []
        try:
            for page in self._client.get_paginator("list_event_source_mappings").paginate(FunctionName=self._function):
                for mapping in page.get("EventSourceMappings", []):
                    state = mapping.get("State", "")
                    source_arn = mapping.get("EventSourceArn", "")
                    found.append(
                        MappingState(
                            mapping_id=mapping["UUID"],
                            source_arn=source_arn,
                            enabled=state in ("Enabled", "Enabling", "Updating"),
                            state=state,
                            priority=self._priorities.get(queue_name(source_arn)),
                        )
                    )
        except AWS_ERRORS as exc:
            raise translate(
                exc, service="Lambda", unavailable="Lambda did not list the processor's event source mappings; retry"
            ) from exc
        return found

    def set_enabled(self, enabled: bool) -> list[MappingState]:
        updated = []
        for mapping in self.mappings():
            if mapping.enabled == enabled:
                updated.append(mapping)
                continue
            try:
                answer = self._client.update_event_source_mapping(UUID=mapping.mapping_id, Enabled=enabled)
            except AWS_ERRORS as exc:
                raise translate(
                    exc, service="Lambda", unavailable="Lambda did not update an event source mapping; retry"
                ) from exc
            updated.append(
                replace(mapping, enabled=enabled, state=answer.get("State", "Enabling" if enabled else "Disabling"))
            )
        return updated


class LocalProcessingControl:
    """Mapping states as SSM parameters "<prefix>/<function>/<event>" holding JSON
    {"source_arn", "queue_url", "batch_size", "enabled"}; the local pollers read the same ones."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        function_logical_id: str = "ProcessorFunction",
        queue_urls: Mapping[str, str] | None = None,
    ) -> None:
        self._client = client
        self._path = f"{prefix.rstrip('/')}/{function_logical_id}"
        self._priorities = priorities_by_queue_name(queue_urls or {})

    def _parameters(self) -> list[tuple[str, dict[str, Any]]]:
        found = []
        try:
            for page in self._client.get_paginator("get_parameters_by_path").paginate(Path=self._path, Recursive=True):
                for parameter in page.get("Parameters", []):
                    found.append((parameter["Name"], json.loads(parameter["Value"])))
        except AWS_ERRORS as exc:
            raise translate(exc, service="SSM", unavailable="The local mapping store did not answer; retry") from exc
        return sorted(found)

    def mappings(self) -> list[MappingState]:
        return [
            MappingState(
                mapping_id=name,
                source_arn=value.get("source_arn", ""),
                enabled=bool(value.get("enabled")),
                state="Enabled" if value.get("enabled") else "Disabled",
                priority=self._priorities.get(queue_name(value.get("source_arn", ""))),
            )
            for name, value in self._parameters()
        ]

    def set_enabled(self, enabled: bool) -> list[MappingState]:
        for name, value in self._parameters():
            if bool(value.get("enabled")) != enabled:
                value["enabled"] = enabled
                try:
                    self._client.put_parameter(Name=name, Value=json.dumps(value), Type="String", Overwrite=True)
                except AWS_ERRORS as exc:
                    raise translate(
                        exc, service="SSM", unavailable="The local mapping store did not answer; retry"
                    ) from exc
        return self.mappings()


class InMemoryProcessingControl:
    PRIORITIES = ("urgent", "high", "normal", "low")

    def __init__(self, count: int = 4, enabled: bool = True) -> None:
        self._states = [
            MappingState(
                mapping_id=f"mapping-{n}",
                source_arn=f"arn:aws:sqs:us-east-1:123456789012:tasks-{self.PRIORITIES[n % 4]}",
                enabled=enabled,
                state="Enabled" if enabled else "Disabled",
                priority=self.PRIORITIES[n % 4],
            )
            for n in range(count)
        ]

    def mappings(self) -> list[MappingState]:
        return list(self._states)

    def set_enabled(self, enabled: bool) -> list[MappingState]:
        self._states = [replace(m, enabled=enabled, state="Enabled" if enabled else "Disabled") for m in self._states]
        return self.mappings()

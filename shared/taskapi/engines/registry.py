"""Which engine generates which task type, and with which provider.

Every task type has a built-in engine (no model, no network). A provider such as Amazon Bedrock
adds a second engine for the types the deployment configures; which one runs a task is the
deployment's choice per type, or the task's `request_data.provider` where the deployment allows
it (taskapi.generation.choice). The processor asks get_engine(task_type) and gets a router that
decides per task; engines of a provider are built on first use, so a deployment of built-ins never
loads a model client.

Anything that implements ContentEngine can replace an engine: register(engine) for the built-in
slot, register(engine, provider="bedrock") for a provider's (a test's double, another model)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from taskapi.engines.animated_lesson import AnimatedLessonEngine
from taskapi.engines.base import Artifact, ContentEngine, EngineError, ProgressCallback
from taskapi.engines.documentation import DocumentationEngine
from taskapi.engines.quiz import QuizEngine
from taskapi.engines.video import VideoEngine
from taskapi.generation.choice import BUILTIN, ProviderPolicy
from taskapi.models.domain import TaskType

ProviderFactory = Callable[[str, str], ContentEngine]
"""factory(task_type, model_id) -> the provider's engine for that type."""


def builtin_engines() -> list[ContentEngine]:
    return [VideoEngine(), QuizEngine(), AnimatedLessonEngine(), DocumentationEngine()]


class EngineRegistry:
    def __init__(
        self,
        engines: list[ContentEngine] | None = None,
        *,
        policy: ProviderPolicy | None = None,
        providers: Mapping[str, ProviderFactory] | None = None,
    ) -> None:
        self._engines: dict[str, dict[str, ContentEngine]] = {}
        self.policy = policy or ProviderPolicy()
        self._factories = dict(providers or {})
        for engine in builtin_engines() if engines is None else engines:
            self.register(engine)

    def register(self, engine: ContentEngine, provider: str = BUILTIN) -> ContentEngine | None:
        """Make `engine` the one of `provider` for its task type; returns the engine it replaces."""
        if not isinstance(engine, ContentEngine):
            raise TypeError(f"{engine!r} is not a content engine (needs task_type and generate())")
        slots = self._engines.setdefault(_key(engine.task_type), {})
        previous = slots.get(provider)
        slots[provider] = engine
        return previous

    def get(self, task_type: TaskType | str) -> ContentEngine:
        """The engine the processor runs for this type: it picks the provider per task."""
        key = _key(task_type)
        if BUILTIN not in self._engines.get(key, {}):
            known = ", ".join(self.task_types()) or "none"
            raise KeyError(f"no content engine for task type {key!r} (registered: {known})")
        return ProviderRouter(self, key)

    def engine(self, task_type: TaskType | str, provider: str = BUILTIN) -> ContentEngine:
        """The engine of one provider for this type (a provider's is built on first use)."""
        key = _key(task_type)
        slots = self._engines.get(key, {})
        if provider not in slots:
            factory = self._factories.get(provider)
            model_id = self.policy.model_id(key)
            if factory is None or not model_id:
                raise EngineError(f"no {provider} engine is configured for {key} tasks", permanent=True)
            slots[provider] = factory(key, model_id)
        return slots[provider]

    def task_types(self) -> list[str]:
        return sorted(key for key, slots in self._engines.items() if BUILTIN in slots)


class ProviderRouter:
    """The ContentEngine of one task type: runs each task with the provider the policy gives it."""

    def __init__(self, registry: EngineRegistry, task_type: str) -> None:
        self.registry = registry
        self.key = task_type
        self.task_type = registry.engine(task_type).task_type

    def provider_for(self, request_data: Mapping[str, Any]) -> str:
        refusal = self.registry.policy.refusal(self.key, request_data)
        if refusal is not None:
            raise EngineError(f"request_data.provider: {refusal}", permanent=True)
        return self.registry.policy.provider_for(self.key, request_data)

    def generate(self, request_data: Mapping[str, Any], progress: ProgressCallback) -> Artifact:
        provider = self.provider_for(request_data)
        return self.registry.engine(self.key, provider).generate(request_data, progress)


def _key(task_type: TaskType | str) -> str:
    return task_type.value if isinstance(task_type, TaskType) else str(task_type)


def bedrock_engine(task_type: str, model_id: str) -> ContentEngine:
    """The Bedrock-backed engine of a type (boto3's bedrock-runtime client made on first use)."""
    from taskapi.engines.generated import generated_engine
    from taskapi.generation.bedrock import BedrockGenerator
    from taskapi.settings import get_settings

    budget = get_settings().generation_time_budget_seconds
    return generated_engine(task_type, BedrockGenerator(model_id, time_budget_seconds=budget))


@cache
def default_registry() -> EngineRegistry:
    """The process-wide registry, built-ins included, created on first use (not at import): the
    deployment's provider choices come from the settings then."""
    from taskapi.settings import get_settings

    return EngineRegistry(policy=ProviderPolicy.from_settings(get_settings()), providers={"bedrock": bedrock_engine})


def get_engine(task_type: TaskType | str) -> ContentEngine:
    return default_registry().get(task_type)


def register(engine: ContentEngine, provider: str = BUILTIN) -> ContentEngine | None:
    return default_registry().register(engine, provider)


def reset_engines() -> None:
    """Forget every registration: the next lookup starts again from the built-ins and the settings."""
    default_registry.cache_clear()

"""Which engine generates which task type. The processor asks get_engine(task_type); anything that
implements ContentEngine (an HTTP client for an external generator, an LLM adapter) can replace a
built-in with register(engine), without the processor changing."""

from __future__ import annotations

from functools import cache

from taskapi.engines.animated_lesson import AnimatedLessonEngine
from taskapi.engines.base import ContentEngine
from taskapi.engines.documentation import DocumentationEngine
from taskapi.engines.quiz import QuizEngine
from taskapi.engines.video import VideoEngine
from taskapi.models.domain import TaskType


def builtin_engines() -> list[ContentEngine]:
    return [VideoEngine(), QuizEngine(), AnimatedLessonEngine(), DocumentationEngine()]


class EngineRegistry:
    def __init__(self, engines: list[ContentEngine] | None = None) -> None:
        self._engines: dict[str, ContentEngine] = {}
        for engine in builtin_engines() if engines is None else engines:
            self.register(engine)

    def register(self, engine: ContentEngine) -> ContentEngine | None:
        """Make `engine` the one for its task type; returns the engine it replaces, if any."""
        if not isinstance(engine, ContentEngine):
            raise TypeError(f"{engine!r} is not a content engine (needs task_type and generate())")
        key = _key(engine.task_type)
        previous = self._engines.get(key)
        self._engines[key] = engine
        return previous

    def get(self, task_type: TaskType | str) -> ContentEngine:
        key = _key(task_type)
        try:
            return self._engines[key]
        except KeyError:
            known = ", ".join(sorted(self._engines)) or "none"
            raise KeyError(f"no content engine for task type {key!r} (registered: {known})") from None

    def task_types(self) -> list[str]:
        return sorted(self._engines)


def _key(task_type: TaskType | str) -> str:
    return task_type.value if isinstance(task_type, TaskType) else str(task_type)


@cache
def default_registry() -> EngineRegistry:
    """The process-wide registry, built-ins included, created on first use (not at import)."""
    return EngineRegistry()


def get_engine(task_type: TaskType | str) -> ContentEngine:
    return default_registry().get(task_type)


def register(engine: ContentEngine) -> ContentEngine | None:
    return default_registry().register(engine)


def reset_engines() -> None:
    """Forget every registration: the next lookup starts again from the built-ins."""
    default_registry.cache_clear()

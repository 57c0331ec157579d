"""Which provider writes a task's content: the deployment's choice per task type, or the task's own
`request_data.provider` where the deployment allows tasks to choose.

The API checks a task's choice when the task is created or given request_data (a 422 that says
why), and the processor checks it again when the task runs: the deployment may have changed in
between, and a task the deployment no longer serves fails at once with the same words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from taskapi.settings import Settings

Provider = Literal["builtin", "bedrock"]
PROVIDERS: tuple[str, ...] = ("builtin", "bedrock")
BUILTIN = "builtin"
TASK_TYPES: tuple[str, ...] = ("video", "quiz", "animated_lesson", "documentation")
PARAMETER = {
    "video": "VideoScriptProvider",
    "quiz": "QuizProvider",
    "animated_lesson": "AnimatedLessonProvider",
    "documentation": "DocumentationProvider",
}
"""The template parameter that sets each type's provider (named in refusals)."""


@dataclass(frozen=True)
class ProviderPolicy:
    defaults: Mapping[str, str] = field(default_factory=dict)
    """Provider by task type; a type not named uses the built-in engine."""
    models: Mapping[str, str] = field(default_factory=dict)
    """Model id by task type, for the types a model may serve ("" or absent: none configured)."""
    allow_override: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> ProviderPolicy:
        from taskapi.settings import generation_model_id, generation_provider

        return cls(
            defaults={kind: generation_provider(settings, kind) for kind in TASK_TYPES},
            models={kind: generation_model_id(settings, kind) for kind in TASK_TYPES},
            allow_override=settings.allow_provider_override,
        )

    def default(self, task_type: str) -> str:
        return self.defaults.get(task_type, BUILTIN)

    def model_id(self, task_type: str) -> str:
        return self.models.get(task_type, "")

    def refusal(self, task_type: str, request_data: Mapping[str, Any] | None) -> str | None:
        """Why this deployment cannot serve the provider the task asks for (None: it can)."""
        asked = _asked(request_data)
        if asked is None or asked == self.default(task_type):
            return None
        if asked not in PROVIDERS:
            return f"provider must be one of {', '.join(PROVIDERS)}"
        if not self.allow_override:
            return (
                f"this deployment does not let a task choose its provider: {task_type} tasks use "
                f"{self.default(task_type)} ({PARAMETER.get(task_type, 'the provider parameter')}; "
                "AllowProviderOverride=true lets tasks choose)"
            )
        if asked != BUILTIN and not self.model_id(task_type):
            return f"no {asked} model is configured for {task_type} tasks on this deployment"
        return None

    def provider_for(self, task_type: str, request_data: Mapping[str, Any] | None) -> str:
        """The provider that serves this task; call refusal() first (this assumes none)."""
        asked = _asked(request_data)
        return str(asked) if asked is not None else self.default(task_type)


def _asked(request_data: Any) -> Any:
    """The provider a task names (None when it names none, or when request_data is not an object:
    the engine then refuses the request_data itself)."""
    return request_data.get("provider") if isinstance(request_data, Mapping) else None

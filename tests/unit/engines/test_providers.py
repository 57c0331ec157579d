"""Which provider writes a task's content (taskapi.generation.choice.ProviderPolicy) and how the
registry routes each task to it: the deployment's default per task type, a task's own
request_data.provider where the deployment allows it, a refusal in words where it does not, and a
provider's engine built only when a task needs it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from taskapi.engines import Artifact, ArtifactFile, EngineError, EngineRegistry, ProgressCallback
from taskapi.engines.generated import GeneratedQuizEngine
from taskapi.engines.quiz import QuizEngine
from taskapi.engines.registry import default_registry, get_engine, register
from taskapi.generation.choice import ProviderPolicy
from taskapi.models.domain import TaskType
from tests.unit.engines.conftest import PYTHAGORAS, ProgressLog
from tests.unit.generation.doubles import TEXT, ScriptedGenerator, quiz_document

QUIZ = {"story_prompt": PYTHAGORAS, "difficulty": "easy", "num_questions": 3}


class DoubleEngine:
    """A provider's quiz engine: records the request_data of every task it runs."""

    task_type = TaskType.QUIZ

    def __init__(self, name: str = "double") -> None:
        self.name = name
        self.ran: list[Mapping[str, Any]] = []

    def generate(self, request_data: Mapping[str, Any], progress: ProgressCallback) -> Artifact:
        self.ran.append(request_data)
        progress(50, f"{self.name} writing")
        return Artifact((ArtifactFile("quiz.json", "application/json", b"{}\n"),), "quiz.json", {"by": self.name})


# ------------------------------------------------------------------ the policy
def test_no_provider_asked_is_the_types_default():
    policy = ProviderPolicy(defaults={"quiz": "bedrock"}, models={"quiz": "m"})

    assert policy.refusal("quiz", None) is None
    assert policy.refusal("quiz", {"difficulty": "easy"}) is None
    assert policy.refusal("quiz", {"provider": None}) is None
    assert policy.provider_for("quiz", None) == "bedrock"
    assert policy.provider_for("quiz", {}) == "bedrock"
    assert policy.provider_for("video", {}) == "builtin"  # a type not named: the built-in engine


def test_asking_for_the_default_is_never_refused():
    assert ProviderPolicy().refusal("quiz", {"provider": "builtin"}) is None
    bedrock = ProviderPolicy(defaults={"quiz": "bedrock"}, models={"quiz": "m"})
    assert bedrock.refusal("quiz", {"provider": "bedrock"}) is None
    assert bedrock.provider_for("quiz", {"provider": "bedrock"}) == "bedrock"


@pytest.mark.parametrize(
    ("task_type", "parameter"),
    [
        ("quiz", "QuizProvider"),
        ("documentation", "DocumentationProvider"),
        ("animated_lesson", "AnimatedLessonProvider"),
        ("video", "VideoScriptProvider"),
    ],
)
def test_another_provider_without_override_is_refused_naming_the_parameters(task_type, parameter):
    policy = ProviderPolicy(models={task_type: "m"})

    refusal = policy.refusal(task_type, {"provider": "bedrock"})

    assert refusal is not None
    assert "does not let a task choose its provider" in refusal
    assert f"{task_type} tasks use builtin" in refusal
    assert parameter in refusal
    assert "AllowProviderOverride=true" in refusal


def test_the_builtin_engine_asked_on_a_bedrock_deployment_without_override_is_refused():
    policy = ProviderPolicy(defaults={"quiz": "bedrock"}, models={"quiz": "m"})

    refusal = policy.refusal("quiz", {"provider": "builtin"})

    assert refusal is not None
    assert "quiz tasks use bedrock" in refusal


def test_override_without_a_model_for_the_type_is_refused():
    policy = ProviderPolicy(models={"documentation": "m"}, allow_override=True)

    assert policy.refusal("quiz", {"provider": "bedrock"}) == (
        "no bedrock model is configured for quiz tasks on this deployment"
    )
    assert policy.refusal("documentation", {"provider": "bedrock"}) is None


def test_override_with_a_model_lets_a_task_choose_either_way():
    policy = ProviderPolicy(defaults={"video": "bedrock"}, models={"quiz": "m", "video": "v"}, allow_override=True)

    assert policy.refusal("quiz", {"provider": "bedrock"}) is None
    assert policy.provider_for("quiz", {"provider": "bedrock"}) == "bedrock"
    assert policy.refusal("video", {"provider": "builtin"}) is None  # the built-in engine needs no model
    assert policy.provider_for("video", {"provider": "builtin"}) == "builtin"


def test_an_unknown_provider_is_refused_listing_the_known_ones():
    assert ProviderPolicy(allow_override=True).refusal("quiz", {"provider": "openai"}) == (
        "provider must be one of builtin, bedrock"
    )


# ------------------------------------------------------------------ routing
def overridable(**kwargs: Any) -> EngineRegistry:
    """Built-ins by default; tasks may choose bedrock for quizzes, served by a registered double."""
    return EngineRegistry(policy=ProviderPolicy(models={"quiz": "test-model"}, allow_override=True), **kwargs)


def test_a_task_asking_for_the_provider_runs_its_engine_and_the_others_the_builtin():
    registry = overridable()
    double = DoubleEngine()
    registry.register(double, provider="bedrock")
    router = registry.get("quiz")

    chosen = router.generate({**QUIZ, "provider": "bedrock"}, ProgressLog())
    builtin = router.generate(QUIZ, ProgressLog())
    asked_builtin = router.generate({**QUIZ, "provider": "builtin"}, ProgressLog())

    assert chosen.summary == {"by": "double"}
    assert double.ran == [{**QUIZ, "provider": "bedrock"}]
    assert builtin.summary["produced_questions"] == 3  # the built-in quiz engine's summary
    assert asked_builtin.summary["produced_questions"] == 3
    assert isinstance(registry.engine("quiz"), QuizEngine)
    assert registry.engine("quiz", "bedrock") is double
    assert router.task_type is TaskType.QUIZ


def test_the_provider_engine_reports_its_own_progress_through_the_router():
    registry = overridable()
    registry.register(DoubleEngine("model"), provider="bedrock")
    progress = ProgressLog()

    registry.get(TaskType.QUIZ).generate({**QUIZ, "provider": "bedrock"}, progress)

    assert progress.calls == [(50, "model writing")]


def test_without_override_a_task_asking_for_another_provider_fails_permanently_in_words():
    registry = EngineRegistry(policy=ProviderPolicy(models={"quiz": "test-model"}))
    double = DoubleEngine()
    registry.register(double, provider="bedrock")
    progress = ProgressLog()

    with pytest.raises(EngineError) as caught:
        registry.get("quiz").generate({**QUIZ, "provider": "bedrock"}, progress)

    assert caught.value.permanent is True
    assert caught.value.detail.startswith("request_data.provider: this deployment does not let a task choose")
    assert "QuizProvider" in caught.value.detail
    assert "AllowProviderOverride=true" in caught.value.detail
    assert double.ran == []
    assert progress.calls == []


def test_a_provider_without_an_engine_or_factory_fails_permanently():
    registry = overridable()

    with pytest.raises(EngineError) as caught:
        registry.get("quiz").generate({**QUIZ, "provider": "bedrock"}, ProgressLog())

    assert caught.value.permanent is True
    assert "no bedrock engine is configured for quiz tasks" in caught.value.detail


class CountingFactory:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.built: list[DoubleEngine] = []

    def __call__(self, task_type: str, model_id: str) -> DoubleEngine:
        self.calls.append((task_type, model_id))
        engine = DoubleEngine(f"{task_type} by {model_id}")
        self.built.append(engine)
        return engine


def test_a_bedrock_default_builds_the_providers_engine_once_at_the_first_task():
    factory = CountingFactory()
    registry = EngineRegistry(
        policy=ProviderPolicy(defaults={"quiz": "bedrock"}, models={"quiz": "test-model"}),
        providers={"bedrock": factory},
    )
    router = registry.get("quiz")
    assert factory.calls == []  # getting the router builds nothing

    first = router.generate(QUIZ, ProgressLog())
    second = registry.get("quiz").generate({**QUIZ, "provider": "bedrock"}, ProgressLog())

    assert factory.calls == [("quiz", "test-model")]
    (engine,) = factory.built
    assert first.summary == second.summary == {"by": "quiz by test-model"}
    assert len(engine.ran) == 2


def test_a_provider_no_task_asks_for_is_never_built():
    factory = CountingFactory()
    registry = EngineRegistry(
        policy=ProviderPolicy(models={"quiz": "test-model", "video": "v"}, allow_override=True),
        providers={"bedrock": factory},
    )

    for task_type in TaskType:
        registry.get(task_type)
    registry.get("quiz").generate(QUIZ, ProgressLog())

    assert factory.calls == []


def test_the_builtin_registry_with_the_default_policy_never_needs_a_factory():
    registry = EngineRegistry()

    artifact = registry.get("quiz").generate({**QUIZ, "provider": "builtin"}, ProgressLog())

    assert artifact.summary["produced_questions"] == 3


def test_a_generated_engine_registered_as_the_provider_writes_the_models_quiz():
    registry = EngineRegistry(policy=ProviderPolicy(defaults={"quiz": "bedrock"}, models={"quiz": "test-model"}))
    registry.register(GeneratedQuizEngine(ScriptedGenerator(quiz_document())), provider="bedrock")

    artifact = registry.get("quiz").generate(
        {"story_prompt": TEXT, "difficulty": "medium", "num_questions": 3}, ProgressLog()
    )

    assert (artifact.summary["provider"], artifact.summary["model_id"]) == ("bedrock", "test-model")
    assert json.loads(artifact.file("quiz.json").body)["title"] == "Photosynthesis quiz"


# ------------------------------------------------------------------ the process-wide registry from settings
def test_the_default_registry_takes_the_deployments_choice_from_the_settings(monkeypatch):
    for kind in ("DOCUMENTATION", "ANIMATED_LESSON", "VIDEO_SCRIPT"):
        monkeypatch.delenv(f"TASKAPI_{kind}_PROVIDER", raising=False)
        monkeypatch.delenv(f"TASKAPI_{kind}_MODEL_ID", raising=False)
    monkeypatch.setenv("TASKAPI_QUIZ_PROVIDER", "bedrock")
    monkeypatch.setenv("TASKAPI_QUIZ_MODEL_ID", "test-model")
    monkeypatch.setenv("TASKAPI_ALLOW_PROVIDER_OVERRIDE", "false")
    double = DoubleEngine()
    register(double, provider="bedrock")  # default_registry() is built now, from these settings

    artifact = get_engine("quiz").generate(QUIZ, ProgressLog())

    assert artifact.summary == {"by": "double"}
    assert default_registry().policy == ProviderPolicy(
        defaults={"quiz": "bedrock", "documentation": "builtin", "animated_lesson": "builtin", "video": "builtin"},
        models={"quiz": "test-model", "documentation": "", "animated_lesson": "", "video": ""},
        allow_override=False,
    )
    with pytest.raises(EngineError, match="QuizProvider"):
        get_engine("quiz").generate({**QUIZ, "provider": "builtin"}, ProgressLog())

"""The registry: built-ins by default, replaceable one task type at a time, clear errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from taskapi.engines import (
    Artifact,
    ArtifactFile,
    EngineRegistry,
    ProgressCallback,
    default_registry,
    get_engine,
    register,
    reset_engines,
)
from taskapi.engines.quiz import QuizEngine
from taskapi.engines.video import VideoEngine
from taskapi.models.domain import TaskType


class ExternalQuizEngine:
    """Stands in for an HTTP or LLM generator dropped in later."""

    task_type = TaskType.QUIZ

    def generate(self, request_data: Mapping[str, Any], progress: ProgressCallback) -> Artifact:
        progress(50, "Asking the generator")
        return Artifact((ArtifactFile("quiz.json", "application/json", b"{}\n"),), "quiz.json", {})


def test_every_task_type_has_a_builtin_engine():
    assert default_registry().task_types() == sorted(t.value for t in TaskType)
    for task_type in TaskType:
        assert get_engine(task_type).task_type == task_type


def test_lookup_by_plain_string():
    assert get_engine("video").task_type is TaskType.VIDEO
    assert isinstance(default_registry().engine("video"), VideoEngine)


def test_unknown_type_is_a_key_error_that_names_it_and_the_known_ones():
    with pytest.raises(KeyError) as caught:
        get_engine("podcast")

    message = str(caught.value)
    assert "podcast" in message
    assert "quiz" in message


def test_register_replaces_the_engine_for_its_type_and_returns_the_old_one():
    replacement = ExternalQuizEngine()

    previous = register(replacement)

    assert isinstance(previous, QuizEngine)
    assert default_registry().engine(TaskType.QUIZ) is replacement
    assert isinstance(default_registry().engine(TaskType.VIDEO), VideoEngine)


def test_reset_restores_the_builtins():
    register(ExternalQuizEngine())

    reset_engines()

    assert isinstance(default_registry().engine(TaskType.QUIZ), QuizEngine)


def test_registry_instances_are_independent():
    mine = EngineRegistry(engines=[])
    mine.register(ExternalQuizEngine())

    assert mine.task_types() == ["quiz"]
    assert isinstance(default_registry().engine("quiz"), QuizEngine)
    with pytest.raises(KeyError, match="registered: quiz"):
        mine.get(TaskType.VIDEO)


def test_an_empty_registry_says_so():
    with pytest.raises(KeyError, match="registered: none"):
        EngineRegistry(engines=[]).get("quiz")


def test_a_new_task_type_can_be_registered_by_name():
    class PodcastEngine:
        task_type = "podcast"

        def generate(self, request_data, progress):
            return Artifact((ArtifactFile("episode.json", "application/json", b"{}\n"),), "episode.json", {})

    register(PodcastEngine())  # type: ignore[arg-type]

    assert get_engine("podcast").generate({}, lambda p, m: None).primary == "episode.json"


def test_something_that_is_not_an_engine_is_refused():
    with pytest.raises(TypeError):
        register(object())  # type: ignore[arg-type]

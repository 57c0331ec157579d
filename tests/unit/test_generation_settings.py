"""Settings of the generation providers: what template.yaml sets (TASKAPI_*_PROVIDER, *_MODEL_ID, ...)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from taskapi.settings import Settings, generation_model_id, generation_provider

KINDS = ("QUIZ", "DOCUMENTATION", "ANIMATED_LESSON", "VIDEO_SCRIPT")
PROFILE_ID = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


@pytest.fixture(autouse=True)
def _no_generation_environment(monkeypatch):
    """Only what a test sets: nothing of the developer's shell reaches these settings."""
    for kind in KINDS:
        monkeypatch.delenv(f"TASKAPI_{kind}_PROVIDER", raising=False)
        monkeypatch.delenv(f"TASKAPI_{kind}_MODEL_ID", raising=False)
    monkeypatch.delenv("TASKAPI_ALLOW_PROVIDER_OVERRIDE", raising=False)
    monkeypatch.delenv("TASKAPI_GENERATION_TIME_BUDGET_SECONDS", raising=False)


def test_the_defaults_are_the_builtin_engines_without_overrides():
    settings = Settings()
    for task_type in ("quiz", "documentation", "animated_lesson", "video"):
        assert generation_provider(settings, task_type) == "builtin"
        assert generation_model_id(settings, task_type) == ""
    assert settings.allow_provider_override is False
    assert settings.generation_time_budget_seconds == 300


def test_settings_read_the_template_variables(monkeypatch):
    monkeypatch.setenv("TASKAPI_QUIZ_PROVIDER", "bedrock")
    monkeypatch.setenv("TASKAPI_QUIZ_MODEL_ID", PROFILE_ID)
    monkeypatch.setenv("TASKAPI_DOCUMENTATION_MODEL_ID", "anthropic.claude-haiku-4-5-20251001-v1:0")
    monkeypatch.setenv("TASKAPI_ANIMATED_LESSON_PROVIDER", "builtin")
    monkeypatch.setenv("TASKAPI_VIDEO_SCRIPT_PROVIDER", "bedrock")
    monkeypatch.setenv("TASKAPI_VIDEO_SCRIPT_MODEL_ID", "eu.amazon.nova-pro-v1:0")
    monkeypatch.setenv("TASKAPI_ALLOW_PROVIDER_OVERRIDE", "true")  # CloudFormation passes "true"/"false"
    monkeypatch.setenv("TASKAPI_GENERATION_TIME_BUDGET_SECONDS", "120.5")

    settings = Settings()

    assert (settings.quiz_provider, settings.quiz_model_id) == ("bedrock", PROFILE_ID)
    assert (settings.documentation_provider, settings.documentation_model_id) == (
        "builtin",
        "anthropic.claude-haiku-4-5-20251001-v1:0",
    )
    assert settings.animated_lesson_provider == "builtin"
    assert (settings.video_script_provider, settings.video_script_model_id) == ("bedrock", "eu.amazon.nova-pro-v1:0")
    assert settings.allow_provider_override is True
    assert settings.generation_time_budget_seconds == 120.5


def test_video_maps_to_the_video_script_settings(monkeypatch):
    monkeypatch.setenv("TASKAPI_VIDEO_SCRIPT_PROVIDER", "bedrock")
    monkeypatch.setenv("TASKAPI_VIDEO_SCRIPT_MODEL_ID", PROFILE_ID)
    monkeypatch.setenv("TASKAPI_ANIMATED_LESSON_MODEL_ID", "anthropic.other-v1:0")
    settings = Settings()

    assert generation_provider(settings, "video") == "bedrock"
    assert generation_model_id(settings, "video") == PROFILE_ID
    assert generation_provider(settings, "quiz") == "builtin"
    assert generation_model_id(settings, "animated_lesson") == "anthropic.other-v1:0"
    with pytest.raises(ValueError, match="video_script"):
        generation_provider(settings, "video_script")  # the task type is "video"


@pytest.mark.parametrize("kind", KINDS)
def test_a_bedrock_provider_without_its_model_id_is_refused_naming_the_variable(monkeypatch, kind):
    monkeypatch.setenv(f"TASKAPI_{kind}_PROVIDER", "bedrock")
    with pytest.raises(ValidationError, match=f"TASKAPI_{kind}_MODEL_ID"):
        Settings()

    monkeypatch.setenv(f"TASKAPI_{kind}_MODEL_ID", PROFILE_ID)
    assert Settings()  # with its model id it is fine


def test_a_builtin_provider_needs_no_model_id_and_unknown_providers_are_refused(monkeypatch):
    monkeypatch.setenv("TASKAPI_QUIZ_PROVIDER", "builtin")
    assert Settings().quiz_model_id == ""
    monkeypatch.setenv("TASKAPI_QUIZ_PROVIDER", "openai")
    with pytest.raises(ValidationError, match="quiz_provider"):
        Settings()


@pytest.mark.parametrize("seconds", ["0", "-1", "841"])
def test_the_generation_time_budget_stays_within_the_processor_timeout(monkeypatch, seconds):
    monkeypatch.setenv("TASKAPI_GENERATION_TIME_BUDGET_SECONDS", seconds)
    with pytest.raises(ValidationError, match="generation_time_budget_seconds"):
        Settings()

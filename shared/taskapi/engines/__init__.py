"""Content engines: turn a task's request_data into files (quiz, video storyboard, animated-lesson
timeline, documentation). Standard library only, no network, deterministic for a given input.

    engine = get_engine(task.task_type)
    artifact = engine.generate(task.request_data or {}, progress)
"""

from taskapi.engines.base import Artifact, ArtifactFile, ContentEngine, EngineError, ProgressCallback
from taskapi.engines.registry import EngineRegistry, default_registry, get_engine, register, reset_engines

__all__ = [
    "Artifact",
    "ArtifactFile",
    "ContentEngine",
    "EngineError",
    "EngineRegistry",
    "ProgressCallback",
    "default_registry",
    "get_engine",
    "register",
    "reset_engines",
]

"""What every built-in engine promises the processor: valid artifacts, the same bytes for the same
input, progress in (0, 100) that never goes back, callback exceptions that stop the engine, and a
permanent EngineError (never a KeyError or a crash) for input it cannot use.

The video engine narrates with a tone double here (`tone_narrated_video`): eSpeak's samples vary
slightly from run to run, and the promise of identical bytes is about the engine, x264 included."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import taskapi
from taskapi.engines import Artifact, ContentEngine, EngineError, get_engine
from taskapi.models.domain import TaskType
from tests.unit.engines.conftest import PYTHAGORAS, REFERENCE, Cancelled, ProgressLog
from tests.unit.engines.mp4 import top_level_boxes

pytestmark = pytest.mark.usefixtures("tone_narrated_video")

REQUESTS: dict[TaskType, dict[str, Any]] = {
    TaskType.QUIZ: {"story_prompt": PYTHAGORAS, "difficulty": "medium"},
    TaskType.VIDEO: {"story_prompt": REFERENCE, "segments": 4, "include_subtitles": True, "resolution": "320*180"},
    TaskType.ANIMATED_LESSON: {"story_prompt": PYTHAGORAS},
    TaskType.DOCUMENTATION: {"story_prompt": PYTHAGORAS},
}
PRIMARY = {
    TaskType.QUIZ: "quiz.json",
    TaskType.VIDEO: "video.mp4",
    TaskType.ANIMATED_LESSON: "timeline.json",
    TaskType.DOCUMENTATION: "document.md",
}
MAX_REPORTS = {
    # planning 2, narration <= 8, branding <= 1, rendering <= 8 (+1 when the last step lands exactly),
    # packaging 1: bounded by the stages, not by the segment count.
    TaskType.VIDEO: 20,
}
"""Most progress reports (each a write to the task) for a big job; 15 for the others."""
ALL = pytest.mark.parametrize("task_type", list(TaskType), ids=[t.value for t in TaskType])


def generate(task_type: TaskType, request_data: dict[str, Any] | None = None, progress=None) -> Artifact:
    data = REQUESTS[task_type] if request_data is None else request_data
    return get_engine(task_type).generate(data, progress or ProgressLog())


@ALL
def test_builtin_engine_satisfies_the_protocol(task_type):
    engine = get_engine(task_type)

    assert isinstance(engine, ContentEngine)
    assert engine.task_type == task_type


@ALL
def test_artifact_names_its_primary_file_and_a_json_summary(task_type):
    artifact = generate(task_type)

    assert artifact.primary == PRIMARY[task_type]
    assert artifact.primary_file.body
    assert json.loads(json.dumps(artifact.summary)) == artifact.summary


@ALL
def test_every_file_is_utf8_text_or_an_mp4_and_json_files_parse(task_type):
    for file in generate(task_type).files:
        if file.content_type.startswith("video/"):
            assert file.name.endswith(".mp4")
            assert top_level_boxes(file.body)[0] == "ftyp", "an ISO-BMFF file opens with its ftyp box"
            continue
        text = file.body.decode("utf-8")
        if file.content_type == "application/json":
            json.loads(text)
        assert text.endswith("\n")


@ALL
def test_same_input_gives_identical_bytes(task_type):
    first, second = generate(task_type), generate(task_type)

    assert [(f.name, f.content_type, f.body) for f in first.files] == [
        (f.name, f.content_type, f.body) for f in second.files
    ]
    assert first.summary == second.summary


@ALL
def test_request_data_is_not_modified(task_type):
    data = json.loads(json.dumps(REQUESTS[task_type]))

    generate(task_type, data)

    assert data == REQUESTS[task_type]


@ALL
def test_progress_rises_strictly_inside_0_to_100(task_type):
    progress = ProgressLog()

    generate(task_type, progress=progress)

    assert len(progress.calls) >= 3
    assert all(0 < p < 100 for p in progress.percents)
    assert progress.percents == sorted(set(progress.percents))
    assert all(message.strip() for _, message in progress.calls)


@ALL
def test_progress_is_reported_a_handful_of_times_even_for_big_jobs(task_type):
    big = dict(REQUESTS[task_type], story_prompt=" ".join([PYTHAGORAS] * 20))
    if task_type == TaskType.VIDEO:
        big["segments"] = 50
    if task_type == TaskType.QUIZ:
        big["num_questions"] = 50
    progress = ProgressLog()

    generate(task_type, big, progress)

    assert len(progress.calls) <= MAX_REPORTS.get(task_type, 15), progress.calls


@ALL
def test_an_exception_from_the_progress_callback_propagates_and_stops_the_engine(task_type):
    calls = len(_calls_of(task_type))
    for raise_on in range(calls):
        progress = ProgressLog(raise_on=raise_on)

        with pytest.raises(Cancelled):
            generate(task_type, progress=progress)

        assert len(progress.calls) == raise_on + 1


def _calls_of(task_type: TaskType) -> list[tuple[float, str]]:
    progress = ProgressLog()
    generate(task_type, progress=progress)
    return progress.calls


@ALL
@pytest.mark.parametrize(
    "request_data",
    [None, "a prompt", {}, {"story_prompt": ""}, {"story_prompt": "   "}, {"story_prompt": 42}],
    ids=["none", "string", "empty", "blank-prompt", "spaces-prompt", "number-prompt"],
)
def test_unusable_request_data_is_a_permanent_engine_error(task_type, request_data):
    with pytest.raises(EngineError) as caught:
        get_engine(task_type).generate(request_data, ProgressLog())  # type: ignore[arg-type]

    assert caught.value.permanent is True


@ALL
def test_validation_error_names_the_field_without_echoing_the_prompt(task_type):
    secret = "a confidential sentence that must not be echoed back " * 3
    data = {"story_prompt": secret, "language": 7}

    with pytest.raises(EngineError) as caught:
        get_engine(task_type).generate(data, ProgressLog())

    assert "language" in str(caught.value)
    assert "confidential" not in str(caught.value)


@ALL
def test_unknown_extra_keys_are_ignored(task_type):
    data = dict(REQUESTS[task_type], content="legacy field", audience="grade 5")

    assert generate(task_type, data).files == generate(task_type).files


@ALL
def test_no_progress_is_reported_before_the_input_is_validated(task_type):
    progress = ProgressLog()

    with pytest.raises(EngineError):
        get_engine(task_type).generate({}, progress)

    assert progress.calls == []


_DIGESTS = """
import hashlib, json, sys
from taskapi.engines import get_engine, register
from taskapi.engines.video import VideoEngine
from tests.unit.engines.doubles import ToneNarrator
register(VideoEngine(voice=ToneNarrator(seconds_per_word=0.05)))
requests = json.loads(sys.stdin.read())
out = {}
for task_type, data in requests.items():
    artifact = get_engine(task_type).generate(data, lambda p, m: None)
    out[task_type] = [f.name + ":" + hashlib.sha256(f.body).hexdigest() for f in artifact.files]
print(json.dumps(out, sort_keys=True))
"""


def test_output_does_not_depend_on_the_string_hash_seed():
    """Set iteration order changes with PYTHONHASHSEED; two processes must still agree byte for byte."""
    requests = {t.value: d for t, d in REQUESTS.items()}
    shared = Path(taskapi.__file__).resolve().parent.parent
    path = os.pathsep.join([str(shared), str(shared.parent)])  # taskapi, and the tests' doubles
    digests = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": path}
        done = subprocess.run(
            [sys.executable, "-c", _DIGESTS],
            input=json.dumps(requests),
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=60,
        )
        digests.append(done.stdout)

    assert digests[0] == digests[1]
    here = {t.value: [f"{f.name}:{hashlib.sha256(f.body).hexdigest()}" for f in generate(t).files] for t in REQUESTS}
    assert json.loads(digests[0]) == here

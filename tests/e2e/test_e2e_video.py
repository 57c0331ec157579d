"""A video task on the local stack, as its user meets it: the result_url downloads a narrated MP4
a browser plays (probed with PyAV), with its manifest and subtitles beside it in S3; a logo served
by the test (over http from loopback, which the local stack allows) shows in the picture's top right
corner; a logo URL pointing at the cloud metadata address fails the task at once, naming the URL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.support import FINAL, PROMPT, MediaServer, create, messages, result_file, wait_for_status
from tests.support.media import logo_area, logo_pixels, picture_at, probe_mp4

pytestmark = pytest.mark.e2e

REQUEST: dict[str, Any] = {"story_prompt": PROMPT, "segments": 2, "resolution": "640*360", "include_subtitles": True}
METADATA_LOGO = "https://169.254.169.254/logo.png"


@pytest.fixture(scope="module")
def headers(create_api_key: Callable[[str], str]) -> dict[str, str]:
    return {"X-API-Key": create_api_key("video")}


@pytest.fixture(scope="module")
def videos(client: httpx.Client, headers: dict[str, str], media_server: MediaServer) -> dict[str, dict[str, Any]]:
    """Three video tasks processed to a final state: one with subtitles, one with the test's logo,
    one whose logo is at the cloud metadata address."""
    logos = {"plain": None, "branded": media_server.url("logo.png"), "metadata_logo": METADATA_LOGO}
    bodies = [
        {"task_id": task_id, "task_type": "video", "request_data": {**REQUEST, **({"logo_url": logo} if logo else {})}}
        for task_id, logo in logos.items()
    ]
    create(client, headers, *bodies)
    return wait_for_status(client, headers, [b["task_id"] for b in bodies], statuses=FINAL)


@pytest.fixture(scope="module")
def downloads(videos: dict[str, dict[str, Any]]) -> dict[str, bytes]:
    """The completed videos, downloaded through their result_url as a browser would."""
    bodies = {}
    for task_id in ("plain", "branded"):
        assert videos[task_id]["status"] == "COMPLETED", videos[task_id]["error_message"]
        response = httpx.get(videos[task_id]["result_url"], timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "video/mp4"
        bodies[task_id] = response.content
    return bodies


def test_a_video_task_downloads_a_narrated_mp4_at_the_requested_resolution(
    stack: Any, videos: dict[str, dict[str, Any]], downloads: dict[str, bytes]
) -> None:
    task, body = videos["plain"], downloads["plain"]
    manifest = json.loads(result_file(stack.aws_endpoint, task["result_url"], "manifest.json"))

    video = probe_mp4(body)

    assert httpx.URL(task["result_url"]).path.endswith("/video.mp4")
    assert (video.video_codec, video.width, video.height) == ("h264", 640, 360)
    assert video.audio_codec == "aac"
    assert video.audio_rms > 0.01  # narration one hears, not silence
    assert video.duration_seconds == pytest.approx(manifest["total_duration_seconds"], rel=0.01)
    assert manifest["narration_duration_ms"] / 1000 == pytest.approx(video.duration_seconds, rel=0.01)
    assert (manifest["version"], manifest["segment_count"]) == (2, REQUEST["segments"])
    assert manifest["size_bytes"] == len(body)
    summary = task["result_summary"]
    assert (summary["resolution"], summary["segments"], summary["narration"]) == ("640*360", 2, "espeak")
    assert (summary["duration_seconds"], summary["size_bytes"]) == (manifest["total_duration_seconds"], len(body))
    assert task["progress"] == 100
    assert messages(task)[-1] == "Task completed"


def test_with_include_subtitles_the_vtt_is_beside_the_video_on_its_timeline(
    stack: Any, videos: dict[str, dict[str, Any]], downloads: dict[str, bytes]
) -> None:
    task = videos["plain"]
    manifest = json.loads(result_file(stack.aws_endpoint, task["result_url"], "manifest.json"))

    vtt = result_file(stack.aws_endpoint, task["result_url"], "subtitles.vtt").decode()

    assert manifest["files"] == {"video": "video.mp4", "storyboard": "storyboard.json", "subtitles": "subtitles.vtt"}
    assert sorted(task["result_summary"]["files"]) == sorted([*manifest["files"].values(), "manifest.json"])
    assert vtt.startswith("WEBVTT\n\n")
    timings = [line.split(" --> ") for line in vtt.splitlines() if " --> " in line]
    assert len(timings) >= REQUEST["segments"]
    *_, (_, last_end) = timings
    hours, minutes, seconds = last_end.split(":")
    ends_at = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    duration = probe_mp4(downloads["plain"]).duration_seconds
    assert duration - 1.0 < ends_at <= duration + 0.001  # the last words end with the video (VTT counts in ms)
    spoken = " ".join(segment["narration"] for segment in manifest["segments"]).split()
    assert spoken[0] in vtt
    assert spoken[-1].rstrip(".") in vtt


def test_a_logo_served_over_loopback_shows_in_the_top_right_corner(
    stack: Any, videos: dict[str, dict[str, Any]], downloads: dict[str, bytes], media_server: MediaServer
) -> None:
    task = videos["branded"]
    manifest = json.loads(result_file(stack.aws_endpoint, task["result_url"], "manifest.json"))

    branded = picture_at(downloads["branded"], 1.0)
    plain = picture_at(downloads["plain"], 1.0)

    assert manifest["logo_url"] == media_server.url("logo.png")
    assert media_server.fetches("logo.png") >= 1
    corner, elsewhere = logo_pixels(branded)
    assert corner > 0.5 * logo_area(branded.height), f"{corner} logo-coloured pixels of {logo_area(branded.height)}"
    assert elsewhere < 0.1 * corner
    assert logo_pixels(plain)[0] == 0  # the same video without a logo: nothing of its colour there


def test_a_logo_at_the_metadata_address_fails_the_task_at_once_naming_the_url_and_why(
    videos: dict[str, dict[str, Any]],
) -> None:
    task = videos["metadata_logo"]

    assert task["status"] == "FAILED"
    assert task["result_url"] is None
    assert METADATA_LOGO in task["error_message"]
    assert "cloud metadata address" in task["error_message"]
    assert task["error_details"]["permanent"] is True
    assert task["error_details"]["tries"] == 1
    events = messages(task)
    assert sum(1 for e in events if e.startswith("Processing started")) == 1  # no retry
    assert not any(e.startswith("Try ") for e in events)
    assert events[-1] == f"Task failed (cannot succeed): {task['error_message']}"

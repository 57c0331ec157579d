"""Video render speed and memory (make bench): a 50-segment video with ~6 s of synthetic narration per
segment (5 minutes), subtitles burned in, a logo, at 720p and at 1080p.

Each render runs in a process of its own (this file run as a module), warmed up by a one-scene
render first (imports, x264, the font), so that its figures are the render's own:

- seconds of wall time per minute of video;
- the peak resident set during the render (/proc/self/status VmHWM, reset to the current RSS with
  /proc/self/clear_refs right before it: what Lambda reports as Max Memory Used for a warm
  invocation), and its growth over the resident set before the render.

The narration is a tone with a little noise (the providers are benchmarked apart); 50 scenes hold
their PCM at once, as the processor will. This machine's speed is not Lambda's: on the processor's
arm64 vCPU share expect it slower, so the targets leave room.

    python -m tests.perf.test_render_speed RESULT_JSON --resolution 1280*720 [--segments 50 --seconds 6]
"""

from __future__ import annotations

import argparse
import array
import io
import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.perf.procfs import reset_peak, status_kib
from tests.perf.support import REPO_ROOT, Figure, Recorder

SEGMENTS = 50
SECONDS_PER_SEGMENT = 6.0
NARRATION_RATE = 24_000
"""Polly's PCM rate."""
CHILD_SECONDS = 900
PROCESSOR_TIMEOUT = 900
PROCESSOR_MEMORY_MIB = 1024
TARGET_RENDER_SECONDS = PROCESSOR_TIMEOUT / 2
"""The 5-minute video within half the processor's timeout, the other half left for narration,
downloads and the upload."""
REPRODUCE = ".venv/bin/pytest tests/perf/test_render_speed.py -q -s -k {}"
WORDS = [
    *("triangle", "angle", "hypotenuse", "square", "theorem", "side", "length", "proof", "builder"),
    *("surveyor", "corner", "foundation", "ancient", "Greek", "number", "geometry", "measure"),
    *("distance", "area", "sum", "equal", "right"),
]


# ------------------------------------------------------------------ the child


def narration(seconds: float, seed: int) -> bytes:
    """A tone that changes pitch every half second, with noise: something AAC has to work on."""
    rng = random.Random(seed)
    wave = array.array("h")
    half = NARRATION_RATE // 2
    for _ in range(math.ceil(seconds * 2)):
        frequency = rng.uniform(110, 330)
        step = 2 * math.pi * frequency / NARRATION_RATE
        wave.extend(round(6_000 * math.sin(step * i) + rng.gauss(0, 400)) for i in range(half))
    return wave[: round(seconds * NARRATION_RATE)].tobytes()


def scenes(count: int, seconds: float) -> list[Any]:
    from taskapi.media.render import Audio, Scene

    rng = random.Random(7)
    base = narration(seconds + 1, 1)  # one wave, cut at a different place per scene
    size = round(seconds * NARRATION_RATE) * 2
    built = []
    for number in range(1, count + 1):
        offset = rng.randrange(0, len(base) - size, 2)
        words = [rng.choice(WORDS) for _ in range(max(6, round(seconds * 150 / 60)))]  # 150 words a minute
        built.append(
            Scene(
                title=f"Part {number}: the {words[0]} and the {words[1]}",
                narration=Audio(bytes(base[offset : offset + size]), NARRATION_RATE),
                terms=[words[2], f"{words[3]} {words[4]}", words[5]],
                text=" ".join(words).capitalize() + ".",
            )
        )
    return built


def logo_png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (400, 200), (0, 0, 0, 0))
    ImageDraw.Draw(image).rounded_rectangle((0, 0, 399, 199), radius=40, fill=(250, 200, 40, 230))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.test_render_speed")
    parser.add_argument("result", type=Path)
    parser.add_argument("--resolution", default="1920*1080")
    parser.add_argument("--segments", type=int, default=SEGMENTS)
    parser.add_argument("--seconds", type=float, default=SECONDS_PER_SEGMENT)
    args = parser.parse_args(argv)

    from taskapi.media.render import RenderOptions, render

    options = RenderOptions.from_resolution(
        args.resolution, image_style="cartoon", theme="ocean", include_subtitles=True, logo=logo_png()
    )
    output = args.result.with_suffix(".mp4")
    render(scenes(1, 1.0), options, output)  # warm: imports, the encoders, the font sizes
    video = scenes(args.segments, args.seconds)

    peak_reset = reset_peak()
    rss_before = status_kib("VmRSS")
    started = time.perf_counter()
    result = render(video, options, output)
    seconds = time.perf_counter() - started
    args.result.write_text(
        json.dumps(
            {
                "seconds": seconds,
                "duration_seconds": result.duration_seconds,
                "frames_encoded": result.frames_encoded,
                "size_bytes": result.size_bytes,
                "rss_before_kib": rss_before,
                "hwm_kib": status_kib("VmHWM") if peak_reset else None,
            }
        )
    )
    output.unlink()
    return 0


# ------------------------------------------------------------------ the benchmark


@pytest.mark.timeout(CHILD_SECONDS + 60)
@pytest.mark.parametrize(("label", "resolution"), [("720p", "1280*720"), ("1080p", "1920*1080")])
def test_render_speed_and_memory(tmp_path: Path, bench: Recorder, label: str, resolution: str) -> None:
    result_path = tmp_path / f"render-{label}.json"
    command = [sys.executable, "-m", "tests.perf.test_render_speed", str(result_path), "--resolution", resolution]
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=CHILD_SECONDS, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    measured = json.loads(result_path.read_text())

    minutes = measured["duration_seconds"] / 60
    expected = SEGMENTS * SECONDS_PER_SEGMENT
    assert measured["duration_seconds"] == pytest.approx(expected, rel=0.01)
    assert measured["hwm_kib"] is not None, "no /proc/self/status VmHWM on this system"
    name = f"render.video_{label}_{SEGMENTS}x{SECONDS_PER_SEGMENT:g}s"
    reproduce = REPRODUCE.format(label)
    what = (
        f"{SEGMENTS} scenes x {SECONDS_PER_SEGMENT:g} s ({minutes:.1f} min) at {resolution.replace('*', 'x')}, "
        f"subtitles and logo, {measured['frames_encoded']} frames, {measured['size_bytes'] / 1e6:.1f} MB"
    )
    bench.record(
        Figure(
            f"{name}.seconds_per_minute",
            round(measured["seconds"] / minutes, 2),
            "s/min",
            note=f"render wall time per minute of video; {what}; reproduce: {reproduce}",
        )
    )
    bench.record(
        Figure(
            f"{name}.render_seconds",
            round(measured["seconds"], 1),
            "s",
            target=TARGET_RENDER_SECONDS,
            note=f"half the processor's {PROCESSOR_TIMEOUT} s timeout; {what}; reproduce: {reproduce}",
        )
    )
    bench.record(
        Figure(
            f"{name}.peak_rss_mib",
            round(measured["hwm_kib"] / 1024, 1),
            "MiB",
            target=PROCESSOR_MEMORY_MIB,
            note=f"VmHWM during the render (the processor has {PROCESSOR_MEMORY_MIB} MB), "
            f"{measured['rss_before_kib'] / 1024:.1f} MiB resident before it; reproduce: {reproduce}",
        )
    )
    bench.record(
        Figure(
            f"{name}.peak_rss_growth_mib",
            round((measured["hwm_kib"] - measured["rss_before_kib"]) / 1024, 1),
            "MiB",
            note=f"peak RSS minus RSS before the render (scenes and their PCM already built); reproduce: {reproduce}",
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())

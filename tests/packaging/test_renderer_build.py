"""The video renderer as `sam build` packaged it: in a clean interpreter that sees only the
processor's build directory, its layers and the standard library, PyAV (FFmpeg with libx264) and
Pillow load from the build and render a real MP4 — a wheel for the wrong platform, or a renderer
dependency left out of functions/processor/requirements.txt, fails here rather than on the first
video task in AWS."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.packaging.sam_build import Build, function_layer_ids, function_setting, source_template
from tests.packaging.test_handlers import interpreter_for

PROCESSOR = "ProcessorFunction"

SCRIPT = """
import json, sys
sys.path[:0] = json.loads(sys.argv[1])
import av
from taskapi.media.render import Audio, RenderOptions, Scene, render

# one second of a square wave at 400 Hz as the narration
samples = b"".join(((1000 if (n // 20) % 2 else -1000) & 0xFFFF).to_bytes(2, "little") for n in range(16000))
result = render(
    [Scene(title="Packaged", narration=Audio(samples, 16000), terms=["build"])],
    RenderOptions(width=160, height=90, include_subtitles=True),
    __import__("pathlib").Path(sys.argv[2]),
)
with av.open(sys.argv[2]) as container:
    streams = sorted(stream.codec_context.name for stream in container.streams)
print(json.dumps({
    "av_file": av.__file__,
    "streams": streams,
    "duration": result.duration_seconds,
    "size": result.size_bytes,
}))
"""


def test_the_processor_build_renders_an_mp4_with_its_own_pyav_and_pillow(build: Build, tmp_path: Path):
    template = source_template()
    runtime = function_setting(template, PROCESSOR, "Runtime")
    paths = [build.artifact_dir(PROCESSOR)]
    for layer_id in function_layer_ids(template, PROCESSOR):
        paths += build.layer_python_paths(layer_id, runtime)
    out = tmp_path / "packaged.mp4"

    completed = subprocess.run(
        [interpreter_for(runtime), "-I", "-S", "-B", "-c", SCRIPT, json.dumps([str(p) for p in paths]), str(out)],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert Path(result["av_file"]).is_relative_to(build.root), result["av_file"]
    assert result["streams"] == ["aac", "h264"]
    assert abs(result["duration"] - 1.0) < 0.05
    assert out.read_bytes()[4:8] == b"ftyp"

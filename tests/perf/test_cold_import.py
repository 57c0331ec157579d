"""Cold import of the API handler module (functions/api/app.py, which builds the FastAPI app at
import) in a fresh interpreter, as a ratio to a hello-world handler measured in the same run
(tests/perf/hello_handler/app.py: fastapi + mangum, one route, a boto3 DynamoDB client).

Timing, so nothing here fails on the ratio: it is printed and recorded with passed true/false.
The import-time breakdown (python -X importtime) names what the handler imports beyond the
baseline, so a missed target comes with its suspects.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from infra.template import function_environment
from tests.perf.support import REPO_ROOT, Figure, Recorder

RUNS = 15
WARMUP = 2
TARGET_RATIO = 1.3
HANDLER_PATH = (REPO_ROOT / "functions" / "api", REPO_ROOT / "shared")
"""What Lambda puts on sys.path: the function's code, then the layer (here, the layer's source)."""
BASELINE_PATH = (Path(__file__).resolve().parent / "hello_handler",)
FIRST_PARTY = ("app", "taskapi")
# Prints the import's own duration; the parent measures the whole process.
PROBE = "import time; started = time.perf_counter(); import app; print(time.perf_counter() - started)"


def _environment(path: tuple[Path, ...]) -> dict[str, str]:
    """The API function's variables from template.yaml, dummy credentials, no shared AWS files."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(str(p) for p in path),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        **function_environment("ApiFunction"),
    }


@dataclass
class Module:
    label: str
    path: tuple[Path, ...]
    wall: list[float] = field(default_factory=list)
    imports: list[float] = field(default_factory=list)

    def run(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            env=_environment(self.path),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )

    def measure(self, cwd: Path) -> None:
        started = time.perf_counter()
        answer = self.run("-c", PROBE, cwd=cwd)
        self.wall.append(time.perf_counter() - started)
        self.imports.append(float(answer.stdout.strip().splitlines()[-1]))

    def import_tree(self, cwd: Path) -> list[ImportNode]:
        return parse_importtime(self.run("-X", "importtime", "-c", "import app", cwd=cwd).stderr)


@dataclass
class ImportNode:
    name: str
    depth: int
    cumulative_us: int
    parent: ImportNode | None = None
    children: list[ImportNode] = field(default_factory=list)

    @property
    def top(self) -> str:
        return self.name.split(".")[0]


def parse_importtime(stderr: str) -> list[ImportNode]:
    """Every node of `-X importtime` output, with parents. The output is post-order: a module's
    line follows its children's, which are indented one level (two spaces) deeper."""
    nodes: list[ImportNode] = []
    pending: list[ImportNode] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part for part in line.removeprefix("import time:").split("|"))
        depth = (len(name) - len(name.lstrip(" "))) // 2
        node = ImportNode(name=name.strip(), depth=depth, cumulative_us=int(cumulative))
        while pending and pending[-1].depth > depth:
            child = pending.pop()
            child.parent = node
            node.children.insert(0, child)
        pending.append(node)
        nodes.append(node)
    return nodes


def offenders(handler: list[ImportNode], baseline: list[ImportNode]) -> list[tuple[ImportNode, str]]:
    """Third-party imports the handler makes and the baseline does not, at the point where our code
    (or an import both share) pulls them in, heaviest first; each with who imported it."""
    shared = {node.name for node in baseline}
    found = []
    for node in handler:
        if node.name in shared or node.top in FIRST_PARTY:
            continue
        parent = node.parent
        if parent is None or parent.top in FIRST_PARTY or parent.name in shared:
            found.append((node, parent.name if parent else "(top level)"))
    return sorted(found, key=lambda pair: pair[0].cumulative_us, reverse=True)


def first_party(handler: list[ImportNode]) -> list[ImportNode]:
    """Our own modules, by cumulative time, the outermost ones first."""
    ours = [n for n in handler if n.top in FIRST_PARTY and (n.parent is None or n.parent.top not in FIRST_PARTY)]
    return sorted(ours, key=lambda n: n.cumulative_us, reverse=True)


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> tuple[Module, Module, Path]:
    cwd = tmp_path_factory.mktemp("cold-import")  # not the repository: nothing shadows `app`
    handler = Module("api handler (functions/api/app.py)", HANDLER_PATH)
    baseline = Module("hello-world baseline", BASELINE_PATH)
    for module, expected in ((handler, HANDLER_PATH[0]), (baseline, BASELINE_PATH[0])):
        where = module.run("-c", "import app; assert callable(app.handler); print(app.__file__)", cwd=cwd)
        assert Path(where.stdout.strip()).parent == expected, where.stdout
        for _ in range(WARMUP):  # bytecode caches written, files in the page cache
            module.measure(cwd)
        module.wall.clear()
        module.imports.clear()
    for _ in range(RUNS):  # alternating, so that drift on the machine touches both alike
        handler.measure(cwd)
        baseline.measure(cwd)
    return handler, baseline, cwd


def test_cold_import_ratio(measured, bench: Recorder) -> None:
    handler, baseline, cwd = measured
    handler_ms = statistics.median(handler.wall) * 1000
    baseline_ms = statistics.median(baseline.wall) * 1000
    print(f"[bench]      {RUNS} runs each, alternating; medians of the whole process (python -c 'import app')")
    bench.record(Figure("cold_import.api_handler.median_ms", round(handler_ms, 1), "ms", note=handler.label))
    bench.record(Figure("cold_import.hello_baseline.median_ms", round(baseline_ms, 1), "ms", note=baseline.label))
    ratio = bench.record(
        Figure("cold_import.ratio", round(handler_ms / baseline_ms, 3), "x", TARGET_RATIO, note="handler / baseline")
    )
    import_ratio = statistics.median(handler.imports) / statistics.median(baseline.imports)
    bench.record(
        Figure(
            "cold_import.import_only_ratio",
            round(import_ratio, 3),
            "x",
            note=f"`import app` alone, interpreter start-up excluded: {statistics.median(handler.imports) * 1000:.1f} "
            f"vs {statistics.median(baseline.imports) * 1000:.1f} ms",
        )
    )

    tree, base_tree = handler.import_tree(cwd), baseline.import_tree(cwd)
    heading = "above the target: suspects" if not ratio.passed else "within the target; for the record"
    print(f"[bench]      {heading} - imported by the handler, not by the baseline (python -X importtime, one run):")
    for node, via in offenders(tree, base_tree)[:10]:
        print(f"[bench]        {node.cumulative_us / 1000:8.1f} ms cumulative  {node.name:<40} imported by {via}")
    print("[bench]      our own modules (cumulative, third-party imports included):")
    for node in first_party(tree)[:3]:
        print(f"[bench]        {node.cumulative_us / 1000:8.1f} ms cumulative  {node.name}")
    assert handler.wall
    assert baseline.wall

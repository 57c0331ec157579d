"""How shared/taskapi hangs together: no import cycles, and a client that loads no AWS code.

Import cycles are judged on what runs at import time: the imports of a module's body, including
those under a module-level `if`, `try` or `with` and in class bodies, but not those inside
functions (a lazy import runs when the function is called, after every module involved has
finished loading, so it cannot meet a half-initialised module) nor under `if TYPE_CHECKING:`
(never run). `from package import name` is an edge to `package.name` when that is a module, to
`package` otherwise. The implicit import of a module's parent packages is not an edge: Python has
them in sys.modules, initialised or under way, before the module's body runs, and only an
explicit `from package import name` can find a name the package has not defined yet."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import taskapi

SHARED = Path(taskapi.__file__).resolve().parent.parent
ROOT_PACKAGE = "taskapi"


def module_names(root: Path, package: str = ROOT_PACKAGE) -> dict[str, Path]:
    """Every module of the package below `root`, by dotted name (a package by its __init__)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_nodes(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _import_time_nodes(node.body)
            yield from _import_time_nodes(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                yield from _import_time_nodes(block)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _import_time_nodes(node.body)


def import_graph(root: Path, package: str = ROOT_PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports at import time (see the module docstring)."""
    modules = module_names(root, package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        own_package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _import_time_nodes(ast.parse(path.read_text(), filename=str(path)).body):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = own_package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                candidates = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for candidate in candidates:
                while candidate and candidate not in modules:  # `import taskapi.x.y` of a name in x
                    candidate = candidate.rpartition(".")[0]
                if candidate:
                    targets.add(candidate)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one, as [a, b, ..., a]."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan; the graph is a few hundred modules, recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself (breadth first)."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node] & component):
            if target == start:
                return [*paths[node], start]
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    raise AssertionError(f"no cycle through {start}")  # a strongly connected component always has one


def test_shared_taskapi_has_no_import_cycles():
    graph = import_graph(SHARED)
    assert "taskapi.cli" in graph, "the walk found the package"
    assert graph["taskapi.client"], "and its imports"

    found = [" -> ".join(cycle) for cycle in cycles(graph)]

    assert found == [], "import cycles (module-level imports):\n" + "\n".join(found)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_cycle_check_sees_module_level_cycles_and_ignores_lazy_imports(tmp_path):
    _write(
        tmp_path,
        {
            "taskapi/__init__.py": "",
            "taskapi/a.py": "from taskapi import b\n",
            "taskapi/b.py": "def later():\n    from taskapi import a\n",
            "taskapi/sub/__init__.py": "from .c import C\n",
            "taskapi/sub/c.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from taskapi import a\n"
                "try:\n    from ..sub import d\nexcept ImportError:\n    pass\nC = 1\n"
            ),
            "taskapi/sub/d.py": "import taskapi.sub.c\n",
        },
    )

    graph = import_graph(tmp_path)

    assert graph["taskapi.a"] == {"taskapi.b"}
    assert graph["taskapi.b"] == set(), "an import inside a function is lazy"
    assert graph["taskapi.sub"] == {"taskapi.sub.c"}
    assert graph["taskapi.sub.c"] == {"taskapi.sub.d"}, "TYPE_CHECKING imports never run; relative ones resolve"
    assert cycles(graph) == [["taskapi.sub.c", "taskapi.sub.d", "taskapi.sub.c"]]


# ------------------------------------------------------------------ the client extra

CLIENT_MODULES = (
    "taskapi.client",
    "taskapi.client.cli",
    "taskapi.client.cli.submit",
    "taskapi.client.cli.watch",
    "taskapi.client.cli.cancel",
    "taskapi.client.cli.regenerate",
    "taskapi.client.cli.tasks",
    "taskapi.client.cli.webhooks",
    "taskapi.client.cli.listen",
    "taskapi.client.cli.receiver",
    "taskapi.client.webhooks",
)
SERVER_ONLY = ("boto3", "botocore", "aws_lambda_powertools", "taskapi.store")

_LOADED = """
import json, sys
for name in sys.argv[1:]:
    __import__(name)
print(json.dumps(sorted(sys.modules)))
"""

_HELP = """
import contextlib, io, json, sys
from taskapi.client.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(["submit", "--help"])
print(json.dumps([code, sorted(sys.modules)]))
"""


def _fresh_python(code: str, *args: str) -> object:
    env = {**os.environ, "PYTHONPATH": str(SHARED)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True, timeout=60
    )
    return json.loads(done.stdout)


def _server_only(modules: object) -> list[str]:
    assert isinstance(modules, list)
    return [m for m in modules if any(m == s or m.startswith(f"{s}.") for s in SERVER_ONLY)]


@pytest.mark.parametrize("module", CLIENT_MODULES)
def test_the_client_and_its_commands_load_no_aws_code(module):
    """What `taskapi[client]` promises: httpx, rich and pydantic models, not boto3 or the store."""
    loaded = _fresh_python(_LOADED, module)

    assert module in loaded  # type: ignore[operator]
    assert _server_only(loaded) == []


def test_submit_help_loads_no_aws_code():
    code, loaded = _fresh_python(_HELP)  # type: ignore[misc]

    assert code == 0
    assert _server_only(loaded) == []

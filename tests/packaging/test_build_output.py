"""What `sam build` put into the functions and layers: our code, current and complete; the pinned
runtime dependencies and nothing of the dev toolchain; no tests or caches; within Lambda's size limit."""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.packaging.sam_build import (
    REPO_ROOT,
    Build,
    function_ids,
    function_layer_ids,
    function_setting,
    layer_ids,
    source_template,
)

# Lambda's limit on a function's unzipped code plus all its layers.
LAMBDA_UNZIPPED_LIMIT_BYTES = 262_144_000
# Never part of a deployment package (the Python builder already leaves out most of them; this
# makes sure it stays that way whatever is lying around in the source tree).
JUNK_NAMES = (
    "__pycache__",
    "*.pyc",
    "*.egg-info",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    ".coverage",
    ".venv",
    "tests",
    "test",
    "conftest.py",
    "test_*.py",
    "*_test.py",
)


def is_junk(relative: Path) -> bool:
    return any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in JUNK_NAMES)


def source_files(root: Path) -> Iterator[Path]:
    """Files under root, relative to it, that a build should carry."""
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not is_junk(relative):
            yield relative


def source_dir(logical_id: str) -> Path:
    properties = source_template()["Resources"][logical_id]["Properties"]
    return REPO_ROOT / str(properties.get("CodeUri") or properties.get("ContentUri"))


def source_packages(layer_id: str) -> list[str]:
    """Top-level Python packages in a layer's source directory (e.g. shared/taskapi)."""
    root = source_dir(layer_id)
    return sorted(
        child.name for child in root.iterdir() if (child / "__init__.py").is_file() and not is_junk(Path(child.name))
    )


def installed_distributions(site: Path) -> dict[str, tuple[str, set[str]]]:
    """canonical name -> (version, canonical names it requires) for each *.dist-info in site."""
    found = {}
    for metadata in site.glob("*.dist-info/METADATA"):
        name = version = ""
        requires: set[str] = set()
        for line in metadata.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                break  # the headers end at the first blank line; the description follows
            key, _, value = line.partition(":")
            if key == "Name":
                name = value.strip()
            elif key == "Version":
                version = value.strip()
            elif key == "Requires-Dist":
                requires.add(canonicalize_name(Requirement(value.strip()).name))
        found[canonicalize_name(name)] = (version, requires)
    return found


def read_requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def dev_requirements() -> list[Requirement]:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return [Requirement(spec) for spec in pyproject["project"]["optional-dependencies"]["dev"]]


def tree_size(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())


@pytest.fixture(params=layer_ids())
def layer_id(request: pytest.FixtureRequest) -> str:
    return request.param


def test_layer_carries_its_source_packages_unchanged(build: Build, layer_id: str):
    built_python = build.artifact_dir(layer_id) / "python"
    packages = source_packages(layer_id)
    assert packages, f"{layer_id}'s source {source_dir(layer_id)} holds no Python package"
    for package in packages:
        source, built = source_dir(layer_id) / package, built_python / package
        expected = set(source_files(source))
        actual = {path.relative_to(built) for path in built.rglob("*") if path.is_file()}
        assert not expected - actual, f"missing from {built} (stale build? `make build`): {sorted(expected - actual)}"
        assert not actual - expected, f"not in {source} but in {built}: {sorted(actual - expected)}"
        changed = [str(p) for p in sorted(expected) if (source / p).read_bytes() != (built / p).read_bytes()]
        assert not changed, f"{built} differs from {source} (stale build? `make build`): {changed}"


def test_layer_holds_no_tests_caches_or_project_metadata(build: Build, layer_id: str):
    built_python = build.artifact_dir(layer_id) / "python"
    junk = [str(path.relative_to(built_python)) for path in built_python.iterdir() if is_junk(Path(path.name))]
    for package in source_packages(layer_id):
        junk += [
            str(path.relative_to(built_python))
            for path in (built_python / package).rglob("*")
            if is_junk(path.relative_to(built_python))
        ]
    project = canonicalize_name(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["name"])
    if project in installed_distributions(built_python):
        junk.append(f"{project} installed as a distribution (the layer carries its source instead)")
    assert not junk, f"{layer_id} carries what it should not: {sorted(junk)}"


def test_layer_installs_exactly_the_pinned_runtime_dependencies(build: Build, layer_id: str):
    built_python = build.artifact_dir(layer_id) / "python"
    installed = installed_distributions(built_python)
    wrong = {}
    for requirement in read_requirements(source_dir(layer_id) / "requirements.txt"):
        name = canonicalize_name(requirement.name)
        version = installed.get(name, ("not installed", set()))[0]
        if not requirement.specifier.contains(version, prereleases=True):
            wrong[name] = f"wanted {requirement.specifier}, layer has {version}"
    assert not wrong, f"{layer_id}: {wrong}"


def test_layer_carries_nothing_of_the_dev_toolchain(build: Build, layer_id: str):
    installed = installed_distributions(build.artifact_dir(layer_id) / "python")
    required_at_runtime = {name for _, requires in installed.values() for name in requires}
    runtime = {canonicalize_name(r.name) for r in read_requirements(source_dir(layer_id) / "requirements.txt")}
    dev_only = {canonicalize_name(r.name) for r in dev_requirements()} - runtime - required_at_runtime
    shipped = sorted(dev_only & installed.keys())
    assert not shipped, f"{layer_id} ships dev-only distributions: {shipped}"


@pytest.mark.parametrize("logical_id", function_ids())
def test_function_build_carries_its_current_source(build: Build, logical_id: str):
    source, built = source_dir(logical_id), build.artifact_dir(logical_id)
    expected = list(source_files(source))
    missing = [str(p) for p in expected if not (built / p).is_file()]
    assert not missing, f"missing from {built} (stale build? `make build`): {missing}"
    changed = [str(p) for p in expected if (source / p).read_bytes() != (built / p).read_bytes()]
    assert not changed, f"{built} differs from {source} (stale build? `make build`): {changed}"
    # Only what came from our source: dependencies a function installs itself are not ours to judge.
    ours = {p.parts[0] for p in expected}
    junk = [
        str(p.relative_to(built))
        for p in built.rglob("*")
        if is_junk(p.relative_to(built)) and (p.relative_to(built).parts[0] in ours or p.parent == built)
    ]
    assert not junk, f"{logical_id} carries tests or caches: {junk}"


@pytest.mark.parametrize("logical_id", function_ids())
def test_function_with_its_layers_fits_lambdas_unzipped_size_limit(build: Build, logical_id: str):
    parts = [build.artifact_dir(logical_id)] + [
        build.artifact_dir(layer) for layer in function_layer_ids(source_template(), logical_id)
    ]
    sizes = {part.name: tree_size(part) for part in parts}
    runtime = function_setting(source_template(), logical_id, "Runtime")
    assert sum(sizes.values()) < LAMBDA_UNZIPPED_LIMIT_BYTES, f"{logical_id} ({runtime}) unzipped: {sizes} bytes"

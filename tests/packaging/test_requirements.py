"""The shared layer installs shared/requirements.txt; the dev virtualenv installs pyproject.toml's
[project.dependencies]. Both must name the same packages at the same pinned versions, or tests
pass against versions that Lambda never runs."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.packaging.sam_build import REPO_ROOT

PYPROJECT = REPO_ROOT / "pyproject.toml"
LAYER_REQUIREMENTS = REPO_ROOT / "shared" / "requirements.txt"


def pins(requirements: list[Requirement]) -> dict[str, str]:
    """canonical name -> the requirement as written, normalised (extras sorted, markers kept)."""
    out: dict[str, str] = {}
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name not in out, f"{name} is listed twice"
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        marker = f"; {requirement.marker}" if requirement.marker else ""
        out[name] = f"{name}{extras}{requirement.specifier}{marker}"
    return out


def layer_requirements() -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in LAYER_REQUIREMENTS.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def project_requirements() -> list[Requirement]:
    return [Requirement(spec) for spec in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]]


def test_layer_requirements_equal_project_dependencies():
    layer, project = pins(layer_requirements()), pins(project_requirements())
    assert layer == project, (
        f"shared/requirements.txt and [project.dependencies] differ:\n"
        f"  only in shared/requirements.txt: {sorted(set(layer.items()) - set(project.items()))}\n"
        f"  only in pyproject.toml:          {sorted(set(project.items()) - set(layer.items()))}"
    )


def test_every_runtime_dependency_is_pinned_to_one_version():
    loose = [
        str(requirement)
        for requirement in project_requirements()
        if len(requirement.specifier) != 1 or next(iter(requirement.specifier)).operator != "=="
    ]
    assert not loose, f"pin these with == (the layer must be reproducible): {loose}"

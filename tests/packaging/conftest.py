"""Packaging checks: what `sam build` wrote to .aws-sam/build, read through template.yaml.

They need a build for this machine's architecture (`make build`; `make test` always builds first).
Without one they skip, unless TASKAPI_REQUIRE_BUILD=1 (set by `make test`) makes that a failure.
"""

from __future__ import annotations

import platform
import tomllib

import pytest

from infra.template import load_template
from tests.packaging.sam_build import BUILD_DIR, BUILD_TOML, MACHINE_ARCHITECTURES, REPO_ROOT, Build, fail_or_skip


@pytest.fixture(scope="session")
def build() -> Build:
    if not (BUILD_DIR / "template.yaml").is_file():
        fail_or_skip(f"no sam build output in {BUILD_DIR.relative_to(REPO_ROOT)}: run `make build` first")
    machine = MACHINE_ARCHITECTURES.get(platform.machine(), platform.machine())
    if BUILD_TOML.is_file():
        recorded = tomllib.loads(BUILD_TOML.read_text())
        built_for = {
            definition.get("architecture", "x86_64")
            for section in ("function_build_definitions", "layer_build_definitions")
            for definition in recorded.get(section, {}).values()
        }
        if built_for - {machine}:
            fail_or_skip(
                f"{BUILD_DIR.relative_to(REPO_ROOT)} was built for {', '.join(sorted(built_for))} and this machine "
                f"runs {machine}, so its native wheels cannot be imported here: run `make build`"
            )
    return Build(root=BUILD_DIR, template=load_template(BUILD_DIR / "template.yaml"))

"""Reading `sam build` output (.aws-sam/build) through template.yaml, for the packaging checks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.template import load_template, resources

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_TEMPLATE = REPO_ROOT / "template.yaml"
BUILD_DIR = REPO_ROOT / ".aws-sam" / "build"
# sam build records what it built for next to the build directory.
BUILD_TOML = BUILD_DIR.parent / "build.toml"
MACHINE_ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}

FUNCTION_TYPE = "AWS::Serverless::Function"
LAYER_TYPE = "AWS::Serverless::LayerVersion"


def source_template() -> dict[str, Any]:
    return load_template(SOURCE_TEMPLATE)


def function_ids() -> list[str]:
    """Logical ids of the template's zip-packaged functions (what the build turns into directories)."""
    return sorted(
        logical_id
        for logical_id, resource in resources(source_template(), FUNCTION_TYPE).items()
        if resource.get("Properties", {}).get("PackageType", "Zip") == "Zip"
    )


def layer_ids() -> list[str]:
    return sorted(resources(source_template(), LAYER_TYPE))


def function_setting(template: dict[str, Any], logical_id: str, name: str, default: Any = None) -> Any:
    """A function property, falling back to Globals.Function as SAM does."""
    own = template["Resources"][logical_id].get("Properties", {})
    if name in own:
        return own[name]
    return template.get("Globals", {}).get("Function", {}).get(name, default)


def function_layer_ids(template: dict[str, Any], logical_id: str) -> list[str]:
    """The template's own layers a function uses: Globals' list, then the function's (SAM appends)."""
    own = template["Resources"][logical_id].get("Properties", {}).get("Layers", [])
    inherited = template.get("Globals", {}).get("Function", {}).get("Layers", [])
    layer_resources = resources(template, LAYER_TYPE)
    return [ref["Ref"] for ref in [*inherited, *own] if isinstance(ref, dict) and ref.get("Ref") in layer_resources]


def fail_or_skip(reason: str) -> None:
    if os.environ.get("TASKAPI_REQUIRE_BUILD") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class Build:
    """The output of `sam build`: its directory and the template it rewrote with artifact paths."""

    root: Path
    template: dict[str, Any]

    def artifact_dir(self, logical_id: str) -> Path:
        properties = self.template["Resources"][logical_id]["Properties"]
        relative = properties.get("CodeUri") or properties.get("ContentUri")
        return self.root / str(relative)

    def layer_python_paths(self, layer_id: str, runtime: str) -> list[Path]:
        """Where the Python runtime looks inside a layer (/opt/python/lib/pythonX.Y/site-packages,
        /opt/python), for the paths that the built layer has."""
        python = self.artifact_dir(layer_id) / "python"
        version = runtime.removeprefix("python")
        candidates = [python / "lib" / f"python{version}" / "site-packages", python]
        return [path for path in candidates if path.is_dir()]

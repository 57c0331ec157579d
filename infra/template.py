"""Read template.yaml (CloudFormation short-form tags included) and resolve what the local stack
needs from it: resource properties, physical names and functions' environment variables."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"
LOCAL_STACK_NAME = "taskapi-local"


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Ref X` / `!GetAtt A.B` / `!Sub ...` into their long forms."""


def _construct_tag(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


@cache
def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


@dataclass(frozen=True)
class LocalNames:
    """Physical names the local stack gives the template's resources."""

    stack_name: str = LOCAL_STACK_NAME
    region: str = "us-east-1"
    account: str = "123456789012"

    def physical_name(self, logical_id: str) -> str:
        return f"{self.stack_name}-{logical_id}"


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }


def resolve(value: Any, template: dict[str, Any], names: LocalNames, parameters: dict[str, str] | None = None) -> Any:
    """Resolve the intrinsics the template uses in values the local stack reads."""
    params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
    params.update(parameters or {})
    pseudo = {"AWS::Region": names.region, "AWS::AccountId": names.account, "AWS::StackName": names.stack_name}

    def ref(name: str) -> str:
        if name in params:
            return params[name]
        if name in pseudo:
            return pseudo[name]
        if name in template.get("Resources", {}):
            return names.physical_name(name)
        raise KeyError(f"template reference to unknown {name!r}")

    def walk(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return ref(arg)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], walk(arg[1]))
                out = text
                for token in re.findall(r"\$\{([^}!]+)\}", text):
                    replacement = extra[token] if token in extra else ref(token.split(".")[0])
                    out = out.replace("${" + token + "}", str(replacement))
                return out
            if key == "Fn::GetAtt":
                logical_id, attribute = arg
                return f"arn:aws:local:{names.region}:{names.account}:{names.physical_name(logical_id)}/{attribute}"
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(value)


def function_environment(
    logical_id: str, template: dict[str, Any] | None = None, names: LocalNames | None = None
) -> dict[str, str]:
    """The environment variables template.yaml gives a function: Globals, then its own."""
    template = template or load_template()
    names = names or LocalNames()
    global_vars = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    function = template["Resources"][logical_id]["Properties"]
    own_vars = function.get("Environment", {}).get("Variables", {})
    merged = {**global_vars, **own_vars}
    return {key: str(resolve(value, template, names)) for key, value in merged.items()}

"""Read template.yaml (CloudFormation short-form tags included) and resolve what the local stack
needs from it: resource properties, physical names and functions' environment variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
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

    def bucket_name(self, logical_id: str) -> str:
        """S3 bucket names are lower case."""
        return self.physical_name(logical_id).lower()

    @property
    def mappings_parameter_prefix(self) -> str:
        """Where the local stack keeps its event source mappings' states (SSM parameters)."""
        return f"/{self.stack_name}/event-source-mappings"


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }


def resolve(
    value: Any,
    template: dict[str, Any],
    names: LocalNames,
    parameters: dict[str, str] | None = None,
    refs: Mapping[str, str] | None = None,
) -> Any:
    """Resolve the intrinsics the template uses in values the local stack reads. `refs` holds
    what provisioning learnt (a queue's Ref is its URL, which only the endpoint knows)."""
    params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
    params.update(parameters or {})
    pseudo = {
        "AWS::Region": names.region,
        "AWS::AccountId": names.account,
        "AWS::StackName": names.stack_name,
        "AWS::Partition": "aws",
    }
    all_resources = template.get("Resources", {})

    def ref(name: str) -> str:
        if name in params:
            return params[name]
        if name in pseudo:
            return pseudo[name]
        if refs and name in refs:
            return refs[name]
        if name in all_resources:
            if all_resources[name].get("Type") == "AWS::S3::Bucket":
                return names.bucket_name(name)
            return names.physical_name(name)
        raise KeyError(f"template reference to unknown {name!r}")

    def get_att(logical_id: str, attribute: str) -> str:
        kind = all_resources.get(logical_id, {}).get("Type")
        if kind == "AWS::SQS::Queue":
            queue_name = names.physical_name(logical_id)
            return {"Arn": f"arn:aws:sqs:{names.region}:{names.account}:{queue_name}", "QueueName": queue_name}[
                attribute
            ]
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{names.bucket_name(logical_id)}"
        return f"arn:aws:local:{names.region}:{names.account}:{names.physical_name(logical_id)}/{attribute}"

    def walk(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return ref(arg)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], walk(arg[1]))
                out = text
                for token in re.findall(r"\$\{([^}!]+)\}", text):
                    if token in extra:
                        replacement = extra[token]
                    elif "." in token:
                        replacement = get_att(*token.split(".", 1))
                    else:
                        replacement = ref(token)
                    out = out.replace("${" + token + "}", str(replacement))
                return out
            if key == "Fn::GetAtt":
                logical_id, attribute = arg
                return get_att(logical_id, attribute)
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(value)


def function_environment(
    logical_id: str,
    template: dict[str, Any] | None = None,
    names: LocalNames | None = None,
    refs: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment variables template.yaml gives a function: Globals, then its own."""
    template = template or load_template()
    names = names or LocalNames()
    global_vars = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    function = template["Resources"][logical_id]["Properties"]
    own_vars = function.get("Environment", {}).get("Variables", {})
    merged = {**global_vars, **own_vars}
    return {key: str(resolve(value, template, names, refs=refs)) for key, value in merged.items()}

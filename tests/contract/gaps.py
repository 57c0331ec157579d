"""Where the app's OpenAPI document and the app disagree, as found by the schemathesis run.

Each known gap is dropped from the schemathesis run by a narrow rule (a failure is dropped only
when known gaps alone explain it) and is pinned by a strict xfail test in test_openapi_gaps.py.
When someone closes a gap, its test starts passing, fails as XPASS(strict), and says to delete
the gap here: nothing is weakened silently.

A few rules are not gaps: they are things JSON Schema cannot say (see INEXPRESSIBLE, EXPECTED).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis import Case, Response
from schemathesis.core.failures import AcceptedNegativeData, Failure
from schemathesis.openapi.checks import RejectedPositiveData, UndefinedStatusCode

Problem = dict[str, Any]
"""One entry of a 422 answer's detail: {"loc": [...], "msg": ..., "type": ...}."""
FailureRule = Callable[["OpenApi", Failure, Case, Response], bool]

_OPENAPI_URI = "urn:taskapi:openapi"
EMPTY_MEANS_MISSING = ("task_id", "task_source_name", "task_source_id", "task_source_group_id")
"""Task fields where the service reads "" as "not given" (the spec: an empty task_id is generated)."""
FILTER_LISTS = ("task_source_ids", "task_ids", "status")
BODY_PARSE_ERROR = "There was an error parsing the body"


class OpenApi:
    """Validates values against what the app's OpenAPI document says, $refs included."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry: Registry = Registry().with_resource(_OPENAPI_URI, resource)

    @staticmethod
    def _pointer(*parts: str) -> str:
        return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)

    def _accepts(self, pointer: str, value: Any) -> bool:
        validator = jsonschema.Draft202012Validator({"$ref": f"{_OPENAPI_URI}#/{pointer}"}, registry=self._registry)
        return validator.is_valid(value)

    def accepts_body(self, method: str, path: str, body: Any) -> bool:
        pointer = self._pointer("paths", path, method.lower(), "requestBody", "content", "application/json", "schema")
        return self._accepts(pointer, body)

    def accepts_parameter(self, method: str, path: str, name: str, value: Any) -> bool:
        parameters = self.document["paths"][path][method.lower()]["parameters"]
        (index,) = [i for i, parameter in enumerate(parameters) if parameter["name"] == name]
        return self._accepts(self._pointer("paths", path, method.lower(), "parameters", str(index), "schema"), value)

    def documented_statuses(self, method: str, path: str) -> set[str]:
        return set(self.document["paths"][path][method.lower()]["responses"])

    def methods(self, path: str) -> set[str]:
        return {method.upper() for method in self.document["paths"].get(path, {})}


def _detail(response: Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("detail") if isinstance(body, dict) else None


def _problems(response: Response) -> list[Problem]:
    detail = _detail(response)
    if not isinstance(detail, list) or not all(isinstance(problem, dict) for problem in detail):
        return []
    return detail


def _loc(problem: Problem) -> list[Any]:
    return list(problem.get("loc", ()))


def _strip_empty_ids(body: Any) -> Any:
    def strip(task: Any) -> Any:
        if not isinstance(task, dict):
            return task
        return {k: v for k, v in task.items() if not (k in EMPTY_MEANS_MISSING and v == "")}

    if isinstance(body, dict) and isinstance(body.get("tasks"), list):
        return {**body, "tasks": [strip(task) for task in body["tasks"]]}
    return strip(body)


def _empty_ids_accepted(openapi: OpenApi, failure: Failure, case: Case, response: Response) -> bool:
    """Accepted negative data whose only schema violation is "" where "" means "not given"."""
    if not isinstance(failure, AcceptedNegativeData) or not 200 <= response.status_code < 300:
        return False
    if not isinstance(case.body, dict):
        return False
    stripped = _strip_empty_ids(case.body)
    return stripped != case.body and openapi.accepts_body(case.method, case.operation.path, stripped)


def _body_parse_400(_: OpenApi, failure: Failure, case: Case, response: Response) -> bool:
    return (
        isinstance(failure, UndefinedStatusCode)
        and response.status_code == 400
        and case.method.upper() == "POST"
        and _detail(response) == BODY_PARSE_ERROR
    )


ID_LIST_OPERATIONS = ("/api/tasks/bulk-cancel", "/api/tasks/bulk-regenerate")
MAX_IDS = 100


def _task_id_list_bounds(_: OpenApi, failure: Failure, case: Case, response: Response) -> bool:
    """task_ids must hold 1 to 100 ids: [] is answered 400, more than 100 is answered 413."""
    if not isinstance(failure, RejectedPositiveData) or case.operation.path not in ID_LIST_OPERATIONS:
        return False
    ids = case.body.get("task_ids") if isinstance(case.body, dict) else None
    if not isinstance(ids, list):
        return False
    return (response.status_code == 400 and not ids) or (response.status_code == 413 and len(ids) > MAX_IDS)


@dataclass(frozen=True)
class KnownGap:
    key: str
    where: str
    summary: str
    problem: Callable[[Problem], bool] | None = None
    """For a schema-valid request answered 422: whether this gap explains one of its field problems."""
    failure: FailureRule | None = None
    """For any other failure: whether this gap explains it."""


KNOWN_GAPS: tuple[KnownGap, ...] = (
    KnownGap(
        key="integral-floats",
        where="shared/taskapi/models/requests.py _segments, QuizRequestData.num_questions; "
        "POST /api/tasks/bulk, POST /api/tasks",
        summary='segments and num_questions are documented as JSON Schema "integer", which 3.0 satisfies, '
        "but the app accepts only 3 (strict int) and answers 422 to 3.0",
        problem=lambda problem: (
            (_loc(problem)[-1:], problem.get("type")) in ((["segments"], "segments"), (["num_questions"], "int_type"))
        ),
    ),
    KnownGap(
        key="filter-list-syntax",
        where="shared/taskapi/http/routes.py task_filters; GET /api/tasks, GET /api/tasks/count/total",
        summary="task_source_ids / task_ids / status are documented as any string, but the app answers 422 "
        "for source ids with control characters, task ids outside their alphabet, too many values, or unknown "
        "statuses",
        problem=lambda problem: _loc(problem) in (["query", name] for name in FILTER_LISTS),
    ),
    KnownGap(
        key="empty-ids",
        where="shared/taskapi/models/requests.py _TaskCreateBase; POST /api/tasks/bulk, POST /api/tasks",
        summary='task_id and the task_source_* fields are documented with minLength 1, but "" is accepted '
        "and means not given (the spec: an empty task_id gets a generated UUID)",
        failure=_empty_ids_accepted,
    ),
)

INEXPRESSIBLE: dict[str, str] = {
    "duplicate_task_id": "task ids unique within one bulk request: JSON Schema cannot relate items' properties",
    "request_data_too_large": "request_data at most 24 KB as JSON: JSON Schema cannot bound serialized size",
}
"""422 problem types for rules that JSON Schema cannot state, so the document cannot be blamed."""


def _opaque_cursor(_: OpenApi, failure: Failure, case: Case, response: Response) -> bool:
    """Any string fits the documented next_token, but only a cursor this API issued is one.
    The 400 is documented; schemathesis cannot know how to make a valid cursor."""
    return (
        isinstance(failure, RejectedPositiveData) and response.status_code == 400 and "next_token" in (case.query or {})
    )


TASK_PATH = "/api/tasks/{task_id}"


def _request_data_of_the_stored_type(_: OpenApi, failure: Failure, case: Case, response: Response) -> bool:
    """PATCH documents request_data as any object: which fields it needs depends on the stored
    task's type, which JSON Schema cannot look up. The service checks it with the type's create
    model and answers 422 naming each field under body.request_data."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 422:
        return False
    if case.method.upper() != "PATCH" or case.operation.path != TASK_PATH:
        return False
    problems = _problems(response)
    return bool(problems) and all(_loc(problem)[:2] == ["body", "request_data"] for problem in problems)


EXPECTED: tuple[FailureRule, ...] = (_opaque_cursor, _request_data_of_the_stored_type)


def excuse(openapi: OpenApi, failure: Failure, case: Case, response: Response) -> str | None:
    """Why a failure is already known: the known gaps that explain it, or an inexpressible or
    expected rule. None means it is news and must fail the test."""
    if any(rule(openapi, failure, case, response) for rule in EXPECTED):
        return "expected"
    if isinstance(failure, RejectedPositiveData) and response.status_code == 422:
        problems = _problems(response)
        reasons: list[str] = []
        for problem in problems:
            gap = next((g for g in KNOWN_GAPS if g.problem is not None and g.problem(problem)), None)
            if gap is not None:
                reasons.append(gap.key)
            elif problem.get("type") in INEXPRESSIBLE:
                reasons.append(f"inexpressible:{problem['type']}")
            else:
                return None
        return ", ".join(dict.fromkeys(reasons)) or None
    for gap in KNOWN_GAPS:
        if gap.failure is not None and gap.failure(openapi, failure, case, response):
            return gap.key
    return None


def gap(key: str) -> KnownGap:
    (found,) = [g for g in KNOWN_GAPS if g.key == key]
    return found

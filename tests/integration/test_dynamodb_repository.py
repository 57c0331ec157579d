"""DynamoTaskRepository on moto: idempotent transactional inserts, index plans, cursors, counts."""

from __future__ import annotations

import re

import pytest

from infra.template import load_template
from taskapi.models.domain import Task, TaskEvent, TaskStatus
from taskapi.store.base import TaskFilters


def make(task_id: str, account: str = "acct_a", n: int = 0, **fields) -> Task:
    stamp = f"2026-01-01T00:00:{n // 1000:02d}.{n % 1000:03d}000Z"
    values = {
        "account_id": account,
        "task_id": task_id,
        "user_id": "u",
        "task_type": "quiz",
        "created_at": stamp,
        "updated_at": stamp,
        "request_data": {"story_prompt": "p", "difficulty": "easy", "ratio": 0.5},
        "events": [TaskEvent(timestamp=stamp, message="Task pending")],
    }
    values.update(fields)
    return Task(**values)


def test_a_hundred_new_tasks_take_one_write_call(repo, calls):
    tasks = [make(f"t{n}", n=n) for n in range(100)]
    result = repo.insert_new(tasks)
    assert len(result.created) == 100
    assert not result.existing
    assert calls == ["TransactWriteItems"]
    assert repo.get("acct_a", "t42") == tasks[42]


def test_existing_ids_are_answered_as_stored_in_one_more_call(repo, calls):
    original = make("t1", n=1, priority="low")
    repo.insert_new([original])
    calls.clear()
    result = repo.insert_new([make("t1", n=5, priority="urgent"), make("t2", n=6)])
    assert calls == ["TransactWriteItems", "TransactWriteItems"]
    assert result.existing == {"t1": original}
    assert set(result.created) == {"t2"}
    assert repo.get("acct_a", "t1").priority == "low"


def test_all_existing_takes_one_call(repo, calls):
    repo.insert_new([make("t1"), make("t2", n=1)])
    calls.clear()
    result = repo.insert_new([make("t1"), make("t2", n=1)])
    assert calls == ["TransactWriteItems"]
    assert set(result.existing) == {"t1", "t2"}
    assert not result.created


def test_two_accounts_may_own_the_same_id(repo):
    repo.insert_new([make("same", account="acct_a", task_type="video")])
    result = repo.insert_new([make("same", account="acct_b", task_type="quiz")])
    assert set(result.created) == {"same"}
    assert repo.get("acct_a", "same").task_type == "video"
    assert repo.get("acct_b", "same").task_type == "quiz"
    assert repo.count("acct_b", TaskFilters()) == 1


def test_request_data_round_trips_exactly(repo):
    data = {"story_prompt": "p", "segments": 3, "voice_rate": 1.0, "nested": {"a": [1, 2.5, None, True]}}
    repo.insert_new([make("t", request_data=data)])
    stored = repo.get("acct_a", "t").request_data
    assert stored == data
    assert type(stored["voice_rate"]) is float
    assert type(stored["segments"]) is int


@pytest.fixture
def seeded(repo):
    """60 tasks of acct_a over groups g0..g2, sources s0..s3, two statuses; noise in acct_b."""
    tasks = []
    for n in range(60):
        tasks.append(
            make(
                f"t{n:02d}",
                n=n,
                task_source_group_id=f"g{n % 3}",
                task_source_id=f"s{n % 4}",
                status=TaskStatus.COMPLETED if n % 5 == 0 else TaskStatus.PENDING,
                task_type="video" if n % 2 else "quiz",
            )
        )
    repo.insert_new(tasks)
    repo.insert_new([make(f"t{n:02d}", account="acct_b", n=n, task_source_group_id="g0") for n in range(30)])
    return sorted(tasks, key=lambda t: t.created_sk, reverse=True)


@pytest.mark.parametrize(
    "filters",
    [
        TaskFilters(),
        TaskFilters(group_id="g1"),
        TaskFilters(source_ids=("s1", "s3")),
        TaskFilters(source_ids=("s0",), group_id="g0"),
        TaskFilters(statuses=(TaskStatus.COMPLETED,)),
        TaskFilters(statuses=(TaskStatus.COMPLETED, TaskStatus.PENDING), task_type="video"),
        TaskFilters(group_id="g2", statuses=(TaskStatus.PENDING,), task_type="quiz"),
        TaskFilters(task_ids=("t01", "t02", "t59", "missing"), task_type="video"),
        TaskFilters(priority="normal", task_type="quiz"),
    ],
    ids=lambda f: ",".join(f"{k}={v}" for k, v in vars(f).items() if v),
)
def test_every_plan_answers_what_the_filters_select_newest_first(repo, seeded, filters):
    expected = [t for t in seeded if filters.matches(t)]
    assert repo.page("acct_a", filters, before=None, want=1000) == expected
    assert repo.count("acct_a", filters) == len(expected)
    if len(expected) > 3:
        middle = expected[2].created_sk
        assert repo.page("acct_a", filters, before=middle, want=2) == expected[3:5]
    for skip in (1, len(expected) // 2, len(expected), len(expected) + 5):
        assert repo.page("acct_a", filters, before=None, want=4, skip=skip) == expected[skip : skip + 4]


def test_source_and_group_ids_of_any_text_are_index_keys_like_any_other(repo):
    sources = ["Math 101", "Math 101, Algebra", "Cours d'été", "数学 #1"]
    repo.insert_new([make(f"t{n}", n=n, task_source_id=s, task_source_group_id=s) for n, s in enumerate(sources)])
    for n, source in enumerate(sources):
        assert [t.task_id for t in repo.page("acct_a", TaskFilters(source_ids=(source,)), before=None, want=9)] == [
            f"t{n}"
        ]
        assert repo.count("acct_a", TaskFilters(group_id=source)) == 1


def test_a_group_page_reads_only_the_items_it_answers(repo, seeded, calls):
    """The index for the page's keys, then its items in one BatchGetItem."""
    calls.clear()
    page = repo.page("acct_a", TaskFilters(group_id="g0"), before=None, want=7)
    assert len(page) == 7
    assert calls == ["Query", "BatchGetItem"]
    assert calls.scanned == [7]


def test_a_window_reads_one_index_entry_past_the_page_and_fetches_only_the_page(repo, seeded, calls):
    """Whether another page exists is the index's answer: the entry after the page is not fetched."""
    calls.clear()
    tasks, more = repo.window("acct_a", TaskFilters(group_id="g0"), before=None, want=7)
    assert (len(tasks), more) == (7, True)
    assert calls == ["Query", "BatchGetItem"]
    assert calls.scanned == [8]
    assert calls.fetched == [7]

    everything = repo.count("acct_a", TaskFilters(group_id="g0"))
    tasks, more = repo.window("acct_a", TaskFilters(group_id="g0"), before=None, want=everything)
    assert (len(tasks), more) == (everything, False)


def test_newest_ids_are_the_indexs_and_fetch_no_task(repo, seeded, calls):
    filters = TaskFilters(statuses=(TaskStatus.PENDING,))
    expected = [t.task_id for t in repo.page("acct_a", filters, before=None, want=5)]
    calls.clear()
    assert repo.newest_ids("acct_a", filters, want=5) == expected
    assert calls == ["Query"]


QUEUEABLE_FILTERS = [
    TaskFilters(queueable=True),
    TaskFilters(queueable=False),
    TaskFilters(queueable=True, statuses=(TaskStatus.PENDING, TaskStatus.COMPLETED)),
    TaskFilters(queueable=False, group_id="g1"),
    TaskFilters(queueable=True, group_id="g1", statuses=(TaskStatus.PENDING,)),
    TaskFilters(queueable=True, source_ids=("s0", "s2")),
    TaskFilters(queueable=False, source_ids=("s1",), group_id="g1", task_type="video"),
]


@pytest.fixture
def half_queueable(repo, seeded):
    """Two seeded tasks of acct_a in five stored without request_data."""
    bare = [t.model_copy(update={"request_data": None}) for t in seeded if int(t.task_id[1:]) % 5 in (1, 3)]
    for task in bare:
        repo.save(task, expected_version=task.version)
    fresh = repo.get_many("acct_a", [t.task_id for t in seeded])
    return sorted(fresh.values(), key=lambda t: t.created_sk, reverse=True)


@pytest.mark.parametrize("filters", QUEUEABLE_FILTERS, ids=lambda f: f.fingerprint())
def test_queueable_is_answered_by_every_plan_from_what_the_index_projects(repo, half_queueable, filters):
    expected = [t for t in half_queueable if filters.matches(t)]
    assert expected
    assert repo.page("acct_a", filters, before=None, want=1000) == expected
    assert repo.count("acct_a", filters) == len(expected)
    assert repo.count("acct_a", filters, at_most=2) >= 2


def test_only_items_with_request_data_carry_has_request_data(repo, dynamodb, aws_env):
    repo.insert_new([make("with", n=1), make("without", n=2, request_data=None)])
    items = {
        task_id: dynamodb.get_item(
            TableName=aws_env["TasksTable"], Key={"account_id": {"S": "acct_a"}, "task_id": {"S": task_id}}
        )["Item"]
        for task_id in ("with", "without")
    }
    assert items["with"]["has_request_data"] == {"BOOL": True}
    assert "has_request_data" not in items["without"]


def test_the_account_index_never_shows_another_account(repo, seeded):
    assert {t.account_id for t in repo.page("acct_b", TaskFilters(), before=None, want=1000)} == {"acct_b"}
    assert repo.count("acct_b", TaskFilters(group_id="g1")) == 0
    assert repo.get_many("acct_b", ["t31", "t45"]) == {}


def _template_projections() -> dict[str, set[str]]:
    """Every attribute a Query of each TasksTable index may name: the table's and the index's keys
    and, by the index's projection in template.yaml, its non-key attributes."""
    table = load_template()["Resources"]["TasksTable"]["Properties"]
    table_keys = {k["AttributeName"] for k in table["KeySchema"]}
    allowed = {}
    for index in table["GlobalSecondaryIndexes"]:
        projection = index["Projection"]
        assert projection["ProjectionType"] != "ALL", f"{index['IndexName']} projects every attribute"
        allowed[index["IndexName"]] = (
            table_keys | {k["AttributeName"] for k in index["KeySchema"]} | set(projection.get("NonKeyAttributes", []))
        )
    return allowed


def _names_in(expression: str, names: dict[str, str]) -> set[str]:
    return {names[placeholder] for placeholder in re.findall(r"#\w+", expression)}


@pytest.fixture
def queries(dynamodb):
    """The parameters of every Query made from here on."""
    made: list[dict] = []
    dynamodb.meta.events.register("provide-client-params.dynamodb.Query", lambda params, **_: made.append(params))
    return made


@pytest.mark.parametrize("queueable", [None, True, False])
def test_index_queries_name_only_attributes_their_index_projects(repo, half_queueable, queries, queueable):
    """Real DynamoDB answers a GSI Query with its projected attributes only (moto may differ): a filter
    on another attribute would see it missing. Every plan's Query, page and count alike, is checked
    against template.yaml; a page's Query asks for keys only."""
    filter_sets = [
        TaskFilters(queueable=queueable),
        TaskFilters(queueable=queueable, task_type="video", priority="normal"),
        TaskFilters(queueable=queueable, statuses=(TaskStatus.PENDING,), task_type="quiz", priority="normal"),
        TaskFilters(queueable=queueable, group_id="g1", statuses=(TaskStatus.PENDING,), task_type="quiz"),
        TaskFilters(queueable=queueable, source_ids=("s0", "s1"), group_id="g1", statuses=(TaskStatus.PENDING,)),
        TaskFilters(queueable=queueable, source_ids=("s2",), task_type="video", priority="normal"),
    ]
    for filters in filter_sets:
        repo.page("acct_a", filters, before=None, want=5, skip=2)
        repo.page("acct_a", filters, before="2026-01-01T00:00:00.030000Z#t30", want=5)
        repo.count("acct_a", filters)
        repo.count("acct_a", filters, at_most=3)
    repo.open_tasks(TaskStatus.PENDING, before="2030-01-01T00:00:00.000000Z", limit=10)
    allowed = _template_projections()
    assert {q["IndexName"] for q in queries} == set(allowed)
    for query in queries:
        names = query.get("ExpressionAttributeNames", {})
        used = _names_in(query["KeyConditionExpression"], names) | _names_in(query.get("FilterExpression", ""), names)
        assert used <= allowed[query["IndexName"]], query
        if query.get("Select") != "COUNT" and query["IndexName"] != "by_open":
            assert _names_in(query["ProjectionExpression"], names) == {"account_id", "task_id", "created_sk"}

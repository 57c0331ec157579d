"""Issue 15: DynamoDB write and read units of one task's life, per task type, measured on the real
code (tests/perf/task_lifecycle.py): created through services.tasks.create_tasks with the ceiling
(from the counters table), its message processed by the Processor until COMPLETED; then a GET of
it and a list page of 50 (its total from the counters). Beside the task's own units, the counters'
(the stream consumer's updates for the lives of a bulk of 100 tasks of one group and source, in
stream batches of up to 500 records), amortized per task.

Units are computed by tests/support/capacity.py from the item images every write made, for the
base table and each index, transactional writes doubled (moto meters no capacity). Issue 15's
targets: quiz <= 30 write units, video <= 35 (the task's own, and with the counters), a GET <= 1
read unit, a list page of 50 <= 30 read units.
"""

from __future__ import annotations

import pytest

from taskapi.models.domain import TaskType
from tests.perf.support import Figure, Recorder
from tests.perf.task_lifecycle import BULK, LIST_LIMIT, LISTED_TASKS, STREAM_BATCH, TYPES, Measured, kinds, measure
from tests.support.capacity import TABLE

WRITE_TARGETS = {TaskType.QUIZ: 30, TaskType.VIDEO: 35}
GET_TARGET = 1
LIST_TARGET = 30


@pytest.fixture(scope="module")
def measured() -> Measured:
    return measure()


def _targets(measured: Measured) -> list[str]:
    """Base table first, then the indexes in the order their charges appear."""
    seen: dict[str, None] = {TABLE: None}
    for lifecycle in measured.lifecycles.values():
        for charge in lifecycle.life.charges:
            seen.setdefault(charge.target, None)
    return list(seen)


def test_write_and_read_units_of_a_task_s_life(measured: Measured, bench: Recorder) -> None:
    targets = _targets(measured)
    print()
    print("[bench] DynamoDB units of one task's life (create request -> COMPLETED), from the item images on moto")
    header = "".join(f"{target:>12}" for target in targets)
    for task_type in TYPES:
        lifecycle = measured.lifecycles[task_type]
        print(f"[bench]   {task_type.value:<18}{header}{'total':>10}")
        for kind, charges in kinds(lifecycle.life):
            by_target = charges.by("target")
            cells = "".join(f"{by_target.get(target, 0):>12g}" for target in targets)
            print(f"[bench]     {kind:<16}{cells}{charges.write_units():>10g}")
        totals = lifecycle.life.by("target")
        cells = "".join(f"{totals.get(target, 0):>12g}" for target in targets)
        print(f"[bench]     {'write units':<16}{cells}{lifecycle.life.write_units():>10g}")
        counters, wide = measured.counters.write_units_per_task(), 12 * len(targets)
        print(f"[bench]     {'+ counters':<16}{'(amortized, see below)':>{wide}}{counters:>10g}")
        print(f"[bench]     {'with counters':<16}{'':>{wide}}{lifecycle.life.write_units() + counters:>10g}")
        reads = lifecycle.life.breakdown("read_units")
        print(
            f"[bench]     read units {lifecycle.life.read_units():g} ({reads}); GET {lifecycle.get.read_units():g};"
            f" item {lifecycle.item_bytes:,} B when COMPLETED; {lifecycle.progress_reports} progress writes;"
            f" {lifecycle.result_files} result files, {lifecycle.result_bytes:,} B"
        )

    _summary(measured, targets)

    counters = measured.counters.write_units_per_task()
    for task_type in TYPES:
        lifecycle = measured.lifecycles[task_type]
        name = f"task_cost.{task_type.value}"
        bench.record(
            Figure(
                f"{name}.write_units",
                lifecycle.life.write_units(),
                "WRU",
                WRITE_TARGETS.get(task_type),
                note="base " + f"{lifecycle.life.write_units(target=TABLE):g}" + ", indexes "
                f"{lifecycle.life.write_units() - lifecycle.life.write_units(target=TABLE):g}",
            )
        )
        bench.record(
            Figure(
                f"{name}.write_units_with_counters",
                lifecycle.life.write_units() + counters,
                "WRU",
                WRITE_TARGETS.get(task_type),
                note=f"the task's own + the counters' {counters:g} (amortized over a bulk of {BULK})",
            )
        )
        for kind, charges in kinds(lifecycle.life):
            bench.record(Figure(f"{name}.write_units.{kind.replace(' ', '_')}", charges.write_units(), "WRU"))
        bench.record(
            Figure(
                f"{name}.read_units", lifecycle.life.read_units(), "RRU", note=lifecycle.life.breakdown("read_units")
            )
        )
        bench.record(Figure(f"{name}.get_read_units", lifecycle.get.read_units(), "RRU", GET_TARGET))


def _summary(measured: Measured, targets: list[str]) -> None:
    """Write units per task: base table, each index, the counters (amortized); read units of a GET
    and of a list page of 50."""
    counters = measured.counters.write_units_per_task()
    print("[bench] write units per task (base table, each index, counters amortized) and read units of one GET")
    header = "".join(f"{target:>11}" for target in targets)
    print(f"[bench]   {'type':<16}{header}{'counters':>10}{'total':>8}{'GET RU':>8}")
    for task_type in TYPES:
        lifecycle = measured.lifecycles[task_type]
        totals = lifecycle.life.by("target")
        cells = "".join(f"{totals.get(target, 0):>11g}" for target in targets)
        total = lifecycle.life.write_units() + counters
        print(f"[bench]   {task_type.value:<16}{cells}{counters:>10g}{total:>8g}{lifecycle.get.read_units():>8g}")
    page = measured.list_page
    print(
        f"[bench]   list page of {LIST_LIMIT} (no filter, {LISTED_TASKS} tasks): {page.read_units():g} read units"
        f" ({page.breakdown('read_units')})"
    )


def test_every_write_of_the_life_is_counted_under_a_kind(measured: Measured) -> None:
    for lifecycle in measured.lifecycles.values():
        assert sum(charges.write_units() for _, charges in kinds(lifecycle.life)) == lifecycle.life.write_units()


def test_a_get_reads_the_one_item_consistently(measured: Measured) -> None:
    for lifecycle in measured.lifecycles.values():
        assert lifecycle.get.items_read() == 1
        assert lifecycle.get.read_units() == -(-lifecycle.item_bytes // 4096)


def test_a_list_page_of_50(measured: Measured, bench: Recorder) -> None:
    page = measured.list_page
    calls = page.by("operation", "items_read")
    units = page.by("operation", "read_units")
    print()
    print(
        f"[bench] list page of {LIST_LIMIT} (GET /api/tasks, no filter) over {LISTED_TASKS} completed tasks: "
        f"{page.read_units():g} read units, {page.items_read()} items read "
        f"({', '.join(f'{op} {calls[op]:g} items / {units[op]:g} RU' for op in calls)}; total from the counters)"
    )
    assert measured.list_total == LISTED_TASKS
    bench.record(
        Figure(
            "task_cost.list_page_50.read_units",
            page.read_units(),
            "RRU",
            LIST_TARGET,
            note=f"index keys + BatchGetItem + the account's counter, over {LISTED_TASKS} completed tasks",
        )
    )
    bench.record(Figure("task_cost.list_page_50.items_read", page.items_read(), "items"))


def test_a_bulk_create_of_100(measured: Measured, bench: Recorder) -> None:
    per_task = measured.bulk.write_units() / BULK
    single = sum(lifecycle.create.write_units() for lifecycle in measured.lifecycles.values()) / len(
        measured.lifecycles
    )
    print()
    print(
        f"[bench] bulk create of {BULK} (one of each type in turn): {per_task:g} write units a task "
        f"(a single create: {single:g}), {measured.bulk.read_units():g} read units for the ceiling check"
    )
    bench.record(Figure("task_cost.bulk_create_100.write_units_per_task", per_task, "WRU"))


def test_the_counters_cost_of_a_task(measured: Measured, bench: Recorder) -> None:
    """The stream consumer's updates for a task's life, amortized: a bulk of 100 tasks of one group
    and source, from create to COMPLETED, their stream records applied in batches of up to 500."""
    cost = measured.counters
    report = cost.report
    print()
    print(
        f"[bench] counters: {report.records} stream records for the lives of {cost.tasks} tasks (one group, one"
        f" source), {cost.batches} batch(es) of up to {STREAM_BATCH}, {report.chunks} chunk(s),"
        f" {report.counter_updates} counter updates: {cost.capacity.write_units():g} write units"
        f" ({cost.capacity.breakdown('write_units')}), {cost.capacity.read_units():g} read units"
        f" ({cost.capacity.breakdown('read_units')}); per task {cost.write_units_per_task():g} WRU,"
        f" {cost.read_units_per_task():g} RRU; applied in {cost.seconds * 1000:.1f} ms"
    )
    assert report.skipped == 0
    assert report.records >= 3 * cost.tasks  # each task's insert, claim and completion at least
    bench.record(
        Figure(
            "task_cost.counters.write_units_per_task",
            cost.write_units_per_task(),
            "WRU",
            note=f"{cost.capacity.write_units():g} WRU for {report.records} records of {cost.tasks} lives,"
            f" {cost.batches} batch(es) of up to {STREAM_BATCH}",
        )
    )
    bench.record(Figure("task_cost.counters.read_units_per_task", cost.read_units_per_task(), "RRU"))

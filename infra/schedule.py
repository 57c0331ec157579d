"""What EventBridge does for the template's Schedule events, done by a thread of the local stack:
the function's handler runs every rate(...) period with a "Scheduled Event" like EventBridge's.

Deviations from AWS: only rate() expressions are run (a cron() expression is refused at start);
TASKAPI_LOCAL_SCHEDULE_SECONDS replaces every period (tests use a few seconds); a run that outlasts
the period delays the next one instead of overlapping it; the first run comes one period after
the start, as with a newly created rule."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from infra.runtime import ExecutionEnvironment, FunctionSpec, SingleThreadWorker
from infra.template import LocalNames, resolve, resources

log = logging.getLogger("taskapi.local")

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int:
    """Seconds between runs of an EventBridge rate expression; ValueError for anything else."""
    match = _RATE.match(expression.strip())
    if not match:
        raise ValueError(f"schedule {expression!r}: the local stack runs rate(N minute(s)|hour(s)|day(s)) only")
    value, unit = int(match.group(1)), match.group(2)
    if value < 1 or (value == 1) != (not unit.endswith("s")):
        raise ValueError(f"schedule {expression!r}: EventBridge wants rate(1 unit) or rate(N units)")
    return value * _UNIT_SECONDS[unit.rstrip("s")]


@dataclass(frozen=True)
class ScheduleEvent:
    function: str
    event_name: str
    expression: str
    period_seconds: float
    rule_arn: str


def schedule_events(
    template: dict[str, Any], names: LocalNames, period_override: float | None = None
) -> list[ScheduleEvent]:
    """Every enabled Schedule event of every function in the template."""
    found = []
    for function_id, resource in resources(template, "AWS::Serverless::Function").items():
        for event_name, event in resource["Properties"].get("Events", {}).items():
            if event.get("Type") != "Schedule":
                continue
            props = resolve(event.get("Properties", {}), template, names)
            if props.get("Enabled") is False or props.get("State") == "DISABLED":
                continue
            expression = str(props["Schedule"])
            period = float(rate_seconds(expression))
            rule = f"{names.stack_name}-{function_id}{event_name}"
            found.append(
                ScheduleEvent(
                    function=function_id,
                    event_name=event_name,
                    expression=expression,
                    period_seconds=period_override if period_override is not None else period,
                    rule_arn=f"arn:aws:events:{names.region}:{names.account}:rule/{rule}",
                )
            )
    return found


def scheduled_event(schedule: ScheduleEvent, names: LocalNames, moment: datetime) -> dict[str, Any]:
    """The event EventBridge sends a target of a schedule rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": names.account,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": names.region,
        "resources": [schedule.rule_arn],
        "detail": {},
    }


class ScheduleRunner(SingleThreadWorker):
    """Runs one Schedule event's function every period (a BackgroundWorker)."""

    kind = "schedule"

    def __init__(self, schedule: ScheduleEvent, spec: FunctionSpec, names: LocalNames) -> None:
        super().__init__(f"{schedule.function}/{schedule.event_name}", spec, names)
        self.schedule = schedule
        self.runs = 0

    def _run(self, environment: ExecutionEnvironment) -> None:
        while not self._stop.wait(self.schedule.period_seconds):
            try:
                answer = environment.invoke(scheduled_event(self.schedule, self._names, datetime.now(UTC)))
                self.runs += 1
                log.debug("schedule %s ran: %s", self.name, answer)
            except Exception:
                # EventBridge would retry the invocation; the next period's run does the same work.
                log.exception("schedule %s raised; the next run is in %.0f s", self.name, self.schedule.period_seconds)


def build_schedules(
    template: dict[str, Any], names: LocalNames, specs: dict[str, FunctionSpec], period_override: float | None
) -> list[ScheduleRunner]:
    return [ScheduleRunner(s, specs[s.function], names) for s in schedule_events(template, names, period_override)]

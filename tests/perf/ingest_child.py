"""The ingest function in a process of its own, for its memory figures (tests/perf/test_upload_ingest.py
runs it; the AWS side is a moto server in another child process of the parent, so moto's own
memory is not counted here).

    python -m tests.perf.ingest_child MESSAGE_JSON RESULT_JSON [--trace]

MESSAGE_JSON holds one SQS message of the ingest queue (an S3 notification, as ReceiveMessage
answers it); the environment is the local stack's (AWS_ENDPOINT_URL and the functions' variables).
The handler is loaded from template.yaml's IngestFunction as the local stack's pollers load it,
warmed up with an s3:TestEvent (which builds the adapters and their boto3 clients), then invoked
with the message. RESULT_JSON gets the handler's answer, the invocation's wall time and:

- rss_before_kib: the resident set just before the invocation (imports, clients: the warm
  function), and hwm_kib: the peak resident set during the invocation (/proc/self/status VmHWM,
  reset to the current RSS with /proc/self/clear_refs right before it). hwm_kib is what Lambda's
  "Max Memory Used" reports for a warm invocation.
- ru_maxrss_*_kib: getrusage's ru_maxrss, for the record. It is not this process's own peak: Linux
  keeps the high-water mark of the image replaced by execve (the forked parent, a pytest process
  holding moto) in ru_maxrss, so it starts at the parent's size and rarely moves.
- traced_peak_bytes (--trace): tracemalloc's peak of the Python allocations made during the
  invocation. tracemalloc slows the run and adds memory of its own, so the RSS figures come from a
  run without it.
- failed_attempts: AWS calls of the invocation whose attempt failed (an error answer or a transport
  error such as a read timeout), which botocore may have retried, as "service.Operation: reason".
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc
from pathlib import Path
from typing import Any

from tests.perf.procfs import reset_peak, status_kib

TEST_EVENT = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "warm-up"})


def _ru_maxrss_kib() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _watch_failed_attempts(failed: list[str]) -> None:
    """Note every failed attempt of the clients the function uses (built by the warm-up)."""
    from taskapi import aws

    def note(event_name: str, response: Any = None, caught_exception: Any = None, **_: Any) -> None:
        operation = event_name.split(".", 1)[1]
        if caught_exception is not None:
            failed.append(f"{operation}: {type(caught_exception).__name__}: {caught_exception}")
        elif response is not None and response[0].status_code >= 400:
            code = response[1].get("Error", {}).get("Code", response[0].status_code)
            failed.append(f"{operation}: {code}")

    for service in ("dynamodb", "s3", "sqs"):
        aws.client(service).meta.events.register("needs-retry", note)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.ingest_child")
    parser.add_argument("message", type=Path)
    parser.add_argument("result", type=Path)
    parser.add_argument("--trace", action="store_true", help="measure the invocation's peak with tracemalloc")
    args = parser.parse_args(argv)

    import boto3

    from infra.pollers import discover_mappings, sqs_record
    from infra.runtime import ExecutionEnvironment, function_specs
    from infra.template import LocalNames

    names = LocalNames()
    mappings = discover_mappings(boto3.client("ssm"), names.mappings_parameter_prefix)
    (mapping,) = [m for m in mappings if m.function == "IngestFunction" and m.event_name == "Uploads"]
    environment = ExecutionEnvironment(function_specs()["IngestFunction"], names)

    warm_up: dict[str, Any] = {"MessageId": "warm-up", "ReceiptHandle": "warm-up", "Body": TEST_EVENT}
    assert environment.invoke({"Records": [sqs_record(warm_up, mapping)]}) == {"batchItemFailures": []}

    event = {"Records": [sqs_record(json.loads(args.message.read_text()), mapping)]}
    failed_attempts: list[str] = []
    _watch_failed_attempts(failed_attempts)
    ru_maxrss_before = _ru_maxrss_kib()
    peak_reset = reset_peak()
    rss_before = status_kib("VmRSS")
    if args.trace:
        tracemalloc.start()
    started = time.perf_counter()
    answer = environment.invoke(event)
    seconds = time.perf_counter() - started
    traced_peak = tracemalloc.get_traced_memory()[1] if args.trace else None
    if args.trace:
        tracemalloc.stop()
    result = {
        "answer": answer,
        "seconds": seconds,
        "rss_before_kib": rss_before,
        "hwm_kib": status_kib("VmHWM") if peak_reset else None,
        "ru_maxrss_before_kib": ru_maxrss_before,
        "ru_maxrss_after_kib": _ru_maxrss_kib(),
        "traced_peak_bytes": traced_peak,
        "failed_attempts": failed_attempts,
    }
    args.result.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What Lambda's event source mappings do for DynamoDB streams, done by a thread of the local stack.

Every DynamoDB event of a function in the template (`Type: DynamoDB`, `Stream: !GetAtt
<Table>.StreamArn`) gets a StreamPoller, which does the mapping's work:

- reads each shard of the table's stream in order (GetShardIterator from the mapping's
  StartingPosition, TRIM_HORIZON or LATEST, then AFTER_SEQUENCE_NUMBER of the last record handled;
  GetRecords up to the mapping's BatchSize); an iterator is taken for each read, from the last
  record handled (moto's in-process TransactWriteItems puts back a copy of the table when it
  fails, leaving the iterators it gave out on a stream nobody writes to any more),
- invokes the function's real handler with the records in the shape of Lambda's DynamoDB event
  (eventID, eventName, eventVersion, eventSource "aws:dynamodb", awsRegion, eventSourceARN = the
  stream's ARN, dynamodb: Keys, NewImage, OldImage, SequenceNumber, SizeBytes, StreamViewType and
  ApproximateCreationDateTime in epoch seconds),
- moves past the records only when the handler returned: a raised exception delivers the same
  records again, from the same first record (more may follow them), as Lambda does with
  BisectBatchOnFunctionError off; after MaximumRetryAttempts retries the batch is skipped and its
  description (DDBStreamBatchInfo) sent to the OnFailure destination queue, as Lambda does,
- keeps where each shard is in an SSM parameter ("<stack>/stream-positions/<Function>/<Event>"),
  so a stack restarted on a persistent endpoint (AWS_ENDPOINT_URL) goes on where it stopped.

Deviations from AWS, chosen for a laptop: one thread per mapping reads the shards one after the
other (ParallelizationFactor 1); a batch is what one GetRecords call answers (after a batch
that was not full the next read waits MaximumBatchingWindowInSeconds, where Lambda would gather
records for up to that long; an idle stream is read every POLL_SECONDS);
a failed batch is retried after a fixed delay, not Lambda's backoff; a function's Timeout is not
enforced (see infra/runtime.py)."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infra.runtime import ExecutionEnvironment, FunctionSpec, SingleThreadWorker
from infra.template import LocalNames, resolve, resources

log = logging.getLogger("taskapi.local")

POLL_SECONDS = 0.5
"""How often an idle stream is read."""
SHARD_REFRESH_SECONDS = 10.0
"""How often the list of shards is read again (DynamoDB splits and rolls shards over)."""
GET_RECORDS_LIMIT = 1000
"""GetRecords answers at most this many records."""
ERROR_BACKOFF_SECONDS = 1.0


@dataclass(frozen=True)
class StreamMapping:
    """One DynamoDB event source mapping of the template."""

    function: str
    event_name: str
    table_name: str
    batch_size: int = 100
    starting_position: str = "TRIM_HORIZON"
    maximum_retry_attempts: int = -1
    """Retries of a failing batch before it is skipped; -1: no end (Lambda: until the records expire)."""
    on_failure_queue: str | None = None
    """Physical name of the SQS queue that hears of skipped batches."""
    enabled: bool = True
    batching_window_seconds: float = 0.0
    """MaximumBatchingWindowInSeconds: after a batch that was not full, records gather this long."""

    @property
    def name(self) -> str:
        return f"{self.function}/{self.event_name}"


def _get_att_target(value: Any, attribute: str) -> str | None:
    """The logical id of `!GetAtt <id>.<attribute>`, None for any other value."""
    if isinstance(value, dict) and list(value) == ["Fn::GetAtt"]:
        target = value["Fn::GetAtt"]
        if isinstance(target, list) and len(target) == 2 and target[1] == attribute:
            return str(target[0])
    return None


def stream_event_mappings(template: dict[str, Any], names: LocalNames) -> list[StreamMapping]:
    """Every DynamoDB event of every function, in (function, event) order. Raises ValueError for a
    stream the local stack cannot find (not a `!GetAtt <Table>.StreamArn` of the template)."""
    tables = resources(template, "AWS::DynamoDB::Table")
    found = []
    for function_id, resource in sorted(resources(template, "AWS::Serverless::Function").items()):
        for event_name, event in sorted(resource["Properties"].get("Events", {}).items()):
            if event.get("Type") != "DynamoDB":
                continue
            raw = event.get("Properties", {})
            table_id = _get_att_target(raw.get("Stream"), "StreamArn")
            if table_id is None or table_id not in tables:
                raise ValueError(
                    f"{function_id}/{event_name}: Stream must be !GetAtt <a table of the template>.StreamArn"
                )
            props = resolve(
                {
                    key: raw[key]
                    for key in (
                        "BatchSize",
                        "StartingPosition",
                        "MaximumRetryAttempts",
                        "Enabled",
                        "MaximumBatchingWindowInSeconds",
                    )
                    if key in raw
                },
                template,
                names,
            )
            destination = raw.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            queue_id = _get_att_target(destination, "Arn") if destination is not None else None
            if destination is not None and queue_id is None:
                raise ValueError(f"{function_id}/{event_name}: OnFailure Destination must be !GetAtt <queue>.Arn")
            found.append(
                StreamMapping(
                    function=function_id,
                    event_name=event_name,
                    table_name=str(tables[table_id]["Properties"].get("TableName", names.physical_name(table_id))),
                    batch_size=max(int(props.get("BatchSize", 100)), 1),
                    starting_position=str(props.get("StartingPosition", "TRIM_HORIZON")),
                    maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
                    on_failure_queue=names.physical_name(queue_id) if queue_id else None,
                    enabled=str(props.get("Enabled", True)).lower() != "false",
                    batching_window_seconds=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                )
            )
    return found


def _wire(value: Any) -> Any:
    """An attribute value as Lambda's JSON event carries it: binary (bytes from boto3) in base64."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wire(item) for item in value]
    return value


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """One record of Lambda's DynamoDB stream event, from a record GetRecords answered."""
    stream = record.get("dynamodb", {})
    body: dict[str, Any] = {}
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        body["ApproximateCreationDateTime"] = int(created.timestamp())
    elif created is not None:
        body["ApproximateCreationDateTime"] = created
    for key in ("Keys", "NewImage", "OldImage", "SequenceNumber", "SizeBytes", "StreamViewType"):
        if key in stream:
            body[key] = _wire(stream[key])
    out: dict[str, Any] = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": stream_arn.split(":")[3],  # the stream's (moto names us-east-1 whatever the region)
        "dynamodb": body,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in record:  # deletions by TTL
        out["userIdentity"] = dict(record["userIdentity"])
    return out


@dataclass
class _Shard:
    shard_id: str
    position: str | None = None
    """Sequence number of the last record handled (None: none yet, start at StartingPosition)."""
    latest: str | None = None
    """A LATEST start's iterator, kept until the first record arrives (taken again, it would skip
    what was written in between)."""
    closed: bool = False
    failures: int = 0


@dataclass
class _Positions:
    """The shards' positions, as kept in SSM (stream ARN -> shard id -> sequence number)."""

    stream_arn: str
    shards: dict[str, str] = field(default_factory=dict)

    def dumps(self) -> str:
        return json.dumps({"stream_arn": self.stream_arn, "shards": self.shards}, sort_keys=True)


class StreamPoller(SingleThreadWorker):
    """The event source mapping of one DynamoDB event of one function (a BackgroundWorker)."""

    kind = "stream"

    def __init__(
        self,
        mapping: StreamMapping,
        spec: FunctionSpec,
        names: LocalNames,
        *,
        stream_arn: str,
        streams: Any,
        sqs: Any,
        ssm: Any,
        retry_delay_seconds: float,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        super().__init__(mapping.name, spec, names)
        self.mapping = mapping
        self.concurrency = 1
        self.stream_arn = stream_arn
        self._streams = streams
        self._sqs = sqs
        self._ssm = ssm
        self._retry_delay = retry_delay_seconds
        self._poll_seconds = poll_seconds
        self._shards: dict[str, _Shard] = {}
        self._shards_read_at = 0.0
        self._positions = self._load_positions()

    @property
    def positions_parameter(self) -> str:
        return positions_parameter(self._names, self.mapping)

    # ------------------------------------------------------------------ the loop
    def _run(self, environment: ExecutionEnvironment) -> None:
        while not self._stop.is_set():
            try:
                delivered = self.poll(environment) if self.mapping.enabled else None
            except (BotoCoreError, ClientError) as exc:
                if not self._stop.is_set():
                    log.warning("stream %s: AWS call failed (%s); retrying", self.name, exc)
                    self._stop.wait(ERROR_BACKOFF_SECONDS)
                continue
            except Exception:
                log.exception("stream %s: unexpected error; it keeps reading", self.name)
                self._stop.wait(ERROR_BACKOFF_SECONDS)
                continue
            if delivered is None:
                self._stop.wait(self._poll_seconds)
            elif delivered < self.mapping.batch_size:
                # Lambda waits up to MaximumBatchingWindowInSeconds for a fuller batch: fewer, larger
                # invocations (and counter writes) instead of one per handful of records.
                self._stop.wait(self.mapping.batching_window_seconds)

    def poll(self, environment: ExecutionEnvironment) -> int | None:
        """One pass over the shards: at most one batch of each delivered. The size of the largest
        batch delivered, None if no record came."""
        largest: int | None = None
        for shard in self._current_shards():
            if self._stop.is_set():
                break
            records = self._read(shard)
            if records:
                largest = max(largest or 0, len(records))
                self._deliver(environment, shard, records)
        return largest

    def _current_shards(self) -> list[_Shard]:
        if not self._shards or time.monotonic() - self._shards_read_at >= SHARD_REFRESH_SECONDS:
            self._shards_read_at = time.monotonic()
            known = self._positions.shards
            start: dict[str, Any] = {}
            while True:
                description = self._streams.describe_stream(StreamArn=self.stream_arn, **start)["StreamDescription"]
                for shard in description.get("Shards", []):
                    shard_id = shard["ShardId"]
                    if shard_id not in self._shards:
                        self._shards[shard_id] = _Shard(shard_id, position=known.get(shard_id))
                last = description.get("LastEvaluatedShardId")
                if not last:
                    break
                start = {"ExclusiveStartShardId": last}
        return [shard for shard in self._shards.values() if not shard.closed]

    def _iterator(self, shard: _Shard) -> str:
        """Where the shard's next batch begins: after the last record handled."""
        if shard.latest is not None:
            return shard.latest
        args: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard.shard_id}
        if shard.position is None:
            args["ShardIteratorType"] = self.mapping.starting_position
        else:
            args.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.position)
        iterator = str(self._streams.get_shard_iterator(**args)["ShardIterator"])
        if shard.position is None and self.mapping.starting_position == "LATEST":
            shard.latest = iterator
        return iterator

    def _read(self, shard: _Shard) -> list[dict[str, Any]]:
        """The shard's next batch (reading moves nothing: only _deliver's success does)."""
        iterator: str | None = self._iterator(shard)
        records: list[dict[str, Any]] = []
        while iterator is not None and len(records) < self.mapping.batch_size:
            limit = min(GET_RECORDS_LIMIT, self.mapping.batch_size - len(records))
            answer = self._streams.get_records(ShardIterator=iterator, Limit=limit)
            got = answer.get("Records", [])
            records += got
            iterator = answer.get("NextShardIterator")
            if len(got) < limit:
                break  # the shard's end for now: asking again would answer nothing
        if iterator is None and not records:
            shard.closed = True  # a closed shard read to its end
        elif shard.latest is not None and not records and iterator is not None:
            shard.latest = iterator  # nothing yet since the LATEST start: wait there
        return records

    def _deliver(self, environment: ExecutionEnvironment, shard: _Shard, records: list[dict[str, Any]]) -> None:
        event = {"Records": [lambda_record(record, self.stream_arn) for record in records]}
        try:
            environment.invoke(event)
        except Exception:
            shard.failures += 1
            retries = self.mapping.maximum_retry_attempts
            if 0 <= retries < shard.failures:
                log.exception(
                    "%s raised on a batch of %d records of %s, %d times: the batch is skipped",
                    self.mapping.function,
                    len(records),
                    self.name,
                    shard.failures,
                )
                self._report_skipped(shard, records)
            else:
                log.exception(
                    "%s raised on a batch of %d records of %s; it is delivered again in %g s",
                    self.mapping.function,
                    len(records),
                    self.name,
                    self._retry_delay,
                )
                self._stop.wait(self._retry_delay)  # then read again from the position: the same first record
                return
        self._advance(shard, records[-1]["dynamodb"]["SequenceNumber"])

    def _advance(self, shard: _Shard, sequence_number: str) -> None:
        shard.failures = 0
        shard.position = sequence_number
        shard.latest = None
        self._positions.shards[shard.shard_id] = sequence_number
        self._ssm.put_parameter(
            Name=self.positions_parameter, Value=self._positions.dumps(), Type="String", Overwrite=True
        )

    def _load_positions(self) -> _Positions:
        try:
            value = self._ssm.get_parameter(Name=self.positions_parameter)["Parameter"]["Value"]
            data = json.loads(value)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ParameterNotFound":
                raise
            return _Positions(self.stream_arn)
        if data.get("stream_arn") != self.stream_arn:  # another stream (the table was made again)
            return _Positions(self.stream_arn)
        return _Positions(self.stream_arn, {str(k): str(v) for k, v in data.get("shards", {}).items()})

    def _report_skipped(self, shard: _Shard, records: Sequence[dict[str, Any]]) -> None:
        """Lambda's on-failure record of a stream batch it gave up on."""
        if not self.mapping.on_failure_queue:
            return
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]

        def arrival(stream: Mapping[str, Any]) -> str:
            moment = stream.get("ApproximateCreationDateTime")
            return moment.astimezone(UTC).isoformat() if isinstance(moment, datetime) else str(moment)

        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self._spec.arn(self._names),
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": shard.failures,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": shard.shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": arrival(first),
                "approximateArrivalOfLastRecord": arrival(last),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
        try:
            url = self._sqs.get_queue_url(QueueName=self.mapping.on_failure_queue)["QueueUrl"]
            self._sqs.send_message(QueueUrl=url, MessageBody=json.dumps(message))
        except (BotoCoreError, ClientError) as exc:
            log.error("stream %s: the skipped batch could not be reported (%s)", self.name, exc)


def positions_parameter(names: LocalNames, mapping: StreamMapping) -> str:
    """The SSM parameter that keeps where the mapping is in each shard of its stream."""
    return f"/{names.stack_name}/stream-positions/{mapping.function}/{mapping.event_name}"


def stream_arn(dynamodb: Any, table_name: str) -> str:
    """The table's current stream; ValueError when it has none."""
    table = dynamodb.describe_table(TableName=table_name)["Table"]
    if not table.get("LatestStreamArn") or not table.get("StreamSpecification", {}).get("StreamEnabled"):
        raise ValueError(f"table {table_name} has no stream (StreamSpecification)")
    return str(table["LatestStreamArn"])


def build_stream_pollers(
    mappings: Sequence[StreamMapping],
    specs: dict[str, FunctionSpec],
    names: LocalNames,
    *,
    dynamodb: Any,
    streams: Any,
    sqs: Any,
    ssm: Any,
    retry_delay_seconds: float,
) -> list[StreamPoller]:
    pollers = []
    for mapping in mappings:
        if mapping.function not in specs:
            raise ValueError(f"stream mapping {mapping.name} names {mapping.function!r}, which the template lacks")
        pollers.append(
            StreamPoller(
                mapping,
                specs[mapping.function],
                names,
                stream_arn=stream_arn(dynamodb, mapping.table_name),
                streams=streams,
                sqs=sqs,
                ssm=ssm,
                retry_delay_seconds=retry_delay_seconds,
            )
        )
    return pollers

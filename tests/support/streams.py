"""A moto table's DynamoDB stream, read whole from TRIM_HORIZON as Lambda's event records: what the
integration tests of the counters and the cost benchmarks apply through the counters' writer."""

from __future__ import annotations

from typing import Any

from botocore.config import Config

from infra.stream_pollers import lambda_record

STREAMS_CONFIG = Config(account_id_endpoint_mode="disabled")
"""botocore sends DescribeStream & co. to <account>.streams-ddb.<region>.amazonaws.com, a host moto
5.2.5 does not serve in-process: the regional endpoint instead."""


def read_stream(dynamodb: Any, streams: Any, table_name: str) -> list[dict[str, Any]]:
    """Every record of the table's stream, in stream order, shaped as infra.stream_pollers hands
    them to a handler. `streams` is a dynamodbstreams client made with STREAMS_CONFIG."""
    arn = dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            answer = streams.get_records(ShardIterator=iterator, Limit=1000)
            if not answer["Records"]:
                break
            records += [lambda_record(record, arn) for record in answer["Records"]]
            iterator = answer.get("NextShardIterator")
    return records
